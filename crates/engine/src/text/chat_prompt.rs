//! A chat turned into prompt tokens and a reader for the reply. Tools are put where the
//! template wants them ([`crate::reply::tool_prompt`]); every string the request supplied
//! (message text, tool calls, tool definitions) is defused (see [`super::untrusted`]); the
//! model's template renders the chat; and the prompt is tokenized so that only the
//! template's own markup yields control tokens.

use serde_json::{Map, Value};

use super::template::{ChatMessage, ChatTemplate, TemplateContext};
use super::tokenizer::Tokenizer;
use super::untrusted::MarkedText;
use crate::reply::{tool_prompt, ReplyParser, ReplySyntax};
use crate::Result;

/// A chat to render.
#[derive(Clone, Copy, Debug, Default)]
pub struct ChatInput<'a> {
    /// The conversation.
    pub messages: &'a [ChatMessage],
    /// Tools offered (OpenAI's `tools` list); the reply is read for calls when there are.
    pub tools: Option<&'a Value>,
    /// Variables for the template (`enable_thinking`…), as vLLM's `chat_template_kwargs`.
    pub template_kwargs: Option<&'a Map<String, Value>>,
    /// The output is constrained (a grammar decides it from the first token, so it is never
    /// read as reasoning even when the prompt opens a `<think>`).
    pub constrained: bool,
}

impl<'a> ChatInput<'a> {
    /// Just `messages`.
    pub fn messages(messages: &'a [ChatMessage]) -> Self {
        ChatInput {
            messages,
            ..Default::default()
        }
    }

    fn offers_tools(&self) -> bool {
        self.tools
            .and_then(Value::as_array)
            .is_some_and(|t| !t.is_empty())
    }
}

/// A chat's prompt, and the parser its reply goes through.
pub struct ChatPrompt {
    /// The prompt's tokens.
    pub tokens: Vec<u32>,
    /// Reads the reply into text, reasoning and tool calls.
    pub reply: ReplyParser,
}

/// The model's text side, as a chat needs it.
#[derive(Clone, Copy)]
pub struct ChatText<'a> {
    /// The tokenizer.
    pub tokenizer: &'a Tokenizer,
    /// The chat template.
    pub template: &'a ChatTemplate,
    /// How replies are written.
    pub syntax: ReplySyntax,
}

impl ChatText<'_> {
    /// The rendered prompt of `input`, ready for [`Tokenizer::encode_chat`].
    pub fn render(&self, input: &ChatInput<'_>) -> Result<MarkedText> {
        let tools = input.tools.filter(|_| input.offers_tools());
        let tokenizer = self.tokenizer;
        let messages: Vec<ChatMessage> = tool_prompt::prepare(input.messages, tools, &self.syntax)
            .into_iter()
            .map(|m| ChatMessage {
                role: m.role,
                content: tokenizer.defuse(&m.content),
                extra: m
                    .extra
                    .iter()
                    .map(|(k, v)| (k.clone(), defuse_strings(tokenizer, v)))
                    .collect(),
            })
            .collect();
        let template_tools = tools
            .filter(|_| self.syntax.template_takes_tools)
            .map(|t| defuse_strings(tokenizer, t));
        let kwargs = input.template_kwargs.map(|k| {
            k.iter()
                .map(|(key, v)| (tokenizer.defuse(key), defuse_strings(tokenizer, v)))
                .collect::<Map<String, Value>>()
        });
        let rendered = self.template.render(
            &messages,
            &TemplateContext {
                add_generation_prompt: true,
                bos_token: tokenizer.bos_token(),
                eos_token: tokenizer.eos_token(),
                tools: template_tools.as_ref(),
                kwargs: kwargs.as_ref(),
            },
        )?;
        Ok(MarkedText::parse(&rendered))
    }

    /// The prompt of `input` and the parser for its reply.
    pub fn prompt(&self, input: &ChatInput<'_>) -> Result<ChatPrompt> {
        let rendered = self.render(input)?;
        let starts_in_reasoning = self.syntax.reasons
            && !input.constrained
            && rendered.text.trim_end().ends_with("<think>");
        Ok(ChatPrompt {
            tokens: self.tokenizer.encode_chat(&rendered)?,
            reply: ReplyParser::new(self.syntax, input.offers_tools(), starts_in_reasoning),
        })
    }
}

/// `value` with every string in it defused, keys too (a mark lands only where an added
/// token is written, so the keys templates look up, `name` or `type`, stay as they are).
fn defuse_strings(tokenizer: &Tokenizer, value: &Value) -> Value {
    match value {
        Value::String(s) => Value::String(tokenizer.defuse(s)),
        Value::Array(items) => items.iter().map(|v| defuse_strings(tokenizer, v)).collect(),
        Value::Object(map) => map
            .iter()
            .map(|(k, v)| (tokenizer.defuse(k), defuse_strings(tokenizer, v)))
            .collect(),
        other => other.clone(),
    }
}
