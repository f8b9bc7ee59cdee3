//! `perch pull NAME`: through the running node (its NDJSON progress) or, with none
//! running, straight into the store; a progress bar either way. Ctrl-C cancels, and
//! pulling again resumes from the partial files.

use anyhow::{bail, Context};
use futures_util::StreamExt;
use perch_runtime::{DownloadError, Downloads, LocalModel, Stage};
use serde_json::{json, Value};

use super::{block_on, store};
use crate::progress_bar::PullBar;
use crate::remote::{check, Remote};

/// Arguments of `perch pull`.
#[derive(clap::Args)]
pub struct PullArgs {
    /// A catalog alias (qwen3:4b), a Hugging Face repository (owner/repo[@revision]) or
    /// one GGUF of one (hf.co/owner/repo:Q4_K_M).
    name: String,
}

/// Pulls the model.
pub fn pull(args: PullArgs) -> anyhow::Result<()> {
    block_on(async move {
        match Remote::find(store().home()).await {
            Some(remote) => pull_through(&remote, &args.name).await,
            None => {
                let downloads =
                    Downloads::new(store(), perch_runtime::hub::HubSettings::from_env());
                let model = pull_here(&downloads, &args.name).await?;
                println!("{} is ready ({})", model.name(), model.dir.display());
                Ok(())
            }
        }
    })
}

/// Pulls `name` into the store with `downloads`, showing a bar; Ctrl-C cancels.
pub async fn pull_here(downloads: &Downloads, name: &str) -> anyhow::Result<LocalModel> {
    let download = downloads.pull(name)?;
    let bar = PullBar::new(name);
    let mut progress = download.subscribe();
    loop {
        let now = progress.borrow_and_update().clone();
        bar.update(&stage_text(now.stage, name), now.completed, now.total);
        if now.ended() {
            break;
        }
        tokio::select! {
            changed = progress.changed() => if changed.is_err() { break },
            _ = tokio::signal::ctrl_c() => {
                download.cancel();
            }
        }
    }
    match download.finished().await {
        Ok(model) => {
            bar.finish(&format!("pulled {name}"));
            Ok(model)
        }
        Err(DownloadError::Cancelled) => {
            bar.abandon("cancelled");
            bail!("cancelled; run perch pull {name} again to resume")
        }
        Err(e) => {
            bar.abandon("failed");
            Err(e.into())
        }
    }
}

fn stage_text(stage: Stage, name: &str) -> String {
    match stage {
        Stage::Resolving => format!("resolving {name}"),
        Stage::Downloading => format!("pulling {name}"),
        Stage::Verifying => "verifying".into(),
        Stage::Done => format!("pulled {name}"),
        Stage::Failed => "failed".into(),
        Stage::Cancelled => "cancelled".into(),
    }
}

/// Pulls through the node's `/api/pull`, rendering its NDJSON lines.
async fn pull_through(remote: &Remote, name: &str) -> anyhow::Result<()> {
    let response = remote
        .request(reqwest::Method::POST, "/api/pull")
        .json(&json!({"model": name}))
        .send()
        .await
        .context("the node did not answer")?;
    let response = check(response).await?;
    let bar = PullBar::new(name);
    let mut body = response.bytes_stream();
    let mut pending = Vec::new();
    loop {
        let chunk = tokio::select! {
            c = body.next() => c,
            _ = tokio::signal::ctrl_c() => {
                bar.abandon("cancelled");
                bail!("cancelled; run perch pull {name} again to resume");
            }
        };
        let Some(chunk) = chunk else { break };
        pending.extend_from_slice(&chunk.context("the node stopped answering")?);
        while let Some(end) = pending.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = pending.drain(..=end).collect();
            let value: Value = serde_json::from_slice(&line).context("a progress line")?;
            if let Some(error) = value["error"].as_str() {
                bar.abandon("failed");
                bail!("{error}");
            }
            let status = value["status"].as_str().unwrap_or_default();
            if status == "success" {
                bar.finish(&format!("pulled {name}"));
                return Ok(());
            }
            let number = |key: &str| value[key].as_u64().unwrap_or(0);
            bar.update(status, number("completed"), number("total"));
        }
    }
    bar.abandon("interrupted");
    bail!("the node stopped answering before the pull ended; run it again to resume")
}
