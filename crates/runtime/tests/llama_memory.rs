//! A model on llama.cpp takes what the planner gives it: the resident memory the process
//! gains from loading the test model on llama.cpp and running 4 streams at once stays
//! within the planner's need for that context and those sequences (weights as the file
//! holds them, a float16 KV cache for every sequence's whole context, the workspace; none
//! of the room it gives sequences saved out of that cache, as nothing is saved), and
//! is at least the weights and KV cache (llama.cpp allocates its cache whole at load, so a
//! planner that counted it in the wrong float would be caught from either side).

#![cfg(target_os = "linux")]

use perch_engine::generate::{Event, GenerateRequest};
use perch_engine::inspect::inspect_on;
use perch_engine::{Engine, EngineKind, Serving};
use perch_runtime::manager::load_on;
use perch_runtime::planner::{Budget, Footprint, MemoryPlanner};

const GB: u64 = 1 << 30;

/// Resident bytes of this process.
fn rss() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").expect("Linux has statm");
    let pages: u64 = statm.split_whitespace().nth(1).unwrap().parse().unwrap();
    pages * 4096
}

#[test]
fn a_llama_cpp_model_takes_what_the_planner_gives_it() {
    let path = perch_test_support::test_model();
    let footprint = Footprint::from(&inspect_on(&path, EngineKind::LlamaCpp).unwrap());
    let budget = Budget {
        total: 64 * GB,
        os_reserve: 4 * GB,
        working_set: None,
    };
    let need = MemoryPlanner::new(budget, 0, 4096)
        .with_sequences(4)
        .need(&footprint);
    assert_eq!((need.context, need.sequences), (4096, 4));

    let before = rss();
    let engine = load_on(
        EngineKind::LlamaCpp,
        &path,
        Serving::new(need.sequences as usize, need.context as usize),
    )
    .unwrap();
    let streams: Vec<_> = (0..4u32)
        .map(|i| {
            engine
                .generate(GenerateRequest {
                    prompt: (0..200).map(|t| 300 + t * 3 + i).collect(),
                    max_tokens: 32,
                    ignore_eos: true,
                    ..Default::default()
                })
                .unwrap()
        })
        .collect();
    for stream in streams {
        let done = stream
            .map(|e| e.unwrap())
            .any(|e| matches!(e, Event::Done(_)));
        assert!(done);
    }
    let grew = rss().saturating_sub(before);
    // Four prompts in four empty streams: nothing is saved out of the KV cache.
    let planned = need.total() - need.buffer_cache - need.saved;
    let mb = |b: u64| b as f64 / 1e6;
    eprintln!(
        "resident +{:.1} MB; planned {:.1} MB (weights {:.1}, KV {:.1}, workspace {:.1}) \
         and {:.1} MB for saved sequences",
        mb(grew),
        mb(planned),
        mb(need.weights),
        mb(need.kv),
        mb(need.workspace),
        mb(need.saved)
    );
    assert!(grew <= planned, "{} MB over the plan", mb(grew - planned));
    assert!(
        grew as f64 >= 0.9 * (need.weights + need.kv) as f64,
        "only {:.1} MB resident",
        mb(grew)
    );
}
