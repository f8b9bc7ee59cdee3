//! `perch ls` (the store, with each model's fit: the running node's view when one runs),
//! `perch ps` (what the running node has loaded) and `perch show NAME`.

use anyhow::{bail, Context};
use perch_engine::embed::EmbeddingRecipe;
use perch_engine::inspect::ModelFacts;
use perch_engine::sampling_defaults::SamplingDefaults;
use perch_runtime::manager::engine_for;
use perch_runtime::node::system_budget;
use perch_runtime::planner::{Footprint, MemoryPlanner};
use perch_runtime::store::LocalModel;
use perch_runtime::NodeSettings;

use super::{block_on, settings_file, size, store};
use crate::remote::Remote;

/// A planner for this machine with nothing loaded, at the context the settings give.
fn planner() -> MemoryPlanner {
    let settings = NodeSettings::from_env();
    MemoryPlanner::new(
        system_budget(settings.os_reserve),
        settings.buffer_cache,
        settings_file().context_length,
    )
}

/// The facts of `model` on the engine it runs on with the settings file's values.
fn facts_of(model: &LocalModel) -> perch_engine::Result<ModelFacts> {
    let engine = engine_for(model, settings_file().gguf_engine)?;
    perch_engine::inspect::inspect_on(&model.load_path(), engine)
}

/// One line of `perch ls`.
struct Row {
    name: String,
    size: u64,
    format: String,
    quantization: Option<String>,
    fit: String,
    read_only: bool,
    loaded: bool,
}

/// "fits", "tight", or "won't fit, short by 1.2 GB".
fn fit_text(fit: &str, shortfall: u64) -> String {
    match fit {
        "wont_fit" => format!("won't fit, short by {}", size(shortfall)),
        other => other.to_owned(),
    }
}

/// Lists the models on this machine, with whether each fits: beside what the running
/// node has loaded (as its API says), or alone when no node runs.
pub fn ls() -> anyhow::Result<()> {
    let (rows, fit_against) = block_on(async {
        Ok(match Remote::find(store().home()).await {
            Some(remote) => (
                rows_from(&remote).await?,
                "beside what the node has loaded".to_owned(),
            ),
            None => {
                let planner = planner();
                let against = format!("alone, {} for models", size(planner.budget().usable()));
                (local_rows(&planner), against)
            }
        })
    })?;
    println!(
        "{:<48} {:>9} {:<6} {:<8} FIT ({fit_against})",
        "NAME", "SIZE", "FORMAT", "QUANT"
    );
    for row in rows {
        let mut notes = String::new();
        if row.loaded {
            notes.push_str(" (loaded)");
        }
        if row.read_only {
            notes.push_str(" (Hugging Face cache)");
        }
        println!(
            "{:<48} {:>9} {:<6} {:<8} {}{notes}",
            row.name,
            size(row.size),
            row.format,
            row.quantization.as_deref().unwrap_or("-"),
            row.fit
        );
    }
    Ok(())
}

/// The rows as the running node sees them (`/api/perch/models`).
async fn rows_from(remote: &Remote) -> anyhow::Result<Vec<Row>> {
    let list = remote
        .json(remote.request(reqwest::Method::GET, "/api/perch/models"))
        .await?;
    let text = |v: &serde_json::Value| v.as_str().unwrap_or_default().to_owned();
    Ok(list["models"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|m| Row {
            name: text(&m["name"]),
            size: m["size"].as_u64().unwrap_or(0),
            format: text(&m["format"]),
            quantization: m["quantization"].as_str().map(str::to_owned),
            fit: match m["fit"]["fit"].as_str() {
                Some(fit) => fit_text(fit, m["fit"]["shortfall_bytes"].as_u64().unwrap_or(0)),
                None => "unreadable".into(),
            },
            read_only: m["read_only"].as_bool().unwrap_or(false),
            loaded: m["loaded"].as_bool().unwrap_or(false),
        })
        .collect())
}

/// The rows from the store, each model planned alone.
fn local_rows(planner: &MemoryPlanner) -> Vec<Row> {
    store()
        .list()
        .into_iter()
        .map(|model| {
            let fit = facts_of(&model).map_or_else(
                |e| format!("unreadable: {e}"),
                |facts| {
                    let verdict = planner.verdict(&Footprint::from(&facts), &[]);
                    let fit = serde_json::to_value(verdict.fit).unwrap_or_default();
                    fit_text(fit.as_str().unwrap_or_default(), verdict.shortfall)
                },
            );
            let m = model.manifest;
            Row {
                name: m.name,
                size: m.bytes_on_disk,
                format: m.format,
                quantization: m.quantization,
                fit,
                read_only: model.read_only,
                loaded: false,
            }
        })
        .collect()
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
    let facts = facts_of(&model)?;
    let verdict = planner().verdict(&Footprint::from(&facts), &[]);
    let m = &model.manifest;
    println!("name          {}", m.name);
    println!("source        {}", serde_json::to_string(&m.source)?);
    println!("format        {}", m.format);
    println!("engine        {}", facts.engine);
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
    let recommended = SamplingDefaults::of(&model.load_path()).lines();
    println!(
        "sampling      {}",
        if recommended.is_empty() {
            "the API's defaults (the model recommends none)".to_owned()
        } else {
            format!(
                "{} (the model's recommendation; a request's own fields win)",
                recommended.join(", ")
            )
        }
    );
    println!(
        "embeddings    {}",
        match EmbeddingRecipe::of(&model.load_path()) {
            Ok(recipe) => recipe.to_string(),
            Err(why) => format!("not available: {why}"),
        }
    );
    Ok(())
}
