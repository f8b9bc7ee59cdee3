//! The OpenAI-compatible API family: request and response types, validation into the
//! engine's request, and one module per endpoint.

mod answer;
pub(crate) mod chat;
pub(crate) mod completions;
pub mod embeddings;
mod logprobs;
pub(crate) mod models;
mod respond;
pub mod responses;
pub(crate) mod run;
pub mod types;
pub(crate) mod validate;
mod whole_number;

use axum::routing::{get, post};
use axum::Router;

use crate::AppState;

pub(crate) fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/models", get(models::list))
        .route("/v1/models/{*id}", get(models::retrieve))
        .route("/v1/chat/completions", post(chat::create))
        .route("/v1/completions", post(completions::create))
        .route("/v1/embeddings", post(embeddings::create))
}
