//! `GET /health`: liveness for load balancers and scripts; open without an API key.

use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;

use crate::AppState;

pub(crate) fn router() -> Router<AppState> {
    Router::new().route("/health", get(health))
}

async fn health(
    axum::extract::State(state): axum::extract::State<AppState>,
) -> Json<serde_json::Value> {
    let models: Vec<&str> = state.models.iter().map(|m| m.name.as_str()).collect();
    Json(json!({"status": "ok", "models": models}))
}
