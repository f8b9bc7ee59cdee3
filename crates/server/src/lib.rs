//! Perch's HTTP server: the OpenAI-compatible API (`/v1/models`, `/v1/chat/completions`,
//! `/v1/completions`), `/health` and `/openapi.json`, over engines the caller loaded.
//!
//! Everything HTTP lives here — authentication, body limits, validation into the engine's
//! request type, SSE framing, error shapes — and nothing about models or MLX does: a
//! request is validated once into a [`perch_engine::generate::GenerateRequest`] and handed
//! to the model's [`perch_engine::Engine`].

mod access;
mod auth;
mod connections;
mod error;
mod extract;
mod health;
mod metrics;
pub mod openai;
mod openapi;
mod state;

pub use access::AccessPolicy;
pub use connections::serve;
pub use error::ApiError;
pub use state::{AppState, Limits};

use axum::Router;

/// The whole API as one router.
pub fn router(state: AppState) -> Router {
    let api = openai::router()
        .merge(openapi::router())
        .merge(metrics::router())
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            auth::require_api_key,
        ));
    Router::new()
        .merge(health::router())
        .merge(api)
        .fallback(|| async { ApiError::not_found_route() })
        .method_not_allowed_fallback(|| async { ApiError::method_not_allowed() })
        .layer(axum::extract::DefaultBodyLimit::max(
            state.limits.max_body_bytes,
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            access::check,
        ))
        .layer(axum::middleware::from_fn(metrics::count_requests))
        .with_state(state)
}
