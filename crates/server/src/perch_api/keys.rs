//! `GET /api/perch/keys`, `POST /api/perch/keys` and `DELETE /api/perch/keys/{id}`: the
//! API keys other machines use. A key is shown whole only in the answer that creates
//! it; listings show a prefix.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use perch_runtime::api_keys::{KeyInfo, NewKey};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::blocking;
use crate::extract::JsonBody;
use crate::{ApiError, AppState};

/// `GET /api/perch/keys`.
#[derive(Serialize)]
pub(crate) struct KeyList {
    keys: Vec<KeyInfo>,
}

/// What a new key is for.
#[derive(Deserialize, ToSchema)]
pub(crate) struct NewKeyRequest {
    /// A name to recognise it by, such as the machine it is for.
    name: String,
}

impl crate::extract::RequestBody for NewKeyRequest {}

/// The keys, without their secrets.
#[utoipa::path(get, path = "/api/perch/keys", operation_id = "perchKeys", tag = "perch",
    responses((status = 200, description = "{keys: [{id, name, prefix, created}]}", body = serde_json::Value)))]
pub(crate) async fn list(State(state): State<AppState>) -> Json<KeyList> {
    Json(KeyList {
        keys: state.node.keys.list(),
    })
}

/// Creates a key; the answer is the only place it is shown whole.
#[utoipa::path(post, path = "/api/perch/keys", operation_id = "perchCreateKey", tag = "perch",
    request_body = NewKeyRequest,
    responses((status = 200, description = "{id, name, prefix, created, key}", body = serde_json::Value),
        (status = 400, description = "No usable name", body = crate::error::ErrorResponse)))]
pub(crate) async fn create(
    State(state): State<AppState>,
    JsonBody(body): JsonBody<NewKeyRequest>,
) -> Result<Json<NewKey>, ApiError> {
    let name = body.name.trim().to_owned();
    if name.is_empty() || name.chars().count() > 64 || name.chars().any(char::is_control) {
        return Err(ApiError::invalid_field(
            "name",
            "name must be 1 to 64 printable characters",
        ));
    }
    let keys = state.node.keys.clone();
    blocking::run(move || keys.create(&name)).await.map(Json)
}

/// Revokes a key: requests presenting it are refused from now on.
#[utoipa::path(delete, path = "/api/perch/keys/{id}", operation_id = "perchRevokeKey",
    tag = "perch", params(("id" = String, Path, description = "The key's id")),
    responses((status = 204, description = "Revoked"),
        (status = 404, description = "No such key", body = crate::error::ErrorResponse)))]
pub(crate) async fn revoke(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let keys = state.node.keys.clone();
    let key = id.clone();
    let revoked = blocking::run(move || keys.revoke(&key)).await?;
    if revoked {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found(format!("no API key with id {id:?}")))
    }
}
