//! `perch add PATH`, `perch rm NAME`, `perch verify NAME`, `perch load NAME` and
//! `perch unload NAME`.

use std::path::PathBuf;

use anyhow::bail;
use serde_json::json;

use super::{block_on, size, store};
use crate::remote::{check, Remote};

/// A model's name.
#[derive(clap::Args)]
pub struct NameArg {
    /// The model's name.
    pub name: String,
}

/// Arguments of `perch add`.
#[derive(clap::Args)]
pub struct AddArgs {
    /// A GGUF file or an MLX folder.
    path: PathBuf,
    /// The name to give it (default: its file name).
    #[arg(long)]
    name: Option<String>,
}

/// Arguments of `perch load`.
#[derive(clap::Args)]
pub struct LoadArgs {
    /// The model's name.
    name: String,
    /// How long it stays loaded when idle (`5m`, `1h`; `-1` keeps it).
    #[arg(long, allow_hyphen_values = true)]
    keep_alive: Option<String>,
}

/// Adds a local file or folder to the store, hashing it once.
pub fn add(args: AddArgs) -> anyhow::Result<()> {
    eprintln!("adding {} (hashing its files once)…", args.path.display());
    let model = store().add(&args.path, args.name.as_deref())?;
    println!(
        "added {} ({}, {})",
        model.name(),
        model.manifest.format,
        size(model.manifest.bytes_on_disk)
    );
    Ok(())
}

/// Removes a model, through the running node if there is one (which unloads it first).
pub fn rm(args: NameArg) -> anyhow::Result<()> {
    block_on(async move {
        match Remote::find(store().home()).await {
            Some(remote) => {
                let request = remote
                    .request(reqwest::Method::DELETE, "/api/delete")
                    .json(&json!({"model": args.name}));
                check(request.send().await?).await?;
            }
            None => {
                store().remove(&args.name)?;
            }
        }
        println!("deleted {}", args.name);
        Ok(())
    })
}

/// Hashes a model's files again and compares them with its manifest.
pub fn verify(args: NameArg) -> anyhow::Result<()> {
    let report = store().verify(&args.name)?;
    for file in &report.good {
        println!("ok       {file}");
    }
    for (file, why) in &report.bad {
        println!("CORRUPT  {file}: {why}");
    }
    if !report.bad.is_empty() {
        bail!(
            "{} of {} is corrupt: remove it (perch rm {}) and pull it again",
            report.bad.len(),
            args.name,
            args.name
        );
    }
    Ok(())
}

/// Loads a model on the running node.
pub fn load(args: LoadArgs) -> anyhow::Result<()> {
    block_on(async move {
        let remote = running().await?;
        let mut body = json!({"model": args.name});
        if let Some(keep) = &args.keep_alive {
            body["keep_alive"] = json!(keep);
        }
        eprintln!("loading {}…", args.name);
        let loaded = remote
            .json(
                remote
                    .request(reqwest::Method::POST, "/api/perch/load")
                    .json(&body),
            )
            .await?;
        println!(
            "loaded {} (context {}, {} planned)",
            args.name,
            loaded["context_length"],
            size(loaded["planned_bytes"].as_u64().unwrap_or(0))
        );
        Ok(())
    })
}

/// Unloads a model on the running node.
pub fn unload(args: NameArg) -> anyhow::Result<()> {
    block_on(async move {
        let remote = running().await?;
        let result = remote
            .json(
                remote
                    .request(reqwest::Method::POST, "/api/perch/unload")
                    .json(&json!({"model": args.name})),
            )
            .await?;
        match result["unloaded"].as_str() {
            Some("now") => println!("unloaded {}", args.name),
            Some("after_requests") => println!(
                "{} unloads when its {} request(s) in flight end",
                args.name, result["requests_in_flight"]
            ),
            _ => println!("{} was not loaded", args.name),
        }
        Ok(())
    })
}

async fn running() -> anyhow::Result<Remote> {
    match Remote::find(store().home()).await {
        Some(remote) => Ok(remote),
        None => bail!("no node is running; start one with perch serve"),
    }
}
