//! Prefix reuse on the llama.cpp backend with a single sequence id: a finished turn stays
//! kept in llama.cpp's KV cache, and the next turn that continues it takes that id over,
//! reading only what is new. The reused cells must answer exactly as a cold read of the
//! whole prompt does on a fresh engine (same tokens, log-probabilities within 1e-3: both
//! runs read the shared part with one row, so kernels match), and a prompt sharing nothing
//! with the kept turn must not pick any of it up.

mod common;

use common::greedy;
use perch_engine::generate::{Finished, GeneratedToken};
use perch_engine::text::chat_prompt::ChatInput;
use perch_engine::text::template::ChatMessage;
use perch_engine::{Engine, Serving};
use perch_test_support::test_model;

const TOLERANCE: f32 = 1e-3;

/// Greedy `tokens` after `prompt`: its tokens, text and summary.
fn run(
    engine: &dyn Engine,
    prompt: Vec<u32>,
    tokens: usize,
) -> (Vec<GeneratedToken>, String, Finished) {
    let out = common::run(engine, greedy(prompt, tokens, 1));
    let finished = out.finished.expect("the generation ends with a summary");
    (out.tokens, out.text, finished)
}

fn assert_same(reused: &[GeneratedToken], cold: &[GeneratedToken], what: &str) {
    let ids = |t: &[GeneratedToken]| t.iter().map(|t| t.id).collect::<Vec<_>>();
    assert_eq!(ids(reused), ids(cold), "{what}: greedy tokens");
    for (step, (r, c)) in reused.iter().zip(cold).enumerate() {
        let (r, c) = (r.logprob.as_ref().unwrap(), c.logprob.as_ref().unwrap());
        assert!(
            (r.logprob - c.logprob).abs() < TOLERANCE,
            "{what}: step {step}: {} reused, {} cold",
            r.logprob,
            c.logprob
        );
    }
}

#[test]
fn a_continued_turn_reuses_the_kept_sequence_and_answers_as_cold() {
    let path = test_model();
    let engine = perch_llama::load(&path, Serving::new(1, 2048)).expect("llama.cpp loads it");
    let first_turn = [ChatMessage::new("user", "Name three rivers.")];
    let first = engine
        .chat(&ChatInput::messages(&first_turn))
        .expect("the template renders")
        .tokens;
    let (_, answer, finished) = run(&engine, first.clone(), 16);
    assert_eq!(
        finished.cached_tokens, 0,
        "nothing is kept before the first turn"
    );

    let second_turn = [
        ChatMessage::new("user", "Name three rivers."),
        ChatMessage::new("assistant", &answer),
        ChatMessage::new("user", "Which of them is the longest?"),
    ];
    let second = engine
        .chat(&ChatInput::messages(&second_turn))
        .expect("the template renders")
        .tokens;
    assert_eq!(&second[..first.len()], &first[..], "the turn continues");
    let (reused, _, finished) = run(&engine, second.clone(), 16);
    assert!(
        finished.cached_tokens >= first.len() && finished.cached_tokens < second.len(),
        "{} of {} tokens read from the kept sequence (first turn {})",
        finished.cached_tokens,
        second.len(),
        first.len()
    );
    let fresh = perch_llama::load(&path, Serving::new(1, 2048)).expect("loads");
    let (cold, _, _) = run(&fresh, second, 16);
    assert_same(&reused, &cold, "continued turn");

    // Token ids the chat template never starts with: nothing in common with what is kept.
    let unrelated: Vec<u32> = (0..40).map(|i| 500 + i * 3).collect();
    let (kept_over, _, finished) = run(&engine, unrelated.clone(), 8);
    assert_eq!(
        finished.cached_tokens, 0,
        "an unrelated prompt shares nothing"
    );
    let (cold, _, _) = run(&fresh, unrelated, 8);
    assert_same(&kept_over, &cold, "unrelated prompt");
}
