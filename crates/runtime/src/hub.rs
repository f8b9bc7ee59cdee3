//! The Hugging Face hub's HTTP API, as far as pulling a model needs it: a revision's file
//! list with sizes and hashes (`/api/models/REPO/revision/REV?blobs=true`), and each
//! file at that commit (`/REPO/resolve/COMMIT/PATH`, which answers HTTP Range requests).
//! `HF_ENDPOINT` points it at a mirror (or the tests' look-alike); the token (`HF_TOKEN`,
//! or the one kept in the secret store) is sent as a bearer token for gated models.

use std::sync::{Arc, RwLock};

use serde::Deserialize;

use crate::hf_cache::quant_of;
use crate::store::{is_mlx_folder, is_model_file};

/// Where the hub is and who is asking.
#[derive(Clone, Debug)]
pub struct HubSettings {
    /// Base URL (`https://huggingface.co`).
    pub endpoint: String,
    /// A token for gated or private repositories.
    pub token: HubToken,
}

/// The hub token, shared by every clone, changeable while the node runs; its `Debug`
/// never shows it.
#[derive(Clone, Default)]
pub struct HubToken(Arc<RwLock<Option<String>>>);

impl HubToken {
    /// A token holding `token` (nothing when blank).
    pub fn new(value: Option<String>) -> HubToken {
        let token = HubToken::default();
        token.set(value);
        token
    }

    /// The token now.
    pub fn get(&self) -> Option<String> {
        self.0
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Replaces the token (a blank one clears it).
    pub fn set(&self, token: Option<String>) {
        *self
            .0
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = token
            .filter(|t| !t.trim().is_empty())
            .map(|t| t.trim().to_owned());
    }
}

impl std::fmt::Debug for HubToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.get().is_some() {
            "HubToken(set)"
        } else {
            "HubToken(none)"
        })
    }
}

impl HubSettings {
    /// `HF_ENDPOINT` (default `https://huggingface.co`) and `HF_TOKEN`.
    pub fn from_env() -> HubSettings {
        HubSettings {
            endpoint: std::env::var("HF_ENDPOINT")
                .ok()
                .filter(|e| !e.trim().is_empty())
                .unwrap_or_else(|| "https://huggingface.co".into())
                .trim_end_matches('/')
                .to_owned(),
            token: HubToken::new(std::env::var("HF_TOKEN").ok()),
        }
    }
}

/// One file of a repository at a commit.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HubFile {
    /// Path in the repository.
    pub path: String,
    /// Size in bytes.
    pub size: u64,
    /// sha256 of an LFS file.
    pub sha256: Option<String>,
    /// Git's blob id of a file kept in Git (small files).
    pub git_sha1: Option<String>,
}

/// The files of a model to download, at one commit.
#[derive(Clone, Debug)]
pub struct RepoSnapshot {
    /// `owner/repo`.
    pub repo: String,
    /// The commit the revision pointed at.
    pub commit: String,
    /// The files the engine needs.
    pub files: Vec<HubFile>,
}

impl RepoSnapshot {
    /// Bytes of all files.
    pub fn total(&self) -> u64 {
        self.files.iter().map(|f| f.size).sum()
    }
}

#[derive(Deserialize)]
struct RevisionInfo {
    sha: String,
    #[serde(default)]
    siblings: Vec<Sibling>,
}

#[derive(Deserialize)]
struct Sibling {
    rfilename: String,
    size: Option<u64>,
    #[serde(rename = "blobId")]
    blob_id: Option<String>,
    lfs: Option<Lfs>,
}

#[derive(Deserialize)]
struct Lfs {
    sha256: String,
    size: u64,
}

/// Why the hub could not give a model.
#[derive(Debug, thiserror::Error)]
pub enum HubError {
    /// The hub could not be reached at all.
    #[error("cannot reach {endpoint}: {message}")]
    Unreachable {
        /// The endpoint.
        endpoint: String,
        /// What failed.
        message: String,
    },
    /// The hub answered with an error.
    #[error("{0}")]
    Refused(String),
}

/// A client of the hub.
#[derive(Clone)]
pub struct Hub {
    settings: HubSettings,
    http: reqwest::Client,
}

