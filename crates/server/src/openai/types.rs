//! The OpenAI wire types Perch accepts and returns. Unknown request fields are ignored, as
//! clients (LangChain, Continue…) send extras; known fields are checked in `validate`.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};
use utoipa::openapi::schema::{
    ArrayBuilder, ObjectBuilder, OneOfBuilder, Schema, SchemaType, Type,
};
use utoipa::openapi::RefOr;
use utoipa::{PartialSchema, ToSchema};

/// `stop`: one string or a list.
#[derive(Clone, Debug, Deserialize)]
#[serde(untagged)]
pub enum Stop {
    /// One stop string.
    One(String),
    /// Several (at most 4, OpenAI's limit).
    Many(Vec<String>),
    /// Several, from an API family without OpenAI's limit (Anthropic's `stop_sequences`,
    /// Ollama's `stop`): at most [`Stop::MOST_LISTED`], named by the family's `field`.
    #[serde(skip)]
    Listed {
        /// The strings.
        list: Vec<String>,
        /// The request field they came in.
        field: String,
    },
}

impl Stop {
    /// Most stop strings a [`Stop::Listed`] may hold.
    pub const MOST_LISTED: usize = 64;
}

// Written out because utoipa cannot put limits on the variants of an untagged enum.
impl PartialSchema for Stop {
    fn schema() -> RefOr<Schema> {
        OneOfBuilder::new()
            .description(Some("One stop string, or a list of at most 4"))
            .item(ObjectBuilder::new().schema_type(Type::String))
            .item(
                ArrayBuilder::new()
                    .items(ObjectBuilder::new().schema_type(Type::String))
                    .max_items(Some(4)),
            )
            .into()
    }
}

impl ToSchema for Stop {}

/// `stream_options`.
#[derive(Clone, Debug, Default, Deserialize, ToSchema)]
pub struct StreamOptions {
    /// Send a last chunk with token usage before `[DONE]`.
    #[serde(default)]
    pub include_usage: bool,
}

/// Sampling fields shared by both generation endpoints.
#[derive(Clone, Debug, Default, Deserialize, ToSchema)]
pub struct Sampling {
    /// 0–2; 0 is greedy. Default 1.
    #[schema(minimum = 0, maximum = 2)]
    pub temperature: Option<f32>,
    /// (0, 1]. Default 1.
    #[schema(exclusive_minimum = 0, maximum = 1)]
    pub top_p: Option<f32>,
    /// Keep the k most likely tokens (extension; 0 = off).
    #[serde(default, deserialize_with = "super::whole_number::option")]
    pub top_k: Option<u32>,
    /// [0, 1] (extension).
    #[schema(minimum = 0, maximum = 1)]
    pub min_p: Option<f32>,
    /// Seed for reproducible sampling.
    #[serde(default, deserialize_with = "super::whole_number::option")]
    pub seed: Option<u64>,
    /// Stop strings.
    pub stop: Option<Stop>,
    /// Most tokens to generate; the prompt plus these must fit the model's context.
    #[schema(minimum = 1)]
    #[serde(default, deserialize_with = "super::whole_number::option")]
    pub max_tokens: Option<u32>,
    /// −2 to 2.
    #[schema(minimum = -2, maximum = 2)]
    pub presence_penalty: Option<f32>,
    /// −2 to 2.
    #[schema(minimum = -2, maximum = 2)]
    pub frequency_penalty: Option<f32>,
    /// (0, 10] (extension, as in llama.cpp and Ollama; 1 = off).
    #[schema(exclusive_minimum = 0, maximum = 10)]
    pub repetition_penalty: Option<f32>,
    /// Token id (as a string, below the model's vocabulary size) → bias from −100 to 100.
    #[schema(schema_with = logit_bias_schema)]
    pub logit_bias: Option<HashMap<String, f32>>,
    /// Number of choices (answers to the same prompt), each a whole generation.
    #[schema(minimum = 1, maximum = 16)]
    #[serde(default, deserialize_with = "super::whole_number::option")]
    pub n: Option<u32>,
    /// Stream the answer as server-sent events.
    pub stream: Option<bool>,
    /// Streaming options.
    pub stream_options: Option<StreamOptions>,
    /// An end-user id (accepted, logged nowhere).
    pub user: Option<String>,
}

/// A content part of a message; only text parts are supported.
#[derive(Clone, Debug, Deserialize, ToSchema)]
pub struct ContentPart {
    /// `text`.
    #[serde(rename = "type")]
    #[schema(pattern = "^text$")]
    pub kind: String,
    /// The text of a text part. (Optional here so that a part of another type gets a
    /// message naming it, not a parse error.)
    #[schema(required = true, value_type = String)]
    pub text: Option<String>,
}

