//! The model store: `$PERCH_HOME/models`, a folder per model holding its files and its
//! manifest, beside the models already in the Hugging Face cache (used in place,
//! read-only). Folder names are derived from the model name (its safe characters and a
//! hash of it), never taken from user text as a path.

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::hashing::sha256_file;
use crate::hf_cache;
use crate::manifest::{hex, unix_now, Manifest, ManifestFile, ManifestSource};
use crate::names::{self, ModelName, Origin};

/// What can go wrong in the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// No model by that name is on this machine.
    #[error("model {0:?} is not on this machine; pull it first (perch pull {0})")]
    NotFound(String),
    /// The name is malformed or names a path over the network.
    #[error(transparent)]
    BadName(#[from] names::NameError),
    /// A model of that name exists already.
    #[error("a model named {0:?} already exists")]
    Exists(String),
    /// The model lives in the Hugging Face cache, which Perch only reads.
    #[error("{0:?} is in the Hugging Face cache, which Perch does not modify; remove it with huggingface-cli")]
    ReadOnly(String),
    /// A file is not what its manifest or the hub says.
    #[error("{0}")]
    Corrupt(String),
    /// The files are not a model Perch can read.
    #[error("not a model Perch can load: {0}")]
    Unreadable(String),
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
}

impl StoreError {
    pub(crate) fn io(path: &Path, source: std::io::Error) -> Self {
        StoreError::Io {
            path: path.to_owned(),
            source,
        }
    }
}

/// A model on this machine.
#[derive(Clone, Debug)]
pub struct LocalModel {
    /// Its manifest.
    pub manifest: Manifest,
    /// Its folder.
    pub dir: PathBuf,
    /// Whether it lives in the Hugging Face cache (used in place, never modified).
    pub read_only: bool,
}

impl LocalModel {
    /// Its name.
    pub fn name(&self) -> &str {
        &self.manifest.name
    }

    /// What the engine loads: the GGUF file, or the MLX folder.
    pub fn load_path(&self) -> PathBuf {
        crate::manifest::load_path(&self.dir, &self.manifest.files)
    }
}

/// The result of re-hashing a model's files.
#[derive(Clone, Debug)]
pub struct VerifyReport {
    /// Files whose size and sha256 match.
    pub good: Vec<String>,
    /// Files that differ or are missing, with why.
    pub bad: Vec<(String, String)>,
}

/// Perch's data directory and the Hugging Face cache beside it.
#[derive(Clone, Debug)]
pub struct ModelStore {
    home: PathBuf,
    hf_cache: Option<PathBuf>,
}

impl ModelStore {
    /// A store at `home`, also listing the Hugging Face cache at `hf_cache`.
    pub fn new(home: PathBuf, hf_cache: Option<PathBuf>) -> ModelStore {
        ModelStore { home, hf_cache }
    }

    /// The data directory (`PERCH_HOME`).
    pub fn home(&self) -> &Path {
        &self.home
    }

    /// Where downloads in progress keep their partial files.
    pub fn downloads_dir(&self) -> PathBuf {
        self.home.join("downloads")
    }

    fn models_dir(&self) -> PathBuf {
        self.home.join("models")
    }

    /// The folder a model of `name` lives in: its safe characters and a hash of the whole
    /// name, so two names never share a folder.
    pub fn folder_for(&self, name: &str) -> PathBuf {
        self.models_dir().join(folder_name(name))
    }

    /// Every model: the store's, then the Hugging Face cache's.
    pub fn list(&self) -> Vec<LocalModel> {
        let mut models = Vec::new();
        if let Ok(entries) = std::fs::read_dir(self.models_dir()) {
            for entry in entries.flatten() {
                let dir = entry.path();
                match Manifest::read(&dir) {
                    Ok(manifest) => models.push(LocalModel {
                        manifest,
                        dir,
                        read_only: false,
                    }),
                    Err(e) => tracing::warn!("skipping {}: {e}", dir.display()),
                }
            }
        }
        models.sort_by(|a, b| a.name().cmp(b.name()));
        if let Some(cache) = &self.hf_cache {
            for model in hf_cache::list(cache) {
                if !models.iter().any(|m| m.name() == model.name()) {
                    models.push(model);
                }
            }
        }
        models
    }

