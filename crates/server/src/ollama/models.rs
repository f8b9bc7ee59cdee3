//! Ollama's model endpoints: `/api/version`, `/api/tags` (the store), `/api/ps` (what is
//! loaded), `/api/show`, `/api/delete` (unloading the model first) and `/api/copy`.

use axum::extract::State;
use axum::response::Response;
use axum::Json;
use perch_engine::sampling_defaults::SamplingDefaults;
use perch_runtime::names::{self, Origin};
use perch_runtime::{StoreError, Unloaded};
use serde_json::{json, Map};

use super::types::{
    CopyRequest, ModelRequest, OllamaErrorBody, RunningList, RunningModel, ShowResponse, TagList,
    TagModel, Version,
};
use super::{details, digest, not_found, ok_empty, rfc3339, rfc3339_unix};
use crate::extract::JsonBody;
use crate::{ApiError, AppState};

/// The Ollama API version Perch answers to.
#[utoipa::path(get, path = "/api/version", operation_id = "ollamaVersion", tag = "ollama",
    responses((status = 200, description = "The version", body = Version)))]
pub(crate) async fn version() -> Json<Version> {
    Json(Version {
        version: super::OLLAMA_API_VERSION.into(),
    })
}

/// The models on this machine.
#[utoipa::path(get, path = "/api/tags", operation_id = "ollamaTags", tag = "ollama",
    responses((status = 200, description = "The models on this machine", body = TagList)))]
pub(crate) async fn tags(State(state): State<AppState>) -> Json<TagList> {
    let models = state.local_models().await;
    Json(TagList {
        models: models
            .iter()
            .map(|m| TagModel {
                name: m.name().to_owned(),
                model: m.name().to_owned(),
                modified_at: rfc3339_unix(m.manifest.added_at),
                size: m.manifest.bytes_on_disk,
                digest: digest(&m.manifest),
                details: details(&m.manifest),
            })
            .collect(),
    })
}

/// The models loaded now.
#[utoipa::path(get, path = "/api/ps", operation_id = "ollamaPs", tag = "ollama",
    responses((status = 200, description = "The loaded models", body = RunningList)))]
pub(crate) async fn ps(State(state): State<AppState>) -> Json<RunningList> {
    let on_gpu = perch_engine::inspect::compute_element_bytes() == 2;
    let models = state
        .node
        .manager
        .loaded()
        .iter()
        .map(|m| {
            let kept = std::time::SystemTime::now()
                + std::time::Duration::from_secs(100 * 365 * 24 * 3600);
            let expires = match m.expires_at() {
                Some(t) => t,
                None if m.in_flight() > 0 => std::time::SystemTime::now(),
                None => kept,
            };
            RunningModel {
                name: m.name.clone(),
                model: m.name.clone(),
                size: m.need.total(),
                digest: digest(&m.model.manifest),
                details: details(&m.model.manifest),
                expires_at: rfc3339(expires),
                size_vram: if on_gpu { m.need.total() } else { 0 },
                context_length: m.context_length(),
            }
        })
        .collect();
    Json(RunningList { models })
}

/// A model's details, template and header facts.
#[utoipa::path(post, path = "/api/show", operation_id = "ollamaShow", tag = "ollama",
    request_body = ModelRequest,
    responses((status = 200, description = "The model", body = ShowResponse),
        (status = 404, description = "No such model", body = OllamaErrorBody)))]
