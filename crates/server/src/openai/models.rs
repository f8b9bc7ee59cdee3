//! `GET /v1/models`: the models this server answers for.

use axum::extract::State;
use axum::Json;

use super::types::{ModelList, ModelObject};
use crate::AppState;

/// Lists the served models.
#[utoipa::path(
    get,
    path = "/v1/models",
    operation_id = "listModels",
    responses(
        (status = 200, description = "The served models", body = ModelList),
    )
)]
pub(crate) async fn list(State(state): State<AppState>) -> Json<ModelList> {
    let data = state
        .models
        .iter()
        .map(|m| ModelObject {
            id: m.name.clone(),
            object: "model",
            created: m.created,
            owned_by: "perch",
        })
        .collect();
    Json(ModelList {
        object: "list",
        data,
    })
}
