//! `POST /v1/completions`.

use axum::extract::State;
use axum::response::Response;

use super::answer::Family;
use super::respond::respond;
use super::responses::Completion;
use super::types::CompletionRequest;
use super::validate;
use crate::error::ErrorResponse;
use crate::extract::JsonBody;
use crate::{ApiError, AppState};

/// Tokens generated when a request names no `max_tokens`, as OpenAI does here.
const DEFAULT_MAX_TOKENS: u32 = 16;

/// Continues a prompt (text or token ids), as one JSON body or as server-sent events.
#[utoipa::path(
    post,
    path = "/v1/completions",
    request_body = CompletionRequest,
    operation_id = "createCompletion",
    responses(
        (status = 200, description = "A text_completion object, or (with stream: true) server-sent events each holding one, then `[DONE]`",
            content((Completion = "application/json"), (Completion = "text/event-stream"))),
        (status = 404, description = "Unknown model", body = ErrorResponse),
    )
)]
pub(crate) async fn create(
    State(state): State<AppState>,
    JsonBody(mut body): JsonBody<CompletionRequest>,
) -> Result<Response, ApiError> {
    let arrived = std::time::Instant::now();
    // OpenAI's default for this endpoint.
    body.sampling.max_tokens = body.sampling.max_tokens.or(Some(DEFAULT_MAX_TOKENS));
    let model = state.acquire(&body.model, None).await?;
    let request = validate::off_runtime(&state, move |state| {
        validate::completion(state, model, body)
    })
    .await?;
    respond(&state, Family::Completion, request.arrived_at(arrived)).await
}
