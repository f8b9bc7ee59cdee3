//! The shared scheduler on the llama.cpp backend: prompts read inside decode steps (one
//! llama.cpp batch holding the running rows and the new prompts' chunks) answer as each
//! request does alone. A stream runs while a short prompt (read whole in one step) and a
//! long one (read in several chunks beside the stream) arrive; each of the three is
//! compared with its solo run on a fresh engine, within `common::assert_close`'s bounds
//! (0.06 nats apart at most on the long prompt here; the short ones match exactly).

mod common;

use common::{assert_close, chat_prompt, collect, greedy};
use perch_engine::generate::{Event, GenerateRequest};
use perch_engine::{Engine, Serving};
use perch_test_support::test_model;

fn request(engine: &dyn Engine, prompt: &str, tokens: usize) -> GenerateRequest {
    greedy(chat_prompt(engine, prompt), tokens, 2)
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
        let worst = assert_close(batched, &solo, &format!("request {i}"));
        eprintln!("request {i}: log-probabilities within {worst:.4} of its solo run");
    }
}

/// A prompt that takes over a kept sequence in a lower stream than a running one is read
/// first in the step's batch (llama.cpp wants it in stream order), ahead of the running
/// row: each must still get its own logits.
#[test]
fn a_prompt_in_a_lower_stream_than_the_running_one_answers_as_alone() {
    let path = test_model();
    let shared = perch_llama::load(&path, Serving::new(2, 2048)).expect("llama.cpp loads it");
    // Kept in the first stream, with more after the chat template's opening than a
    // prompt that only shares that opening would take it over for.
    let kept = common::run(&shared, request(&shared, "Say hello.", 24));
    assert_eq!(kept.finished.expect("ends").cached_tokens, 0);
    let stream = request(&shared, "Count from one to forty in words.", 48);
    let short = request(&shared, "Write a haiku about the sea.", 24);

    let mut running = shared.generate(stream.clone()).expect("starts");
    let mut first = Vec::new();
    while first.len() < 2 {
        if let Event::Chunk { tokens, .. } = running.next().expect("runs").expect("runs") {
            first.extend(tokens);
        }
    }
    let short_run = collect(shared.generate(short.clone()).expect("starts"));
    let rest = collect(running);
    first.extend(rest.tokens);
    // The stream went to the second stream (a copy of the kept one, with which it shares
    // the chat template's opening); the short prompt, with no stream left empty, took
    // over the kept first one.
    assert!(rest.finished.is_some(), "the stream ends");
    let taken_over = short_run.finished.expect("ends").cached_tokens;
    assert!(
        taken_over > 0,
        "the short prompt reused {taken_over} tokens"
    );

    for (what, request, batched) in [
        ("stream", stream, first),
        ("short", short, short_run.tokens),
    ] {
        let alone = perch_llama::load(&path, Serving::new(1, 2048)).expect("loads");
        let solo = common::run(&alone, request).tokens;
        let worst = assert_close(&batched, &solo, what);
        eprintln!("{what}: log-probabilities within {worst:.4} of its solo run");
    }
}
