//! Generation behaviour on the real SmolLM2 model: streaming text, stop strings, limits,
//! sampling controls, log-probabilities, cancellation and bad input.

mod common;

use std::sync::OnceLock;

use common::{run, test_model};
use perch_engine::generate::{Event, FinishReason, Finished, GenerateRequest, Phase};
use perch_engine::sampler::SamplingParams;
use perch_engine::text::chat_prompt::ChatInput;
use perch_engine::text::template::ChatMessage;
use perch_engine::{Engine, EngineError, MlxEngine, ModelEngine};

fn engine() -> &'static ModelEngine {
    static ENGINE: OnceLock<ModelEngine> = OnceLock::new();
    ENGINE.get_or_init(|| MlxEngine::load(&test_model()).expect("SmolLM2 loads"))
}

fn prompt(question: &str) -> Vec<u32> {
    let e = engine();
    e.chat(&ChatInput::messages(&[ChatMessage::new("user", question)]))
        .unwrap()
        .tokens
}

fn request(question: &str, max_tokens: usize, sampling: SamplingParams) -> GenerateRequest {
    GenerateRequest {
        prompt: prompt(question),
        sampling,
        max_tokens,
        ..Default::default()
    }
}

const FRANCE: &str = "What is the capital of France?";

#[test]
fn greedy_answer_streams_as_text_and_ends_with_stop() {
    let out = run(engine(), request(FRANCE, 40, SamplingParams::default()));
    assert_eq!(out.text, "The capital of France is Paris.");
    assert_eq!(out.reason, FinishReason::Stop);
    // The end-of-sequence token is counted but not shown.
    assert_eq!(out.completion_tokens, out.tokens.len() + 1);
    assert_eq!(engine().detokenize(&out.tokens).unwrap(), out.text);
}

#[test]
fn stop_strings_end_generation_and_never_leak() {
    let mut r = request(FRANCE, 40, SamplingParams::default());
    r.stop = vec!["Paris".into()];
    let out = run(engine(), r);
    assert_eq!(out.text, "The capital of France is ");
    assert_eq!(out.reason, FinishReason::Stop);

    // " France is" spans several tokens.
    let mut r = request(FRANCE, 40, SamplingParams::default());
    r.stop = vec!["nothing like this".into(), "e is Par".into()];
    let out = run(engine(), r);
    assert_eq!(out.text, "The capital of Franc");
}

#[test]
fn max_tokens_ends_with_length() {
    let out = run(engine(), request(FRANCE, 3, SamplingParams::default()));
    assert_eq!(out.reason, FinishReason::Length);
    assert_eq!(out.completion_tokens, 3);
    assert_eq!(out.text, "The capital of");
}

#[test]
fn the_same_seed_gives_the_same_sample() {
    let sampling = |seed| SamplingParams {
        temperature: 1.2,
        seed: Some(seed),
        ..Default::default()
    };
    let story = "Tell me a short story about a dragon.";
    let a = run(engine(), request(story, 24, sampling(42)));
    let b = run(engine(), request(story, 24, sampling(42)));
    let c = run(engine(), request(story, 24, sampling(43)));
    assert_eq!(a.tokens, b.tokens);
    assert_ne!(
        a.tokens, c.tokens,
        "another seed should draw differently at temperature 1.2"
    );
}

#[test]
fn top_k_one_is_greedy_and_logit_bias_forces_a_token() {
    let greedy = run(engine(), request(FRANCE, 12, SamplingParams::default()));
    let top1 = SamplingParams {
        temperature: 1.0,
        top_k: 1,
        seed: Some(1),
        ..Default::default()
    };
    assert_eq!(
        run(engine(), request(FRANCE, 12, top1)).tokens,
        greedy.tokens
    );
    let tight = SamplingParams {
        temperature: 1.0,
        top_p: 0.01,
        seed: Some(2),
        ..Default::default()
    };
    assert_eq!(
        run(engine(), request(FRANCE, 12, tight)).tokens,
        greedy.tokens
    );
    let strict = SamplingParams {
        temperature: 1.0,
        min_p: 0.99,
        seed: Some(3),
        ..Default::default()
    };
    assert_eq!(
        run(engine(), request(FRANCE, 12, strict)).tokens,
        greedy.tokens
    );

    let banana = engine().tokenize("Banana", false).unwrap()[0];
    let biased = SamplingParams {
        logit_bias: vec![(banana, 100.0)],
        ..Default::default()
    };
    let out = run(engine(), request(FRANCE, 2, biased));
    assert_eq!(out.tokens, vec![banana, banana]);
}

