//! Anthropic's Messages API bodies, in Anthropic's shapes, so its clients (the `anthropic`
//! SDKs, Claude Code) work unchanged. Unknown fields (`metadata`, `cache_control`,
//! `service_tier`…) are accepted and change nothing.

use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

/// `POST /v1/messages`.
#[derive(Clone, Debug, Deserialize, ToSchema)]
pub struct MessagesRequest {
    /// A served model's name.
    pub model: String,
    /// The conversation: `user` and `assistant` turns.
    #[schema(min_items = 1)]
    pub messages: Vec<InputMessage>,
    /// Most tokens to generate.
    #[schema(minimum = 1)]
    pub max_tokens: u32,
    /// The system prompt: text, or text blocks.
    pub system: Option<SystemPrompt>,
    /// Strings that end the answer (at most 64).
    #[schema(max_items = 64)]
    pub stop_sequences: Option<Vec<String>>,
    /// 0–1 (default 1).
    #[schema(minimum = 0, maximum = 1)]
    pub temperature: Option<f32>,
    /// (0, 1].
    #[schema(exclusive_minimum = 0, maximum = 1)]
    pub top_p: Option<f32>,
    /// Keep the k likeliest tokens (0: all).
    #[schema(minimum = 0)]
    pub top_k: Option<i32>,
    /// Stream server-sent events.
    pub stream: Option<bool>,
    /// Tools the model may call.
    pub tools: Option<Vec<ToolDefinition>>,
    /// Whether and which tool to call.
    pub tool_choice: Option<ToolChoice>,
    /// Extended thinking: `{"type": "enabled", "budget_tokens": n}` or `{"type": "disabled"}`;
    /// turns the template's thinking on or off for models that think.
    pub thinking: Option<Thinking>,
}

/// `POST /v1/messages/count_tokens`.
#[derive(Clone, Debug, Deserialize, ToSchema)]
pub struct CountTokensRequest {
    /// A served model's name.
    pub model: String,
    /// The conversation.
    #[schema(min_items = 1)]
    pub messages: Vec<InputMessage>,
    /// The system prompt.
    pub system: Option<SystemPrompt>,
    /// Tools.
    pub tools: Option<Vec<ToolDefinition>>,
    /// Whether and which tool to call.
    pub tool_choice: Option<ToolChoice>,
    /// Extended thinking.
    pub thinking: Option<Thinking>,
}

/// `{"input_tokens": n}`.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct TokenCount {
    /// Tokens the request's prompt takes.
    pub input_tokens: usize,
}

/// A system prompt.
#[derive(Clone, Debug, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum SystemPrompt {
    /// Text.
    Text(String),
    /// Text blocks.
    Blocks(Vec<TextBlock>),
}

/// `{"type": "text", "text": …}`.
#[derive(Clone, Debug, Deserialize, ToSchema)]
pub struct TextBlock {
    /// `text`.
    #[serde(rename = "type")]
    #[schema(pattern = "^text$")]
    pub kind: String,
    /// The text.
    pub text: String,
}

/// One turn.
#[derive(Clone, Debug, Deserialize, ToSchema)]
pub struct InputMessage {
    /// `user`, `assistant`, or `system` (an instruction inside the conversation).
    #[schema(pattern = "^(user|assistant|system)$")]
    pub role: String,
    /// Text, or content blocks.
    pub content: MessageContent,
}

/// A turn's content.
#[derive(Clone, Debug, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum MessageContent {
    /// Text.
    Text(String),
    /// Blocks: `text`, `tool_use` (assistant), `tool_result` (user), `thinking` (assistant).
    Blocks(Vec<InputBlock>),
}

/// A content block of the history.
#[derive(Clone, Debug, Deserialize, ToSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum InputBlock {
    /// Text.
    Text {
        /// The text.
        text: String,
    },
    /// A call the assistant made.
    ToolUse {
        /// The call's id.
        id: String,
        /// The tool.
        name: String,
        /// Its input.
        #[schema(value_type = Object)]
        input: Value,
    },
    /// A tool's answer to a call.
    ToolResult {
        /// The call it answers.
        tool_use_id: String,
        /// The result: text, or text blocks.
        content: Option<ToolResultContent>,
        /// Whether the tool failed.
        is_error: Option<bool>,
    },
    /// Earlier reasoning of the assistant.
    Thinking {
        /// The reasoning.
        thinking: String,
    },
    /// Reasoning the client cannot show (dropped).
    RedactedThinking {
        /// Opaque.
        data: String,
    },
    /// Images and documents (refused: Perch's models read text).
    Image {
        /// The image.
        #[schema(value_type = Object)]
        source: Value,
    },
}

/// A tool result's content.
#[derive(Clone, Debug, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum ToolResultContent {
    /// Text.
    Text(String),
    /// Text blocks.
    Blocks(Vec<TextBlock>),
}

