//! `POST /api/pull`: a download with Ollama's NDJSON progress (`pulling manifest`,
//! `pulling …` with total and completed bytes, `verifying sha256 digest`, `writing
//! manifest`, `success`), or one answer when `stream` is false. Several clients pulling
//! one model share one download; when the last one watching goes away, it is cancelled
//! (its partial files stay, so pulling again resumes).

use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::Json;
use perch_runtime::{DownloadError, Progress, Stage};

use super::ndjson;
use super::types::{OllamaErrorBody, PullProgress, PullRequest};
use crate::channel_stream::{channel_stream, send_within};
use crate::extract::JsonBody;
use crate::{ApiError, AppState};

/// Downloads a model into the store.
#[utoipa::path(post, path = "/api/pull", operation_id = "ollamaPull", tag = "ollama",
    request_body = PullRequest,
    responses((status = 200, description = "NDJSON progress lines (or one status when stream is false)",
            content((PullProgress = "application/x-ndjson"), (PullProgress = "application/json"))),
        (status = 400, description = "Invalid name", body = OllamaErrorBody),
        (status = 404, description = "Not in the catalog or on the hub", body = OllamaErrorBody),
        (status = 502, description = "The hub could not be reached", body = OllamaErrorBody),
        (status = 507, description = "Not enough disk", body = OllamaErrorBody)))]
pub(crate) async fn pull(
    State(state): State<AppState>,
    JsonBody(body): JsonBody<PullRequest>,
) -> Result<Response, ApiError> {
    let download = state
        .node
        .downloads
        .pull(&body.model)
        .map_err(download_error)?;
    let watching = download.watch();
    if !body.stream.unwrap_or(true) {
        download.finished().await.map_err(download_error)?;
        drop(watching);
        return Ok(Json(status_line("success")).into_response());
    }
    let write_timeout = state.limits.write_timeout;
    let lines = channel_stream(move |tx: tokio::sync::mpsc::Sender<Bytes>| async move {
        let _watching = watching;
        let send = |line: Bytes| send_within(&tx, line, write_timeout);
        if !send(ndjson(&status_line("pulling manifest"))).await {
            return;
        }
        let mut progress = download.subscribe();
        let mut last_stage = Stage::Resolving;
        loop {
            let now = progress.borrow_and_update().clone();
            if now.stage != last_stage || now.stage == Stage::Downloading {
                for line in lines_for(&now, last_stage) {
                    if !send(ndjson(&line)).await {
                        return;
                    }
                }
                last_stage = now.stage;
            }
            if now.ended() {
                break;
            }
            tokio::select! {
                changed = progress.changed() => if changed.is_err() { break },
                () = tx.closed() => return,
            }
            // Progress changes four times a second at most; pace lines the same.
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let last = match download.finished().await {
            Ok(_) => ndjson(&status_line("success")),
            Err(e) => ndjson(&OllamaErrorBody {
                error: e.to_string(),
            }),
        };
        let _ = send(last).await;
    });
    Ok((
        [("content-type", "application/x-ndjson")],
        Body::from_stream(lines),
    )
        .into_response())
}

/// The lines a change of progress gives, after `before`.
fn lines_for(now: &Progress, before: Stage) -> Vec<PullProgress> {
    let mut lines = Vec::new();
    match now.stage {
        Stage::Downloading | Stage::Verifying | Stage::Done => {
            lines.push(PullProgress {
                status: format!("pulling {}", now.name),
                digest: now.source.clone(),
                total: Some(now.total),
                completed: Some(now.completed),
            });
            if now.stage != Stage::Downloading && before != Stage::Verifying {
                lines.push(status_line("verifying sha256 digest"));
            }
            if now.stage == Stage::Done {
                lines.push(status_line("writing manifest"));
            }
        }
        Stage::Resolving | Stage::Failed | Stage::Cancelled => {}
    }
    lines
}

fn status_line(status: &str) -> PullProgress {
    PullProgress {
        status: status.to_owned(),
        digest: None,
        total: None,
        completed: None,
    }
}

/// A download error with the status it means.
pub(crate) fn download_error(e: DownloadError) -> ApiError {
    match e {
        DownloadError::NotFound(m) => ApiError::model_not_found(m),
        DownloadError::NoSpace(m) => ApiError::insufficient_storage(m),
        DownloadError::Network(m) => ApiError::bad_gateway(m),
        DownloadError::Cancelled => ApiError::unavailable("the download was cancelled"),
        e @ (DownloadError::Corrupt(_) | DownloadError::Io(_)) => ApiError::internal(e.to_string()),
    }
}
