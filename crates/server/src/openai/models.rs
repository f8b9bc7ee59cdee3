//! `GET /v1/models` and `GET /v1/models/{id}`: the models this server answers for.

use axum::extract::{Path, State};
use axum::Json;
use perch_runtime::LocalModel;

use super::types::{ModelList, ModelObject};
use crate::error::ErrorResponse;
use crate::{ApiError, AppState};

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
        .map(model_object)
        .collect();
    Json(ModelList {
        object: "list",
        data,
    })
}

/// One model on this machine, by name (names may hold `/`).
#[utoipa::path(
    get,
    path = "/v1/models/{id}",
    operation_id = "retrieveModel",
    params(("id" = String, Path, description = "The model's name")),
    responses(
        (status = 200, description = "The model", body = ModelObject),
        (status = 404, description = "No such model", body = ErrorResponse),
    )
)]
pub(crate) async fn retrieve(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<ModelObject>, ApiError> {
    match state.local_model(&id).await {
        Some(model) => Ok(Json(model_object(&model))),
        None => Err(ApiError::model_not_found(format!(
            "no model named {id:?} on this machine"
        ))),
    }
}

fn model_object(model: &LocalModel) -> ModelObject {
    ModelObject {
        id: model.name().to_owned(),
        object: "model",
        created: model.manifest.added_at,
        owned_by: "perch",
    }
}
