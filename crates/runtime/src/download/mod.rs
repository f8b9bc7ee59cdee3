//! Downloads: pulling a model into the store, with progress for any number of
//! subscribers, cancel, and resume.
//!
//! A pull resolves the name to files (the catalog's sources in order, a Hugging Face
//! repository, or one GGUF of one), checks free disk before the first byte, fetches up to
//! four files at once into `downloads/FOLDER/` (each resuming from its partial file after
//! a cut connection, a retry or a restart of Perch), checks every file's size and hash
//! against what the hub says, and only then moves the folder into the store with its
//! manifest. Pulling a name already being pulled joins that download.
//!
//! Built on reqwest rather than the `hf-hub` crate: hf-hub writes into the Hugging Face
//! cache's layout rather than the store's, does not check sha256 against the LFS oid,
//! checks no free disk, and has no cancel or shared progress; each of those is what a
//! pull here must do.

mod job;
mod transfer;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use serde::Serialize;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::hub::{Hub, HubSettings};
use crate::store::{LocalModel, ModelStore};

/// Why a download failed.
#[derive(Clone, Debug, thiserror::Error)]
pub enum DownloadError {
    /// The name is not one Perch can pull.
    #[error("{0}")]
    NotFound(String),
    /// The network failed (after retries).
    #[error("download failed: {0}")]
    Network(String),
    /// A file is not what the hub says it is.
    #[error("{0}")]
    Corrupt(String),
    /// Not enough free disk.
    #[error("{0}")]
    NoSpace(String),
    /// Cancelled.
    #[error("the download was cancelled")]
    Cancelled,
    /// A file could not be written.
    #[error("{0}")]
    Io(String),
}

/// Where a download is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Stage {
    /// Finding out which files to fetch.
    Resolving,
    /// Fetching.
    Downloading,
    /// Checking hashes.
    Verifying,
    /// In the store.
    Done,
    /// Stopped with an error.
    Failed,
    /// Stopped by a cancel.
    Cancelled,
}

/// A download's progress.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Progress {
    /// The model's name.
    pub name: String,
    /// Where it is.
    pub stage: Stage,
    /// Bytes in all (0 until resolved).
    pub total: u64,
    /// Bytes on disk so far, including what earlier attempts left.
    pub completed: u64,
    /// Bytes per second lately.
    pub bytes_per_second: f64,
    /// Seconds left at that rate.
    pub eta_seconds: Option<f64>,
    /// Where the files come from (`hf.co/owner/repo@commit`, a PyPI package).
    pub source: Option<String>,
    /// Why it failed.
    pub error: Option<String>,
}

impl Progress {
    fn new(name: &str) -> Progress {
        Progress {
            name: name.to_owned(),
            stage: Stage::Resolving,
            total: 0,
            completed: 0,
            bytes_per_second: 0.0,
            eta_seconds: None,
            source: None,
            error: None,
        }
    }

    /// Whether it has ended (done, failed or cancelled).
    pub fn ended(&self) -> bool {
        matches!(self.stage, Stage::Done | Stage::Failed | Stage::Cancelled)
    }
}

/// One download, shared by everyone who asked for it.
pub struct Download {
    progress: watch::Receiver<Progress>,
    cancel: CancellationToken,
    watchers: Arc<std::sync::atomic::AtomicUsize>,
    outcome: watch::Receiver<Option<Result<LocalModel, DownloadError>>>,
}

impl Download {
    /// The latest progress.
    pub fn progress(&self) -> Progress {
        self.progress.borrow().clone()
    }

    /// Whether it has ended, or its task stopped without saying how.
    fn is_over(&self) -> bool {
        self.progress().ended() || self.outcome.has_changed().is_err()
    }

    /// Every change of progress.
    pub fn subscribe(&self) -> watch::Receiver<Progress> {
        self.progress.clone()
    }