#[test]
fn penalties_discourage_repeated_tokens() {
    let question = "Count from 1 to 30, separated by commas.";
    let most_repeated = |tokens: &[u32]| {
        let mut counts = std::collections::HashMap::new();
        for t in tokens {
            *counts.entry(t).or_insert(0) += 1;
        }
        counts.into_values().max().unwrap_or(0)
    };
    let plain = run(engine(), request(question, 30, SamplingParams::default()));
    let penalised = SamplingParams {
        frequency_penalty: 1.5,
        presence_penalty: 1.0,
        ..Default::default()
    };
    let fewer = run(engine(), request(question, 30, penalised));
    assert!(
        most_repeated(&plain.tokens) > most_repeated(&fewer.tokens),
        "{:?} vs {:?}",
        plain.text,
        fewer.text
    );
    let repetition = SamplingParams {
        repetition_penalty: 1.8,
        ..Default::default()
    };
    let other = run(engine(), request(question, 30, repetition));
    assert!(
        most_repeated(&plain.tokens) > most_repeated(&other.tokens),
        "{:?}",
        other.text
    );
}

#[test]
fn logprobs_come_with_sorted_alternatives() {
    let sampling = SamplingParams {
        logprobs: Some(3),
        ..Default::default()
    };
    let mut chunks = Vec::new();
    for event in engine().generate(request(FRANCE, 5, sampling)).unwrap() {
        if let Event::Chunk { tokens, .. } = event.unwrap() {
            chunks.extend(tokens);
        }
    }
    assert_eq!(chunks.len(), 5);
    for token in chunks {
        let lp = token.logprob.expect("asked for logprobs");
        assert_eq!(lp.top.len(), 3);
        assert!(lp.top.windows(2).all(|w| w[0].1 >= w[1].1), "{:?}", lp.top);
        // Greedy: the chosen token is the most likely one.
        assert_eq!(lp.top[0].0, token.id);
        assert!((lp.top[0].1 - lp.logprob).abs() < 1e-6 && lp.logprob <= 0.0);
    }
}

#[test]
fn dropping_the_stream_cancels_and_the_next_request_is_served() {
    let story = "Write a very long essay about the history of Rome.";
    let mut stream = engine()
        .generate(request(story, 500, SamplingParams::default()))
        .unwrap();
    let first = stream.next().unwrap().unwrap();
    assert!(matches!(first, Event::Chunk { .. }));
    stream.cancel();
    let mut end = None;
    for event in stream {
        if let Event::Done(f) = event.unwrap() {
            end = Some(f);
        }
    }
    let end = end.expect("a cancelled generation still ends with Done");
    assert_eq!(end.reason, FinishReason::Cancelled(Phase::Decode));
    assert!(end.completion_tokens < 500);

    let dropped = engine()
        .generate(request(story, 500, SamplingParams::default()))
        .unwrap();
    drop(dropped);
    let next = run(engine(), request(FRANCE, 40, SamplingParams::default()));
    assert_eq!(next.text, "The capital of France is Paris.");
}

/// A prompt of `n` tokens: minutes of prefill on a small CPU, so that only cancellation
/// can end it within a test.
fn long_prompt(n: usize) -> GenerateRequest {
    GenerateRequest {
        prompt: (0..n as u32).map(|i| 100 + i % 20_000).collect(),
        max_tokens: 1,
        ..Default::default()
    }
}