    /// The model called `name`, in any form it may be written in
    /// ([`names::lookup_forms`]: a name without a tag also finds `name:latest`).
    pub fn get(&self, name: &str) -> Option<LocalModel> {
        let forms = names::lookup_forms(name);
        let models = self.list();
        forms
            .iter()
            .find_map(|form| models.iter().find(|m| m.name() == form))
            .cloned()
    }

    /// Moves the complete, verified files in `staging` into the store as `manifest.name`,
    /// replacing an older copy of the same name.
    pub fn install(&self, staging: &Path, manifest: &Manifest) -> Result<LocalModel, StoreError> {
        manifest.write(staging)?;
        let dir = self.folder_for(&manifest.name);
        std::fs::create_dir_all(self.models_dir())
            .map_err(|e| StoreError::io(&self.models_dir(), e))?;
        if dir.exists() {
            std::fs::remove_dir_all(&dir).map_err(|e| StoreError::io(&dir, e))?;
        }
        std::fs::rename(staging, &dir).map_err(|e| StoreError::io(&dir, e))?;
        Ok(LocalModel {
            manifest: manifest.clone(),
            dir,
            read_only: false,
        })
    }

    /// Removes the model called `name`.
    pub fn remove(&self, name: &str) -> Result<LocalModel, StoreError> {
        let model = self
            .get(name)
            .ok_or_else(|| StoreError::NotFound(name.to_owned()))?;
        if model.read_only {
            return Err(StoreError::ReadOnly(model.name().to_owned()));
        }
        std::fs::remove_dir_all(&model.dir).map_err(|e| StoreError::io(&model.dir, e))?;
        Ok(model)
    }

    /// Makes `to` a second name for the model `from` (its files hard-linked where the
    /// file system allows, copied otherwise).
    pub fn copy(&self, from: &str, to: &str) -> Result<LocalModel, StoreError> {
        let to = names::parse(to, Origin::Network)?.canonical();
        let source = self
            .get(from)
            .ok_or_else(|| StoreError::NotFound(from.to_owned()))?;
        if self.get(&to).is_some() {
            return Err(StoreError::Exists(to));
        }
        let staging = self.staging(&to)?;
        for file in &source.manifest.files {
            link_or_copy(&source.dir.join(&file.path), &staging.join(&file.path))?;
        }
        let manifest = Manifest {
            name: to,
            added_at: unix_now(),
            ..source.manifest.clone()
        };
        self.install(&staging, &manifest)
    }

    /// Adds the GGUF file or MLX folder at `path` under `name` (default: its file name),
    /// hashing each file once.
    pub fn add(&self, path: &Path, name: Option<&str>) -> Result<LocalModel, StoreError> {
        let name = match name {
            Some(n) => names::parse(n, Origin::Network)?.canonical(),
            None => ModelName::Path(path.to_owned()).canonical(),
        };
        names::parse(&name, Origin::Network)?;
        if self.get(&name).is_some() {
            return Err(StoreError::Exists(name));
        }
        let facts = perch_engine::inspect::inspect(path)
            .map_err(|e| StoreError::Unreadable(e.to_string()))?;
        let staging = self.staging(&name)?;
        let sources: Vec<PathBuf> = if path.is_dir() {
            model_files_in(path)?
        } else {
            vec![path.to_owned()]
        };
        let mut files = Vec::new();
        for source in &sources {
            let file_name = source
                .file_name()
                .expect("listed files have names")
                .to_string_lossy()
                .into_owned();
            let target = staging.join(&file_name);
            link_or_copy(source, &target)?;
            files.push(ManifestFile {
                size: std::fs::metadata(&target)
                    .map_err(|e| StoreError::io(&target, e))?
                    .len(),
                sha256: Some(sha256_file(&target)?),
                path: file_name,
            });
        }
        let source = ManifestSource::Local {
            path: std::fs::canonicalize(path).unwrap_or_else(|_| path.to_owned()),
        };
        let manifest = Manifest::new(name, source, files, facts, unix_now());
        self.install(&staging, &manifest)
    }