pub(crate) async fn show(
    State(state): State<AppState>,
    JsonBody(body): JsonBody<ModelRequest>,
) -> Result<Json<ShowResponse>, ApiError> {
    let store = state.node.store.clone();
    let manager = state.node.manager.clone();
    let name = body.model.clone();
    let found = tokio::task::spawn_blocking(move || {
        let model = store.get(&name)?;
        let engine = manager.engine_of(&model).ok();
        let facts =
            engine.and_then(|e| perch_engine::inspect::inspect_on(&model.load_path(), e).ok());
        let recommended = SamplingDefaults::of(&model.load_path());
        Some((model, engine, facts, recommended))
    })
    .await
    .map_err(|e| ApiError::internal(e.to_string()))?;
    let (model, engine, facts, recommended) = found.ok_or_else(|| not_found(&body.model))?;
    let m = &model.manifest;
    let arch = &m.architecture;
    let mut info = Map::new();
    info.insert("general.architecture".into(), json!(arch));
    info.insert("general.parameter_count".into(), json!(m.parameters));
    info.insert(format!("{arch}.context_length"), json!(m.context_length));
    if let Some(f) = &facts {
        info.insert(format!("{arch}.vocab_size"), json!(f.vocab_size));
        info.insert(
            format!("{arch}.attention.head_count"),
            json!(f.attention_heads),
        );
    }
    let template = facts
        .as_ref()
        .and_then(|f| f.chat_template.clone())
        .unwrap_or_default();
    // Every model can call tools (templates without tools get them in the system prompt)
    // and embed (pooling its hidden states).
    let mut capabilities = vec![
        "completion".to_owned(),
        "tools".to_owned(),
        "embedding".to_owned(),
    ];
    if template.contains("<think>") {
        capabilities.push("thinking".to_owned());
    }
    Ok(Json(ShowResponse {
        modelfile: format!(
            "# {} from {}\nFROM {}\n",
            m.name,
            m.format,
            model.load_path().display()
        ),
        parameters: recommended.lines().join("\n"),
        template,
        details: details(m),
        model_info: info,
        capabilities,
        engine: engine.map(|e| e.to_string()),
        modified_at: rfc3339_unix(m.added_at),
    }))
}

/// Removes a model from the store, unloading it first.
#[utoipa::path(delete, path = "/api/delete", operation_id = "ollamaDelete", tag = "ollama",
    request_body = ModelRequest,
    responses((status = 200, description = "Removed"),
        (status = 404, description = "No such model", body = OllamaErrorBody),
        (status = 409, description = "Busy or read-only", body = OllamaErrorBody)))]
pub(crate) async fn remove(
    State(state): State<AppState>,
    JsonBody(body): JsonBody<ModelRequest>,
) -> Result<Response, ApiError> {
    names::parse(&body.model, Origin::Network)
        .map_err(|e| ApiError::invalid_field("model", e.to_string()))?;
    let model = state
        .local_model(&body.model)
        .await
        .ok_or_else(|| not_found(&body.model))?;
    if let Unloaded::AfterRequests(n) = state.node.manager.unload(model.name()) {
        return Err(ApiError::conflict(format!(
            "{} is answering {n} request(s); it was marked to unload, delete it when they end",
            model.name()
        )));
    }
    let store = state.node.store.clone();
    let name = model.name().to_owned();
    let removed = tokio::task::spawn_blocking(move || store.remove(&name))
        .await
        .map_err(|e| ApiError::internal(e.to_string()))?;
    removed.map_err(store_error)?;
    Ok(ok_empty())
}

/// Gives a model a second name.
#[utoipa::path(post, path = "/api/copy", operation_id = "ollamaCopy", tag = "ollama",
    request_body = CopyRequest,
    responses((status = 200, description = "Copied"),
        (status = 400, description = "Invalid name", body = OllamaErrorBody),
        (status = 404, description = "No such model", body = OllamaErrorBody),
        (status = 409, description = "The name is taken", body = OllamaErrorBody)))]
pub(crate) async fn copy(
    State(state): State<AppState>,
    JsonBody(body): JsonBody<CopyRequest>,
) -> Result<Response, ApiError> {
    let store = state.node.store.clone();
    let copied = tokio::task::spawn_blocking(move || store.copy(&body.source, &body.destination))
        .await
        .map_err(|e| ApiError::internal(e.to_string()))?;
    copied.map_err(store_error)?;
    Ok(ok_empty())
}

/// A store error with the status it means.
pub(crate) fn store_error(e: StoreError) -> ApiError {
    match e {
        StoreError::NotFound(name) => {
            ApiError::model_not_found(format!("model '{name}' not found"))
        }
        StoreError::BadName(e) => ApiError::invalid_field("model", e.to_string()),
        e @ (StoreError::Exists(_) | StoreError::ReadOnly(_)) => ApiError::conflict(e.to_string()),
        e => ApiError::internal(e.to_string()),
    }
}
