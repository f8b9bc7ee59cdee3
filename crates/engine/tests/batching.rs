//! Many requests on one model at once, on the real SmolLM2: every row of a batch gives the
//! tokens it gives alone (greedy tokens identical, log-probabilities within 1e-3) whatever
//! the prompt lengths and arrival times, a long prompt is read while running streams go
//! on, a prompt that shares its beginning with an earlier sequence reuses its keys and
//! values and answers as a cold run does, and the prefix cache stays within the pool.

mod common;

use std::time::{Duration, Instant};

use common::test_model;
use perch_engine::generate::{Event, FinishReason, Finished, GenerateRequest, Phase};
use perch_engine::sampler::SamplingParams;
use perch_engine::text::chat_prompt::ChatInput;
use perch_engine::text::template::ChatMessage;
use perch_engine::{Engine, GenerationStream, MlxEngine, ModelEngine, Serving};

fn engine(sequences: usize, context: usize) -> ModelEngine {
    MlxEngine::load_serving(&test_model(), Serving::new(sequences, context)).expect("SmolLM2 loads")
}

fn chat_prompt(engine: &ModelEngine, question: &str) -> Vec<u32> {
    engine
        .chat(&ChatInput::messages(&[ChatMessage::new("user", question)]))
        .unwrap()
        .tokens
}

fn greedy(prompt: Vec<u32>, max_tokens: usize) -> GenerateRequest {
    GenerateRequest {
        prompt,
        max_tokens,
        sampling: SamplingParams {
            logprobs: Some(0),
            ..Default::default()
        },
        ..Default::default()
    }
}

/// What one generation gave, and when its tokens came.
struct Run {
    tokens: Vec<u32>,
    logprobs: Vec<f32>,
    text: String,
    finished: Finished,
    first_token_at: Option<Instant>,
    done_at: Instant,
}

fn collect(stream: GenerationStream) -> Run {
    let (mut tokens, mut logprobs, mut text, mut first) =
        (Vec::new(), Vec::new(), String::new(), None);
    for event in stream {
        match event.expect("no generation error") {
            Event::Chunk {
                text: t,
                tokens: ts,
            } => {
                first.get_or_insert_with(Instant::now);
                text.push_str(&t);
                for token in ts {
                    tokens.push(token.id);
                    logprobs.push(token.logprob.map_or(f32::NAN, |l| l.logprob));
                }
            }
            Event::Done(finished) => {
                return Run {
                    tokens,
                    logprobs,
                    text,
                    finished,
                    first_token_at: first,
                    done_at: Instant::now(),
                }
            }
        }
    }
    panic!("the stream ended without Done")
}

const QUESTIONS: [&str; 5] = [
    "What is the capital of France?",
    "Write a haiku about the sea.",
    "List three primary colors and explain why they are called primary, in detail.",
    "Hi",
    "Explain how a bicycle works to a child who has never seen one before.",
];

#[test]
fn every_row_of_a_batch_gives_what_it_gives_alone() {
    let engine = engine(4, 2048);
    let prompts: Vec<Vec<u32>> = QUESTIONS.iter().map(|q| chat_prompt(&engine, q)).collect();
    let lengths: Vec<usize> = prompts.iter().map(Vec::len).collect();
    assert!(
        lengths.iter().max().unwrap() - lengths.iter().min().unwrap() > 10,
        "{lengths:?}"
    );
    // Every row generates all 40 tokens (the end-of-sequence token does not end it), so
    // the rows surely overlap.
    let request = |prompt: &Vec<u32>| GenerateRequest {
        ignore_eos: true,
        ..greedy(prompt.clone(), 40)
    };
    let alone: Vec<Run> = prompts
        .iter()
        .map(|p| collect(engine.generate(request(p)).unwrap()))
        .collect();

    // All at once, arriving one after another while the earlier ones decode (five
    // requests, four places: the last waits for a place to free up).
    let mut streams = Vec::new();
    for (i, prompt) in prompts.iter().enumerate() {
        streams.push(engine.generate(request(prompt)).unwrap());
        std::thread::sleep(Duration::from_millis(40 * i as u64));
    }
    // Each read as its events come, so the times are when they came.
    let together: Vec<Run> = streams
        .into_iter()
        .map(|s| std::thread::spawn(move || collect(s)))
        .collect::<Vec<_>>()
        .into_iter()
        .map(|t| t.join().unwrap())
        .collect();

    for (i, (a, b)) in alone.iter().zip(&together).enumerate() {
        assert_eq!(
            a.tokens, b.tokens,
            "row {i}: {:?} then {:?}",
            a.text, b.text
        );
        for (x, y) in a.logprobs.iter().zip(&b.logprobs) {
            assert!(
                (x - y).abs() < 1e-3,
                "row {i}: logprob {x} alone, {y} batched"
            );
        }
        assert_eq!(a.finished.reason, b.finished.reason);
    }
    // They did run together: each of the first four was generating while the others
    // were.
    let overlapping = |a: &Run, b: &Run| {
        a.first_token_at.unwrap() < b.done_at && b.first_token_at.unwrap() < a.done_at
    };
    for i in 0..4 {
        for j in 0..i {
            assert!(overlapping(&together[i], &together[j]), "rows {j} and {i}");
        }
    }
}

