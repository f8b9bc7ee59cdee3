//! Greedy rows of llama.cpp's logits are chosen on the host, without MLX (the sampler's
//! host path), unless a row asks for more than the most likely token. Three prompts run
//! together twice on fresh schedulers, in the same batches: asking for log-probabilities
//! (every row through MLX's argmax) and not (every row chosen on the host); each row's
//! tokens must be the same. A constraint's mask applies on the host too: a greedy answer
//! under a JSON schema holds to it.

mod common;

use std::time::Duration;

use common::{chat_prompt, collect, greedy};
use perch_engine::constrain::Grammar;
use perch_engine::format::gguf;
use perch_engine::generate::GenerateRequest;
use perch_engine::sampler::SamplingParams;
use perch_engine::scheduler::policy::SchedulePolicy;
use perch_engine::scheduler::Scheduler;
use perch_engine::{Engine, Serving};
use perch_llama::LlamaCppBackend;
use perch_test_support::{person_schema, test_model};

/// Runs `requests` together on a fresh scheduler, read in one batch; each one's tokens.
fn together(requests: Vec<GenerateRequest>) -> Vec<Vec<u32>> {
    let path = test_model();
    let text = gguf::read_text(&path).expect("reads the header");
    let serving = Serving::new(requests.len(), 2048);
    let backend = LlamaCppBackend::load(&path, &text, serving).expect("loads");
    let policy = SchedulePolicy {
        short_prompt: Duration::from_secs(60),
        idle_chunk: Duration::from_secs(60),
        ..SchedulePolicy::with_sequences(requests.len())
    };
    Scheduler::on_this_thread(backend, policy)
        .generate_now(requests)
        .expect("they run")
        .into_iter()
        .map(|generated| generated.tokens.iter().map(|t| t.id).collect())
        .collect()
}

#[test]
fn greedy_rows_chosen_on_the_host_are_those_mlx_chooses() {
    let engine = perch_llama::load(&test_model(), Serving::new(1, 2048)).expect("loads");
    // Rows that leave the batch at different steps.
    let asked = [
        ("Write a limerick about a cat who learns to code.", 48),
        ("What are the three primary colours?", 20),
        ("Count backwards from twenty.", 34),
    ];
    let through_mlx: Vec<GenerateRequest> = asked
        .iter()
        .map(|&(prompt, tokens)| greedy(chat_prompt(&engine, prompt), tokens, 1))
        .collect();
    let on_host: Vec<GenerateRequest> = through_mlx
        .iter()
        .map(|request| GenerateRequest {
            sampling: SamplingParams::default(),
            ..request.clone()
        })
        .collect();

    let (mlx, host) = (together(through_mlx), together(on_host));
    for (row, ((mlx, host), (_, tokens))) in mlx.iter().zip(&host).zip(asked).enumerate() {
        assert_eq!(mlx.len(), tokens, "row {row}");
        assert_eq!(host, mlx, "row {row}");
    }
}

#[test]
fn a_constraint_holds_on_greedy_rows_chosen_on_the_host() {
    let engine = perch_llama::load(&test_model(), Serving::new(1, 2048)).expect("loads");
    let grammar = Grammar::JsonSchema(person_schema::schema());
    let request = GenerateRequest {
        prompt: chat_prompt(&engine, "Describe a person as JSON."),
        max_tokens: 200,
        constraint: Some(engine.constrain(&grammar).unwrap()),
        ..Default::default()
    };
    person_schema::assert_holds(&collect(engine.generate(request).expect("starts")).text);
}
