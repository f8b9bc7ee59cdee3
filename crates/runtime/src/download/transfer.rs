//! One file over HTTP into `NAME.partial`, resuming where an earlier attempt stopped: a
//! partial file of N bytes asks for `Range: bytes=N-` and appends what comes back (only
//! when `Content-Range` says it starts at N). A server that ignores the range (200) or
//! refuses it (416) starts the file over. Bytes
//! are counted as they land, for the progress of the whole download.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

use futures_util::StreamExt;
use tokio::io::AsyncWriteExt;
use tokio_util::sync::CancellationToken;

use super::DownloadError;
use crate::hub::{Hub, HubFile};

/// Fetches `file` from `url` into `partial` until it holds `file.size` bytes, adding
/// each byte written to `landed`.
pub(super) async fn fetch(
    hub: &Hub,
    url: &str,
    file: &HubFile,
    partial: &Path,
    landed: &AtomicU64,
    cancel: &CancellationToken,
) -> Result<(), DownloadError> {
    let io = |e: std::io::Error| DownloadError::Io(format!("{}: {e}", partial.display()));
    if let Some(parent) = partial.parent() {
        tokio::fs::create_dir_all(parent).await.map_err(io)?;
    }
    let mut have = tokio::fs::metadata(partial).await.map_or(0, |m| m.len());
    if have > file.size {
        tokio::fs::remove_file(partial).await.map_err(io)?;
        landed.fetch_sub(have, Ordering::Relaxed);
        have = 0;
    }
    if have == file.size {
        return Ok(());
    }
    let mut request = hub.get(url);
    if have > 0 {
        request = request.header("Range", format!("bytes={have}-"));
    }
    let response = tokio::select! {
        r = request.send() => r.map_err(|e| DownloadError::Network(format!("{}: {e}", file.path)))?,
        () = cancel.cancelled() => return Err(DownloadError::Cancelled),
    };
    let status = response.status().as_u16();
    let resumes_here = response
        .headers()
        .get("content-range")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("bytes "))
        .and_then(|v| v.split('-').next())
        .and_then(|start| start.parse::<u64>().ok())
        == Some(have);
    let append = match status {
        // A part that starts anywhere but at the end of what is on disk is refetched.
        206 if !resumes_here => {
            tokio::fs::remove_file(partial).await.map_err(io)?;
            landed.fetch_sub(have, Ordering::Relaxed);
            return Err(DownloadError::Network(format!(
                "{}: the server resumed at another offset; starting the file over",
                file.path
            )));
        }
        206 => true,
        200 | 416 => false,
        _ => {
            return Err(DownloadError::Network(format!(
                "{}: the server answered {}",
                file.path,
                response.status()
            )))
        }
    };
    if status == 416 {
        // The range was refused: start over on the next attempt.
        tokio::fs::remove_file(partial).await.map_err(io)?;
        landed.fetch_sub(have, Ordering::Relaxed);
        return Err(DownloadError::Network(format!(
            "{}: the server refused to resume; starting the file over",
            file.path
        )));
    }
    let mut out = tokio::fs::OpenOptions::new()
        .create(true)
        .append(append)
        .write(true)
        .truncate(!append)
        .open(partial)
        .await
        .map_err(io)?;
    if !append && have > 0 {
        landed.fetch_sub(have, Ordering::Relaxed);
        have = 0;
    }
    let mut body = response.bytes_stream();
    loop {
        let chunk = tokio::select! {
            c = body.next() => c,
            () = cancel.cancelled() => {
                out.flush().await.map_err(io)?;
                return Err(DownloadError::Cancelled);
            }
        };
        let Some(chunk) = chunk else { break };
        let chunk = chunk.map_err(|e| DownloadError::Network(format!("{}: {e}", file.path)))?;
        have += chunk.len() as u64;
        if have > file.size {
            return Err(DownloadError::Corrupt(format!(
                "{}: the server sent more than its {} bytes",
                file.path, file.size
            )));
        }
        out.write_all(&chunk).await.map_err(io)?;
        landed.fetch_add(chunk.len() as u64, Ordering::Relaxed);
    }
    out.flush().await.map_err(io)?;
    out.sync_all().await.map_err(io)?;
    if have < file.size {
        return Err(DownloadError::Network(format!(
            "{}: the connection closed at {have} of {} bytes",
            file.path, file.size
        )));
    }
    Ok(())
}