/// A message's content: a string or a list of parts.
#[derive(Clone, Debug, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum Content {
    /// Plain text.
    Text(String),
    /// Content parts.
    Parts(Vec<ContentPart>),
}

/// One chat message.
#[derive(Clone, Debug, Default, Deserialize, ToSchema)]
pub struct Message {
    /// `system`, `developer`, `user`, `assistant` or `tool`.
    #[schema(pattern = "^(system|developer|user|assistant|tool)$")]
    pub role: String,
    /// The content (may be null on assistant messages with tool calls).
    pub content: Option<Content>,
    /// A participant name.
    pub name: Option<String>,
    /// The calls an assistant message made.
    pub tool_calls: Option<Vec<MessageToolCall>>,
    /// On a `tool` message: the id of the call it answers.
    pub tool_call_id: Option<String>,
    /// An assistant message's reasoning (given to templates that show past reasoning).
    pub reasoning_content: Option<String>,
}

/// A call in an assistant message of the history.
#[derive(Clone, Debug, Deserialize, Serialize, ToSchema)]
pub struct MessageToolCall {
    /// The call's id, which the `tool` message answering it names.
    pub id: String,
    /// `function`.
    #[serde(rename = "type", default = "function_kind")]
    #[schema(pattern = "^function$")]
    pub kind: String,
    /// The function called.
    pub function: FunctionCall,
}

fn function_kind() -> String {
    "function".into()
}

/// A function's name and arguments.
#[derive(Clone, Debug, Deserialize, Serialize, ToSchema)]
pub struct FunctionCall {
    /// The function's name.
    pub name: String,
    /// Its arguments: JSON text of an object.
    pub arguments: String,
}

/// A tool the model may call.
#[derive(Clone, Debug, Deserialize, Serialize, ToSchema)]
pub struct Tool {
    /// `function`.
    #[serde(rename = "type")]
    #[schema(pattern = "^function$")]
    pub kind: String,
    /// The function.
    pub function: FunctionDefinition,
}

/// A function's name, description and parameters.
#[derive(Clone, Debug, Deserialize, Serialize, ToSchema)]
pub struct FunctionDefinition {
    /// Letters, digits, `_` and `-`, at most 64.
    #[schema(pattern = "^[a-zA-Z0-9_-]{1,64}$")]
    pub name: String,
    /// What it does.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Its parameters, as a JSON Schema object.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub parameters: Option<serde_json::Value>,
    /// Hold the arguments to the schema exactly.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub strict: Option<bool>,
}

/// `tool_choice`: `none`, `auto`, `required`, or one named function.
#[derive(Clone, Debug, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum ToolChoice {
    /// `none`, `auto` or `required`.
    Mode(String),
    /// `{"type": "function", "function": {"name": …}}`.
    Named(NamedToolChoice),
}

/// One function the model must call.
#[derive(Clone, Debug, Deserialize, ToSchema)]
pub struct NamedToolChoice {
    /// `function`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Which.
    pub function: ToolName,
}

/// `response_format`.
#[derive(Clone, Debug, Deserialize, ToSchema)]
pub struct ResponseFormat {
    /// `text`, `json_object` or `json_schema`.
    #[serde(rename = "type")]
    #[schema(pattern = "^(text|json_object|json_schema)$")]
    pub kind: String,
    /// With `json_schema`: the schema.
    pub json_schema: Option<JsonSchemaFormat>,
}

/// `response_format.json_schema`.
#[derive(Clone, Debug, Deserialize, ToSchema)]
pub struct JsonSchemaFormat {
    /// The schema's name.
    pub name: Option<String>,
    /// What it is for.
    pub description: Option<String>,
    /// The JSON Schema the answer must match.
    #[schema(value_type = Object)]
    pub schema: Option<serde_json::Value>,
    /// Accepted; Perch always holds the answer to the schema.
    pub strict: Option<bool>,
}

/// A function's name.
#[derive(Clone, Debug, Deserialize, ToSchema)]
pub struct ToolName {
    /// The name.
    pub name: String,
}

