//! `GET /api/perch/settings` and `PUT /api/perch/settings`: the node's live settings,
//! read and changed by the web UI and anyone with the API. A change is checked whole;
//! a change of where the server listens is bound before it is written (so a port in use
//! changes nothing), and the first move off loopback creates the first API key, shown
//! once in the answer.

use axum::extract::State;
use axum::Json;
use perch_runtime::api_keys::NewKey;
use perch_runtime::settings::{Settings, SettingsError};
use serde::Serialize;
use serde_json::{Map, Value};

use crate::blocking;
use crate::exposure::concerns_listening;
use crate::extract::JsonBody;
use crate::{ApiError, AppState};

/// The settings, with where they and the logs are kept.
#[derive(Serialize)]
pub(crate) struct SettingsView {
    #[serde(flatten)]
    settings: Settings,
    /// The port actually listened on (differs from `port` when that is 0).
    listening_port: Option<u16>,
    /// The settings file.
    settings_file: String,
    /// The folder of the log files, if logs are written to files.
    log_dir: Option<String>,
    /// Where API keys are kept.
    secret_store: String,
    /// Whether downloads send a Hugging Face token.
    hub_token: bool,
    /// The API key created by this change, shown this once.
    #[serde(skip_serializing_if = "Option::is_none")]
    new_key: Option<NewKey>,
}

/// Any of the settings' fields, as a JSON object.
#[derive(serde::Deserialize)]
#[serde(transparent)]
pub(crate) struct SettingsChanges(Map<String, Value>);

impl crate::extract::RequestBody for SettingsChanges {}

fn view(state: &AppState, settings: Settings, new_key: Option<NewKey>) -> SettingsView {
    SettingsView {
        settings,
        listening_port: state.exposure.as_ref().map(|e| e.port()),
        settings_file: state.node.live.path().display().to_string(),
        log_dir: state
            .node
            .settings
            .log_dir
            .as_ref()
            .map(|d| d.display().to_string()),
        secret_store: state.node.keys.store_name(),
        hub_token: state.node.has_hub_token(),
        new_key,
    }
}

/// The settings in force.
#[utoipa::path(get, path = "/api/perch/settings", operation_id = "perchSettings", tag = "perch",
    responses((status = 200, description = "{listen, port, keep_alive, context_length, max_loaded_models, parallel, gguf_engine, allowed_origins, allowed_hosts, log_days, listening_port, settings_file, log_dir, secret_store, hub_token}",
        body = serde_json::Value)))]
pub(crate) async fn get(State(state): State<AppState>) -> Json<SettingsView> {
    let settings = state.node.live.current();
    Json(view(&state, settings, None))
}

/// Changes some settings, in force at once and kept in the settings file.
#[utoipa::path(put, path = "/api/perch/settings", operation_id = "perchUpdateSettings",
    tag = "perch", request_body(content = serde_json::Value, description = "Any of the settings' fields"),
    responses((status = 200, description = "The settings now in force (with `new_key` when one was created)", body = serde_json::Value),
        (status = 400, description = "A value breaks its rule", body = crate::error::ErrorResponse),
        (status = 409, description = "The server cannot listen there", body = crate::error::ErrorResponse)))]
pub(crate) async fn update(
    State(state): State<AppState>,
    JsonBody(SettingsChanges(changes)): JsonBody<SettingsChanges>,
) -> Result<Json<SettingsView>, ApiError> {
    let live = &state.node.live;
    let before = live.current();
    let candidate = live.preview(&changes).map_err(invalid)?;
    let moves = concerns_listening(&before, &candidate);
    if let (true, Some(exposure)) = (moves, &state.exposure) {
        exposure
            .apply(&state, &candidate)
            .await
            .map_err(ApiError::bind_failed)?;
    }
    let settings = match live.update(&changes) {
        Ok(settings) => settings,
        Err(e) => {
            // Back to where the settings in force say.
            if let (true, Some(exposure)) = (moves, &state.exposure) {
                let _ = exposure.apply(&state, &before).await;
            }
            return Err(invalid(e));
        }
    };
    let new_key =
        if settings.listen.is_exposed() && state.api_key.is_none() && state.node.keys.is_empty() {
            let keys = state.node.keys.clone();
            Some(blocking::run(move || keys.create("first key")).await?)
        } else {
            None
        };
    Ok(Json(view(&state, settings, new_key)))
}

/// A 400 naming the setting at fault (its rule's message starts with its name), or a
/// 500 when the file could not be written.
fn invalid(e: SettingsError) -> ApiError {
    let message = e.to_string();
    match e {
        SettingsError::Io { .. } => ApiError::internal(message),
        _ => match Settings::names()
            .into_iter()
            .find(|name| message.starts_with(name.as_str()))
        {
            Some(name) => ApiError::invalid_field(&name, message),
            None => ApiError::invalid(message),
        },
    }
}
