//! `PUT /api/perch/hub-token` and `DELETE /api/perch/hub-token`: the Hugging Face token
//! downloads of gated or private models send. It is kept in the secret store, used at
//! once, and never shown again (`GET /api/perch/settings` says only whether one is set).

use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use utoipa::ToSchema;

use crate::blocking;
use crate::extract::JsonBody;
use crate::{ApiError, AppState};

/// A hub token.
#[derive(Deserialize, ToSchema)]
pub(crate) struct HubTokenRequest {
    /// The token (`hf_…`).
    token: String,
}

impl crate::extract::RequestBody for HubTokenRequest {}

/// Keeps a hub token and uses it for downloads from now on.
#[utoipa::path(put, path = "/api/perch/hub-token", operation_id = "perchSetHubToken",
    tag = "perch", request_body = HubTokenRequest,
    responses((status = 204, description = "Kept"),
        (status = 400, description = "Not a token", body = crate::error::ErrorResponse)))]
pub(crate) async fn set(
    State(state): State<AppState>,
    JsonBody(body): JsonBody<HubTokenRequest>,
) -> Result<StatusCode, ApiError> {
    let token = body.token.trim().to_owned();
    let printable = token.chars().all(|c| c.is_ascii_graphic());
    if token.is_empty() || token.len() > 512 || !printable {
        return Err(ApiError::invalid_field(
            "token",
            "token must be a Hugging Face access token (printable characters, no spaces)",
        ));
    }
    keep(state, Some(token)).await
}

/// Forgets the hub token.
#[utoipa::path(delete, path = "/api/perch/hub-token", operation_id = "perchClearHubToken",
    tag = "perch", responses((status = 204, description = "Forgotten")))]
pub(crate) async fn clear(State(state): State<AppState>) -> Result<StatusCode, ApiError> {
    keep(state, None).await
}

async fn keep(state: AppState, token: Option<String>) -> Result<StatusCode, ApiError> {
    let node = state.node.clone();
    blocking::run(move || node.set_hub_token(token)).await?;
    Ok(StatusCode::NO_CONTENT)
}
