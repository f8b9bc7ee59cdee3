//! Models already in the Hugging Face cache (`HF_HUB_CACHE`, or `HF_HOME/hub`, or
//! `~/.cache/huggingface/hub`), as `mlx-lm` and `huggingface_hub` leave them:
//! `models--owner--repo/snapshots/COMMIT/…`, each file a link to `blobs/HASH`. They are
//! listed and loaded in place and never modified. An LFS blob is named by its sha256, so
//! the manifest gets the hash without reading the file.

use std::path::{Path, PathBuf};

use crate::manifest::{Manifest, ManifestFile, ManifestSource};
use crate::store::{is_mlx_folder, is_model_file, LocalModel};

/// The cache directory the environment names, if any exists.
pub fn from_env() -> Option<PathBuf> {
    let var = |name: &str| std::env::var_os(name).map(PathBuf::from);
    let dir = var("HF_HUB_CACHE")
        .or_else(|| var("HF_HOME").map(|h| h.join("hub")))
        .or_else(|| var("HOME").map(|h| h.join(".cache/huggingface/hub")))?;
    dir.is_dir().then_some(dir)
}

/// The models in the cache at `cache` that the engine can read.
pub fn list(cache: &Path) -> Vec<LocalModel> {
    let Ok(entries) = std::fs::read_dir(cache) else {
        return Vec::new();
    };
    let mut models = Vec::new();
    for entry in entries.flatten() {
        let folder = entry.file_name().to_string_lossy().into_owned();
        let Some(repo) = folder
            .strip_prefix("models--")
            .and_then(|r| r.split_once("--"))
            .map(|(owner, name)| format!("{owner}/{name}"))
        else {
            continue;
        };
        let Some((commit, snapshot)) = snapshot(&entry.path()) else {
            continue;
        };
        models.extend(models_in(&repo, &commit, &snapshot));
    }
    models.sort_by(|a, b| a.name().cmp(b.name()));
    models
}

/// The snapshot `refs/main` points at, or the only one there is.
fn snapshot(repo_dir: &Path) -> Option<(String, PathBuf)> {
    let snapshots = repo_dir.join("snapshots");
    if let Ok(main) = std::fs::read_to_string(repo_dir.join("refs/main")) {
        let commit = main.trim().to_owned();
        let dir = snapshots.join(&commit);
        if dir.is_dir() {
            return Some((commit, dir));
        }
    }
    let mut all: Vec<_> = std::fs::read_dir(&snapshots).ok()?.flatten().collect();
    if all.len() != 1 {
        return None;
    }
    let only = all.remove(0);
    Some((only.file_name().to_string_lossy().into_owned(), only.path()))
}

/// An MLX folder as one model; each GGUF file as `hf.co/owner/repo:QUANT`.
fn models_in(repo: &str, commit: &str, snapshot: &Path) -> Vec<LocalModel> {
    let Ok(entries) = std::fs::read_dir(snapshot) else {
        return Vec::new();
    };
    let names: Vec<String> = entries
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    let source = || ManifestSource::HuggingFace {
        repo: repo.to_owned(),
        commit: commit.to_owned(),
    };
    let mut models = Vec::new();
    if is_mlx_folder(names.iter().map(String::as_str)) {
        let files: Vec<&String> = names.iter().filter(|n| is_model_file(n)).collect();
        if let Some(model) = model(repo.to_owned(), snapshot, snapshot, &files, source()) {
            models.push(model);
        }
    }
    for gguf in names.iter().filter(|n| n.ends_with(".gguf")) {
        let name = match quant_of(gguf) {
            Some(q) => format!("hf.co/{repo}:{q}"),
            None => format!("hf.co/{repo}"),
        };
        let path = snapshot.join(gguf);
        if let Some(model) = model(name, snapshot, &path, &[gguf], source()) {
            models.push(model);
        }
    }
    models
}

fn model(
    name: String,
    dir: &Path,
    load_path: &Path,
    files: &[&String],
    source: ManifestSource,
) -> Option<LocalModel> {
    let facts = match perch_engine::inspect::inspect(load_path) {
        Ok(f) => f,
        Err(e) => {
            tracing::debug!("not listing {name} from the Hugging Face cache: {e}");
            return None;
        }
    };
    let files: Vec<ManifestFile> = files
        .iter()
        .filter_map(|f| {
            let path = dir.join(f);
            let size = std::fs::metadata(&path).ok()?.len();
            Some(ManifestFile {
                path: (*f).clone(),
                size,
                sha256: blob_sha256(&path),
            })
        })
        .collect();
    let added_at = std::fs::metadata(dir)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_secs());
    Some(LocalModel {
        manifest: Manifest::new(name, source, files, facts, added_at),
        dir: dir.to_owned(),
        read_only: true,
    })
}

/// An LFS blob's sha256, from the name of the blob the snapshot's link points at.
fn blob_sha256(path: &Path) -> Option<String> {
    let target = std::fs::read_link(path).ok()?;
    let name = target.file_name()?.to_str()?;
    (name.len() == 64 && name.bytes().all(|b| b.is_ascii_hexdigit())).then(|| name.to_owned())
}

/// `SmolLM2-135M-Instruct.Q4_1.gguf` → `Q4_1`; `qwen2.5-7b-instruct-q4_k_m.gguf` →
/// `Q4_K_M`.
pub fn quant_of(file_name: &str) -> Option<String> {
    let stem = file_name.strip_suffix(".gguf")?;
    let last = stem.rsplit(['.', '-']).next()?;
    let upper = last.to_ascii_uppercase();
    let known = ["Q", "IQ", "F16", "F32", "BF16", "TQ"];
    (known.iter().any(|k| upper.starts_with(k)) && upper.len() <= 10).then_some(upper)
}
