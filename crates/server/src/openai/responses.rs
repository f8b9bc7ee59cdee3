//! The OpenAI response bodies Perch sends, typed, so the OpenAPI document describes exactly
//! what `respond.rs` serializes: chat completions and their stream chunks, text
//! completions (whole or streamed). The error body lives with `ApiError`.

use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;

use super::types::{MessageToolCall, Usage};

/// `usage` on a stream chunk: absent unless `stream_options.include_usage`, then `null`
/// on every chunk but the last.
pub(crate) type ChunkUsage = Option<Option<Usage>>;

/// A whole chat answer (`object: "chat.completion"`).
#[derive(Debug, Serialize, ToSchema)]
pub struct ChatCompletion {
    /// `chatcmpl-…`.
    pub id: String,
    /// `chat.completion`.
    pub object: &'static str,
    /// Unix seconds.
    pub created: u64,
    /// The model that answered.
    pub model: String,
    /// Which build of Perch and which model answered.
    pub system_fingerprint: String,
    /// The one choice.
    pub choices: Vec<ChatChoice>,
    /// Token counts.
    pub usage: Usage,
}

/// The choice of a whole chat answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct ChatChoice {
    /// Which choice (0 to `n` − 1).
    pub index: usize,
    /// The answer.
    pub message: AssistantMessage,
    /// `{content: [{token, logprob, bytes, top_logprobs}]}` when asked for.
    #[schema(value_type = Option<Object>)]
    pub logprobs: Value,
    /// `stop`, `length` or `tool_calls`.
    pub finish_reason: &'static str,
}

/// The assistant's message.
#[derive(Debug, Serialize, ToSchema)]
pub struct AssistantMessage {
    /// `assistant`.
    pub role: &'static str,
    /// The answer's text; null when the answer is only tool calls.
    pub content: Option<String>,
    /// The model's reasoning, apart from the answer (models that think).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reasoning_content: Option<String>,
    /// The calls the model made.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tool_calls: Option<Vec<MessageToolCall>>,
}

/// One server-sent event of a streamed chat (`object: "chat.completion.chunk"`).
#[derive(Debug, Serialize, ToSchema)]
pub struct ChatCompletionChunk {
    /// The same on every chunk of a stream.
    pub id: String,
    /// `chat.completion.chunk`.
    pub object: &'static str,
    /// Unix seconds.
    pub created: u64,
    /// The model that answers.
    pub model: String,
    /// Which build of Perch and which model answered.
    pub system_fingerprint: String,
    /// One choice; none on the usage chunk.
    pub choices: Vec<ChunkChoice>,
    /// Token counts on the last chunk when `stream_options.include_usage`.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Usage>, nullable)]
    pub usage: ChunkUsage,
}

/// The choice of a chat stream chunk.
#[derive(Debug, Serialize, ToSchema)]
pub struct ChunkChoice {
    /// Which choice (0 to `n` − 1).
    pub index: usize,
    /// What is new.
    pub delta: Delta,
    /// Log-probabilities of this chunk's tokens when asked for.
    #[schema(value_type = Option<Object>)]
    pub logprobs: Value,
    /// Set on the last chunk: `stop` or `length`.
    pub finish_reason: Option<&'static str>,
}

/// What a chat chunk adds.
#[derive(Debug, Default, Serialize, ToSchema)]
pub struct Delta {
    /// `assistant`, on the first chunk.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub role: Option<&'static str>,
    /// More text.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub content: Option<String>,
    /// More reasoning.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reasoning_content: Option<String>,
    /// A call: its id and name first, then its arguments.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tool_calls: Option<Vec<ToolCallDelta>>,
}

/// A piece of a streamed call.
#[derive(Debug, Serialize, ToSchema)]
pub struct ToolCallDelta {
    /// Which call of the answer (from 0).
    pub index: usize,
    /// The call's id, on its first piece.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// `function`, on its first piece.
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    pub kind: Option<&'static str>,
    /// The name (first piece) or more of the arguments.
    pub function: FunctionDelta,
}

/// What a call's piece adds.
#[derive(Debug, Serialize, ToSchema)]
pub struct FunctionDelta {
    /// The function's name, on the first piece.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// More of the arguments' JSON text.
    pub arguments: String,
}

/// A text completion (`object: "text_completion"`), whole or as one stream chunk.
#[derive(Debug, Serialize, ToSchema)]
pub struct Completion {
    /// `cmpl-…`.
    pub id: String,
    /// `text_completion`.
    pub object: &'static str,
    /// Unix seconds.
    pub created: u64,
    /// The model that answered.
    pub model: String,
    /// Which build of Perch and which model answered.
    pub system_fingerprint: String,
    /// One choice; none on a stream's usage chunk.
    pub choices: Vec<CompletionChoice>,
    /// Token counts: always on a whole answer; on a stream, as on chat chunks.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Usage>, nullable)]
    pub usage: ChunkUsage,
}

/// The choice of a text completion.
#[derive(Debug, Serialize, ToSchema)]
pub struct CompletionChoice {
    /// Which choice (0 to `n` − 1).
    pub index: usize,
    /// The text (new text, on a stream).
    pub text: String,
    /// `{tokens, token_logprobs, top_logprobs, text_offset}` when asked for.
    #[schema(value_type = Option<Object>)]
    pub logprobs: Value,
    /// `stop` or `length`; on a stream, set on the last chunk only.
    pub finish_reason: Option<&'static str>,
}