impl Hub {
    /// A client for `settings`.
    pub fn new(settings: HubSettings) -> Hub {
        let http = reqwest::Client::builder()
            .user_agent(concat!("perch/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(std::time::Duration::from_secs(15))
            .read_timeout(std::time::Duration::from_secs(60))
            .build()
            .expect("an HTTP client builds");
        Hub { settings, http }
    }

    /// The URL of `path` in `repo` at `commit`.
    pub fn file_url(&self, repo: &str, commit: &str, path: &str) -> String {
        format!("{}/{repo}/resolve/{commit}/{path}", self.settings.endpoint)
    }

    /// A GET of `url`, with the token if there is one.
    pub fn get(&self, url: &str) -> reqwest::RequestBuilder {
        let request = self.http.get(url);
        match self.settings.token.get() {
            Some(token) => request.bearer_auth(token),
            None => request,
        }
    }

    /// The files to download for `repo` at `revision`: an MLX folder's files, or the one
    /// GGUF file `quant` names (default: Q4_K_M, else the only one).
    pub async fn snapshot(
        &self,
        repo: &str,
        revision: &str,
        quant: Option<&str>,
    ) -> Result<RepoSnapshot, HubError> {
        let url = format!(
            "{}/api/models/{repo}/revision/{revision}?blobs=true",
            self.settings.endpoint
        );
        let response = self
            .get(&url)
            .send()
            .await
            .map_err(|e| self.unreachable(e))?;
        let status = response.status();
        if !status.is_success() {
            return Err(HubError::Refused(match status.as_u16() {
                401 | 403 => format!(
                    "{repo} is gated or private: accept its terms on the hub and give Perch a token (Settings, or HF_TOKEN) \
                     ({status})"
                ),
                404 => format!("{repo} at revision {revision} is not on the hub ({status})"),
                _ => format!("the hub answered {status} for {repo}@{revision}"),
            }));
        }
        let info: RevisionInfo = response
            .json()
            .await
            .map_err(|e| HubError::Refused(format!("the hub's answer for {repo}: {e}")))?;
        let files: Vec<HubFile> = info
            .siblings
            .into_iter()
            .map(|s| HubFile {
                size: s.lfs.as_ref().map(|l| l.size).or(s.size).unwrap_or(0),
                sha256: s.lfs.map(|l| l.sha256),
                git_sha1: s.blob_id,
                path: s.rfilename,
            })
            .collect();
        let files = choose_files(repo, files, quant)?;
        if let Some(missing) = files.iter().find(|f| f.size == 0 && f.sha256.is_some()) {
            return Err(HubError::Refused(format!(
                "the hub gave no size for {}",
                missing.path
            )));
        }
        Ok(RepoSnapshot {
            repo: repo.to_owned(),
            commit: info.sha,
            files,
        })
    }

    fn unreachable(&self, e: reqwest::Error) -> HubError {
        HubError::Unreachable {
            endpoint: self.settings.endpoint.clone(),
            message: e.to_string(),
        }
    }
}

/// The files the engine needs out of a repository's list.
fn choose_files(
    repo: &str,
    files: Vec<HubFile>,
    quant: Option<&str>,
) -> Result<Vec<HubFile>, HubError> {
    let is_mlx = is_mlx_folder(files.iter().map(|f| f.path.as_str()));
    let ggufs: Vec<&HubFile> = files
        .iter()
        .filter(|f| f.path.ends_with(".gguf") && !f.path.contains('/'))
        .collect();
    if quant.is_none() && is_mlx {
        return Ok(files
            .into_iter()
            .filter(|f| !f.path.contains('/') && is_model_file(&f.path))
            .collect());
    }
    if ggufs.is_empty() {
        return Err(HubError::Refused(format!(
            "{repo} holds neither an MLX model (config.json and *.safetensors) nor a GGUF file"
        )));
    }
    let wanted = quant.unwrap_or("Q4_K_M").to_ascii_uppercase();
    let chosen = ggufs
        .iter()
        .find(|f| quant_of(&f.path).as_deref() == Some(wanted.as_str()))
        .or_else(|| (quant.is_none() && ggufs.len() == 1).then(|| &ggufs[0]));
    match chosen {
        Some(file) if file.path.contains("-of-") => Err(HubError::Refused(format!(
            "{} is split into parts, which Perch does not join yet",
            file.path
        ))),
        Some(file) => Ok(vec![(*file).clone()]),
        None => {
            let available: Vec<String> = ggufs.iter().filter_map(|f| quant_of(&f.path)).collect();
            Err(HubError::Refused(format!(
                "{repo} has no {wanted} GGUF; it has {}; name one as hf.co/{repo}:QUANT",
                available.join(", ")
            )))
        }
    }
}
