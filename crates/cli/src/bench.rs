//! `perch bench MODEL`: load time, prefill and decode speed, peak memory and the host time
//! spent building each decode step's graph — warm-up, then several runs, medians printed.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::Context;
use perch_engine::generate::{generate, measure_graph_build, Finished, GenerateRequest};
use perch_engine::model::Model;
use perch_mlx::memory;

/// Arguments of `perch bench`.
#[derive(clap::Args)]
pub struct BenchArgs {
    /// An MLX model directory or a GGUF file.
    model: PathBuf,
    /// Prompt length in tokens.
    #[arg(long, default_value_t = 256)]
    prompt_tokens: usize,
    /// Tokens to generate per run.
    #[arg(long, default_value_t = 128)]
    gen_tokens: usize,
    /// Measured runs (after one warm-up run).
    #[arg(long, default_value_t = 3)]
    runs: usize,
    /// Print one JSON object instead of a table.
    #[arg(long)]
    json: bool,
}

/// Runs the benchmark.
pub fn run(args: BenchArgs) -> anyhow::Result<()> {
    anyhow::ensure!(
        args.prompt_tokens > 0 && args.gen_tokens > 1 && args.runs > 0,
        "need ≥1 prompt token, ≥2 generated tokens and ≥1 run"
    );
    let start = Instant::now();
    let model =
        Model::load(&args.model).with_context(|| format!("loading {}", args.model.display()))?;
    let load_s = start.elapsed().as_secs_f64();
    let prompt = bench_prompt(&model, args.prompt_tokens)?;
    let request = GenerateRequest {
        prompt,
        max_tokens: args.gen_tokens,
        ignore_eos: true,
        ..Default::default()
    };

    memory::reset_peak();
    let mut runs: Vec<Finished> = Vec::new();
    for i in 0..=args.runs {
        eprint!(
            "\r{} run {}/{} …",
            if i == 0 { "warm-up" } else { "measured" },
            i,
            args.runs
        );
        let finished = generate(&model, &request, Instant::now(), &|| false, |_| true)?;
        if i > 0 {
            runs.push(finished);
        }
    }
    eprintln!("\r{:40}", "");
    let median = |f: &dyn Fn(&Finished) -> f64| {
        let mut v: Vec<f64> = runs.iter().map(f).collect();
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let prefill = median(&|f| f.prompt_tokens as f64 / f.time_to_first_token.as_secs_f64());
    let decode = median(&|f| (f.completion_tokens - 1) as f64 / f.decode_time.as_secs_f64());
    let build_ms =
        median(&|f| f.graph_build_time.as_secs_f64() * 1e3 / f.decode_steps.max(1) as f64);
    let peak_mb = memory::peak() as f64 / 1e6;
    let mut idle: Vec<f64> = measure_graph_build(&model, &request.prompt, 32)?
        .iter()
        .map(|d| d.as_secs_f64() * 1e3)
        .collect();
    idle.sort_by(f64::total_cmp);
    let idle_ms = idle[idle.len() / 2];
    if args.json {
        let line = serde_json::json!({
            "load_s": load_s,
            "prefill_tok_s": prefill,
            "decode_tok_s": decode,
            "graph_build_ms_per_token": build_ms,
            "graph_build_idle_ms": idle_ms,
            "peak_memory_mb": peak_mb,
        });
        println!("{line}");
    } else {
        let c = model.transformer.config();
        println!(
            "model            {} ({:?}, {} layers)",
            args.model.display(),
            c.architecture,
            c.num_hidden_layers
        );
        println!(
            "device           {:?}, MLX {}",
            perch_mlx::default_device(),
            perch_mlx::version()
        );
        println!("load             {load_s:.2} s");
        println!(
            "prefill          {prefill:.1} tok/s ({} prompt tokens)",
            args.prompt_tokens
        );
        println!(
            "decode           {decode:.1} tok/s ({} tokens)",
            args.gen_tokens
        );
        println!("graph building   {build_ms:.3} ms per decode step (host, overlapping compute)");
        println!(
            "                 {idle_ms:.3} ms per decode step (host, device idle; median of 32)"
        );
        println!("peak memory      {peak_mb:.1} MB (MLX allocator)");
        println!(
            "runs             {} measured after 1 warm-up; medians",
            args.runs
        );
    }
    Ok(())
}

/// A prompt of exactly `n` tokens: ordinary English text, repeated as needed.
fn bench_prompt(model: &Model, n: usize) -> anyhow::Result<Vec<u32>> {
    let text =
        "The quick brown fox jumps over the lazy dog while the river runs past the old mill. ";
    let ids = model.tokenizer.encode(text, false)?;
    Ok(ids.iter().copied().cycle().take(n).collect())
}
