//! The shared scheduler on the llama.cpp backend: prompts read inside decode steps (one
//! llama.cpp batch holding the running rows and the new prompts' chunks) answer as each
//! request does alone. A stream runs while a short prompt (read whole in one step) and a
//! long one (read in several chunks beside the stream) arrive; each of the three is
//! compared with its solo run on a fresh engine, within `common::assert_close`'s bounds
//! (0.06 nats apart at most on the long prompt here; the short ones match exactly).
//! Prompts arriving together at an idle model are read in one batch, all of them, and
//! start decoding together.

mod common;

use std::time::Duration;

use common::{assert_close, chat_prompt, collect, first_tokens, greedy};
use perch_engine::format::gguf;
use perch_engine::generate::GenerateRequest;
use perch_engine::scheduler::policy::SchedulePolicy;
use perch_engine::scheduler::Scheduler;
use perch_engine::{Engine, Serving};
use perch_llama::LlamaCppBackend;
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
    let mut first = first_tokens(&mut running, 2);
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
    let mut first = first_tokens(&mut running, 2);
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

/// Short prompts waiting together with nothing decoding are read in one llama.cpp batch
/// (after a first chunk of the first, which times the machine), so their first tokens are
/// known at once and they decode in step: their times to first token lie within a
/// fraction of the time that batch took (read one after another, each would wait a whole
/// read longer than the one before). Each answers as it does alone.
#[test]
fn prompts_arriving_together_at_an_idle_model_are_read_in_one_batch() {
    let path = test_model();
    let alone = perch_llama::load(&path, Serving::new(1, 2048)).expect("llama.cpp loads it");
    let requests: Vec<GenerateRequest> = [
        "Describe a lighthouse on a stormy night in a few sentences.",
        "List the planets of the solar system, from the sun outwards.",
        "Explain how bread rises, briefly, as a baker would to a child.",
    ]
    .into_iter()
    .map(|prompt| request(&alone, prompt, 8))
    .collect();

    let text = gguf::read_text(&path).expect("reads the header");
    let backend = LlamaCppBackend::load(&path, &text, Serving::new(3, 2048)).expect("loads");
    // Every prompt here short, however fast this machine reads (a loaded one reads few
    // tokens in the default 250 ms, and a prompt that is not short takes its turns).
    let policy = SchedulePolicy {
        short_prompt: Duration::from_secs(60),
        idle_chunk: Duration::from_secs(60),
        ..SchedulePolicy::with_sequences(3)
    };
    let mut scheduler = Scheduler::on_this_thread(backend, policy);
    let generated = scheduler.generate_now(requests.clone()).expect("they run");
    let firsts: Vec<Duration> = generated
        .iter()
        .map(|g| g.finished.time_to_first_token)
        .collect();
    eprintln!("first tokens known at {firsts:?}");
    let (earliest, latest) = (
        *firsts.iter().min().expect("three"),
        *firsts.iter().max().expect("three"),
    );
    assert!(
        latest - earliest < earliest / 2,
        "first tokens known at {firsts:?}: the prompts were read in separate passes"
    );

    for (i, (batched, request)) in generated.into_iter().zip(requests).enumerate() {
        let solo = common::run(&alone, request).tokens;
        let worst = assert_close(&batched.tokens, &solo, &format!("request {i}"));
        eprintln!("request {i}: log-probabilities within {worst:.4} of its solo run");
    }
}
