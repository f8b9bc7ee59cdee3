//! Ollama's request and response bodies, in Ollama's own shapes, so its clients (the
//! `ollama` Python and JS libraries, Open WebUI, editors' Ollama providers) work
//! unchanged. Fields Ollama has and Perch does not act on are accepted where ignoring
//! them changes nothing a client sees (`num_ctx`, `mirostat`…) and refused where it would
//! (`images`, `suffix`, `context`).

use std::collections::HashMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

/// A request naming one model (`model`, or `name` as older clients send).
#[derive(Clone, Debug, Deserialize, ToSchema)]
pub struct ModelRequest {
    /// The model's name.
    #[serde(alias = "name")]
    pub model: String,
}

/// `POST /api/pull`.
#[derive(Clone, Debug, Deserialize, ToSchema)]
pub struct PullRequest {
    /// What to pull: a catalog alias, `owner/repo`, or `hf.co/owner/repo:QUANT`.
    #[serde(alias = "name")]
    pub model: String,
    /// Stream progress as NDJSON (default true).
    pub stream: Option<bool>,
    /// Accepted for compatibility; Perch always uses TLS to the hub.
    pub insecure: Option<bool>,
}

/// `POST /api/copy`.
#[derive(Clone, Debug, Deserialize, ToSchema)]
pub struct CopyRequest {
    /// An existing model.
    pub source: String,
    /// Its new, second name.
    pub destination: String,
}

/// Sampling options, as Ollama names them.
#[derive(Clone, Debug, Default, Deserialize, ToSchema)]
pub struct Options {
    /// Sampling temperature (default 0.8).
    pub temperature: Option<f32>,
    /// Nucleus sampling (default 0.9).
    pub top_p: Option<f32>,
    /// Keep the k likeliest tokens (default 40; 0 or less: all).
    pub top_k: Option<i32>,
    /// Minimum probability relative to the likeliest token.
    pub min_p: Option<f32>,
    /// Random seed (negative: a fresh one).
    pub seed: Option<i64>,
    /// Most tokens to generate; -1 or -2: as many as the context allows.
    pub num_predict: Option<i64>,
    /// Stop sequences.
    pub stop: Option<Vec<String>>,
    /// Penalty on repeated tokens (default 1.1).
    pub repeat_penalty: Option<f32>,
    /// Penalty on tokens already present.
    pub presence_penalty: Option<f32>,
    /// Penalty growing with each repetition.
    pub frequency_penalty: Option<f32>,
    /// Other Ollama options (`num_ctx`, `num_thread`, `mirostat`…): accepted; Perch plans
    /// the context per node and sizes threads itself.
    #[serde(flatten)]
    #[schema(value_type = Object)]
    pub other: HashMap<String, Value>,
}

/// One chat message.
#[derive(Clone, Debug, Deserialize, Serialize, ToSchema)]
pub struct ChatMessage {
    /// `system`, `user`, `assistant` or `tool`.
    pub role: String,
    /// The text.
    #[serde(default)]
    pub content: String,
    /// Images (not supported: Perch's models read text).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub images: Option<Vec<String>>,
    /// The calls an assistant message made (an answer's calls, too).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tool_calls: Option<Vec<ToolCall>>,
    /// On a `tool` message: the tool whose result it is.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tool_name: Option<String>,
    /// The model's reasoning, apart from the answer.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub thinking: Option<String>,
}

/// A tool call, as Ollama writes it.
#[derive(Clone, Debug, Deserialize, Serialize, ToSchema)]
pub struct ToolCall {
    /// The function called.
    pub function: FunctionCall,
}

/// A function call, its arguments an object.
#[derive(Clone, Debug, Deserialize, Serialize, ToSchema)]
pub struct FunctionCall {
    /// Which call of the answer (from 0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub index: Option<usize>,
    /// The function's name.
    pub name: String,
    /// Its arguments.
    #[schema(value_type = Object)]
    pub arguments: serde_json::Map<String, Value>,
}

