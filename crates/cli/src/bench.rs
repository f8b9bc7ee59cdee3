//! `perch bench MODEL`: load time (beside the time to read the files), prefill and decode
//! speed, the host time spent building each decode step's graph, and memory — what the
//! planner estimated from the headers beside what MLX and the process measured —
//! warm-up, then several runs, medians printed; with `--constrained`, what the token mask of
//! constrained decoding costs per step. On llama.cpp (`--engine llama.cpp`, the default
//! for a GGUF file) `bench_llama` times what that engine can report.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::Context;
use perch_engine::constrain::{Grammar, Vocabulary};
use perch_engine::generate::{Finished, GenerateRequest};
use perch_engine::mlx_backend::MlxBackend;
use perch_engine::model::Model;
use perch_engine::reply::ReplySyntax;
use perch_engine::scheduler::backend::Backend;
use perch_engine::scheduler::policy::SchedulePolicy;
use perch_engine::scheduler::Scheduler;
use perch_engine::text::tokenizer::Tokenizer;
use perch_engine::EngineKind;
use perch_mlx::memory;
use perch_runtime::planner::{Budget, Footprint, MemoryPlanner};

/// Arguments of `perch bench`.
#[derive(clap::Args)]
pub struct BenchArgs {
    /// An MLX model directory or a GGUF file.
    pub model: PathBuf,
    /// The engine: mlx, or llama.cpp (GGUF files only). Default: llama.cpp for a GGUF
    /// file, mlx for an MLX directory.
    #[arg(long, value_name = "ENGINE")]
    pub engine: Option<EngineKind>,
    /// Prompt length in tokens.
    #[arg(long, default_value_t = 256)]
    pub prompt_tokens: usize,
    /// Tokens to generate per run.
    #[arg(long, default_value_t = 128)]
    pub gen_tokens: usize,
    /// Measured runs (after one warm-up run).
    #[arg(long, default_value_t = 3)]
    pub runs: usize,
    /// Print one JSON object instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Also measure constrained decoding: the host time of the token mask per step, beside
    /// the step itself, writing a fixed-length JSON list under a schema.
    #[arg(long)]
    pub constrained: bool,
    /// Also run this many generations at once (one batch): their aggregate speed, and
    /// MLX's peak memory beside the planner's weights and KV cache for their tokens.
    #[arg(long, default_value_t = 0)]
    pub streams: usize,
}

