//! `GET /api/perch/downloads` (every download since the node started, with bytes, rate
//! and time left) and `POST /api/perch/downloads/cancel`.

use axum::extract::State;
use axum::Json;
use perch_runtime::Progress;

use super::types::DownloadName;
use crate::extract::JsonBody;
use crate::{ApiError, AppState};

/// The downloads running or ended since the node started.
#[utoipa::path(get, path = "/api/perch/downloads", operation_id = "perchDownloads", tag = "perch",
    responses((status = 200, description = "A list of {name, stage, total, completed, bytes_per_second, eta_seconds, source, error}",
        body = serde_json::Value)))]
pub(crate) async fn list(State(state): State<AppState>) -> Json<Vec<Progress>> {
    Json(state.node.downloads.list())
}

/// Cancels a running download (its partial files stay; pulling again resumes).
#[utoipa::path(post, path = "/api/perch/downloads/cancel", operation_id = "perchCancelDownload",
    tag = "perch", request_body = DownloadName,
    responses((status = 200, description = "The download's progress as it stopped", body = serde_json::Value),
        (status = 404, description = "No such download", body = crate::error::ErrorResponse)))]
pub(crate) async fn cancel(
    State(state): State<AppState>,
    JsonBody(body): JsonBody<DownloadName>,
) -> Result<Json<Progress>, ApiError> {
    let download = state
        .node
        .downloads
        .get(&body.model)
        .ok_or_else(|| ApiError::model_not_found(format!("no download of {:?}", body.model)))?;
    download.cancel();
    let mut progress = download.subscribe();
    let _ = progress.wait_for(Progress::ended).await;
    Ok(Json(download.progress()))
}
