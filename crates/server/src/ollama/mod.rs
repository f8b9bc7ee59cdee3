//! Ollama's native API under `/api`, in Ollama's shapes, so Ollama's clients work
//! unchanged against Perch: the model list and details, what is loaded, pull (NDJSON
//! progress), delete and copy, chat and generate (NDJSON streaming), and embeddings. Requests go the
//! same way as OpenAI's: the body is turned into the same validated request and run by
//! the same code; only the shapes differ (errors are reshaped in [`crate::error_shape`]).

pub mod embed;
pub(crate) mod generate;
pub(crate) mod models;
pub(crate) mod pull;
pub mod types;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::Router;
use perch_runtime::manifest::Manifest;

use crate::{ApiError, AppState};
use types::ModelDetails;

/// The Ollama API version Perch answers to: the endpoints and fields here are those of
/// this release.
pub const OLLAMA_API_VERSION: &str = "0.12.0";

pub(crate) fn router() -> Router<AppState> {
    Router::new()
        .route("/api/version", get(models::version))
        .route("/api/tags", get(models::tags))
        .route("/api/ps", get(models::ps))
        .route("/api/show", post(models::show))
        .route("/api/delete", delete(models::remove))
        .route("/api/copy", post(models::copy))
        .route("/api/pull", post(pull::pull))
        .route("/api/chat", post(generate::chat))
        .route("/api/generate", post(generate::generate))
        .route("/api/embed", post(embed::embed_batch))
        .route("/api/embeddings", post(embed::embed_one))
}

/// 404 in Ollama's words.
pub(crate) fn not_found(name: &str) -> ApiError {
    ApiError::model_not_found(format!("model '{name}' not found"))
}

/// What a model is, from its manifest.
pub(crate) fn details(manifest: &Manifest) -> ModelDetails {
    ModelDetails {
        parent_model: String::new(),
        format: manifest.format.clone(),
        family: manifest.architecture.clone(),
        families: vec![manifest.architecture.clone()],
        parameter_size: parameter_size(manifest.parameters),
        quantization_level: manifest
            .quantization
            .clone()
            .unwrap_or_else(|| "F16".into()),
    }
}

/// `134515008` → `134.5M`; `8030261248` → `8.0B`.
fn parameter_size(parameters: u64) -> String {
    if parameters >= 1_000_000_000 {
        format!("{:.1}B", parameters as f64 / 1e9)
    } else {
        format!("{:.1}M", parameters as f64 / 1e6)
    }
}

/// A manifest's digest as Ollama lists one: 64 hex characters.
pub(crate) fn digest(manifest: &Manifest) -> String {
    manifest.digest().trim_start_matches("sha256:").to_owned()
}

/// RFC 3339 in UTC.
pub(crate) fn rfc3339(time: std::time::SystemTime) -> String {
    humantime::format_rfc3339_seconds(time).to_string()
}

/// Unix seconds as RFC 3339.
pub(crate) fn rfc3339_unix(seconds: u64) -> String {
    rfc3339(std::time::UNIX_EPOCH + std::time::Duration::from_secs(seconds))
}

/// One line of NDJSON.
pub(crate) fn ndjson<T: serde::Serialize>(value: &T) -> axum::body::Bytes {
    let mut line = serde_json::to_vec(value).expect("a line serializes");
    line.push(b'\n');
    line.into()
}

/// 200 with an empty body, as Ollama answers delete and copy.
pub(crate) fn ok_empty() -> Response {
    StatusCode::OK.into_response()
}
