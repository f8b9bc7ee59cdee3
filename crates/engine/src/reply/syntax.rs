//! How a model family writes tool calls and reasoning, detected once at load from its chat
//! template and tokenizer.
//!
//! | family | tool call | detected by |
//! | --- | --- | --- |
//! | Hermes (Qwen2.5, Qwen3, SmolLM3, Hermes) | `<tool_call>{"name":…,"arguments":{…}}</tool_call>` | `<tool_call>` in the template |
//! | Llama 3.1+ | `{"name":…,"parameters":{…}}` as the whole reply, or after `<\|python_tag\|>` | `<\|python_tag\|>` or `ipython` in the template |
//! | Mistral | `[TOOL_CALLS][{"name":…,"arguments":{…}}]`, or `[TOOL_CALLS]name[ARGS]{…}` | `[TOOL_CALLS]` in the template |
//!
//! Anything else reads calls the Hermes way, which is also how Perch itself shows tools to
//! a model whose template has none ([`super::tool_prompt`]); whether a template shows tools
//! is found by rendering a chat with a probe tool. Reasoning is `<think>…</think>`.

use crate::text::template::{ChatMessage, ChatTemplate, TemplateContext};

/// The way a family writes tool calls.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ToolSyntax {
    /// `<tool_call>…</tool_call>` blocks.
    Hermes,
    /// A JSON object (or several) as the whole reply.
    Llama3Json,
    /// `[TOOL_CALLS]` then the calls.
    Mistral,
}

/// What a model's replies may hold besides text.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReplySyntax {
    /// How tool calls are written.
    pub tools: ToolSyntax,
    /// Whether the template renders a `tools` list itself (else Perch puts the tools in the
    /// system prompt).
    pub template_takes_tools: bool,
    /// Whether the model reasons in `<think>…</think>` before answering.
    pub reasons: bool,
}

/// Markers that must survive decoding as text so the reply parser sees them, even where a
/// tokenizer declares them special (Mistral's `[TOOL_CALLS]`, Llama's `<|python_tag|>`).
pub const MARKERS: &[&str] = &[
    "<tool_call>",
    "</tool_call>",
    "[TOOL_CALLS]",
    "[ARGS]",
    "[CALL_ID]",
    "<|python_tag|>",
    "<think>",
    "</think>",
];

impl ReplySyntax {
    /// The syntax of a model with chat template `template` (if any); `has_token` says
    /// whether its vocabulary holds a token.
    pub fn detect(
        template: Option<&ChatTemplate>,
        has_token: impl Fn(&str) -> bool,
    ) -> ReplySyntax {
        let template_takes_tools = template.is_some_and(renders_tools);
        let template = template.map_or("", ChatTemplate::source);
        let tools = if template.contains("[TOOL_CALLS]") {
            ToolSyntax::Mistral
        } else if template.contains("<tool_call>") {
            ToolSyntax::Hermes
        } else if template.contains("<|python_tag|>") || template.contains("ipython") {
            ToolSyntax::Llama3Json
        } else {
            ToolSyntax::Hermes
        };
        ReplySyntax {
            tools,
            template_takes_tools,
            reasons: template.contains("<think>") || has_token("<think>"),
        }
    }
}

/// Whether `template` shows a `tools` list: a chat rendered with a probe tool names it.
fn renders_tools(template: &ChatTemplate) -> bool {
    const PROBE: &str = "perch_probe_tool_7d1f";
    let tools = serde_json::json!([{"type": "function", "function": {
        "name": PROBE, "description": "", "parameters": {"type": "object", "properties": {}}}}]);
    let context = TemplateContext {
        add_generation_prompt: true,
        tools: Some(&tools),
        ..TemplateContext::default()
    };
    template
        .render(&[ChatMessage::new("user", "hi")], &context)
        .is_ok_and(|text| text.contains(PROBE))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn detect(source: &str, has_token: impl Fn(&str) -> bool) -> ReplySyntax {
        ReplySyntax::detect(Some(&ChatTemplate::new(source).unwrap()), has_token)
    }

    #[test]
    fn families_are_told_apart_by_their_templates() {
        let none = |_: &str| false;
        let qwen = "{%- if tools %}<tools>{% for tool in tools %}{{ tool | tojson }}{% endfor %}</tools>{% endif %}<tool_call>\n<think>";
        let syntax = detect(qwen, none);
        assert_eq!(syntax.tools, ToolSyntax::Hermes);
        assert!(syntax.template_takes_tools && syntax.reasons);
        let llama = "{%- if tools is not none %}{{- '<|python_tag|>' }}{% endif %}ipython";
        assert_eq!(detect(llama, none).tools, ToolSyntax::Llama3Json);
        assert!(
            !detect(llama, none).template_takes_tools,
            "it never prints them"
        );
        let mistral = "{%- if tools %}[AVAILABLE_TOOLS]{{ tools | tojson }}{% endif %}[TOOL_CALLS]";
        assert_eq!(detect(mistral, none).tools, ToolSyntax::Mistral);
        assert!(detect(mistral, none).template_takes_tools);
        // Names tools in a comment only: it does not show them.
        let chatml = "{# tools #}{% for m in messages %}<|im_start|>{{ m.role }}{% endfor %}";
        let plain = detect(chatml, |t| t == "<think>");
        assert_eq!(plain.tools, ToolSyntax::Hermes);
        assert!(!plain.template_takes_tools);
        assert!(plain.reasons, "a <think> token is enough");
    }
}