    /// Counts a client watching it; when the last watcher's guard drops before the end,
    /// the download is cancelled (no one is waiting for it any more).
    pub fn watch(&self) -> Watching {
        self.watchers
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        Watching {
            watchers: self.watchers.clone(),
            cancel: self.cancel.clone(),
        }
    }

    /// Asks it to stop; the partial files stay, so a later pull resumes.
    pub fn cancel(&self) {
        self.cancel.cancel();
    }

    /// Waits for the end: the model in the store, or why not.
    pub async fn finished(&self) -> Result<LocalModel, DownloadError> {
        let mut outcome = self.outcome.clone();
        let done = outcome
            .wait_for(Option::is_some)
            .await
            .map_err(|_| DownloadError::Io("the download stopped before it ended".into()))?;
        done.clone().expect("waited for Some")
    }
}

/// A client watching a download (see [`Download::watch`]).
pub struct Watching {
    watchers: Arc<std::sync::atomic::AtomicUsize>,
    cancel: CancellationToken,
}

impl Drop for Watching {
    fn drop(&mut self) {
        if self
            .watchers
            .fetch_sub(1, std::sync::atomic::Ordering::SeqCst)
            == 1
        {
            self.cancel.cancel();
        }
    }
}

/// The downloads of a node.
#[derive(Clone)]
pub struct Downloads {
    store: ModelStore,
    hub: Hub,
    running: Arc<Mutex<HashMap<String, Arc<Download>>>>,
}

impl Downloads {
    /// Downloads into `store` from the hub `hub` describes.
    pub fn new(store: ModelStore, hub: HubSettings) -> Downloads {
        Downloads {
            store,
            hub: Hub::new(hub),
            running: Arc::default(),
        }
    }

    /// Starts pulling `name` (inside a Tokio runtime), or joins the pull of it already
    /// running. A model already in the store is pulled again (a newer commit replaces it).
    pub fn pull(&self, name: &str) -> Result<Arc<Download>, DownloadError> {
        let plan = job::plan(name)?;
        let key = plan.name.clone();
        let mut running = self.running.lock().expect("downloads lock");
        // A cancelled download still winding down shares the work folder: the new one
        // starts when it has stopped.
        let mut previous = None;
        if let Some(download) = running.get(&key) {
            if !download.is_over() {
                if !download.cancel.is_cancelled() {
                    return Ok(download.clone());
                }
                previous = Some(download.clone());
            }
        }
        let (progress_tx, progress_rx) = watch::channel(Progress::new(&key));
        let (outcome_tx, outcome_rx) = watch::channel(None);
        let cancel = CancellationToken::new();
        let download = Arc::new(Download {
            progress: progress_rx,
            cancel: cancel.clone(),
            watchers: Arc::default(),
            outcome: outcome_rx,
        });
        running.insert(key, download.clone());
        let (store, hub) = (self.store.clone(), self.hub.clone());
        tokio::spawn(async move {
            if let Some(previous) = previous {
                let _ = previous.finished().await;
            }
            let result = job::run(plan, &store, &hub, &progress_tx, &cancel).await;
            progress_tx.send_modify(|p| match &result {
                Ok(_) => {
                    p.stage = Stage::Done;
                    p.eta_seconds = None;
                }
                Err(DownloadError::Cancelled) => p.stage = Stage::Cancelled,
                Err(e) => {
                    p.stage = Stage::Failed;
                    p.error = Some(e.to_string());
                }
            });
            let _ = outcome_tx.send(Some(result));
        });
        Ok(download)
    }

    /// The downloads running or ended since the node started, by name.
    pub fn list(&self) -> Vec<Progress> {
        let running = self.running.lock().expect("downloads lock");
        let mut all: Vec<Progress> = running.values().map(|d| d.progress()).collect();
        all.sort_by(|a, b| a.name.cmp(&b.name));
        all
    }

    /// The download of `name`, if one was started.
    pub fn get(&self, name: &str) -> Option<Arc<Download>> {
        self.running
            .lock()
            .expect("downloads lock")
            .get(name)
            .cloned()
    }
}
