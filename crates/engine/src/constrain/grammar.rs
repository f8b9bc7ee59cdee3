//! What a constrained output must be, and its `llguidance` grammar (Lark with embedded
//! JSON schemas). JSON is written compactly but readably (`", "` and `": "`, no free
//! whitespace), so a small model cannot wander off into endless blank lines. Tool calls are
//! written in the model family's own syntax, so the reply parser reads them back as calls.

use llguidance::api::TopLevelGrammar;
use serde_json::{json, Map, Value};

use crate::reply::ToolSyntax;

/// A tool the output may call.
#[derive(Clone, Debug, PartialEq)]
pub struct ToolSpec {
    /// The function's name.
    pub name: String,
    /// Its parameters' JSON schema (any object when absent).
    pub parameters: Option<Value>,
}

/// What the output must be.
#[derive(Clone, Debug, PartialEq)]
pub enum Grammar {
    /// One JSON object.
    JsonObject,
    /// JSON that this schema accepts.
    JsonSchema(Value),
    /// Calls of these tools only (several when `parallel`), nothing else.
    ToolCalls {
        /// The tools that may be called.
        tools: Vec<ToolSpec>,
        /// Allow more than one call.
        parallel: bool,
    },
}

impl Grammar {
    /// The grammar for a model writing calls in `syntax`; `token_id` finds a marker token.
    pub(crate) fn compile(
        &self,
        syntax: ToolSyntax,
        token_id: impl Fn(&str) -> Option<u32>,
    ) -> Result<TopLevelGrammar, String> {
        match self {
            Grammar::JsonObject => Ok(TopLevelGrammar::from_json_schema(with_layout(
                json!({"type": "object"}),
            ))),
            Grammar::JsonSchema(schema) => {
                if !schema.is_object() && !schema.is_boolean() {
                    return Err("the schema must be a JSON object".into());
                }
                Ok(TopLevelGrammar::from_json_schema(with_layout(
                    schema.clone(),
                )))
            }
            Grammar::ToolCalls { tools, parallel } => {
                if tools.is_empty() {
                    return Err("there are no tools to call".into());
                }
                let key = match syntax {
                    ToolSyntax::Llama3Json => "parameters",
                    _ => "arguments",
                };
                let call = with_layout(json!({
                    "anyOf": tools.iter().map(|t| call_schema(t, key)).collect::<Vec<_>>()
                }));
                // More calls after the first, when allowed.
                let more = |separator: &str, rule: &str| {
                    if *parallel {
                        format!("({} {rule})*", lark_string(separator))
                    } else {
                        String::new()
                    }
                };
                let start = match syntax {
                    ToolSyntax::Hermes => format!(
                        "start: block {}\nblock: {} call {}",
                        more("\n", "block"),
                        lark_string("<tool_call>\n"),
                        lark_string("\n</tool_call>")
                    ),
                    ToolSyntax::Llama3Json => format!("start: call {}", more("; ", "call")),
                    ToolSyntax::Mistral => {
                        let marker = token_id("[TOOL_CALLS]")
                            .ok_or("this model's tokenizer has no [TOOL_CALLS] token".to_owned())?;
                        // Tokenizers of v11 and later have [ARGS]: each call is then
                        // `[TOOL_CALLS]name[ARGS]{…}`, as their templates write calls.
                        if let Some(args) = token_id("[ARGS]") {
                            return Ok(TopLevelGrammar::from_lark(mistral_named_calls(
                                tools, *parallel, marker, args,
                            )));
                        }
                        format!(
                            "start: <[{marker}]> \"[\" call {} \"]\"",
                            more(", ", "call")
                        )
                    }
                };
                Ok(TopLevelGrammar::from_lark(format!(
                    "{start}\ncall: %json {call}\n"
                )))
            }
        }
    }
}

/// The schema of one call of `tool`, its arguments under `key`.
fn call_schema(tool: &ToolSpec, key: &str) -> Value {
    let arguments = tool
        .parameters
        .clone()
        .unwrap_or_else(|| json!({"type": "object"}));
    let mut properties = Map::new();
    properties.insert("name".into(), json!({"const": tool.name}));
    properties.insert(key.into(), arguments);
    json!({
        "type": "object",
        "properties": properties,
        "required": ["name", key],
        "additionalProperties": false,
    })
}

/// The grammar of Mistral v11+ calls: each `[TOOL_CALLS]` (token `marker`), a tool's
/// name, `[ARGS]` (token `args`) and its arguments as JSON; one call, or several when
/// `parallel`.
fn mistral_named_calls(tools: &[ToolSpec], parallel: bool, marker: u32, args: u32) -> String {
    let mut lark = format!("start: call{}\n", if parallel { "+" } else { "" });
    let names: Vec<String> = (0..tools.len()).map(|i| format!("tool_{i}")).collect();
    lark += &format!("call: <[{marker}]> ({})\n", names.join(" | "));
    for (rule, tool) in names.iter().zip(tools) {
        let arguments = with_layout(
            tool.parameters
                .clone()
                .unwrap_or_else(|| json!({"type": "object"})),
        );
        lark += &format!(
            "{rule}: {} <[{args}]> %json {arguments}\n",
            lark_string(&tool.name)
        );
    }
    lark
}

/// `schema` with `llguidance`'s layout options: fixed separators, no free whitespace.
fn with_layout(schema: Value) -> Value {
    let layout = json!({
        "whitespace_flexible": false,
        "item_separator": ", ",
        "key_separator": ": ",
    });
    match schema {
        Value::Object(mut map) => {
            map.insert("x-guidance".into(), layout);
            Value::Object(map)
        }
        // `true` accepts anything; `false` nothing, which compiling reports.
        Value::Bool(true) => json!({"x-guidance": layout}),
        other => other,
    }
}

/// `text` as a Lark string literal.
fn lark_string(text: &str) -> String {
    Value::String(text.to_owned()).to_string()
}
