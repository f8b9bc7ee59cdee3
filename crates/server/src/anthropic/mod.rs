//! Anthropic's Messages API (`/v1/messages`, `/v1/messages/count_tokens`), so Claude Code
//! and the `anthropic` SDKs can use Perch's models. Requests become the same validated chat
//! request as OpenAI's and Ollama's; only the shapes differ (errors are reshaped in
//! [`crate::error_shape`]).

mod convert;
pub(crate) mod messages;
pub mod types;

use axum::routing::post;
use axum::Router;

use crate::AppState;

pub(crate) fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/messages", post(messages::create))
        .route("/v1/messages/count_tokens", post(messages::count_tokens))
}
