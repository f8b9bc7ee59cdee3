//! Helpers shared by perch-engine's integration tests: the real test model, and running
//! a chat through an engine.
#![allow(dead_code, unused_imports)]

use perch_engine::generate::{Event, FinishReason, GenerateRequest};
use perch_engine::sampler::SamplingParams;
use perch_engine::text::chat_prompt::ChatInput;
use perch_engine::text::template::ChatMessage;
use perch_engine::Engine;

pub use perch_test_support::{mlx_lm_reference, test_model};

/// What a generation produced.
pub struct Output {
    pub text: String,
    pub tokens: Vec<u32>,
    pub reason: FinishReason,
    pub completion_tokens: usize,
}

/// Runs `request` to the end and collects text and tokens.
pub fn run(engine: &dyn Engine, request: GenerateRequest) -> Output {
    let mut text = String::new();
    let mut tokens = Vec::new();
    for event in engine.generate(request).expect("generation starts") {
        match event.expect("no generation error") {
            Event::Chunk {
                text: t,
                tokens: ts,
            } => {
                text.push_str(&t);
                tokens.extend(ts.iter().map(|t| t.id));
            }
            Event::Done(f) => {
                return Output {
                    text,
                    tokens,
                    reason: f.reason,
                    completion_tokens: f.completion_tokens,
                }
            }
        }
    }
    panic!("the stream ended without Done");
}

/// Greedy chat completion of `messages`, `max_tokens` long.
pub fn chat(engine: &dyn Engine, messages: &[ChatMessage], max_tokens: usize) -> Output {
    let ids = engine
        .chat(&ChatInput::messages(messages))
        .map(|p| p.tokens)
        .expect("template renders");
    run(
        engine,
        GenerateRequest {
            prompt: ids,
            sampling: SamplingParams::default(),
            max_tokens,
            ..Default::default()
        },
    )
}
