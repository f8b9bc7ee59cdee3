//! The `perch` command. Thin: it parses flags and calls the engine (later the runtime and
//! server); every subcommand lives in its own module.

mod bench;
mod import;

use clap::{Parser, Subcommand};

/// Perch: a private LLM inference node on your own hardware.
#[derive(Parser)]
#[command(name = "perch", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Write a GGUF model out as an MLX directory (weights stay quantized).
    Import(import::ImportArgs),
    /// Measure load time, prefill and decode speed, and memory of a model.
    Bench(bench::BenchArgs),
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Import(args) => import::run(args),
        Command::Bench(args) => bench::run(args),
    }
}
