//! Logging for every face of the node: human-readable lines on stderr, filtered by
//! `PERCH_LOG` (default `info`), without colours when stderr is not a terminal; and for
//! the long-lived faces (`perch serve`, the menu-bar app) the same lines in daily files
//! in the platform's log directory, the oldest deleted past a number of days.

use std::path::{Path, PathBuf};

use tracing_appender::non_blocking::WorkerGuard;
use tracing_appender::rolling::{RollingFileAppender, Rotation};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::EnvFilter;

/// Keeps the log files written; dropping it flushes them.
pub struct LogFiles {
    _writer: WorkerGuard,
    /// Where they are.
    pub dir: PathBuf,
}

/// `PERCH_LOG`, else Perch's information and llama.cpp's warnings (its loader describes
/// every tensor and setting at its information level).
fn filter() -> EnvFilter {
    EnvFilter::try_from_env("PERCH_LOG")
        .unwrap_or_else(|_| "info,llama-cpp-2=warn,llama_cpp_2=error".into())
}

fn stderr_layer<S>() -> impl tracing_subscriber::Layer<S>
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
{
    tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
}

/// Logs to stderr only (the short-lived commands). Call once, first thing.
pub fn init() {
    tracing_subscriber::registry()
        .with(filter())
        .with(stderr_layer())
        .init();
}

/// Logs for a long-lived node: to stderr and to the files in the platform's log folder
/// ([`crate::dirs::logs`]), keeping `keep_days` of them; to stderr alone, saying why, when
/// the files cannot be made. Call once, first thing; keep the value while the node runs.
pub fn init_for_node(keep_days: usize) -> Option<LogFiles> {
    let dir = crate::dirs::logs();
    match init_with_files(&dir, keep_days) {
        Ok(files) => Some(files),
        Err(e) => {
            init();
            tracing::warn!("logging to stderr only: {}: {e}", dir.display());
            None
        }
    }
}

/// Logs to stderr and to `perch.YYYY-MM-DD.log` files in `dir`, keeping `keep_days` of
/// them. Call once, first thing; keep the value for as long as the process logs.
pub fn init_with_files(dir: &Path, keep_days: usize) -> std::io::Result<LogFiles> {
    std::fs::create_dir_all(dir)?;
    let files = RollingFileAppender::builder()
        .rotation(Rotation::DAILY)
        .filename_prefix("perch")
        .filename_suffix("log")
        .max_log_files(keep_days.max(1))
        .build(dir)
        .map_err(std::io::Error::other)?;
    let (writer, guard) = tracing_appender::non_blocking(files);
    tracing_subscriber::registry()
        .with(filter())
        .with(stderr_layer())
        .with(
            tracing_subscriber::fmt::layer()
                .with_writer(writer)
                .with_ansi(false),
        )
        .init();
    Ok(LogFiles {
        _writer: guard,
        dir: dir.to_owned(),
    })
}
