//! Perch's HTTP server: the OpenAI-compatible API (`/v1/models`, `/v1/chat/completions`,
//! `/v1/completions`), Anthropic's Messages API (`/v1/messages`), Ollama's API (`/api/…`),
//! Perch's own (`/api/perch/…`), `/health`,
//! `/openapi.json` and the web UI at `/`, over the models of a [`perch_runtime::Node`],
//! on the addresses its settings choose.
//!
//! Everything HTTP lives here — authentication, body limits, validation into the engine's
//! request type, SSE and NDJSON framing, error shapes — and nothing about MLX does: models
//! come from the node's manager, and a request is validated once into a
//! [`perch_engine::generate::GenerateRequest`] and handed to the model's engine.

mod access;
mod admin;
pub mod anthropic;
mod arrival;
mod auth;
mod blocking;
mod channel_stream;
mod connections;
mod embed;
mod error;
mod error_shape;
mod exposure;
mod extract;
mod health;
mod listeners;
mod metrics;
pub mod ollama;
mod open_files;
pub mod openai;
mod openapi;
pub mod perch_api;
mod reply;
mod state;
mod ui;

pub use access::AccessPolicy;
pub use connections::serve;
pub use error::ApiError;
pub use listeners::Listeners;
pub use open_files::connection_cap;
pub use state::{AppState, Limits};

use axum::Router;

/// The whole API as one router.
pub fn router(state: AppState) -> Router {
    let api = openai::router()
        .merge(anthropic::router())
        .merge(ollama::router())
        .merge(perch_api::router())
        .merge(openapi::router())
        .merge(metrics::router())
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            auth::require_api_key,
        ));
    Router::new()
        .merge(health::router())
        .merge(api)
        .fallback(ui::serve)
        .method_not_allowed_fallback(|| async { ApiError::method_not_allowed() })
        .layer(axum::extract::DefaultBodyLimit::max(
            state.limits.max_body_bytes,
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            access::check,
        ))
        .layer(axum::middleware::from_fn(error_shape::reshape))
        .layer(axum::middleware::from_fn(metrics::count_requests))
        .with_state(state)
}
