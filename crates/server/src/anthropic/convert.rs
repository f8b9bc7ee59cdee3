//! An Anthropic request as the OpenAI chat request the rest of the server validates and
//! runs: the system prompt first; `tool_result` blocks as `tool` messages (before the text
//! of their user turn, as Anthropic orders them); `tool_use` blocks as an assistant's
//! `tool_calls`; `thinking` blocks as its reasoning; tools and `tool_choice` mapped one to
//! one (`any` is `required`); `thinking` as the template's `enable_thinking`.

use serde_json::{Map, Value};

use super::types::{
    InputBlock, InputMessage, MessageContent, SystemPrompt, TextBlock, Thinking, ToolChoice,
    ToolDefinition, ToolResultContent,
};
use crate::openai::types::{
    ChatCompletionRequest, Content, FunctionCall, FunctionDefinition, Message, MessageToolCall,
    NamedToolChoice, Sampling, Tool, ToolChoice as OpenAiToolChoice, ToolName,
};
use crate::ApiError;

/// What a messages request and a token count share.
pub(crate) struct Conversation<'a> {
    pub model: String,
    pub messages: &'a [InputMessage],
    pub system: Option<&'a SystemPrompt>,
    pub tools: Option<&'a [ToolDefinition]>,
    pub tool_choice: Option<&'a ToolChoice>,
    pub thinking: Option<&'a Thinking>,
}

/// The chat request for `conversation`, sampled as `sampling` says.
pub(crate) fn chat_request(
    conversation: Conversation<'_>,
    sampling: Sampling,
) -> Result<ChatCompletionRequest, ApiError> {
    let mut messages = Vec::new();
    match conversation.system {
        Some(SystemPrompt::Text(text)) => messages.push(text_message("system", text.clone())),
        Some(SystemPrompt::Blocks(blocks)) => {
            messages.push(text_message("system", texts("system", blocks)?));
        }
        None => {}
    }
    for (i, message) in conversation.messages.iter().enumerate() {
        turn(i, message, &mut messages)?;
    }
    let (tool_choice, parallel_tool_calls) = match conversation.tool_choice {
        None => (None, None),
        Some(choice) => tool_choice(choice)?,
    };
    Ok(ChatCompletionRequest {
        model: conversation.model,
        messages,
        max_completion_tokens: None,
        logprobs: None,
        top_logprobs: None,
        tools: conversation
            .tools
            .map(|tools| tools.iter().map(tool).collect()),
        tool_choice,
        parallel_tool_calls,
        response_format: None,
        chat_template_kwargs: conversation.thinking.map(thinking).transpose()?.flatten(),
        sampling,
    })
}

fn text_message(role: &str, text: String) -> Message {
    Message {
        role: role.into(),
        content: Some(Content::Text(text)),
        ..Message::default()
    }
}

/// Appends the messages of turn `i`.
fn turn(i: usize, message: &InputMessage, out: &mut Vec<Message>) -> Result<(), ApiError> {
    // Claude Code sends `system` turns inside the conversation too.
    let role = message.role.as_str();
    if !["user", "assistant", "system"].contains(&role) {
        return Err(ApiError::invalid_field(
            &format!("messages[{i}].role"),
            format!("unknown role {role:?}: use user, assistant or system"),
        ));
    }
    let blocks = match &message.content {
        MessageContent::Text(text) => {
            out.push(text_message(role, text.clone()));
            return Ok(());
        }
        MessageContent::Blocks(blocks) => blocks,
    };
    let mut text = Vec::new();
    let mut calls = Vec::new();
    let mut reasoning = Vec::new();
    for (j, block) in blocks.iter().enumerate() {
        let field = || format!("messages[{i}].content[{j}]");
        match (role, block) {
            (_, InputBlock::Text { text: t }) => text.push(t.clone()),
            ("assistant", InputBlock::ToolUse { id, name, input }) => calls.push(MessageToolCall {
                id: id.clone(),
                kind: "function".into(),
                function: FunctionCall {
                    name: name.clone(),
                    arguments: input.to_string(),
                },
            }),
            (
                "user",
                InputBlock::ToolResult {
                    tool_use_id,
                    content,
                    is_error,
                },
            ) => {
                let result = match content {
                    None => String::new(),
                    Some(ToolResultContent::Text(t)) => t.clone(),
                    Some(ToolResultContent::Blocks(blocks)) => {
                        texts(&format!("{}.content", field()), blocks)?
                    }
                };
                let result = if *is_error == Some(true) {
                    format!("Error: {result}")
                } else {
                    result
                };
                out.push(Message {
                    role: "tool".into(),
                    content: Some(Content::Text(result)),
                    tool_call_id: Some(tool_use_id.clone()),
                    ..Message::default()
                });
            }
            ("assistant", InputBlock::Thinking { thinking }) => reasoning.push(thinking.clone()),
            (_, InputBlock::RedactedThinking { .. }) => {}
            (_, InputBlock::Image { .. }) => {
                return Err(ApiError::invalid_field(
                    &field(),
                    "images are not supported: Perch's models read text",
                ))
            }
            (_, other) => {
                return Err(ApiError::invalid_field(
                    &field(),
                    format!("a {} block cannot be in a {role} turn", block_name(other)),
                ))
            }
        }
    }
    if text.is_empty() && calls.is_empty() && reasoning.is_empty() {
        return Ok(());
    }
    out.push(Message {
        role: role.into(),
        content: Some(Content::Text(text.join("\n"))),
        tool_calls: (!calls.is_empty()).then_some(calls),
        reasoning_content: (!reasoning.is_empty()).then(|| reasoning.join("\n")),
        ..Message::default()
    });
    Ok(())
}

