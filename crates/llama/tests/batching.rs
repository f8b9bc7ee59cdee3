//! The shared scheduler on the llama.cpp backend: prompts read inside decode steps (one
//! llama.cpp batch holding the running rows and the new prompts' chunks) answer as each
//! request does alone. A stream runs while a short prompt (read whole in one step) and a
//! long one (read in several chunks beside the stream) arrive; each of the three is
//! compared with its solo run on a fresh engine.
//!
//! llama.cpp is not batch-invariant: one row attending over 512 cells or more takes its
//! flash-attention kernel's split path (float32 partial sums per thread), several rows the
//! per-row path (a float16 accumulator), and matrix kernels change with the batch's size.
//! Log-probabilities therefore move by a few hundredths of a nat
//! between a batched run and a solo one (0.06 on the long prompt here; the short ones
//! match exactly); they are compared within 0.15 nats, still far
//! below what a mix-up of rows, positions or cells does (whole nats). Greedy tokens must
//! match up to the first step where the solo run is within 0.15 nats of a tie.

mod common;

use common::{chat_prompt, collect, greedy};
use perch_engine::generate::{Event, GenerateRequest, GeneratedToken};
use perch_engine::{Engine, Serving};
use perch_test_support::test_model;

const TOLERANCE: f32 = 0.15;
const NEAR_TIE: f32 = 0.15;

fn request(engine: &dyn Engine, prompt: &str, tokens: usize) -> GenerateRequest {
    greedy(chat_prompt(engine, prompt), tokens, 2)
}

/// The largest log-probability difference over the steps compared.
fn assert_same(batched: &[GeneratedToken], alone: &[GeneratedToken], what: &str) -> f32 {
    assert_eq!(batched.len(), alone.len(), "{what}");
    let mut worst: f32 = 0.0;
    for (step, (b, a)) in batched.iter().zip(alone).enumerate() {
        let (lb, la) = (b.logprob.as_ref().unwrap(), a.logprob.as_ref().unwrap());
        if b.id != a.id {
            let margin = la.top[0].1 - la.top[1].1;
            assert!(
                margin < NEAR_TIE,
                "{what}: step {step} parts at a margin of {margin}"
            );
            return worst;
        }
        worst = worst.max((lb.logprob - la.logprob).abs());
        assert!(
            (lb.logprob - la.logprob).abs() < TOLERANCE,
            "{what}: step {step}: {} batched, {} alone",
            lb.logprob,
            la.logprob
        );
    }
    worst
}

#[test]
fn prompts_read_inside_decode_steps_answer_as_alone() {
    let path = test_model();
    let shared = perch_llama::load(&path, Serving::new(4, 2048)).expect("llama.cpp loads it");
    let long_text = "The river ran past the old mill and the stone bridge. ".repeat(60);
    let long_prompt = format!("{long_text}\nWhat ran past the mill?");
    let stream = request(&shared, "Count from one to forty in words.", 64);
    let short = request(&shared, "Write a haiku about the sea.", 24);
    let long = request(&shared, &long_prompt, 24);
    assert!(long.prompt.len() > 600, "{} tokens", long.prompt.len());

    let mut running = shared.generate(stream.clone()).expect("starts");
    // The stream is decoding once its first tokens arrive; the others then join it.
    let mut first = Vec::new();
    while first.len() < 2 {
        if let Event::Chunk { tokens, .. } = running.next().expect("runs").expect("runs") {
            first.extend(tokens);
        }
    }
    let short_run = shared.generate(short.clone()).expect("starts");
    let long_run = shared.generate(long.clone()).expect("starts");
    first.extend(collect(running).tokens);
    let batched = [first, collect(short_run).tokens, collect(long_run).tokens];

    for (i, (request, batched)) in [stream, short, long].into_iter().zip(&batched).enumerate() {
        let alone = perch_llama::load(&path, Serving::new(1, 2048)).expect("loads");
        let solo = common::run(&alone, request).tokens;
        let worst = assert_same(batched, &solo, &format!("request {i}"));
        eprintln!("request {i}: log-probabilities within {worst:.4} of its solo run");
    }
}