/// `POST /api/chat`.
#[derive(Clone, Debug, Deserialize, ToSchema)]
pub struct ChatRequest {
    /// The model.
    pub model: String,
    /// The conversation; empty loads the model (or unloads it with `keep_alive: 0`).
    #[serde(default)]
    pub messages: Vec<ChatMessage>,
    /// Stream NDJSON chunks (default true).
    pub stream: Option<bool>,
    /// `"json"`, or a JSON schema: the answer is held to it by constrained decoding.
    #[schema(value_type = Option<Object>)]
    pub format: Option<Value>,
    /// Sampling options.
    pub options: Option<Options>,
    /// How long the model stays loaded afterwards: seconds or `"5m"`; negative keeps it,
    /// 0 unloads it.
    #[schema(value_type = Option<serde_json::Value>)]
    pub keep_alive: Option<Value>,
    /// Tools the model may call (OpenAI's shape).
    pub tools: Option<Vec<crate::openai::types::Tool>>,
    /// Whether a model that can think does (`true`/`false`, or `"low"`/`"medium"`/`"high"`
    /// as true); its reasoning comes back in `thinking`.
    #[schema(value_type = Option<serde_json::Value>)]
    pub think: Option<Value>,
}

/// `POST /api/generate`.
#[derive(Clone, Debug, Deserialize, ToSchema)]
pub struct GenerateRequest {
    /// The model.
    pub model: String,
    /// The prompt; empty loads the model (or unloads it with `keep_alive: 0`).
    #[serde(default)]
    pub prompt: String,
    /// A system message (ignored with `raw`).
    pub system: Option<String>,
    /// Send the prompt as it is, without the chat template.
    pub raw: Option<bool>,
    /// Stream NDJSON chunks (default true).
    pub stream: Option<bool>,
    /// `"json"`, or a JSON schema: the answer is held to it by constrained decoding.
    #[schema(value_type = Option<Object>)]
    pub format: Option<Value>,
    /// Sampling options.
    pub options: Option<Options>,
    /// How long the model stays loaded afterwards.
    #[schema(value_type = Option<serde_json::Value>)]
    pub keep_alive: Option<Value>,
    /// Fill-in-the-middle suffix (not supported).
    pub suffix: Option<String>,
    /// Earlier context tokens (deprecated by Ollama; not supported: send the
    /// conversation to /api/chat). Perch's answers carry none.
    pub context: Option<Vec<u32>>,
    /// Images (not supported).
    pub images: Option<Vec<String>>,
    /// A Go template (not supported: the model's own chat template is used).
    pub template: Option<String>,
    /// Whether a model that can think does; its reasoning comes back in `thinking`.
    #[schema(value_type = Option<serde_json::Value>)]
    pub think: Option<Value>,
}

/// What a model is, as Ollama describes it.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct ModelDetails {
    /// Always empty.
    pub parent_model: String,
    /// `gguf` or `mlx`.
    pub format: String,
    /// Architecture family.
    pub family: String,
    /// The families (one).
    pub families: Vec<String>,
    /// Parameters, for people (`135M`, `8.0B`).
    pub parameter_size: String,
    /// Quantization (`Q4_1`, `4-bit`, `F16`).
    pub quantization_level: String,
}

/// One model on this machine.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct TagModel {
    /// Its name.
    pub name: String,
    /// Its name again.
    pub model: String,
    /// When it arrived (RFC 3339).
    pub modified_at: String,
    /// Bytes on disk.
    pub size: u64,
    /// Hex digest of its files.
    pub digest: String,
    /// What it is.
    pub details: ModelDetails,
}

/// `GET /api/tags`.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct TagList {
    /// The models on this machine.
    pub models: Vec<TagModel>,
}

