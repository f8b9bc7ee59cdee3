//! Helpers shared by perch-engine's integration tests: the real test model, and running
//! a chat through an engine.
#![allow(dead_code)]

use std::path::PathBuf;
use std::process::Command;

use perch_engine::generate::{Event, FinishReason, GenerateRequest};
use perch_engine::sampler::SamplingParams;
use perch_engine::text::template::ChatMessage;
use perch_engine::Engine;

/// Runs a script from `scripts/` and returns what it printed, trimmed.
pub fn script(name: &str, args: &[&str]) -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../scripts")
        .join(name);
    let output = Command::new("bash")
        .arg(&path)
        .args(args)
        .output()
        .expect("run script");
    assert!(
        output.status.success(),
        "scripts/{name} failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout)
        .expect("utf-8")
        .trim()
        .to_owned()
}

/// The SmolLM2-135M-Instruct Q4_1 GGUF (`PERCH_TEST_MODEL`, else fetched).
pub fn test_model() -> PathBuf {
    match std::env::var_os("PERCH_TEST_MODEL") {
        Some(p) => PathBuf::from(p),
        None => PathBuf::from(script("fetch-test-model", &[])),
    }
}

/// The python of the test virtual environment (mlx-lm and friends).
pub fn reference_python() -> PathBuf {
    PathBuf::from(script("python-env", &[]))
}

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
    let prompt = engine
        .render_chat(messages, None)
        .expect("template renders");
    let ids = engine.tokenize(&prompt, false).expect("tokenizes");
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
