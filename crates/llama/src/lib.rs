//! Perch's second engine: llama.cpp (through `llama-cpp-2`), for GGUF files of every
//! quantization llama.cpp reads (K-quants and IQ quants among them), at llama.cpp's speed
//! on the CPU and with Metal on a Mac. It runs on Perch's own scheduler as a
//! [`perch_engine::scheduler::backend::Backend`]: llama.cpp computes the logits, with one
//! context per model, a sequence per running request, its own KV cache (shared prefixes
//! reused through its sequence API), while Perch's sampler, constraints, stop strings and
//! tokenizer do the rest, so every option behaves as it does on MLX.
//!
//! The text side (tokenizer, chat template, end-of-sequence ids, hyper-parameters) is read
//! from the GGUF header by `perch-engine`, never from llama.cpp, so both engines render and
//! tokenize a chat identically.

mod backend;
mod context;
mod embedding;
mod saved;
mod streams;
mod threads;

use std::path::Path;
use std::time::Instant;

use perch_engine::embed::EmbeddingRecipe;
use perch_engine::format::gguf;
use perch_engine::reply::ReplySyntax;
use perch_engine::sampling_defaults::SamplingDefaults;
use perch_engine::text::template::ChatTemplate;
use perch_engine::{EngineError, EngineKind, Loaded, ModelEngine, ModelInfo, Serving};

pub use backend::LlamaCppBackend;
pub use threads::threads;

/// Loads the GGUF model at `path` into llama.cpp to serve as `serving` says: up to
/// `serving.sequences` requests at once, sharing a KV cache of that many contexts with the
/// prefix cache. Waits until it is ready.
pub fn load(path: &Path, serving: Serving) -> perch_engine::Result<ModelEngine> {
    let owned = path.to_owned();
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    ModelEngine::start(&name, move || {
        let started = Instant::now();
        let text = gguf::read_text(&owned)?;
        let serving = Serving::new(
            serving.sequences,
            serving
                .context
                .min(text.config.max_position_embeddings as usize),
        );
        let chat_template = text
            .chat_template
            .as_deref()
            .map(ChatTemplate::new)
            .transpose()?;
        let backend = LlamaCppBackend::load(&owned, &text, serving)?;
        let info = ModelInfo {
            weights_bytes: backend.weights_bytes(),
            kv_bytes_per_token: backend.kv_bytes_per_token(),
            load_time: started.elapsed(),
            notes: Vec::new(),
            eos_token_ids: text.eos_token_ids.clone(),
            sampling_defaults: SamplingDefaults::of(&owned),
            embedding: EmbeddingRecipe::of(&owned),
            reply_syntax: ReplySyntax::detect(chat_template.as_ref(), |token| {
                text.tokenizer.token_id(token).is_some()
            }),
            serving,
            engine: EngineKind::LlamaCpp,
            config: text.config.clone(),
            path: owned,
        };
        Ok(Loaded {
            info,
            tokenizer: text.tokenizer,
            chat_template,
            backend,
        })
    })
}

/// A llama.cpp failure as the engine's error.
fn failed(what: &str, error: impl std::fmt::Display) -> EngineError {
    EngineError::StepFailed(format!("llama.cpp: {what}: {error}"))
}
