//! `perch ls` (the store, with each model's fit on this machine), `perch ps` (what the
//! running node has loaded) and `perch show NAME`.

use anyhow::{bail, Context};
use perch_runtime::node::system_budget;
use perch_runtime::planner::{Footprint, MemoryPlanner};
use perch_runtime::NodeSettings;

use super::{block_on, size, store};
use crate::remote::Remote;

/// A planner for this machine with nothing loaded.
fn planner() -> MemoryPlanner {
    let settings = NodeSettings::from_env();
    MemoryPlanner::new(
        system_budget(settings.os_reserve),
        settings.buffer_cache,
        settings.context_length,
    )
}

/// Lists the models on this machine.
pub fn ls() -> anyhow::Result<()> {
    let planner = planner();
    println!(
        "{:<48} {:>9} {:<5} {:<8} FIT (alone, {} for models)",
        "NAME",
        "SIZE",
        "FORMAT",
        "QUANT",
        size(planner.budget().usable())
    );
    for model in store().list() {
        let fit = perch_engine::inspect::inspect(&model.load_path()).map_or_else(
            |e| format!("unreadable: {e}"),
            |facts| {
                let verdict = planner.verdict(&Footprint::from(&facts), &[]);
                let mut text = format!("{:?}", verdict.fit).to_lowercase();
                if verdict.shortfall > 0 {
                    text.push_str(&format!(", short by {}", size(verdict.shortfall)));
                }
                text
            },
        );
        let m = &model.manifest;
        println!(
            "{:<48} {:>9} {:<6} {:<8} {fit}{}",
            m.name,
            size(m.bytes_on_disk),
            m.format,
            m.quantization.as_deref().unwrap_or("-"),
            if model.read_only {
                " (Hugging Face cache)"
            } else {
                ""
            }
        );
    }
    Ok(())
}

/// Lists what the running node has loaded.
pub fn ps() -> anyhow::Result<()> {
    block_on(async {
        let Some(remote) = Remote::find(store().home()).await else {
            bail!("no node is running; start one with perch serve");
        };
        let list = remote
            .json(remote.request(reqwest::Method::GET, "/api/ps"))
            .await?;
        println!("{:<48} {:>9} {:>8}  UNTIL", "NAME", "SIZE", "CONTEXT");
        for m in list["models"].as_array().into_iter().flatten() {
            println!(
                "{:<48} {:>9} {:>8}  {}",
                m["name"].as_str().unwrap_or_default(),
                size(m["size"].as_u64().unwrap_or(0)),
                m["context_length"].as_u64().unwrap_or(0),
                until(m["expires_at"].as_str().unwrap_or_default())
            );
        }
        Ok(())
    })
}

/// When a loaded model goes: the API's time, or "kept" for a model kept loaded (the API
/// gives those a date a century ahead, as Ollama does).
fn until(expires_at: &str) -> String {
    let year_now = 1970
        + std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() / 31_556_952);
    let year: u64 = expires_at
        .get(..4)
        .and_then(|y| y.parse().ok())
        .unwrap_or(0);
    if year > year_now + 50 {
        "kept loaded".into()
    } else {
        expires_at.to_owned()
    }
}

/// Shows one model: its manifest, header facts and fit.
pub fn show(args: super::NameArg) -> anyhow::Result<()> {
    let model = store()
        .get(&args.name)
        .with_context(|| format!("{} is not on this machine", args.name))?;
    let facts = perch_engine::inspect::inspect(&model.load_path())?;
    let verdict = planner().verdict(&Footprint::from(&facts), &[]);
    let m = &model.manifest;
    println!("name          {}", m.name);
    println!("source        {}", serde_json::to_string(&m.source)?);
    println!("format        {}", m.format);
    println!("architecture  {}", m.architecture);
    println!("parameters    {}", m.parameters);
    println!(
        "quantization  {}",
        m.quantization.as_deref().unwrap_or("none")
    );
    println!("context       {}", m.context_length);
    println!(
        "on disk       {} in {}",
        size(m.bytes_on_disk),
        model.dir.display()
    );
    for f in &m.files {
        println!(
            "  {:<40} {:>9}  sha256 {}",
            f.path,
            size(f.size),
            f.sha256.as_deref().unwrap_or("(none)")
        );
    }
    println!("memory        {}", verdict.explain(&m.name));
    Ok(())
}
