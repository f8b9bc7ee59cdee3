//! `POST /v1/completions`.

use axum::extract::State;
use axum::response::Response;

use super::respond::{respond, Family};
use super::types::CompletionRequest;
use super::validate;
use crate::extract::JsonBody;
use crate::{ApiError, AppState};

/// Continues a prompt (text or token ids), as one JSON body or as server-sent events.
#[utoipa::path(
    post,
    path = "/v1/completions",
    request_body = CompletionRequest,
    responses(
        (status = 200, description = "A text_completion object, or an SSE stream of them"),
        (status = 400, description = "Malformed body or invalid field (the error names it)"),
        (status = 401, description = "Missing or wrong API key"),
        (status = 404, description = "Unknown model"),
        (status = 413, description = "Body too large"),
        (status = 503, description = "Queue full; retry after the Retry-After header"),
    )
)]
pub(crate) async fn create(
    State(state): State<AppState>,
    JsonBody(body): JsonBody<CompletionRequest>,
) -> Result<Response, ApiError> {
    let request = validate::completion(&state, body)?;
    respond(&state, Family::Completion, request).await
}