/// Runs the benchmark.
pub fn run(args: BenchArgs) -> anyhow::Result<()> {
    anyhow::ensure!(
        args.prompt_tokens > 0 && args.gen_tokens > 1 && args.runs > 0,
        "need ≥1 prompt token, ≥2 generated tokens and ≥1 run"
    );
    if EngineKind::for_model(&args.model, args.engine)? == EngineKind::LlamaCpp {
        anyhow::ensure!(
            !args.constrained,
            "--constrained measures MLX's steps; add --engine mlx"
        );
        return crate::bench_llama::run(&args);
    }
    let read_s = read_files(&args.model)?;
    let facts = perch_engine::inspect::inspect(&args.model)?;
    let rss_before = resident_bytes();
    let start = Instant::now();
    let model =
        Model::load(&args.model).with_context(|| format!("loading {}", args.model.display()))?;
    let load_s = start.elapsed().as_secs_f64();
    let loaded_bytes = memory::active() as f64;
    let rss_loaded = resident_bytes().saturating_sub(rss_before) as f64;
    let requests = bench_requests(&args, &model.tokenizer, args.runs + 2 + args.streams)?;
    let config = model.transformer.config().clone();
    let context = bench_context(&args);
    let sequences = args.streams.max(1);
    let mut scheduler = Scheduler::on_this_thread(
        MlxBackend::new(model, context, context * sequences),
        SchedulePolicy::with_sequences(sequences),
    );

    memory::reset_peak();
    let runs = timed_runs(&mut scheduler, &requests, args.runs)?;
    let median = |f: &dyn Fn(&Finished) -> f64| median_of(&runs, f);
    let (prefill, decode) = speeds(&runs);
    let build_ms =
        median(&|f| f.graph_build_time.as_secs_f64() * 1e3 / f.decode_steps.max(1) as f64);
    // Prompt and answer, as a client sees one request.
    let end_to_end = median(&|f| {
        f.completion_tokens as f64 / (f.time_to_first_token + f.decode_time).as_secs_f64()
    });
    let peak_mb = memory::peak() as f64 / 1e6;
    // The plan for this run's context, without the buffer cache (a cap, not a use).
    let planner = MemoryPlanner::new(
        Budget {
            total: u64::MAX / 2,
            os_reserve: 0,
            working_set: None,
        },
        0,
        (args.prompt_tokens + args.gen_tokens) as u64,
    );
    let need = planner.need(&Footprint::from(&facts));
    // Host time per decode step with the device idle, as the batch grows.
    let mut idle_ms = Vec::new();
    for rows in [1, 4, 16] {
        let mut times: Vec<f64> = scheduler
            .backend_mut()
            .graph_build_times(&requests[args.runs + 1].prompt, rows, 32)?
            .iter()
            .map(|d| d.as_secs_f64() * 1e3)
            .collect();
        times.sort_by(f64::total_cmp);
        idle_ms.push((rows, times[times.len() / 2]));
    }
    let streams = if args.streams > 0 {
        Some(measure_streams(
            &mut scheduler,
            &requests[args.runs + 2..],
            facts.weights_bytes,
            facts.kv_bytes_per_token,
        )?)
    } else {
        None
    };
    let constrained = if args.constrained {
        Some(measure_constrained(&mut scheduler, &requests, args.runs)?)
    } else {
        None
    };
    if args.json {
        let line = serde_json::json!({
            "load_s": load_s,
            "read_s": read_s,
            "planned_weights_mb": need.weights as f64 / 1e6,
            "loaded_weights_mb": loaded_bytes / 1e6,
            "loaded_rss_mb": rss_loaded / 1e6,
            "planned_mb": need.total() as f64 / 1e6,
            "prefill_tok_s": prefill,
            "decode_tok_s": decode,
            "graph_build_ms_per_token": build_ms,
            "graph_build_idle_ms": idle_ms[0].1,
            "graph_build_idle_ms_by_batch": idle_ms,
            "peak_memory_mb": peak_mb,
            "constrained_decode_tok_s": constrained.as_ref().map(|c| c.decode_tok_s),
            "mask_ms_per_token": constrained.as_ref().map(|c| c.mask_ms),
            "mask_share_of_step": constrained.as_ref().map(|c| c.mask_share),
            "streams": args.streams,
            "streams_aggregate_tok_s": streams.as_ref().map(|s| s.aggregate_tok_s),
            "streams_peak_memory_mb": streams.as_ref().map(|s| s.peak_mb),
            "streams_planned_weights_kv_mb": streams.as_ref().map(|s| s.planned_mb),
        });
        println!("{line}");
    } else {
        let c = &config;
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
        println!(
            "load             {load_s:.2} s ({:.1}× the {read_s:.2} s to read the files)",
            load_s / read_s
        );
        print_speeds(&args, prefill, decode);
        println!("graph building   {build_ms:.3} ms per decode step (host, overlapping compute)");
        for (rows, ms) in &idle_ms {
            println!(
                "                 {ms:.3} ms per decode step of {rows} rows (host, device idle; \
                 median of 32)"
            );
        }
        if let Some(c) = &constrained {
            println!(
                "constrained      {:.1} tok/s ({} tokens of a JSON list under a schema)",
                c.decode_tok_s, c.tokens
            );
            println!(
                "                 mask {:.3} ms per token (host): {:.1}% of a constrained step",
                c.mask_ms,
                c.mask_share * 100.0
            );
        }
        if let Some(s) = &streams {
            println!(
                "{} streams       {:.1} tok/s in all, prompts included ({:.2}× one request's \
                 {end_to_end:.1}); peak memory {:.1} MB, {:.2}× the planner's weights + KV for \
                 their tokens ({:.1} MB)",
                args.streams,
                s.aggregate_tok_s,
                s.aggregate_tok_s / end_to_end,
                s.peak_mb,
                s.peak_mb / s.planned_mb,
                s.planned_mb
            );
        }
        println!("peak memory      {peak_mb:.1} MB (MLX allocator)");
        println!(
            "planned          {:.1} MB weights from the headers; loaded: {:.1} MB (MLX), {:.1} MB \
             (process RSS)",
            need.weights as f64 / 1e6,
            loaded_bytes / 1e6,
            rss_loaded / 1e6
        );
        println!(
            "                 {:.1} MB for a {}-token run (KV {:.1}, workspace {:.1}); peak {peak_mb:.1} \
             MB: {:.2}×",
            need.total() as f64 / 1e6,
            need.context,
            need.kv as f64 / 1e6,
            need.workspace as f64 / 1e6,
            need.total() as f64 / 1e6 / peak_mb
        );
        println!(
            "runs             {} measured after 1 warm-up; medians",
            args.runs
        );
    }
    Ok(())
}

