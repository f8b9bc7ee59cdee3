//! `GET /v1/models`: the models this server answers for.

use axum::extract::State;
use axum::Json;

use super::types::{ModelList, ModelObject};
use crate::AppState;

/// Lists the models on this machine (any of them loads on first use).
#[utoipa::path(
    get,
    path = "/v1/models",
    operation_id = "listModels",
    responses(
        (status = 200, description = "The models on this machine", body = ModelList),
    )
)]
pub(crate) async fn list(State(state): State<AppState>) -> Json<ModelList> {
    let data = state
        .local_models()
        .await
        .iter()
        .map(|m| ModelObject {
            id: m.name().to_owned(),
            object: "model",
            created: m.manifest.added_at,
            owned_by: "perch",
        })
        .collect();
    Json(ModelList {
        object: "list",
        data,
    })
}
