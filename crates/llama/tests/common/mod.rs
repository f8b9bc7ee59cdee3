//! Helpers shared by perch-llama's integration tests: greedy requests that run their
//! whole length and ask for log-probabilities, and what a generation sends back.
#![allow(dead_code)]

use perch_engine::generate::{Event, Finished, GenerateRequest, GeneratedToken};
use perch_engine::sampler::SamplingParams;
use perch_engine::text::chat_prompt::ChatInput;
use perch_engine::text::template::ChatMessage;
use perch_engine::Engine;

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

/// Runs `request` on `engine` to the end.
pub fn run(engine: &dyn Engine, request: GenerateRequest) -> Generated {
    collect(engine.generate(request).expect("generation starts"))
}
