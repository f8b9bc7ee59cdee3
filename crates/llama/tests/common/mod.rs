//! Helpers shared by perch-llama's integration tests: greedy requests that run their
//! whole length and ask for log-probabilities, what a generation sends back, and how two
//! runs of one prompt read in differently shaped batches are compared.
//!
//! llama.cpp is not batch-invariant: one row attending over 512 cells or more takes its
//! flash-attention kernel's split path (float32 partial sums per thread), several rows the
//! per-row path (a float16 accumulator), and matrix kernels change with the batch's size.
//! Log-probabilities therefore move by a few hundredths of a nat between runs whose
//! prompts were read in differently shaped batches (beside other requests, in other
//! chunks, or after a reused prefix); they are compared within 0.15 nats, still far below
//! what a mix-up of rows, positions or cells does (whole nats). Greedy tokens must match up
//! to the first step where the reference is within 0.15 nats of a tie.
#![allow(dead_code)]

use perch_engine::generate::{Event, Finished, GenerateRequest, GeneratedToken};
use perch_engine::sampler::SamplingParams;
use perch_engine::text::chat_prompt::ChatInput;
use perch_engine::text::template::ChatMessage;
use perch_engine::Engine;

/// Log-probability difference allowed between differently batched runs (module comment).
const TOLERANCE: f32 = 0.15;
/// A top-1 margin below which greedy runs may part.
const NEAR_TIE: f32 = 0.15;

/// The tokens of a one-message chat asking `prompt`, in `engine`'s template.
pub fn chat_prompt(engine: &dyn Engine, prompt: &str) -> Vec<u32> {
    let messages = [ChatMessage::new("user", prompt)];
    engine
        .chat(&ChatInput::messages(&messages))
        .expect("the template renders")
        .tokens
}

/// Greedy decoding of `tokens` tokens after `prompt` (past any end of sequence), each
/// with its log-probability and `top` alternatives.
pub fn greedy(prompt: Vec<u32>, tokens: usize, top: usize) -> GenerateRequest {
    GenerateRequest {
        prompt,
        max_tokens: tokens,
        ignore_eos: true,
        sampling: SamplingParams {
            logprobs: Some(top),
            ..Default::default()
        },
        ..Default::default()
    }
}

/// What a generation sent: its tokens, its text, and its summary once it ended.
pub struct Generated {
    pub tokens: Vec<GeneratedToken>,
    pub text: String,
    pub finished: Option<Finished>,
}

/// Reads `events` to the end.
pub fn collect(events: impl IntoIterator<Item = perch_engine::Result<Event>>) -> Generated {
    let mut out = Generated {
        tokens: Vec::new(),
        text: String::new(),
        finished: None,
    };
    for event in events {
        match event.expect("generation runs") {
            Event::Chunk { text, tokens } => {
                out.text.push_str(&text);
                out.tokens.extend(tokens);
            }
            Event::Done(finished) => out.finished = Some(finished),
        }
    }
    out
}

/// Reads `events` until at least `count` tokens have come (the generation is then
/// decoding); those tokens.
pub fn first_tokens(
    events: &mut impl Iterator<Item = perch_engine::Result<Event>>,
    count: usize,
) -> Vec<GeneratedToken> {
    let mut tokens = Vec::new();
    while tokens.len() < count {
        if let Event::Chunk { tokens: more, .. } = events
            .next()
            .expect("the generation runs")
            .expect("the generation runs")
        {
            tokens.extend(more);
        }
    }
    tokens
}

/// Runs `request` on `engine` to the end.
pub fn run(engine: &dyn Engine, request: GenerateRequest) -> Generated {
    collect(engine.generate(request).expect("generation starts"))
}

/// Asserts that `run` answers as `reference` did, read in differently shaped batches
/// (module comment); the largest log-probability difference over the steps compared.
pub fn assert_close(run: &[GeneratedToken], reference: &[GeneratedToken], what: &str) -> f32 {
    assert_eq!(run.len(), reference.len(), "{what}");
    let mut worst: f32 = 0.0;
    for (step, (r, a)) in run.iter().zip(reference).enumerate() {
        let (lr, la) = (r.logprob.as_ref().unwrap(), a.logprob.as_ref().unwrap());
        if r.id != a.id {
            let margin = la.top[0].1 - la.top[1].1;
            assert!(
                margin < NEAR_TIE,
                "{what}: step {step} parts at a margin of {margin}"
            );
            return worst;
        }
        worst = worst.max((lr.logprob - la.logprob).abs());
        assert!(
            (lr.logprob - la.logprob).abs() < TOLERANCE,
            "{what}: step {step}: {} against {}",
            lr.logprob,
            la.logprob
        );
    }
    worst
}
