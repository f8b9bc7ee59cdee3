//! The real SmolLM2 model, from its GGUF: it loads, answers sensibly, and streams.

mod common;

use common::{chat, test_model};
use perch_engine::text::template::ChatMessage;
use perch_engine::{Engine, MlxEngine};

#[test]
fn answers_a_factual_question() {
    let engine = MlxEngine::load(&test_model()).unwrap();
    let info = engine.info();
    assert_eq!(info.config.num_hidden_layers, 30);
    let out = chat(
        &engine,
        &[ChatMessage::new("user", "What is the capital of France?")],
        24,
    );
    println!("{:?}", out.text);
    assert!(out.text.contains("Paris"), "{:?}", out.text);
}
