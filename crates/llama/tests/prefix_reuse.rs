//! Prefix reuse on the llama.cpp backend. With a single sequence id, a finished turn stays
//! kept in its stream of llama.cpp's KV cache, and the next turn that continues it takes
//! that stream over, reading only what is new. With two, a prompt sharing a long document
//! with a kept turn but asking something else gets a copy of that stream's cells, and the kept
//! turn stays whole for its own next turn. Reused cells must answer as a cold read of the
//! whole prompt does on a fresh engine: exactly (log-probabilities within 1e-3) for the
//! short conversation, read in one chunk either way; over the document, read in chunks
//! whose sizes the pacer sets by time, within `common::assert_close`'s bounds for the
//! first four tokens (differences in the kernels' rounding grow over a long greedy run,
//! while cells copied wrong are off from the first token). A prompt sharing nothing with
//! the kept turn must not pick any of it up. With no stream empty while a stream runs,
//! the document's cells are copied into the kept stream beside the running one, replacing what
//! that one kept, rather than the prompt taking over the kept turn away from it. A kept
//! turn whose stream another prompt takes over is saved to host memory, and its next turn
//! gets it back from there instead of reading it all again.

mod common;

use common::{assert_close, collect, first_tokens, greedy};
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
    let out = common::run(engine, greedy(prompt, tokens, 2));
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

/// The tokens of `messages` (user, assistant, user, ...) in `engine`'s template.
fn chat(engine: &dyn Engine, messages: &[&str]) -> Vec<u32> {
    let messages: Vec<ChatMessage> = messages
        .iter()
        .enumerate()
        .map(|(i, text)| ChatMessage::new(["user", "assistant"][i % 2], text))
        .collect();
    engine
        .chat(&ChatInput::messages(&messages))
        .expect("the template renders")
        .tokens
}

/// Two questions on the same document of some 150 tokens: which river is first, and
/// the name of a town.
fn questions_on_a_document() -> (String, String) {
    let document: String = (0..12)
        .map(|i| format!("River {i} flows past the town of Ford {}. ", i * 7))
        .collect();
    let ask = |question: &str| format!("{document}\n\n{question}");
    (ask("Which river is the first?"), ask("Name one town."))
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

#[test]
fn a_prompt_sharing_a_long_document_copies_it_and_the_kept_turn_stays_whole() {
    let path = test_model();
    let serving = Serving::new(2, 2048);
    let engine = perch_llama::load(&path, serving).expect("llama.cpp loads it");
    let (rivers, towns) = questions_on_a_document();

    let first = chat(&engine, &[&rivers]);
    let (_, answer, _) = run(&engine, first.clone(), 16);
    let other = chat(&engine, &[&towns]);
    let shared = first.iter().zip(&other).take_while(|(a, b)| a == b).count();
    assert!(
        shared >= 150,
        "the prompts share the document ({shared} tokens)"
    );
    let (copied, _, finished) = run(&engine, other.clone(), 4);
    assert_eq!(
        finished.cached_tokens, shared,
        "the other question reads only what follows the document"
    );
    let fresh = perch_llama::load(&path, serving).expect("loads");
    let (cold, _, _) = run(&fresh, other, 4);
    assert_close(&copied, &cold, "question on a copied document");

    // The first turn was copied, not taken over: its next turn finds all of it.
    let next = chat(&engine, &[&rivers, &answer, "And the last?"]);
    let (reused, _, finished) = run(&engine, next.clone(), 4);
    assert!(
        finished.cached_tokens >= first.len(),
        "{} tokens read from the kept turn of {}",
        finished.cached_tokens,
        first.len()
    );
    let (cold, _, _) = run(&fresh, next, 4);
    assert_close(&reused, &cold, "next turn of the kept one");
}

#[test]
fn with_no_stream_empty_a_shared_document_is_copied_beside_the_running_stream() {
    let path = test_model();
    let serving = Serving::new(3, 2048);
    let engine = perch_llama::load(&path, serving).expect("llama.cpp loads it");
    let (rivers, towns) = questions_on_a_document();

    // Stream 0 keeps the document's first question; stream 1 a short unrelated turn.
    let first = chat(&engine, &[&rivers]);
    let (_, answer, _) = run(&engine, first.clone(), 16);
    run(&engine, chat(&engine, &["Say hello."]), 8);
    // Stream 2, the last empty one, runs a long stream while the next question arrives.
    let stream = greedy(
        chat(&engine, &["Count from one to a hundred in words."]),
        128,
        2,
    );
    let mut running = engine.generate(stream).expect("starts");
    first_tokens(&mut running, 2);
    let other = chat(&engine, &[&towns]);
    let shared = first.iter().zip(&other).take_while(|(a, b)| a == b).count();
    let (copied, _, finished) = run(&engine, other.clone(), 4);
    let stream_end = collect(running).finished.expect("the stream ends");
    assert_eq!(
        stream_end.completion_tokens, 128,
        "it ran beside the question"
    );
    assert_eq!(
        finished.cached_tokens, shared,
        "the question reads only what follows the document"
    );
    let fresh = perch_llama::load(&path, Serving::new(1, 2048)).expect("loads");
    let (cold, _, _) = run(&fresh, other, 4);
    assert_close(
        &copied,
        &cold,
        "question on a document copied over a kept turn",
    );

    // The document's first turn was copied, not taken over: its next turn finds it whole.
    let next = chat(&engine, &[&rivers, &answer, "And the last?"]);
    let (_, _, finished) = run(&engine, next, 4);
    assert!(
        finished.cached_tokens >= first.len(),
        "{} tokens read from the kept turn of {}",
        finished.cached_tokens,
        first.len()
    );
}

#[test]
fn a_turn_whose_stream_was_taken_over_comes_back_from_host_memory() {
    let path = test_model();
    let serving = Serving::new(1, 2048);
    let engine = perch_llama::load(&path, serving).expect("llama.cpp loads it");
    let (rivers, _) = questions_on_a_document();
    let first = chat(&engine, &[&rivers]);
    let (_, answer, _) = run(&engine, first.clone(), 16);
    // The only stream goes to a prompt sharing nothing with the document's turn, long
    // enough that the two turns overflow the room for saved ones (256 tokens here): the
    // one restored must not be the one pushed out to save the other.
    let unrelated: Vec<u32> = (0..80).map(|i| 500 + i * 3).collect();
    let (_, _, finished) = run(&engine, unrelated, 8);
    assert_eq!(finished.cached_tokens, 0, "it shares nothing");

    let next = chat(&engine, &[&rivers, &answer, "And the last?"]);
    let (restored, _, finished) = run(&engine, next.clone(), 4);
    assert!(
        finished.cached_tokens >= first.len() && finished.cached_tokens < next.len(),
        "{} of {} tokens restored (the first turn had {})",
        finished.cached_tokens,
        next.len(),
        first.len()
    );
    let fresh = perch_llama::load(&path, serving).expect("loads");
    let (cold, _, _) = run(&fresh, next, 4);
    assert_close(&restored, &cold, "next turn of a restored sequence");
}