fn end_of(stream: perch_engine::GenerationStream) -> Finished {
    let mut end = None;
    for event in stream {
        if let Event::Done(f) = event.unwrap() {
            end = Some(f);
        }
    }
    end.expect("a cancelled generation still ends with Done")
}

/// A model of the test's own, so no other test's request is ahead of this one's, serving
/// one request at a time, so a second one waits.
fn own_engine() -> ModelEngine {
    MlxEngine::load_serving(&test_model(), perch_engine::Serving::new(1, usize::MAX))
        .expect("SmolLM2 loads")
}

#[test]
fn cancelling_during_prefill_stops_between_chunks() {
    // Minutes of prompt on a small CPU: only the cancellation can end it in time.
    let engine = own_engine();
    let stream = engine.generate(long_prompt(8_000)).unwrap();
    std::thread::sleep(std::time::Duration::from_millis(300));
    stream.cancel();
    let end = end_of(stream);
    assert_eq!(end.reason, FinishReason::Cancelled(Phase::Prefill));
    assert!(
        end.prefilled_tokens < 8_000,
        "stopped after {} of 8000 prompt tokens",
        end.prefilled_tokens
    );
    assert_eq!(end.completion_tokens, 0);
}

#[test]
fn a_request_cancelled_while_queued_never_starts() {
    let engine = own_engine();
    let busy = engine.generate(long_prompt(8_000)).unwrap();
    let queued = engine.generate(long_prompt(8_000)).unwrap();
    queued.cancel();
    busy.cancel();
    let end = end_of(queued);
    assert_eq!(end.reason, FinishReason::Cancelled(Phase::Queued));
    assert_eq!(end.prefilled_tokens, 0);
    assert_eq!(end_of(busy).prompt_tokens, 8_000);
}

#[test]
fn dropping_the_engine_cancels_its_running_and_queued_requests() {
    let engine = own_engine();
    let running = engine.generate(long_prompt(8_000)).unwrap();
    let queued = engine.generate(long_prompt(8_000)).unwrap();
    drop(engine);
    // Still queued or already reading its prompt: either way it ends at once, cancelled.
    assert!(matches!(
        end_of(running).reason,
        FinishReason::Cancelled(Phase::Queued | Phase::Prefill)
    ));
    assert_eq!(
        end_of(queued).reason,
        FinishReason::Cancelled(Phase::Queued)
    );
}

fn error_of(request: GenerateRequest) -> EngineError {
    match engine().generate(request).unwrap().next().unwrap() {
        Err(e) => e,
        Ok(event) => panic!("expected an error, got {event:?}"),
    }
}

#[test]
fn bad_requests_fail_clearly() {
    let context = engine().info().config.max_position_embeddings as usize;
    let long = GenerateRequest {
        prompt: vec![42; context + 5],
        max_tokens: 4,
        ..Default::default()
    };
    let message = error_of(long).to_string();
    assert!(
        message.contains(&(context + 5).to_string()) && message.contains(&context.to_string()),
        "{message}"
    );

    let beyond = GenerateRequest {
        prompt: vec![1, 999_999],
        max_tokens: 4,
        ..Default::default()
    };
    assert!(error_of(beyond).to_string().contains("999999"));

    let empty = GenerateRequest {
        prompt: vec![],
        max_tokens: 4,
        ..Default::default()
    };
    assert!(matches!(error_of(empty), EngineError::InvalidRequest(_)));

    let hot = request(
        FRANCE,
        4,
        SamplingParams {
            temperature: -1.0,
            ..Default::default()
        },
    );
    assert!(error_of(hot).to_string().contains("temperature"));
    let bias = request(
        FRANCE,
        4,
        SamplingParams {
            logit_bias: vec![(10_000_000, 1.0)],
            ..Default::default()
        },
    );
    assert!(error_of(bias).to_string().contains("logit_bias"));
    // The engine is still fine afterwards.
    assert_eq!(
        run(engine(), request(FRANCE, 3, SamplingParams::default())).text,
        "The capital of"
    );
}
