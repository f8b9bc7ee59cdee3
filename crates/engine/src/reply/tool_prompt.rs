//! Tools in the conversation before the template renders it.
//!
//! A template that renders tools gets them as it expects: the `tools` list, and each
//! assistant call's `function.arguments` as an object (OpenAI sends JSON text; Qwen's,
//! Llama's and Mistral's templates print it with `tojson`). Mistral's templates refuse call
//! ids that are not nine letters and digits, so for Mistral every other id (`call_…`,
//! `toolu_…`) is mapped to one, the same for a call and the result that answers it.
//!
//! A template that knows nothing of tools (SmolLM2's, Llama 2's…) gets Perch's own
//! documented format, which the Hermes reader understands:
//! - the tool list goes at the end of the system message (one is added when there is
//!   none), as [`PREAMBLE`], then one JSON line per tool inside `<tools>…</tools>`, then
//!   [`HOW_TO_CALL`];
//! - an assistant turn's calls are appended to its text, each as
//!   `<tool_call>\n{"name": …, "arguments": {…}}\n</tool_call>`;
//! - tool results become a user turn, each result as
//!   `<tool_response>\n…\n</tool_response>` (consecutive results share one turn), since
//!   such templates may refuse a `tool` role.

use serde_json::{Map, Value};

use super::syntax::{ReplySyntax, ToolSyntax};
use crate::text::template::ChatMessage;

/// What the system prompt says before the tool list.
pub const PREAMBLE: &str = "You can call functions to help answer. These are the functions \
you have, one JSON schema per line, between <tools> and </tools>:";

/// What it says after the list.
pub const HOW_TO_CALL: &str = "To call a function, reply with its name and arguments as a JSON \
object between <tool_call> and </tool_call>, like this:\n<tool_call>\n{\"name\": \"function_name\", \
\"arguments\": {\"argument\": \"value\"}}\n</tool_call>\nCall several by writing several blocks. \
Function results come back between <tool_response> and </tool_response>.";

/// `messages` ready for a template: calls' arguments as objects, and, when
/// `template_takes_tools` is false, the tools and calls written into the text as described
/// above.
pub fn prepare(
    messages: &[ChatMessage],
    tools: Option<&Value>,
    syntax: &ReplySyntax,
) -> Vec<ChatMessage> {
    let template_takes_tools = syntax.template_takes_tools;
    let mut messages: Vec<ChatMessage> = messages.iter().map(arguments_as_objects).collect();
    if syntax.tools == ToolSyntax::Mistral {
        messages.iter_mut().for_each(mistral_ids);
    }
    if template_takes_tools {
        return messages;
    }
    let mut out: Vec<ChatMessage> = Vec::with_capacity(messages.len() + 1);
    if let Some(list) = tools.and_then(Value::as_array).filter(|l| !l.is_empty()) {
        let lines: Vec<String> = list.iter().map(Value::to_string).collect();
        let block = format!(
            "{PREAMBLE}\n<tools>\n{}\n</tools>\n{HOW_TO_CALL}",
            lines.join("\n")
        );
        match messages.first() {
            Some(first) if first.role == "system" => {
                let mut system = first.clone();
                system.content = format!("{}\n\n{block}", system.content);
                out.push(system);
            }
            _ => out.push(ChatMessage::new("system", &block)),
        }
    }
    let skip = usize::from(!out.is_empty() && messages.first().is_some_and(|m| m.role == "system"));
    for message in &messages[skip..] {
        match message.role.as_str() {
            "assistant" => out.push(calls_as_text(message)),
            "tool" => {
                let result = format!("<tool_response>\n{}\n</tool_response>", message.content);
                match out.last_mut() {
                    Some(last)
                        if last.role == "user" && last.content.ends_with("</tool_response>") =>
                    {
                        last.content = format!("{}\n{result}", last.content);
                    }
                    _ => out.push(ChatMessage::new("user", &result)),
                }
            }
            _ => out.push(message.clone()),
        }
    }
    out
}

/// `message` with each `tool_calls[].function.arguments` given as JSON text parsed into
/// an object (left as it is when it is not JSON).
fn arguments_as_objects(message: &ChatMessage) -> ChatMessage {
    let mut message = message.clone();
    if let Some(Value::Array(calls)) = message.extra.get_mut("tool_calls") {
        for call in calls {
            if let Some(arguments) = call.pointer_mut("/function/arguments") {
                if let Some(parsed) = arguments
                    .as_str()
                    .and_then(|text| serde_json::from_str::<Value>(text).ok())
                {
                    *arguments = parsed;
                }
            }
        }
    }
    message
}