/// One loaded model.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct RunningModel {
    /// Its name.
    pub name: String,
    /// Its name again.
    pub model: String,
    /// Bytes of memory planned for it.
    pub size: u64,
    /// Hex digest of its files.
    pub digest: String,
    /// What it is.
    pub details: ModelDetails,
    /// When it unloads if idle (RFC 3339); far ahead when kept, now when busy.
    pub expires_at: String,
    /// Bytes in accelerator memory (all of it with MLX's unified memory; 0 on a CPU).
    pub size_vram: u64,
    /// The context it serves.
    pub context_length: u64,
}

/// `GET /api/ps`.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct RunningList {
    /// The loaded models.
    pub models: Vec<RunningModel>,
}

/// `POST /api/show`.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct ShowResponse {
    /// A Modelfile-like summary.
    pub modelfile: String,
    /// Default sampling parameters, one per line.
    pub parameters: String,
    /// The chat template (Jinja).
    pub template: String,
    /// What it is.
    pub details: ModelDetails,
    /// Facts from its headers, under GGUF's key names.
    #[schema(value_type = Object)]
    pub model_info: serde_json::Map<String, Value>,
    /// What it can do.
    pub capabilities: Vec<String>,
    /// The engine it runs on, `mlx` or `llama.cpp` (Perch's addition).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub engine: Option<String>,
    /// When it arrived (RFC 3339).
    pub modified_at: String,
}

/// `GET /api/version`.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct Version {
    /// The Ollama API version Perch answers as.
    pub version: String,
}

/// A line of `POST /api/pull`'s progress.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct PullProgress {
    /// `pulling manifest`, `pulling DIGEST`, `verifying sha256 digest`, `writing
    /// manifest`, `success`.
    pub status: String,
    /// What is being fetched.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub digest: Option<String>,
    /// Bytes in all.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub total: Option<u64>,
    /// Bytes so far.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub completed: Option<u64>,
}

/// A chunk (or the whole answer) of `/api/chat` and `/api/generate`.
#[derive(Clone, Debug, Default, Serialize, ToSchema)]
pub struct GenerateChunk {
    /// The model.
    pub model: String,
    /// When the chunk was made (RFC 3339).
    pub created_at: String,
    /// `/api/chat`: the assistant's message (a piece of it when streaming).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<ChatMessage>,
    /// `/api/generate`: a piece of the answer.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub response: Option<String>,
    /// `/api/generate`: a piece of the reasoning.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub thinking: Option<String>,
    /// Whether this is the last chunk.
    pub done: bool,
    /// `stop`, `length`, `load` or `unload`, on the last chunk.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub done_reason: Option<String>,
    /// Nanoseconds from arrival to the end.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub total_duration: Option<u64>,
    /// Nanoseconds spent loading the model.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub load_duration: Option<u64>,
    /// Prompt tokens.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prompt_eval_count: Option<u64>,
    /// Nanoseconds to the first token.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prompt_eval_duration: Option<u64>,
    /// Tokens generated.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub eval_count: Option<u64>,
    /// Nanoseconds generating them.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub eval_duration: Option<u64>,
}

/// An Ollama error: `{"error": "..."}`.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct OllamaErrorBody {
    /// What went wrong.
    pub error: String,
}

impl crate::extract::RequestBody for ModelRequest {}
impl crate::extract::RequestBody for PullRequest {}
impl crate::extract::RequestBody for CopyRequest {}

/// `options` flattens its unknown keys, which hides the path in serde's errors: it is
/// parsed alone first so an error names `options.temperature`.
fn precheck_options(value: &Value) -> Result<(), crate::ApiError> {
    if let Some(options) = value.get("options").filter(|o| !o.is_null()) {
        crate::extract::parse::<Options>(options).map_err(|e| {
            crate::ApiError::invalid_field("options", format!("options: {}", e.message()))
        })?;
    }
    Ok(())
}

impl crate::extract::RequestBody for ChatRequest {
    fn precheck(value: &Value) -> Result<(), crate::ApiError> {
        precheck_options(value)
    }
}

impl crate::extract::RequestBody for GenerateRequest {
    fn precheck(value: &Value) -> Result<(), crate::ApiError> {
        precheck_options(value)
    }
}