/// `POST /v1/chat/completions`.
#[derive(Clone, Debug, Deserialize, ToSchema)]
pub struct ChatCompletionRequest {
    /// A served model's name.
    pub model: String,
    /// The conversation.
    #[schema(min_items = 1)]
    pub messages: Vec<Message>,
    /// Like `max_tokens` (the newer name).
    #[schema(minimum = 1)]
    #[serde(default, deserialize_with = "super::whole_number::option")]
    pub max_completion_tokens: Option<u32>,
    /// Return log-probabilities of the output tokens.
    pub logprobs: Option<bool>,
    /// 0–20 most likely alternatives per token (needs `logprobs`).
    #[schema(maximum = 20)]
    #[serde(default, deserialize_with = "super::whole_number::option")]
    pub top_logprobs: Option<u32>,
    /// Tools the model may call.
    pub tools: Option<Vec<Tool>>,
    /// Whether and which tool to call (default `auto` with tools, `none` without).
    pub tool_choice: Option<ToolChoice>,
    /// Allow several calls in one answer (default true); false keeps the first.
    pub parallel_tool_calls: Option<bool>,
    /// `text` (the default), `json_object`, or `json_schema` with a schema: the answer is
    /// held to it by constrained decoding.
    pub response_format: Option<ResponseFormat>,
    /// Variables for the model's chat template, such as `{"enable_thinking": false}`.
    #[schema(value_type = Option<Object>)]
    pub chat_template_kwargs: Option<serde_json::Map<String, serde_json::Value>>,
    /// Sampling and streaming fields.
    #[serde(flatten)]
    pub sampling: Sampling,
}

/// `prompt`: text, or token ids.
#[derive(Clone, Debug, Deserialize)]
#[serde(untagged)]
pub enum Prompt {
    /// Text.
    Text(String),
    /// A list with one text.
    Texts(Vec<String>),
    /// Token ids.
    Tokens(#[serde(deserialize_with = "super::whole_number::list")] Vec<u32>),
}

impl PartialSchema for Prompt {
    fn schema() -> RefOr<Schema> {
        let text = || {
            ObjectBuilder::new()
                .schema_type(Type::String)
                .min_length(Some(1))
        };
        OneOfBuilder::new()
            .description(Some(
                "Text, a list holding one text, or token ids (each below the model's vocabulary size)",
            ))
            .item(text())
            .item(ArrayBuilder::new().items(text()).min_items(Some(1)).max_items(Some(1)))
            .item(
                ArrayBuilder::new()
                    .items(
                        ObjectBuilder::new()
                            .schema_type(Type::Integer)
                            .minimum(Some(0))
                            .maximum(Some(u32::MAX)),
                    )
                    .min_items(Some(1)),
            )
            .into()
    }
}

impl ToSchema for Prompt {}

/// `POST /v1/completions`.
#[derive(Clone, Debug, Deserialize, ToSchema)]
pub struct CompletionRequest {
    /// A served model's name.
    pub model: String,
    /// The prompt.
    pub prompt: Prompt,
    /// Return log-probabilities with this many alternatives (0–5).
    #[schema(maximum = 5)]
    #[serde(default, deserialize_with = "super::whole_number::option")]
    pub logprobs: Option<u32>,
    /// Give the prompt back before the answer (not with `logprobs`).
    pub echo: Option<bool>,
    /// Sampling and streaming fields.
    #[serde(flatten)]
    pub sampling: Sampling,
}

fn logit_bias_schema() -> ObjectBuilder {
    let token_id = ObjectBuilder::new()
        .schema_type(Type::String)
        .pattern(Some("^[0-9]{1,9}$"));
    let bias = ObjectBuilder::new()
        .schema_type(Type::Number)
        .minimum(Some(-100))
        .maximum(Some(100));
    ObjectBuilder::new()
        .schema_type(SchemaType::from_iter([Type::Object, Type::Null]))
        .property_names(Some(token_id))
        .additional_properties(Some(bias))
        .description(Some(
            "Token id (as a string, below the model's vocabulary size) → bias from −100 to 100",
        ))
}

/// Token counts.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct Usage {
    /// Tokens in the prompt.
    pub prompt_tokens: usize,
    /// Tokens generated.
    pub completion_tokens: usize,
    /// Both.
    pub total_tokens: usize,
    /// Details of the prompt tokens.
    pub prompt_tokens_details: PromptTokensDetails,
}

/// `usage.prompt_tokens_details`.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct PromptTokensDetails {
    /// Prompt tokens served from the prefix cache.
    pub cached_tokens: usize,
}

/// One entry of `/v1/models`.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct ModelObject {
    /// The name to put in `model`.
    pub id: String,
    /// `model`.
    pub object: &'static str,
    /// Load time, Unix seconds.
    pub created: u64,
    /// `perch`.
    pub owned_by: &'static str,
}

/// `GET /v1/models`.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct ModelList {
    /// `list`.
    pub object: &'static str,
    /// The served models.
    pub data: Vec<ModelObject>,
}

impl crate::extract::RequestBody for ChatCompletionRequest {
    fn precheck(value: &serde_json::Value) -> Result<(), crate::ApiError> {
        crate::extract::parse::<Sampling>(value).map(drop)
    }
}

impl crate::extract::RequestBody for CompletionRequest {
    fn precheck(value: &serde_json::Value) -> Result<(), crate::ApiError> {
        crate::extract::parse::<Sampling>(value).map(drop)
    }
}
