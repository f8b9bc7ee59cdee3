//! The bodies of Perch's own endpoints.

use perch_runtime::planner::{Fit, Need};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

/// A request naming a model, with an optional keep-alive.
#[derive(Clone, Debug, Deserialize, ToSchema)]
pub struct LoadRequest {
    /// The model.
    pub model: String,
    /// How long it stays loaded when idle: seconds or `"5m"`; negative keeps it.
    #[schema(value_type = Option<serde_json::Value>)]
    pub keep_alive: Option<Value>,
}

impl crate::extract::RequestBody for LoadRequest {}

/// The planner's verdict on one model.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct FitReport {
    /// `fits`, `tight` or `wont_fit`.
    #[schema(value_type = String)]
    pub fit: Fit,
    /// Bytes it needs in all.
    pub need_bytes: u64,
    /// The terms of that need.
    #[schema(value_type = Object)]
    pub need: Need,
    /// Bytes free for it now.
    pub available_bytes: u64,
    /// Bytes short (0 when it fits).
    pub shortfall_bytes: u64,
    /// The verdict in a sentence, with what would make it fit.
    pub message: String,
}

/// A catalog entry.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct CatalogModel {
    /// The alias to pull.
    pub name: String,
    /// One line for people.
    pub description: String,
    /// Architecture family.
    pub family: String,
    /// Parameters.
    pub parameters: u64,
    /// Quantization.
    pub quantization: String,
    /// The longest context it supports.
    pub context_length: u64,
    /// Estimated bytes of weights.
    pub weights_bytes: u64,
    /// Whether it is on this machine.
    pub downloaded: bool,
    /// Whether it fits.
    pub fit: FitReport,
}

/// `GET /api/perch/catalog`.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct CatalogList {
    /// The entries.
    pub models: Vec<CatalogModel>,
}

/// A model on this machine.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct LocalModelInfo {
    /// Its name.
    pub name: String,
    /// `gguf` or `mlx`.
    pub format: String,
    /// Architecture.
    pub architecture: String,
    /// Parameters.
    pub parameters: u64,
    /// Quantization, if any.
    pub quantization: Option<String>,
    /// Bytes on disk.
    pub size: u64,
    /// Whether it is in the Hugging Face cache (read-only).
    pub read_only: bool,
    /// Whether it is loaded.
    pub loaded: bool,
    /// The engine it runs on (`mlx` or `llama.cpp`).
    pub engine: Option<String>,
    /// Whether it fits on that engine (for a loaded model: whether it would fit alone).
    pub fit: Option<FitReport>,
}

/// `GET /api/perch/models`.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct LocalList {
    /// The models.
    pub models: Vec<LocalModelInfo>,
}

/// A model just loaded.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct Loaded {
    /// Its name.
    pub name: String,
    /// The context it serves.
    pub context_length: u64,
    /// Bytes planned for it.
    pub planned_bytes: u64,
    /// Seconds its last load took.
    pub load_seconds: f64,
    /// The engine running it (`mlx` or `llama.cpp`).
    pub engine: String,
}

/// What an unload did.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct UnloadResult {
    /// `now`, `after_requests` or `not_loaded`.
    pub unloaded: String,
    /// Requests it is still answering.
    pub requests_in_flight: usize,
}

/// Names a download to cancel (a model that is not in the store yet).
#[derive(Clone, Debug, Deserialize, ToSchema)]
pub struct DownloadName {
    /// The name the pull was given.
    pub model: String,
}

impl crate::extract::RequestBody for DownloadName {}
