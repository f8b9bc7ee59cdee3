//! A chat turned into prompt tokens. Every string the request supplied (message text, tool
//! calls, tool definitions) is defused (see [`super::untrusted`]), the model's template
//! renders the chat, and the prompt is tokenized so that only the template's own markup
//! yields control tokens.

use serde_json::Value;

use super::template::{ChatMessage, ChatTemplate, TemplateContext};
use super::tokenizer::Tokenizer;
use super::untrusted::MarkedText;
use crate::Result;

/// The rendered prompt of `messages`, with `tools` for templates that take them, ready for
/// [`Tokenizer::encode_chat`].
pub fn render(
    tokenizer: &Tokenizer,
    template: &ChatTemplate,
    messages: &[ChatMessage],
    tools: Option<&Value>,
) -> Result<MarkedText> {
    let messages: Vec<ChatMessage> = messages
        .iter()
        .map(|m| ChatMessage {
            role: m.role.clone(),
            content: tokenizer.defuse(&m.content),
            extra: m
                .extra
                .iter()
                .map(|(k, v)| (k.clone(), defuse_strings(tokenizer, v)))
                .collect(),
        })
        .collect();
    let tools = tools.map(|t| defuse_strings(tokenizer, t));
    let rendered = template.render(
        &messages,
        &TemplateContext {
            add_generation_prompt: true,
            bos_token: tokenizer.bos_token(),
            eos_token: tokenizer.eos_token(),
            tools: tools.as_ref(),
        },
    )?;
    Ok(MarkedText::parse(&rendered))
}

/// Token ids of the chat: [`render`], then [`Tokenizer::encode_chat`].
pub fn tokens(
    tokenizer: &Tokenizer,
    template: &ChatTemplate,
    messages: &[ChatMessage],
    tools: Option<&Value>,
) -> Result<Vec<u32>> {
    tokenizer.encode_chat(&render(tokenizer, template, messages, tools)?)
}

/// `value` with every string in it defused (keys stay as they are: templates look them up).
fn defuse_strings(tokenizer: &Tokenizer, value: &Value) -> Value {
    match value {
        Value::String(s) => Value::String(tokenizer.defuse(s)),
        Value::Array(items) => items.iter().map(|v| defuse_strings(tokenizer, v)).collect(),
        Value::Object(map) => map
            .iter()
            .map(|(k, v)| (k.clone(), defuse_strings(tokenizer, v)))
            .collect(),
        other => other.clone(),
    }
}