/// `message` with its call ids (and the id a tool result answers) as nine letters and
/// digits: kept when they are, else derived from the id (FNV-1a, in base 62), so a call
/// and its result still match.
fn mistral_ids(message: &mut ChatMessage) {
    fn nine(id: &str) -> String {
        if id.len() == 9 && id.chars().all(|c| c.is_ascii_alphanumeric()) {
            return id.to_owned();
        }
        const DIGITS: &[u8] = b"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";
        let mut hash = id.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
        });
        (0..9)
            .map(|_| {
                let digit = DIGITS[(hash % 62) as usize] as char;
                hash /= 62;
                digit
            })
            .collect()
    }
    if let Some(Value::String(id)) = message.extra.get_mut("tool_call_id") {
        *id = nine(id);
    }
    if let Some(Value::Array(calls)) = message.extra.get_mut("tool_calls") {
        for call in calls {
            if let Some(Value::String(id)) = call.get_mut("id") {
                *id = nine(id);
            }
        }
    }
}

/// An assistant turn with its calls written into its text, Hermes style.
fn calls_as_text(message: &ChatMessage) -> ChatMessage {
    let mut out = message.clone();
    let Some(Value::Array(calls)) = out.extra.remove("tool_calls") else {
        return out;
    };
    let mut text = out.content.trim_end().to_owned();
    for call in calls {
        let function = call.get("function").cloned().unwrap_or(Value::Null);
        let name = function.get("name").cloned().unwrap_or(Value::Null);
        let arguments = function
            .get("arguments")
            .cloned()
            .unwrap_or(Value::Object(Map::new()));
        // Name first, as the format shows it.
        let written = format!("{{\"name\": {name}, \"arguments\": {arguments}}}");
        if !text.is_empty() {
            text.push('\n');
        }
        text.push_str(&format!("<tool_call>\n{written}\n</tool_call>"));
    }
    out.content = text;
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn assistant_calling() -> ChatMessage {
        let mut m = ChatMessage::new("assistant", "");
        m.extra.insert(
            "tool_calls".into(),
            json!([{"id": "call_1", "type": "function",
                    "function": {"name": "weather", "arguments": "{\"city\": \"Paris\"}"}}]),
        );
        m
    }

    fn syntax(tools: ToolSyntax, template_takes_tools: bool) -> ReplySyntax {
        ReplySyntax {
            tools,
            template_takes_tools,
            reasons: false,
        }
    }

    #[test]
    fn mistral_gets_nine_character_ids_that_still_match() {
        let mut result = ChatMessage::new("tool", "18 C");
        result.extra.insert("tool_call_id".into(), "call_1".into());
        let mut kept = ChatMessage::new("tool", "sunny");
        kept.extra.insert("tool_call_id".into(), "a1B2c3D4e".into());
        let out = prepare(
            &[assistant_calling(), result, kept],
            None,
            &syntax(ToolSyntax::Mistral, true),
        );
        let id = out[0].extra["tool_calls"][0]["id"].as_str().unwrap();
        assert!(
            id.len() == 9 && id.chars().all(|c| c.is_ascii_alphanumeric()),
            "{id}"
        );
        assert_eq!(out[1].extra["tool_call_id"], id);
        assert_eq!(out[2].extra["tool_call_id"], "a1B2c3D4e");
        // Other families keep the ids they were given.
        let out = prepare(
            &[assistant_calling()],
            None,
            &syntax(ToolSyntax::Hermes, true),
        );
        assert_eq!(out[0].extra["tool_calls"][0]["id"], "call_1");
    }

    #[test]
    fn a_template_with_tools_gets_arguments_as_objects() {
        let out = prepare(
            &[assistant_calling()],
            None,
            &syntax(ToolSyntax::Hermes, true),
        );
        assert_eq!(
            out[0].extra["tool_calls"][0]["function"]["arguments"],
            json!({"city": "Paris"})
        );
    }

    #[test]
    fn a_template_without_tools_gets_them_written_in() {
        let tools = json!([{"type": "function", "function": {"name": "weather"}}]);
        let messages = [
            ChatMessage::new("system", "Be brief."),
            ChatMessage::new("user", "Weather in Paris?"),
            assistant_calling(),
            ChatMessage::new("tool", "18 C"),
            ChatMessage::new("tool", "sunny"),
        ];
        let out = prepare(&messages, Some(&tools), &syntax(ToolSyntax::Hermes, false));
        let roles: Vec<&str> = out.iter().map(|m| m.role.as_str()).collect();
        assert_eq!(roles, ["system", "user", "assistant", "user"]);
        assert!(out[0]
            .content
            .starts_with("Be brief.\n\nYou can call functions"));
        assert!(out[0]
            .content
            .contains(&format!("<tools>\n{}\n</tools>", tools[0])));
        assert_eq!(
            out[2].content,
            "<tool_call>\n{\"name\": \"weather\", \"arguments\": {\"city\":\"Paris\"}}\n</tool_call>"
        );
        assert!(!out[2].extra.contains_key("tool_calls"));
        assert_eq!(
            out[3].content,
            "<tool_response>\n18 C\n</tool_response>\n<tool_response>\nsunny\n</tool_response>"
        );
        // No system message: one is added.
        let out = prepare(
            &messages[1..2],
            Some(&tools),
            &syntax(ToolSyntax::Hermes, false),
        );
        assert_eq!(out[0].role, "system");
        assert_eq!(out[1].content, "Weather in Paris?");
    }
}
