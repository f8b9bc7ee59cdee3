//! `POST /v1/chat/completions`.

use axum::extract::State;
use axum::response::Response;

use super::answer::Family;
use super::respond::respond;
use super::responses::{ChatCompletion, ChatCompletionChunk};
use super::types::ChatCompletionRequest;
use super::validate;
use crate::error::ErrorResponse;
use crate::extract::JsonBody;
use crate::{ApiError, AppState};

/// Answers a chat, as one JSON body or (with `stream: true`) as server-sent events.
#[utoipa::path(
    post,
    path = "/v1/chat/completions",
    request_body = ChatCompletionRequest,
    operation_id = "createChatCompletion",
    responses(
        (status = 200, description = "A chat.completion object, or (with stream: true) server-sent events each holding a chat.completion.chunk, then `[DONE]`",
            content((ChatCompletion = "application/json"), (ChatCompletionChunk = "text/event-stream"))),
        (status = 404, description = "Unknown model", body = ErrorResponse),
    )
)]
pub(crate) async fn create(
    State(state): State<AppState>,
    JsonBody(body): JsonBody<ChatCompletionRequest>,
) -> Result<Response, ApiError> {
    let arrived = std::time::Instant::now();
    let model = state.acquire(&body.model, None).await?;
    let request =
        validate::off_runtime(&state, move |state| validate::chat(state, model, body)).await?;
    respond(&state, Family::Chat, request.arrived_at(arrived)).await
}