    /// Hashes the model's files again and compares them with its manifest.
    pub fn verify(&self, name: &str) -> Result<VerifyReport, StoreError> {
        let model = self
            .get(name)
            .ok_or_else(|| StoreError::NotFound(name.to_owned()))?;
        let mut report = VerifyReport {
            good: Vec::new(),
            bad: Vec::new(),
        };
        for file in &model.manifest.files {
            let path = model.dir.join(&file.path);
            let size = match std::fs::metadata(&path) {
                Ok(m) => m.len(),
                Err(e) => {
                    report
                        .bad
                        .push((file.path.clone(), format!("cannot read it: {e}")));
                    continue;
                }
            };
            if size != file.size {
                report.bad.push((
                    file.path.clone(),
                    format!("{size} bytes, the manifest says {}", file.size),
                ));
                continue;
            }
            match &file.sha256 {
                Some(want) => {
                    let got = sha256_file(&path)?;
                    if &got == want {
                        report.good.push(file.path.clone());
                    } else {
                        report
                            .bad
                            .push((file.path.clone(), format!("sha256 {got}, expected {want}")));
                    }
                }
                None => report.good.push(file.path.clone()),
            }
        }
        Ok(report)
    }

    /// A fresh staging folder for a model about to enter the store.
    pub(crate) fn staging(&self, name: &str) -> Result<PathBuf, StoreError> {
        let dir = self
            .downloads_dir()
            .join(format!("{}.staging", folder_name(name)));
        if dir.exists() {
            std::fs::remove_dir_all(&dir).map_err(|e| StoreError::io(&dir, e))?;
        }
        std::fs::create_dir_all(&dir).map_err(|e| StoreError::io(&dir, e))?;
        Ok(dir)
    }
}

/// `qwen3:4b` → `qwen3-4b-1a2b3c4d`: the safe characters and 8 hex of the name's sha256.
pub(crate) fn folder_name(name: &str) -> String {
    let readable: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' {
                c
            } else {
                '-'
            }
        })
        .collect::<String>()
        .trim_matches('.')
        .to_owned();
    let digest = hex(&Sha256::digest(name.as_bytes()));
    format!("{readable}-{}", &digest[..8])
}

/// The files of an MLX folder the engine reads.
pub(crate) fn model_files_in(dir: &Path) -> Result<Vec<PathBuf>, StoreError> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(|e| StoreError::io(dir, e))? {
        let path = entry.map_err(|e| StoreError::io(dir, e))?.path();
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        if path.is_file() && is_model_file(&name) {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
}

/// Whether files of these names make an MLX folder: a `config.json` and weights.
pub fn is_mlx_folder<'a>(mut names: impl Iterator<Item = &'a str> + Clone) -> bool {
    names.clone().any(|n| n == "config.json") && names.any(|n| n.ends_with(".safetensors"))
}

/// Whether the engine reads a file of this name in an MLX folder.
pub fn is_model_file(name: &str) -> bool {
    name.ends_with(".safetensors")
        || name.ends_with(".jinja")
        || matches!(
            name,
            "config.json"
                | "tokenizer.json"
                | "tokenizer_config.json"
                | "generation_config.json"
                | "special_tokens_map.json"
                | "model.safetensors.index.json"
        )
}

/// Links `to` to the file `from` names (following a symbolic link, as the Hugging Face
/// cache's are), or copies it where the file system cannot link.
fn link_or_copy(from: &Path, to: &Path) -> Result<(), StoreError> {
    let from = &std::fs::canonicalize(from).map_err(|e| StoreError::io(from, e))?;
    if std::fs::hard_link(from, to).is_ok() {
        return Ok(());
    }
    std::fs::copy(from, to)
        .map(|_| ())
        .map_err(|e| StoreError::io(to, e))
}