/// A tool.
#[derive(Clone, Debug, Deserialize, ToSchema)]
pub struct ToolDefinition {
    /// Its name.
    #[schema(pattern = "^[a-zA-Z0-9_-]{1,64}$")]
    pub name: String,
    /// What it does.
    pub description: Option<String>,
    /// Its input's JSON Schema.
    #[schema(value_type = Object)]
    pub input_schema: Value,
}

/// `tool_choice`.
#[derive(Clone, Debug, Deserialize, ToSchema)]
pub struct ToolChoice {
    /// `auto`, `any` (some tool), `tool` (the one named) or `none`.
    #[serde(rename = "type")]
    #[schema(pattern = "^(auto|any|tool|none)$")]
    pub kind: String,
    /// With `tool`: which.
    pub name: Option<String>,
    /// At most one call.
    pub disable_parallel_tool_use: Option<bool>,
}

/// `thinking`.
#[derive(Clone, Debug, Deserialize, ToSchema)]
pub struct Thinking {
    /// `enabled`, `disabled`, or `adaptive` (the template's default).
    #[serde(rename = "type")]
    #[schema(pattern = "^(enabled|disabled|adaptive)$")]
    pub kind: String,
    /// At least 1024; accepted, as the answer's `max_tokens` bounds reasoning and answer
    /// together.
    #[schema(minimum = 1024)]
    pub budget_tokens: Option<i64>,
}

/// A whole answer (`type: "message"`).
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct MessageResponse {
    /// `msg_…`.
    pub id: String,
    /// `message`.
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// `assistant`.
    pub role: &'static str,
    /// The model that answered.
    pub model: String,
    /// Thinking, text and tool use blocks, in order.
    pub content: Vec<OutputBlock>,
    /// `end_turn`, `max_tokens`, `stop_sequence` or `tool_use` (null while streaming).
    pub stop_reason: Option<&'static str>,
    /// The stop sequence that ended the answer.
    pub stop_sequence: Option<String>,
    /// Token counts.
    pub usage: MessageUsage,
}

/// A block of the answer.
#[derive(Clone, Debug, Serialize, ToSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum OutputBlock {
    /// Reasoning.
    Thinking {
        /// The reasoning.
        thinking: String,
        /// Empty: Perch signs nothing.
        signature: String,
    },
    /// Text.
    Text {
        /// The text.
        text: String,
    },
    /// A call.
    ToolUse {
        /// Its id, which the `tool_result` answering it names.
        id: String,
        /// The tool.
        name: String,
        /// Its input.
        #[schema(value_type = Object)]
        input: Value,
    },
}

/// Token counts.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct MessageUsage {
    /// Prompt tokens.
    pub input_tokens: usize,
    /// Generated tokens.
    pub output_tokens: usize,
    /// Prompt tokens read from the prefix cache.
    pub cache_read_input_tokens: usize,
    /// Prompt tokens written to a cache (Perch's cache is automatic: 0).
    pub cache_creation_input_tokens: usize,
}

/// An error: `{"type": "error", "error": {"type": …, "message": …}}`.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct AnthropicError {
    /// `error`.
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// What went wrong.
    pub error: AnthropicErrorDetail,
}

/// The error itself.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct AnthropicErrorDetail {
    /// `invalid_request_error`, `authentication_error`, `permission_error`,
    /// `not_found_error`, `request_too_large`, `rate_limit_error`, `overloaded_error` or
    /// `api_error`.
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// What went wrong.
    pub message: String,
}

impl AnthropicError {
    /// The error answered with `status`, typed as Anthropic types that status.
    pub fn new(status: StatusCode, message: String) -> AnthropicError {
        let kind = match status.as_u16() {
            400 | 422 => "invalid_request_error",
            401 => "authentication_error",
            403 => "permission_error",
            404 => "not_found_error",
            413 => "request_too_large",
            429 => "rate_limit_error",
            503 | 529 => "overloaded_error",
            _ => "api_error",
        };
        AnthropicError {
            kind: "error",
            error: AnthropicErrorDetail { kind, message },
        }
    }
}

/// serde would read a block type given as a number as the variant of that index: each
/// block's `type` must be a string.
fn precheck_block_types(value: &Value) -> Result<(), crate::ApiError> {
    let Some(messages) = value.get("messages").and_then(Value::as_array) else {
        return Ok(());
    };
    for (i, message) in messages.iter().enumerate() {
        let Some(blocks) = message.get("content").and_then(Value::as_array) else {
            continue;
        };
        for (j, block) in blocks.iter().enumerate() {
            if !block.get("type").is_some_and(Value::is_string) {
                return Err(crate::ApiError::invalid_field(
                    &format!("messages[{i}].content[{j}].type"),
                    "a content block's type must be a string such as \"text\"",
                ));
            }
        }
    }
    Ok(())
}

impl crate::extract::RequestBody for MessagesRequest {
    fn precheck(value: &Value) -> Result<(), crate::ApiError> {
        precheck_block_types(value)
    }
}

impl crate::extract::RequestBody for CountTokensRequest {
    fn precheck(value: &Value) -> Result<(), crate::ApiError> {
        precheck_block_types(value)
    }
}
