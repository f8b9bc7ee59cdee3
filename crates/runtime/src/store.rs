//! The model store: Perch's data directory (`PERCH_HOME`) and resolving a model name to a
//! file. Names are catalog aliases (`smollm2:135m`, fetched on first use), or paths to a
//! GGUF file or an MLX directory. Alias folders are derived from the alias, never from
//! user text, so a name cannot point outside the store.

use std::path::{Path, PathBuf};

use crate::catalog;

/// What can go wrong resolving or fetching a model.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The name is neither an alias nor an existing path.
    #[error("unknown model {name:?}: not a catalog alias ({known}) and no such file or directory")]
    Unknown {
        /// The name asked for.
        name: String,
        /// The aliases Perch knows.
        known: String,
    },
    /// Downloading failed.
    #[error("fetching the model failed: {0}")]
    Fetch(String),
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

/// A model name resolved to files.
#[derive(Clone, Debug)]
pub struct ResolvedModel {
    /// The name clients use (the alias, or the file or folder name of a path).
    pub name: String,
    /// The GGUF file or MLX directory.
    pub path: PathBuf,
}

/// Perch's data directory.
#[derive(Clone, Debug)]
pub struct ModelStore {
    home: PathBuf,
}

impl ModelStore {
    /// The store at `PERCH_HOME`, or the platform's data directory (`~/.local/share/perch`,
    /// `~/Library/Application Support/Perch`).
    pub fn from_env() -> ModelStore {
        if let Some(home) = std::env::var_os("PERCH_HOME") {
            return ModelStore {
                home: PathBuf::from(home),
            };
        }
        let user = PathBuf::from(std::env::var_os("HOME").unwrap_or_else(|| ".".into()));
        let home = if cfg!(target_os = "macos") {
            user.join("Library/Application Support/Perch")
        } else {
            match std::env::var_os("XDG_DATA_HOME") {
                Some(d) => PathBuf::from(d).join("perch"),
                None => user.join(".local/share/perch"),
            }
        };
        ModelStore { home }
    }

    /// A store at `home`.
    pub fn at(home: PathBuf) -> ModelStore {
        ModelStore { home }
    }

    /// The data directory.
    pub fn home(&self) -> &Path {
        &self.home
    }

    /// Resolves `name`, fetching a catalog model that is not on disk yet.
    pub fn resolve(&self, name: &str) -> Result<ResolvedModel, StoreError> {
        if let Some(entry) = catalog::find(name) {
            let folder = entry.alias.replace(':', "-");
            let path = self.home.join("models").join(folder).join(entry.file_name);
            if !path.exists() || crate::fetch::sha256_of(&path)? != entry.sha256 {
                crate::fetch::fetch(entry, &path)?;
            }
            return Ok(ResolvedModel {
                name: entry.alias.to_owned(),
                path,
            });
        }
        let path = PathBuf::from(name);
        if path.exists() {
            let label = path
                .file_name()
                .map_or_else(|| name.to_owned(), |n| n.to_string_lossy().into_owned());
            return Ok(ResolvedModel { name: label, path });
        }
        let known: Vec<&str> = catalog::CATALOG.iter().map(|e| e.alias).collect();
        Err(StoreError::Unknown {
            name: name.to_owned(),
            known: known.join(", "),
        })
    }
}