/// Several generations at once.
struct StreamsRun {
    aggregate_tok_s: f64,
    peak_mb: f64,
    planned_mb: f64,
}

/// Runs `requests` together (after dropping what earlier runs left in the prefix cache):
/// generated tokens per second over all of them from start to end, and MLX's peak memory beside the
/// planner's weights plus KV cache for the tokens they hold.
fn measure_streams(
    scheduler: &mut Scheduler<MlxBackend>,
    requests: &[GenerateRequest],
    weights: u64,
    kv_per_token: u64,
) -> anyhow::Result<StreamsRun> {
    eprint!("\r{} streams at once …", requests.len());
    scheduler.backend_mut().forget_kept();
    memory::reset_peak();
    let started = Instant::now();
    let finished: Vec<Finished> = scheduler
        .generate_now(requests.to_vec())?
        .into_iter()
        .map(|g| g.finished)
        .collect();
    let wall = started.elapsed().as_secs_f64();
    eprintln!("\r{:40}", "");
    let generated: usize = finished.iter().map(|f| f.completion_tokens).sum();
    let tokens: usize = finished
        .iter()
        .map(|f| f.prompt_tokens + f.completion_tokens)
        .sum();
    Ok(StreamsRun {
        aggregate_tok_s: generated as f64 / wall,
        peak_mb: memory::peak() as f64 / 1e6,
        planned_mb: (weights + kv_per_token * tokens as u64) as f64 / 1e6,
    })
}

/// What constrained decoding costs: its speed, and the mask's host time per token.
struct ConstrainedRun {
    tokens: usize,
    decode_tok_s: f64,
    mask_ms: f64,
    mask_share: f64,
}

/// Runs `runs` generations (after a warm-up) held to a schema of exactly 20 records, so
/// every run writes about as many tokens, and takes the medians.
fn measure_constrained(
    scheduler: &mut Scheduler<MlxBackend>,
    requests: &[GenerateRequest],
    runs: usize,
) -> anyhow::Result<ConstrainedRun> {
    let schema = serde_json::json!({
        "type": "array", "minItems": 20, "maxItems": 20,
        "items": {
            "type": "object", "additionalProperties": false, "required": ["name", "age"],
            "properties": {
                "name": {"type": "string", "maxLength": 12},
                "age": {"type": "integer", "minimum": 0, "maximum": 120},
            },
        },
    });
    let model = scheduler.backend_mut().model();
    let eos = *model
        .eos_token_ids
        .first()
        .context("the model has no end-of-sequence token")?;
    let vocabulary = Vocabulary::new(&model.tokenizer, eos)?;
    let syntax = ReplySyntax::detect(model.chat_template.as_ref(), |token| {
        model.tokenizer.token_id(token).is_some()
    });
    let constraint = vocabulary.compile(
        &Grammar::JsonSchema(schema.clone()),
        syntax.tools,
        |token| model.tokenizer.token_id(token),
    )?;
    let mut measured = Vec::new();
    for (i, request) in requests.iter().enumerate().take(runs + 1) {
        eprint!("\rconstrained run {i}/{runs} …");
        let constrained = GenerateRequest {
            max_tokens: 600,
            ignore_eos: false,
            constraint: Some(constraint.clone()),
            ..request.clone()
        };
        let generated = scheduler.generate_now(vec![constrained])?;
        if i > 0 {
            measured.extend(generated.into_iter().map(|g| g.finished));
        }
    }
    eprintln!("\r{:40}", "");
    let median = |f: &dyn Fn(&Finished) -> f64| median_of(&measured, f);
    let step_s = |f: &Finished| f.decode_time.as_secs_f64() / (f.completion_tokens - 1) as f64;
    let mask_s = |f: &Finished| f.constraint_time.as_secs_f64() / f.completion_tokens as f64;
    Ok(ConstrainedRun {
        tokens: median(&|f| f.completion_tokens as f64) as usize,
        decode_tok_s: median(&|f| 1.0 / step_s(f)),
        mask_ms: median(&|f| mask_s(f) * 1e3),
        mask_share: median(&|f| mask_s(f) / step_s(f)),
    })
}