#[test]
fn a_stream_cancelled_mid_batch_leaves_the_others_as_they_were() {
    let engine = engine(4, 2048);
    let prompts: Vec<Vec<u32>> = QUESTIONS[..3]
        .iter()
        .map(|q| chat_prompt(&engine, q))
        .collect();
    let alone: Vec<Run> = prompts
        .iter()
        .map(|p| collect(engine.generate(greedy(p.clone(), 30)).unwrap()))
        .collect();
    let mut streams: Vec<GenerationStream> = prompts
        .iter()
        .map(|p| engine.generate(greedy(p.clone(), 30)).unwrap())
        .collect();
    let mut middle = streams.remove(1);
    // A few tokens in, the middle one goes away.
    for _ in 0..3 {
        assert!(matches!(
            middle.next().unwrap().unwrap(),
            Event::Chunk { .. }
        ));
    }
    middle.cancel();
    let ended = collect(middle);
    assert_eq!(
        ended.finished.reason,
        FinishReason::Cancelled(Phase::Decode)
    );
    let others: Vec<Run> = streams.into_iter().map(collect).collect();
    assert_eq!(others[0].tokens, alone[0].tokens);
    assert_eq!(others[1].tokens, alone[2].tokens);
}

#[test]
fn running_streams_go_on_while_a_long_prompt_is_read() {
    let engine = engine(4, 8192);
    let running = engine
        .generate(greedy(chat_prompt(&engine, QUESTIONS[4]), 24))
        .unwrap();
    // Minutes of prompt on a small CPU.
    let long = GenerateRequest {
        prompt: (0..8_000u32).map(|i| 100 + i % 20_000).collect(),
        max_tokens: 1,
        ..Default::default()
    };
    std::thread::sleep(Duration::from_millis(200));
    let reading = engine.generate(long).unwrap();
    let short = collect(running);
    assert_eq!(short.finished.completion_tokens, 24);
    // Had the stream waited for the long prompt, the prompt would be read by now.
    reading.cancel();
    let mut end = None;
    for event in reading {
        match event.unwrap() {
            Event::Chunk { .. } => panic!("the long prompt was read before the stream ended"),
            Event::Done(f) => end = Some(f),
        }
    }
    let end = end.unwrap();
    assert_eq!(end.reason, FinishReason::Cancelled(Phase::Prefill));
    assert!(end.prefilled_tokens > 0, "it was being read meanwhile");
}

#[test]
fn a_shared_prefix_is_reused_and_answers_as_a_cold_run_does() {
    let warm = engine(2, 4096);
    let first: Vec<u32> = chat_prompt(&warm, QUESTIONS[2]);
    let turn_one = collect(warm.generate(greedy(first.clone(), 30)).unwrap());
    assert_eq!(turn_one.finished.cached_tokens, 0);

    // The next turn: the conversation so far, then a new question.
    let messages = [
        ChatMessage::new("user", QUESTIONS[2]),
        ChatMessage::new("assistant", &turn_one.text),
        ChatMessage::new("user", "Now say it in one sentence."),
    ];
    let second = warm.chat(&ChatInput::messages(&messages)).unwrap().tokens;
    assert!(second.starts_with(&first));
    let reused = collect(warm.generate(greedy(second.clone(), 30)).unwrap());
    assert!(
        reused.finished.cached_tokens >= first.len(),
        "{} of {} tokens reused",
        reused.finished.cached_tokens,
        second.len()
    );
    assert!(reused.finished.cached_tokens < second.len());

    let cold = collect(engine(1, 4096).generate(greedy(second, 30)).unwrap());
    assert_eq!(cold.finished.cached_tokens, 0);
    assert_eq!(
        reused.tokens, cold.tokens,
        "{:?} / {:?}",
        reused.text, cold.text
    );
    for (x, y) in reused.logprobs.iter().zip(&cold.logprobs) {
        assert!((x - y).abs() < 1e-3, "logprob {x} reused, {y} cold");
    }
}

#[test]
fn the_prefix_cache_stays_within_the_pool() {
    // One sequence of 512 tokens: the pool holds 512 positions in all.
    let engine = engine(1, 512);
    let per_token = engine.info().kv_bytes_per_token;
    for (i, question) in QUESTIONS.iter().enumerate() {
        let mut prompt = chat_prompt(&engine, question);
        prompt.extend((0..150u32).map(|t| 200 + t * 7 + i as u32));
        let run = collect(engine.generate(greedy(prompt, 8)).unwrap());
        assert_eq!(run.finished.completion_tokens, 8);
        let held = engine.kv_bytes_in_use();
        assert!(held > 0, "something is kept");
        assert!(
            held <= 512 * per_token,
            "{held} bytes held, the pool is {}",
            512 * per_token
        );
    }
}
