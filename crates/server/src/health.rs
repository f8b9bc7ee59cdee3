//! `GET /health`: liveness for load balancers and scripts; open without an API key.

use axum::routing::get;
use axum::{Json, Router};
use serde::Serialize;
use utoipa::ToSchema;

use crate::AppState;

pub(crate) fn router() -> Router<AppState> {
    Router::new().route("/health", get(health))
}

/// Says the server is up, with the models loaded now.
#[utoipa::path(
    get,
    path = "/health",
    operation_id = "health",
    responses((status = 200, description = "The server is up", body = Health))
)]
pub(crate) async fn health(
    axum::extract::State(state): axum::extract::State<AppState>,
) -> Json<Health> {
    Json(Health {
        status: "ok",
        models: state
            .node
            .manager
            .loaded()
            .iter()
            .map(|m| m.name.clone())
            .collect(),
    })
}

/// `GET /health`'s answer.
#[derive(Serialize, ToSchema)]
pub(crate) struct Health {
    /// `ok`.
    status: &'static str,
    /// The names of the models loaded now.
    models: Vec<String>,
}
