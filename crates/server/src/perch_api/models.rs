//! The catalog and the local models with the planner's verdicts, and load / unload.

use axum::extract::State;
use axum::Json;
use perch_runtime::planner::{Footprint, Verdict};
use perch_runtime::{catalog, KeepAlive, Unloaded};

use super::types::{
    CatalogList, CatalogModel, FitReport, LoadRequest, Loaded, LocalList, LocalModelInfo,
    UnloadResult,
};
use crate::error::ErrorResponse;
use crate::extract::JsonBody;
use crate::ollama::types::ModelRequest;
use crate::{ApiError, AppState};

fn report(name: &str, verdict: &Verdict) -> FitReport {
    FitReport {
        fit: verdict.fit,
        need_bytes: verdict.need.total(),
        need: verdict.need,
        available_bytes: verdict.available,
        shortfall_bytes: verdict.shortfall,
        message: verdict.explain(name),
    }
}

/// Every catalog model, with whether it fits beside what is loaded now (sized as the
/// engine it would load on holds it).
#[utoipa::path(get, path = "/api/perch/catalog", operation_id = "perchCatalog", tag = "perch",
    responses((status = 200, description = "The catalog with verdicts", body = CatalogList)))]
pub(crate) async fn catalog(State(state): State<AppState>) -> Json<CatalogList> {
    let manager = &state.node.manager;
    let residents = manager.residents();
    let element = perch_engine::inspect::compute_element_bytes();
    let local: Vec<String> = state
        .local_models()
        .await
        .iter()
        .map(|m| m.name().to_owned())
        .collect();
    let models = catalog::entries()
        .iter()
        .map(|e| {
            let engine = e.engine_with(manager.gguf_engine());
            let footprint = e.shape.footprint(engine, element, e.context_length);
            let verdict = manager.planner().verdict(&footprint, &residents);
            CatalogModel {
                name: e.alias.clone(),
                description: e.description.clone(),
                family: e.family.clone(),
                parameters: e.shape.parameters(),
                quantization: e.quantization.clone(),
                context_length: e.context_length,
                weights_bytes: footprint.weights_bytes,
                downloaded: local.contains(&e.alias),
                fit: report(&e.alias, &verdict),
            }
        })
        .collect();
    Json(CatalogList { models })
}

/// The models on this machine, with whether each fits.
#[utoipa::path(get, path = "/api/perch/models", operation_id = "perchModels", tag = "perch",
    responses((status = 200, description = "The local models with verdicts", body = LocalList)))]
pub(crate) async fn local(State(state): State<AppState>) -> Json<LocalList> {
    let node = state.node.clone();
    let models = tokio::task::spawn_blocking(move || {
        let loaded: Vec<String> = node
            .manager
            .loaded()
            .iter()
            .map(|m| m.name.clone())
            .collect();
        let residents: Vec<_> = node.manager.residents().into_iter().collect();
        node.store
            .list()
            .into_iter()
            .map(|m| {
                let is_loaded = loaded.iter().any(|l| l == m.name());
                let others: Vec<_> = residents
                    .iter()
                    .filter(|r| r.name != m.name())
                    .cloned()
                    .collect();
                let engine = node.manager.engine_of(&m).ok();
                let fit = engine
                    .and_then(|e| perch_engine::inspect::inspect_on(&m.load_path(), e).ok())
                    .map(|facts| {
                        let verdict = node
                            .manager
                            .planner()
                            .verdict(&Footprint::from(&facts), &others);
                        report(m.name(), &verdict)
                    });
                LocalModelInfo {
                    name: m.name().to_owned(),
                    format: m.manifest.format.clone(),
                    architecture: m.manifest.architecture.clone(),
                    parameters: m.manifest.parameters,
                    quantization: m.manifest.quantization.clone(),
                    size: m.manifest.bytes_on_disk,
                    read_only: m.read_only,
                    loaded: is_loaded,
                    engine: engine.map(|e| e.to_string()),
                    fit,
                }
            })
            .collect()
    })
    .await
    .unwrap_or_default();
    Json(LocalList { models })
}

/// Loads a model (if it is not loaded) and keeps it for `keep_alive`.
#[utoipa::path(post, path = "/api/perch/load", operation_id = "perchLoad", tag = "perch",
    request_body = LoadRequest,
    responses((status = 200, description = "Loaded", body = Loaded),
        (status = 404, description = "No such model", body = ErrorResponse),
        (status = 507, description = "It does not fit; the message says by how much", body = ErrorResponse)))]
pub(crate) async fn load(
    State(state): State<AppState>,
    JsonBody(body): JsonBody<LoadRequest>,
) -> Result<Json<Loaded>, ApiError> {
    let keep_alive = KeepAlive::from_field(body.keep_alive.as_ref())
        .map_err(|m| ApiError::invalid_field("keep_alive", m))?;
    let model = state.node.manager.load(&body.model, keep_alive).await?;
    Ok(Json(Loaded {
        name: model.name.clone(),
        context_length: model.context_length(),
        planned_bytes: model.need.total(),
        load_seconds: model.engine.info().load_time.as_secs_f64(),
        engine: model.engine.info().engine.to_string(),
    }))
}

/// Unloads a model now, or when the requests it is answering end.
#[utoipa::path(post, path = "/api/perch/unload", operation_id = "perchUnload", tag = "perch",
    request_body = ModelRequest,
    responses((status = 200, description = "What happened", body = UnloadResult),
        (status = 404, description = "No such model", body = ErrorResponse)))]
pub(crate) async fn unload(
    State(state): State<AppState>,
    JsonBody(body): JsonBody<ModelRequest>,
) -> Result<Json<UnloadResult>, ApiError> {
    if state.local_model(&body.model).await.is_none() {
        return Err(ApiError::model_not_found(format!(
            "model {:?} is not on this machine",
            body.model
        )));
    }
    let (unloaded, requests_in_flight) = match state.node.manager.unload(&body.model) {
        Unloaded::Now => ("now", 0),
        Unloaded::AfterRequests(n) => ("after_requests", n),
        Unloaded::NotLoaded => ("not_loaded", 0),
    };
    Ok(Json(UnloadResult {
        unloaded: unloaded.into(),
        requests_in_flight,
    }))
}
