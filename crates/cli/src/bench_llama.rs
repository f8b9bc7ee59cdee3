//! `perch bench --engine llama.cpp MODEL.gguf`: the llama.cpp engine timed as `perch bench`
//! times MLX — load, then prefill and decode speed over several runs (medians) through
//! Perch's own scheduler and sampler, so the numbers are what a request gets; with
//! `--streams N`, N generations at once in one batch. `scripts/bench-llama` sets these
//! beside llama.cpp's own `llama-bench` and `llama-server` on the same file and threads.

use std::time::Instant;

use anyhow::Context;
use perch_engine::format::gguf;
use perch_engine::scheduler::policy::SchedulePolicy;
use perch_engine::scheduler::Scheduler;
use perch_engine::Serving;
use perch_llama::LlamaCppBackend;

use crate::bench::{bench_context, bench_requests, print_speeds, speeds, timed_runs, BenchArgs};

/// Runs the benchmark on llama.cpp.
pub fn run(args: &BenchArgs) -> anyhow::Result<()> {
    let start = Instant::now();
    let text = gguf::read_text(&args.model)?;
    let context = bench_context(args);
    let sequences = args.streams.max(1);
    let backend = LlamaCppBackend::load(&args.model, &text, Serving::new(sequences, context))
        .with_context(|| format!("loading {}", args.model.display()))?;
    let load_s = start.elapsed().as_secs_f64();
    let requests = bench_requests(args, &text.tokenizer, args.runs + 1 + args.streams)?;
    let mut scheduler =
        Scheduler::on_this_thread(backend, SchedulePolicy::with_sequences(sequences));
    let runs = timed_runs(&mut scheduler, &requests, args.runs)?;
    let (prefill, decode) = speeds(&runs);
    let streams = if args.streams > 0 {
        eprint!("\r{} streams at once …", args.streams);
        let started = Instant::now();
        let finished = scheduler.generate_now(requests[args.runs + 1..].to_vec())?;
        eprintln!("\r{:40}", "");
        let generated: usize = finished.iter().map(|g| g.finished.completion_tokens).sum();
        Some(generated as f64 / started.elapsed().as_secs_f64())
    } else {
        None
    };
    let threads = perch_llama::threads();
    if args.json {
        let line = serde_json::json!({
            "engine": "llama.cpp",
            "threads": threads,
            "load_s": load_s,
            "prefill_tok_s": prefill,
            "decode_tok_s": decode,
            "streams": args.streams,
            "streams_aggregate_tok_s": streams,
        });
        println!("{line}");
        return Ok(());
    }
    println!("model            {}", args.model.display());
    println!("engine           llama.cpp, {threads} threads");
    println!("load             {load_s:.2} s");
    print_speeds(args, prefill, decode);
    if let Some(aggregate) = streams {
        println!(
            "{} streams       {aggregate:.1} tok/s in all, prompts included",
            args.streams
        );
    }
    println!(
        "runs             {} measured after 1 warm-up; medians",
        args.runs
    );
    Ok(())
}
