//! The `perch` command. Thin: it parses flags and calls the runtime, the server or the
//! running node's HTTP API; every subcommand lives in its own module.

mod bench;
mod bench_llama;
mod chat;
mod import;
mod models;
mod progress_bar;
mod remote;
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
    Serve(Box<serve::ServeArgs>),
    /// Chat with a model in the terminal.
    Run(chat::RunArgs),
    /// Download a model (catalog alias, owner/repo, or hf.co/owner/repo:QUANT).
    Pull(models::PullArgs),
    /// Add a GGUF file or an MLX folder from this machine to the store.
    Add(models::AddArgs),
    /// List the models on this machine, with whether each fits in memory.
    Ls,
    /// Remove a model.
    Rm(models::NameArg),
    /// List the models the running node has loaded.
    Ps,
    /// Show a model's files, facts and memory need.
    Show(models::NameArg),
    /// Load a model on the running node.
    Load(models::LoadArgs),
    /// Unload a model on the running node.
    Unload(models::NameArg),
    /// Hash a model's files again and compare them with its manifest.
    Verify(models::NameArg),
}

fn main() -> anyhow::Result<()> {
    let command = Cli::parse().command;
    // `perch serve` logs to files too, where its settings say.
    if !matches!(command, Command::Serve(_)) {
        perch_runtime::logging::init();
    }
    match command {
        Command::Serve(args) => serve::run(*args),
        Command::Run(args) => chat::run(args),
        Command::Import(args) => import::run(args),
        Command::Bench(args) => bench::run(args),
        Command::Pull(args) => models::pull(args),
        Command::Add(args) => models::add(args),
        Command::Ls => models::ls(),
        Command::Rm(args) => models::rm(args),
        Command::Ps => models::ps(),
        Command::Show(args) => models::show(args),
        Command::Load(args) => models::load(args),
        Command::Unload(args) => models::unload(args),
        Command::Verify(args) => models::verify(args),
    }
}
