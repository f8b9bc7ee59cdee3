//! Constrained decoding on the real SmolLM2: sampled at temperature 1 over several seeds,
//! the output always parses and holds to its schema, tool calls always read back as calls
//! of the offered tools, and a schema the constraint cannot hold to is refused with its
//! reason before anything runs.

mod common;

use common::test_model;
use perch_engine::constrain::{Grammar, ToolSpec};
use perch_engine::generate::{Event, GenerateRequest};
use perch_engine::reply::{ReplyPart, ToolSyntax};
use perch_engine::sampler::SamplingParams;
use perch_engine::text::chat_prompt::ChatInput;
use perch_engine::text::template::ChatMessage;
use perch_engine::{Engine, EngineError, MlxEngine, ModelEngine};
use perch_test_support::person_schema;
use serde_json::{json, Value};
use std::sync::OnceLock;

fn engine() -> &'static ModelEngine {
    static ENGINE: OnceLock<ModelEngine> = OnceLock::new();
    ENGINE.get_or_init(|| MlxEngine::load(&test_model()).expect("SmolLM2 loads"))
}

/// Samples an answer to `question` under `grammar` with `seed` (greedy when `None`); its
/// text.
fn sample(question: &str, grammar: &Grammar, seed: Option<u64>) -> String {
    let e = engine();
    let prompt = e
        .chat(&ChatInput::messages(&[ChatMessage::new("user", question)]))
        .unwrap();
    let request = GenerateRequest {
        prompt: prompt.tokens,
        sampling: SamplingParams {
            temperature: if seed.is_some() { 1.0 } else { 0.0 },
            seed,
            ..Default::default()
        },
        max_tokens: 200,
        constraint: Some(e.constrain(grammar).unwrap()),
        ..Default::default()
    };
    let mut text = String::new();
    for event in e.generate(request).unwrap() {
        match event.unwrap() {
            Event::Chunk { text: t, .. } => text.push_str(&t),
            Event::Done(done) => assert!(done.constraint_time > std::time::Duration::ZERO),
        }
    }
    text
}

#[test]
fn sampled_output_always_holds_to_the_schema() {
    for seed in 0..5 {
        let text = sample(
            "Describe a person as JSON.",
            &Grammar::JsonSchema(person_schema::schema()),
            Some(seed),
        );
        person_schema::assert_holds(&text);
    }
    // Any object: unbounded, so greedy (a sampled one may ramble to the token limit).
    let text = sample("Say hi.", &Grammar::JsonObject, None);
    assert!(
        serde_json::from_str::<Value>(&text).unwrap().is_object(),
        "{text}"
    );
}

#[test]
fn forced_tool_calls_read_back_as_calls() {
    let e = engine();
    assert_eq!(e.info().reply_syntax.tools, ToolSyntax::Hermes);
    let grammar = Grammar::ToolCalls {
        tools: vec![
            ToolSpec {
                name: "get_weather".into(),
                parameters: Some(json!({
                    "type": "object",
                    "properties": {"city": {"type": "string", "maxLength": 30}},
                    "required": ["city"],
                })),
            },
            ToolSpec {
                name: "get_time".into(),
                parameters: None,
            },
        ],
        parallel: false,
    };
    let tools = json!([{"type": "function", "function": {"name": "get_weather"}}]);
    for seed in 0..3 {
        let text = sample("What is the weather in Paris?", &grammar, Some(seed));
        let messages = [ChatMessage::new("user", "x")];
        let mut reply = e
            .chat(&ChatInput {
                messages: &messages,
                tools: Some(&tools),
                ..Default::default()
            })
            .unwrap()
            .reply;
        let mut parts = reply.push(&text);
        parts.extend(reply.finish());
        let [ReplyPart::ToolCall(call)] = parts.as_slice() else {
            panic!("one call, nothing else: {parts:?} from {text:?}")
        };
        let arguments: Value = serde_json::from_str(&call.arguments).unwrap();
        match call.name.as_str() {
            "get_weather" => assert!(arguments["city"].is_string(), "{text}"),
            "get_time" => assert!(arguments.is_object()),
            other => panic!("a tool that was not offered: {other}"),
        }
    }
}