/// `count` benchmark requests as `args` asks; each run's prompt starts elsewhere in the
/// text, so none reuses another's cache.
pub(crate) fn bench_requests(
    args: &BenchArgs,
    tokenizer: &Tokenizer,
    count: usize,
) -> anyhow::Result<Vec<GenerateRequest>> {
    (0..count)
        .map(|run| {
            Ok(GenerateRequest {
                prompt: bench_prompt(tokenizer, args.prompt_tokens, run)?,
                max_tokens: args.gen_tokens,
                ignore_eos: true,
                ..Default::default()
            })
        })
        .collect()
}

/// The context each benchmark sequence is given: its prompt and answer, and room for
/// the constrained runs' longer answers.
pub(crate) fn bench_context(args: &BenchArgs) -> usize {
    (args.prompt_tokens + args.gen_tokens + 1).max(600 + args.prompt_tokens)
}

/// Runs the first of `requests` as a warm-up, then the next `runs` one at a time, each
/// from an empty prefix cache: the measured runs' summaries.
pub(crate) fn timed_runs<B: Backend>(
    scheduler: &mut Scheduler<B>,
    requests: &[GenerateRequest],
    runs: usize,
) -> anyhow::Result<Vec<Finished>> {
    let mut measured = Vec::new();
    for (i, request) in requests.iter().enumerate().take(runs + 1) {
        let what = if i == 0 { "warm-up" } else { "measured" };
        eprint!("\r{what} run {i}/{runs} …");
        scheduler.backend_mut().forget_kept();
        let generated = scheduler.generate_now(vec![request.clone()])?;
        if i > 0 {
            measured.extend(generated.into_iter().map(|g| g.finished));
        }
    }
    eprintln!("\r{:40}", "");
    Ok(measured)
}

/// Median prefill and decode speeds of `runs`, in tokens per second.
pub(crate) fn speeds(runs: &[Finished]) -> (f64, f64) {
    let prefill = median_of(runs, &|f| {
        f.prompt_tokens as f64 / f.time_to_first_token.as_secs_f64()
    });
    let decode = median_of(runs, &|f| {
        (f.completion_tokens - 1) as f64 / f.decode_time.as_secs_f64()
    });
    (prefill, decode)
}

/// The table's prefill and decode lines.
pub(crate) fn print_speeds(args: &BenchArgs, prefill: f64, decode: f64) {
    println!(
        "prefill          {prefill:.1} tok/s ({} prompt tokens)",
        args.prompt_tokens
    );
    println!(
        "decode           {decode:.1} tok/s ({} tokens)",
        args.gen_tokens
    );
}

/// The median over `runs` of what `f` measures.
fn median_of(runs: &[Finished], f: &dyn Fn(&Finished) -> f64) -> f64 {
    let mut v: Vec<f64> = runs.iter().map(f).collect();
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Seconds to read every file of the model at `path` once, start to end.
fn read_files(path: &std::path::Path) -> anyhow::Result<f64> {
    let files: Vec<PathBuf> = if path.is_dir() {
        std::fs::read_dir(path)?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.is_file())
            .collect()
    } else {
        vec![path.to_owned()]
    };
    let start = Instant::now();
    for file in files {
        std::io::copy(&mut std::fs::File::open(&file)?, &mut std::io::sink())?;
    }
    Ok(start.elapsed().as_secs_f64())
}

/// This process's resident memory.
fn resident_bytes() -> u64 {
    let mut system = sysinfo::System::new();
    let pid = sysinfo::Pid::from_u32(std::process::id());
    system.refresh_processes(sysinfo::ProcessesToUpdate::Some(&[pid]), true);
    system.process(pid).map_or(0, sysinfo::Process::memory)
}

/// A prompt of exactly `n` tokens: ordinary English text, repeated as needed, starting
/// `run` tokens in (so prompts of different runs share no prefix).
fn bench_prompt(tokenizer: &Tokenizer, n: usize, run: usize) -> anyhow::Result<Vec<u32>> {
    let text =
        "The quick brown fox jumps over the lazy dog while the river runs past the old mill. ";
    let ids = tokenizer.encode(text, false)?;
    Ok(ids.iter().copied().cycle().skip(run).take(n).collect())
}
