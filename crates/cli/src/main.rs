//! The `perch` command. Thin: it parses flags and calls the engine (later the runtime and
//! server); every subcommand lives in its own module.

mod bench;
mod chat;
mod import;
mod serve;

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
    /// Serve models over the OpenAI-compatible API (default: smollm2:135m on loopback).
    Serve(serve::ServeArgs),
    /// Chat with a model in the terminal.
    Run(chat::RunArgs),
}

fn main() -> anyhow::Result<()> {
    perch_runtime::logging::init();
    match Cli::parse().command {
        Command::Serve(args) => serve::run(args),
        Command::Run(args) => chat::run(args),
        Command::Import(args) => import::run(args),
        Command::Bench(args) => bench::run(args),
    }
}