#[test]
fn a_schema_the_constraint_cannot_hold_to_is_refused_with_its_reason() {
    let e = engine();
    for (schema, says) in [
        (
            json!({"type": "object", "properties": {"a": {"$ref": "https://example.com/s.json"}}}),
            "example.com",
        ),
        (json!({"type": "strin"}), "strin"),
        (json!(5), "JSON object"),
    ] {
        match e.constrain(&Grammar::JsonSchema(schema.clone())) {
            Err(EngineError::InvalidRequest(why)) => assert!(why.contains(says), "{schema}: {why}"),
            Err(other) => panic!("{schema}: {other}"),
            Ok(_) => panic!("{schema} was accepted"),
        }
    }
}

/// SmolLM2's tokenizer with `added` (special) tokens put after its vocabulary.
fn tokenizer_with(added: &[&str]) -> perch_engine::text::tokenizer::Tokenizer {
    let files = perch_engine::format::read(&test_model()).unwrap();
    let mut value: Value = serde_json::from_str(&files.tokenizer_json).unwrap();
    let list = value["added_tokens"].as_array_mut().unwrap();
    let first_id = 49_152 + list.len() as u64;
    for (id, content) in (first_id..).zip(added) {
        list.push(json!({
            "id": id, "content": content, "single_word": false, "lstrip": false,
            "rstrip": false, "normalized": false, "special": true,
        }));
    }
    perch_engine::text::tokenizer::Tokenizer::from_json(&value.to_string(), None, None).unwrap()
}

#[test]
fn forced_calls_are_written_as_each_family_writes_them() {
    use perch_engine::constrain::Vocabulary;
    use perch_engine::reply::{ReplyParser, ReplySyntax};
    let grammar = Grammar::ToolCalls {
        tools: vec![ToolSpec {
            name: "get_weather".into(),
            parameters: Some(json!({
                "type": "object",
                "properties": {"city": {"type": "string"}},
                "required": ["city"],
            })),
        }],
        parallel: true,
    };
    // Each family's calls as its own template and documentation write them, the calls a
    // grammar must refuse (another tool, a missing argument), and the tokens it needs.
    let cases: [(ToolSyntax, &[&str], &str, &str); 4] = [
        (
            ToolSyntax::Hermes,
            &[],
            "<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\"}}\n</tool_call>",
            "<tool_call>\n{\"name\": \"get_time\", \"arguments\": {}}\n</tool_call>",
        ),
        (
            ToolSyntax::Llama3Json,
            &["<|python_tag|>"],
            "{\"name\": \"get_weather\", \"parameters\": {\"city\": \"Paris\"}}",
            "{\"name\": \"get_weather\", \"parameters\": {}}",
        ),
        (
            ToolSyntax::Mistral,
            &["[TOOL_CALLS]"],
            "[TOOL_CALLS][{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\"}}, \
             {\"name\": \"get_weather\", \"arguments\": {\"city\": \"Rome\"}}]",
            "[TOOL_CALLS][{\"name\": \"get_weather\", \"arguments\": {\"town\": \"Paris\"}}]",
        ),
        (
            ToolSyntax::Mistral,
            &["[TOOL_CALLS]", "[ARGS]"],
            "[TOOL_CALLS]get_weather[ARGS]{\"city\": \"Paris\"}[TOOL_CALLS]get_weather[ARGS]{\"city\": \"Rome\"}",
            "[TOOL_CALLS][{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\"}}]",
        ),
    ];
    for (syntax, added, written, refused) in cases {
        let tokenizer = tokenizer_with(added);
        let vocabulary = Vocabulary::new(&tokenizer, 0).unwrap();
        let constraint = vocabulary
            .compile(&grammar, syntax, |t| tokenizer.token_id(t))
            .unwrap();
        let tokens = |text: &str| tokenizer.encode(text, false).unwrap();
        assert!(
            constraint.accepts(&tokens(written)),
            "{syntax:?}: {written}"
        );
        assert!(
            !constraint.accepts(&tokens(refused)),
            "{syntax:?}: {refused}"
        );
        // What the grammar lets through, the reply parser reads back as calls.
        let reply = ReplySyntax {
            tools: syntax,
            template_takes_tools: true,
            reasons: false,
        };
        let mut parser = ReplyParser::new(reply, true, false);
        let mut parts = parser.push(written);
        parts.extend(parser.finish());
        assert!(
            !parts.is_empty()
                && parts.iter().all(|p| matches!(p,
                    ReplyPart::ToolCall(c) if c.name == "get_weather")),
            "{syntax:?}: {parts:?}"
        );
    }
}
