//! `POST /v1/chat/completions`.

use axum::extract::State;
use axum::response::Response;

use super::respond::{respond, Family};
use super::types::ChatCompletionRequest;
use super::validate;
use crate::extract::JsonBody;
use crate::{ApiError, AppState};

/// Answers a chat, as one JSON body or (with `stream: true`) as server-sent events.
#[utoipa::path(
    post,
    path = "/v1/chat/completions",
    request_body = ChatCompletionRequest,
    responses(
        (status = 200, description = "A chat.completion object, or an SSE stream of chat.completion.chunk objects"),
        (status = 400, description = "Malformed body or invalid field (the error names it)"),
        (status = 401, description = "Missing or wrong API key"),
        (status = 404, description = "Unknown model"),
        (status = 413, description = "Body too large"),
        (status = 503, description = "Queue full; retry after the Retry-After header"),
    )
)]
pub(crate) async fn create(
    State(state): State<AppState>,
    JsonBody(body): JsonBody<ChatCompletionRequest>,
) -> Result<Response, ApiError> {
    let request = validate::chat(&state, body)?;
    respond(&state, Family::Chat, request).await
}
