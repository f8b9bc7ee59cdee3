//! GGUF quantizations beyond the ones MLX reads, on the llama.cpp engine: the test model
//! requantized by llama.cpp's own quantizer (from its Q4_1 weights) to a K-quant (Q4_K_M,
//! Q6_K) and an IQ quant (IQ4_NL). Perch's header reader names each type and counts
//! the bytes llama.cpp loads; each file answers through Perch, and its first token's
//! distribution stays near the Q4_1 file's it was made from (Q6_K within 0.25 nats of
//! it on every top-5 candidate, the 4-bit ones keeping its top choice among their five).

use std::ffi::CString;
use std::path::{Path, PathBuf};

mod common;

use common::{chat_prompt, greedy};
use llama_cpp_sys_2 as sys;
use perch_engine::generate::GeneratedToken;
use perch_engine::inspect::inspect;
use perch_engine::{Engine, EngineKind, Serving};
use perch_test_support::{test_model, ScratchDir};

/// Writes `from` requantized to `ftype` at `to`, with llama.cpp's quantizer.
fn quantize(from: &Path, to: &Path, ftype: sys::llama_ftype) {
    let (from, to) = (
        CString::new(from.to_str().unwrap()).unwrap(),
        CString::new(to.to_str().unwrap()).unwrap(),
    );
    // SAFETY: plain C calls with valid, NUL-terminated paths and params from llama.cpp's
    // own defaults.
    let failed = unsafe {
        let mut params = sys::llama_model_quantize_default_params();
        params.ftype = ftype;
        params.allow_requantize = true;
        params.nthread = 2;
        sys::llama_model_quantize(from.as_ptr(), to.as_ptr(), &params)
    };
    assert_eq!(failed, 0, "llama.cpp could not quantize to type {ftype}");
}

/// The first greedy tokens of a fixed chat, with their top-5 alternatives.
fn first_tokens(engine: &dyn Engine) -> Vec<GeneratedToken> {
    let prompt = chat_prompt(engine, "Name three colours of the rainbow.");
    common::run(engine, greedy(prompt, 8, 5)).tokens
}

#[test]
fn k_quants_and_iq_quants_load_and_answer() {
    let scratch = ScratchDir::new("quantizations");
    let source = test_model();
    let reference = perch_llama::load(&source, Serving::new(1, 1024)).unwrap();
    let want = first_tokens(&reference);
    let want_top = &want[0].logprob.as_ref().unwrap().top;
    for (ftype, name) in [
        (sys::LLAMA_FTYPE_MOSTLY_Q6_K, "Q6_K"),
        (sys::LLAMA_FTYPE_MOSTLY_Q4_K_M, "Q4_K_M"),
        (sys::LLAMA_FTYPE_MOSTLY_IQ4_NL, "IQ4_NL"),
    ] {
        let path: PathBuf = scratch.path().join(format!("smollm2-{name}.gguf"));
        quantize(&source, &path, ftype);
        let facts = inspect(&path).unwrap();
        assert_eq!(facts.quantization.as_deref(), Some(name));
        assert_eq!(facts.engine, EngineKind::LlamaCpp);
        let engine = perch_llama::load(&path, Serving::new(1, 1024)).unwrap();
        assert_eq!(
            facts.weights_bytes,
            engine.info().weights_bytes as u64,
            "{name}: the header's count is what llama.cpp loads"
        );
        let got = first_tokens(&engine);
        assert_eq!(got.len(), 8, "{name}");
        let got_top = &got[0].logprob.as_ref().unwrap().top;
        assert!(
            got_top.iter().any(|(id, _)| *id == want_top[0].0),
            "{name}: Q4_1's first choice {:?} is not among {got_top:?}",
            want_top[0]
        );
        if name == "Q6_K" {
            for (id, lp) in want_top {
                let other = got_top.iter().find(|(i, _)| i == id).map(|(_, l)| *l);
                let other = other.unwrap_or(got_top[4].1);
                assert!(
                    (lp - other).abs() < 0.25,
                    "{name}: token {id}: {lp} vs {other}"
                );
            }
        }
        let text = engine
            .detokenize(&got.iter().map(|t| t.id).collect::<Vec<_>>())
            .unwrap();
        assert!(!text.trim().is_empty(), "{name}: {text:?}");
    }
}