/// The text of text blocks, one per line; `field` names them in errors.
fn texts(field: &str, blocks: &[TextBlock]) -> Result<String, ApiError> {
    if let Some((i, block)) = blocks.iter().enumerate().find(|(_, b)| b.kind != "text") {
        return Err(ApiError::invalid_field(
            &format!("{field}[{i}].type"),
            format!("only text blocks can be here, not {:?}", block.kind),
        ));
    }
    let texts: Vec<&str> = blocks.iter().map(|b| b.text.as_str()).collect();
    Ok(texts.join("\n"))
}

fn block_name(block: &InputBlock) -> &'static str {
    match block {
        InputBlock::Text { .. } => "text",
        InputBlock::ToolUse { .. } => "tool_use",
        InputBlock::ToolResult { .. } => "tool_result",
        InputBlock::Thinking { .. } => "thinking",
        InputBlock::RedactedThinking { .. } => "redacted_thinking",
        InputBlock::Image { .. } => "image",
    }
}

fn tool(definition: &ToolDefinition) -> Tool {
    Tool {
        kind: "function".into(),
        function: FunctionDefinition {
            name: definition.name.clone(),
            description: definition.description.clone(),
            parameters: Some(definition.input_schema.clone()),
            strict: None,
        },
    }
}

fn tool_choice(choice: &ToolChoice) -> Result<(Option<OpenAiToolChoice>, Option<bool>), ApiError> {
    let mode = |m: &str| Some(OpenAiToolChoice::Mode(m.into()));
    let chosen = match choice.kind.as_str() {
        "auto" => mode("auto"),
        "any" => mode("required"),
        "none" => mode("none"),
        "tool" => {
            let name = choice.name.clone().ok_or_else(|| {
                ApiError::invalid_field("tool_choice.name", "tool_choice of type tool needs a name")
            })?;
            Some(OpenAiToolChoice::Named(NamedToolChoice {
                kind: "function".into(),
                function: ToolName { name },
            }))
        }
        other => {
            return Err(ApiError::invalid_field(
                "tool_choice.type",
                format!("unknown tool_choice type {other:?}: use auto, any, tool or none"),
            ))
        }
    };
    let parallel = choice.disable_parallel_tool_use.map(|disable| !disable);
    Ok((chosen, parallel))
}

/// The template variable for `thinking`: `enabled` and `disabled` turn the model's thinking
/// on and off; `adaptive` (Claude Code's default) leaves the template's default.
fn thinking(thinking: &Thinking) -> Result<Option<Map<String, Value>>, ApiError> {
    if let Some(budget) = thinking.budget_tokens.filter(|&b| b < 1024) {
        return Err(ApiError::invalid_field(
            "thinking.budget_tokens",
            format!("budget_tokens must be at least 1024, got {budget}"),
        ));
    }
    let enable = match thinking.kind.as_str() {
        "enabled" => true,
        "disabled" => false,
        "adaptive" => return Ok(None),
        other => {
            return Err(ApiError::invalid_field(
                "thinking.type",
                format!("unknown thinking type {other:?}: use enabled, disabled or adaptive"),
            ))
        }
    };
    Ok(Some(Map::from_iter([(
        "enable_thinking".to_owned(),
        Value::Bool(enable),
    )])))
}
