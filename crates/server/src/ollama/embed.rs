//! Ollama's `POST /api/embed` (inputs in a batch; cut to the context unless `truncate` is
//! false) and the older `POST /api/embeddings` (one `prompt`), in Ollama's shapes, on the
//! same embedding path as OpenAI's endpoint. A request with nothing to embed only loads
//! the model, as Ollama's does.

use std::time::Instant;

use axum::extract::State;
use axum::Json;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use super::generate::{keep_alive, nanos};
use super::types::OllamaErrorBody;
use crate::embed::{embed, EmbedAsk, EmbedInputs};
use crate::extract::JsonBody;
use crate::{ApiError, AppState};

/// `input`: one text or several.
#[derive(Clone, Debug, Deserialize)]
#[serde(untagged)]
pub enum EmbedInput {
    /// One text.
    One(String),
    /// Several texts.
    Many(Vec<String>),
}

/// `POST /api/embed`.
#[derive(Clone, Debug, Deserialize, ToSchema)]
pub struct EmbedRequest {
    /// The model.
    pub model: String,
    /// A text or a list of texts; none only loads the model.
    #[schema(value_type = Option<serde_json::Value>)]
    pub input: Option<EmbedInput>,
    /// Cut inputs longer than the context (the default) instead of refusing them.
    pub truncate: Option<bool>,
    /// Keep only the first this many dimensions, normalised again (Matryoshka models).
    #[schema(value_type = Option<u64>, minimum = 1, maximum = 4294967295_u64)]
    pub dimensions: Option<u32>,
    /// Model options (an object, accepted; embeddings use none of them).
    #[schema(value_type = Option<Object>)]
    pub options: Option<serde_json::Map<String, Value>>,
    /// How long the model stays loaded afterwards.
    #[schema(value_type = Option<serde_json::Value>)]
    pub keep_alive: Option<Value>,
}

impl crate::extract::RequestBody for EmbedRequest {}

/// The answer to `/api/embed`.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct EmbedResponse {
    /// The model.
    pub model: String,
    /// One vector per input, in order.
    pub embeddings: Vec<Vec<f32>>,
    /// Nanoseconds from arrival to answer.
    pub total_duration: u64,
    /// Nanoseconds spent loading the model.
    pub load_duration: u64,
    /// Tokens read.
    pub prompt_eval_count: usize,
}

/// `POST /api/embeddings` (Ollama's older endpoint).
#[derive(Clone, Debug, Deserialize, ToSchema)]
pub struct EmbeddingsRequest {
    /// The model.
    pub model: String,
    /// The text; empty only loads the model.
    #[serde(default)]
    pub prompt: String,
    /// Model options (an object, accepted; embeddings use none of them).
    #[schema(value_type = Option<Object>)]
    pub options: Option<serde_json::Map<String, Value>>,
    /// How long the model stays loaded afterwards.
    #[schema(value_type = Option<serde_json::Value>)]
    pub keep_alive: Option<Value>,
}

impl crate::extract::RequestBody for EmbeddingsRequest {}

/// The answer to `/api/embeddings`.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct EmbeddingsResponse {
    /// The vector (empty when nothing was embedded).
    pub embedding: Vec<f32>,
}

/// Embeds a batch of texts.
#[utoipa::path(
    post,
    path = "/api/embed",
    request_body = EmbedRequest,
    operation_id = "ollamaEmbed",
    responses(
        (status = 200, description = "One embedding per input", body = EmbedResponse),
        (status = 400, description = "Invalid request", body = OllamaErrorBody),
        (status = 404, description = "No such model", body = OllamaErrorBody))
)]
pub(crate) async fn embed_batch(
    State(state): State<AppState>,
    JsonBody(body): JsonBody<EmbedRequest>,
) -> Result<Json<EmbedResponse>, ApiError> {
    let arrived = Instant::now();
    let keep_alive = keep_alive(body.keep_alive.as_ref())?;
    if body.dimensions == Some(0) {
        return Err(ApiError::invalid_field(
            "dimensions",
            "dimensions must be at least 1",
        ));
    }
    let texts = match body.input {
        None => Vec::new(),
        Some(EmbedInput::One(t)) => vec![t],
        Some(EmbedInput::Many(t)) => t,
    };
    let lease = state.acquire(&body.model, keep_alive).await?;
    let load_duration = nanos(arrived.elapsed());
    let (embeddings, prompt_eval_count) = if texts.is_empty() {
        (Vec::new(), 0)
    } else {
        let ask = EmbedAsk {
            inputs: EmbedInputs::Texts(texts),
            dimensions: body.dimensions,
            truncate: body.truncate.unwrap_or(true),
            field: "input",
        };
        let done = embed(&state, &lease, ask, "api/embed").await?;
        (done.vectors, done.prompt_tokens)
    };
    Ok(Json(EmbedResponse {
        model: lease.model().name.clone(),
        embeddings,
        total_duration: nanos(arrived.elapsed()),
        load_duration,
        prompt_eval_count,
    }))
}

/// Embeds one text (Ollama's older endpoint).
#[utoipa::path(
    post,
    path = "/api/embeddings",
    request_body = EmbeddingsRequest,
    operation_id = "ollamaEmbeddings",
    responses(
        (status = 200, description = "The embedding", body = EmbeddingsResponse),
        (status = 400, description = "Invalid request", body = OllamaErrorBody),
        (status = 404, description = "No such model", body = OllamaErrorBody))
)]
pub(crate) async fn embed_one(
    State(state): State<AppState>,
    JsonBody(body): JsonBody<EmbeddingsRequest>,
) -> Result<Json<EmbeddingsResponse>, ApiError> {
    let keep_alive = keep_alive(body.keep_alive.as_ref())?;
    let lease = state.acquire(&body.model, keep_alive).await?;
    if body.prompt.is_empty() {
        return Ok(Json(EmbeddingsResponse {
            embedding: Vec::new(),
        }));
    }
    let ask = EmbedAsk {
        inputs: EmbedInputs::Texts(vec![body.prompt]),
        dimensions: None,
        truncate: true,
        field: "prompt",
    };
    let done = embed(&state, &lease, ask, "api/embeddings").await?;
    Ok(Json(EmbeddingsResponse {
        embedding: done.vectors.into_iter().next().unwrap_or_default(),
    }))
}
