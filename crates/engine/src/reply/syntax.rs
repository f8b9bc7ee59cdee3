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
//! a model whose template has none ([`super::tool_prompt`]). Reasoning is `<think>…</think>`.

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
    pub fn detect(template: Option<&str>, has_token: impl Fn(&str) -> bool) -> ReplySyntax {
        let template = template.unwrap_or("");
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
            template_takes_tools: template.contains("tools"),
            reasons: template.contains("<think>") || has_token("<think>"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn families_are_told_apart_by_their_templates() {
        let none = |_: &str| false;
        let qwen =
            "{%- if tools %}<tools>{{ tool | tojson }}</tools>{% endif %}<tool_call>\n<think>";
        let syntax = ReplySyntax::detect(Some(qwen), none);
        assert_eq!(syntax.tools, ToolSyntax::Hermes);
        assert!(syntax.template_takes_tools && syntax.reasons);
        let llama = "{%- if tools is not none %}{{- '<|python_tag|>' }}{% endif %}ipython";
        assert_eq!(
            ReplySyntax::detect(Some(llama), none).tools,
            ToolSyntax::Llama3Json
        );
        let mistral = "{%- if tools %}[AVAILABLE_TOOLS]{% endif %}[TOOL_CALLS]";
        assert_eq!(
            ReplySyntax::detect(Some(mistral), none).tools,
            ToolSyntax::Mistral
        );
        let chatml = "{% for m in messages %}<|im_start|>{{ m.role }}{% endfor %}";
        let plain = ReplySyntax::detect(Some(chatml), |t| t == "<think>");
        assert_eq!(plain.tools, ToolSyntax::Hermes);
        assert!(!plain.template_takes_tools);
        assert!(plain.reasons, "a <think> token is enough");
    }
}
