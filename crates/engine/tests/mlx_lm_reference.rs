//! Correctness against the reference implementation: SmolLM2, imported to MLX format with
//! `perch import`, must give the same prompt tokens, the same greedy 32-token outputs and
//! first-token top-5 log-probabilities within 0.02 as the `mlx-lm` package on the same
//! files and the same MLX release. The GGUF path must give the same tokens as the MLX path.

mod common;

use common::{mlx_lm_reference as reference, test_model};
use perch_engine::generate::{Event, GenerateRequest};
use perch_engine::sampler::SamplingParams;
use perch_engine::text::chat_prompt::ChatInput;
use perch_engine::text::template::ChatMessage;
use perch_engine::{Engine, MlxEngine};
use perch_test_support::ScratchDir;
use serde_json::{json, Value};

const MAX_TOKENS: usize = 32;

fn chats() -> Vec<Vec<ChatMessage>> {
    let m = ChatMessage::new;
    vec![
        vec![
            m(
                "system",
                "You are a terse assistant. Answer in one sentence.",
            ),
            m("user", "Name three primary colors."),
        ],
        vec![
            m("user", "Hi, who are you?"),
            m("assistant", "I am SmolLM, a small language model."),
            m("user", "What can you help me with today?"),
        ],
        vec![m(
            "user",
            "Write a Python function that returns the factorial of n.",
        )],
        vec![m(
            "user",
            "Quelle est la capitale de l'Allemagne ? Réponds en français.",
        )],
        vec![m(
            "user",
            "Reply with three emoji that describe a sunny day 🌞 at the beach.",
        )],
        vec![m("user", "What is 12345 + 67890? Show the digits.")],
        vec![m("user", "用一句话介绍一下你自己。")],
    ]
}

fn imported_smollm2() -> ScratchDir {
    let dir = ScratchDir::new("smollm2-mlx");
    perch_engine::import::import_gguf(&test_model(), dir.path()).expect("import");
    dir
}

fn ids(v: &Value) -> Vec<u32> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_u64().unwrap() as u32)
        .collect()
}

#[test]
fn smollm2_matches_mlx_lm_token_for_token() {
    let dir = imported_smollm2();
    let chats = chats();
    let expected = reference(
        &json!({"model": dir.path(), "chats": chats, "max_tokens": MAX_TOKENS, "top": 5}),
    );
    let engine = MlxEngine::load(dir.path()).unwrap();
    for (chat, want) in chats.iter().zip(&expected) {
        let prompt = engine.chat(&ChatInput::messages(chat)).unwrap().tokens;
        assert_eq!(
            prompt,
            ids(&want["prompt_ids"]),
            "prompt tokens for {chat:?}"
        );

        let sampling = SamplingParams {
            logprobs: Some(5),
            ..Default::default()
        };
        let request = GenerateRequest {
            prompt,
            sampling,
            max_tokens: MAX_TOKENS,
            ..Default::default()
        };
        let mut tokens = Vec::new();
        let mut first_top = None;
        for event in engine.generate(request).unwrap() {
            if let Event::Chunk { tokens: ts, .. } = event.unwrap() {
                for t in ts {
                    first_top.get_or_insert(t.logprob.clone().unwrap().top);
                    tokens.push(t.id);
                }
            }
        }
        assert_eq!(tokens, ids(&want["tokens"]), "greedy tokens for {chat:?}");

        let top = first_top.expect("at least one token");
        let want_top: Vec<(u32, f32)> = want["top"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| (p[0].as_u64().unwrap() as u32, p[1].as_f64().unwrap() as f32))
            .collect();
        assert_eq!(top.len(), 5);
        for ((id, lp), (want_id, want_lp)) in top.iter().zip(&want_top) {
            assert_eq!(
                id, want_id,
                "top-5 order for {chat:?}: {top:?} vs {want_top:?}"
            );
            assert!(
                (lp - want_lp).abs() < 0.02,
                "logprob of {id}: {lp} vs {want_lp}"
            );
        }
    }
}

#[test]
fn gguf_and_imported_mlx_give_the_same_greedy_tokens() {
    let dir = imported_smollm2();
    let from_gguf = MlxEngine::load(&test_model()).unwrap();
    let from_mlx = MlxEngine::load(dir.path()).unwrap();
    for chat in chats().iter().take(4) {
        let a = common::chat(&from_gguf, chat, MAX_TOKENS);
        let b = common::chat(&from_mlx, chat, MAX_TOKENS);
        assert_eq!(a.tokens, b.tokens, "{chat:?}");
        assert_eq!(a.text, b.text);
    }
}

/// A template in the Hermes style that writes tools and call arguments with `tojson`
/// (plain, and indented with sorted keys), as Qwen's and others' do.
const TOOL_TEMPLATE: &str = r#"{%- if tools %}<|im_start|>system
You may call these tools:
<tools>{% for tool in tools %}
{{ tool | tojson }}{% endfor %}
</tools>
Sorted: {{ tools[0] | tojson(indent=2, sort_keys=true) }}<|im_end|>
{% endif %}{% for message in messages %}<|im_start|>{{ message.role }}
{% if message.tool_calls %}{% for call in message.tool_calls %}<tool_call>
{"name": "{{ call.function.name }}", "arguments": {{ call.function.arguments | tojson }}}
</tool_call>{% endfor %}{% else %}{{ message.content }}{% endif %}<|im_end|>
{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant
{% endif %}"#;

#[test]
fn tools_and_arguments_render_as_transformers_renders_them() {
    let dir = imported_smollm2();
    let config_path = dir.path().join("tokenizer_config.json");
    let mut config: Value =
        serde_json::from_str(&std::fs::read_to_string(&config_path).unwrap()).unwrap();
    config["chat_template"] = json!(TOOL_TEMPLATE);
    std::fs::write(&config_path, config.to_string()).unwrap();
    let _ = std::fs::remove_file(dir.path().join("chat_template.jinja"));

    // Keys out of alphabetical order, non-ASCII, HTML-ish characters and floats: each is
    // written differently by a JSON writer that is not Python's.
    let tools = json!([{"type": "function", "function": {
        "name": "get_weather",
        "description": "Wetter für <Städte> & \"Orte\" – 🌧",
        "parameters": {"type": "object", "required": ["city"], "properties": {
            "unit": {"type": "string", "enum": ["C", "F"]},
            "city": {"type": "string"},
            "days": {"type": "number", "default": 1.5, "maximum": 1e16}}}}}]);
    let messages: Vec<ChatMessage> = serde_json::from_value(json!([
        {"role": "user", "content": "Wie wird das Wetter in Köln?"},
        {"role": "assistant", "content": "", "tool_calls": [{"id": "call_1", "type": "function",
            "function": {"name": "get_weather", "arguments": {"city": "Köln", "days": 2}}}]},
        {"role": "tool", "content": "{\"temp\": 7}"},
    ]))
    .unwrap();
    let expected = reference(&json!({
        "model": dir.path(),
        "prompts_for": [{"messages": messages, "tools": tools}],
    }));
    let engine = MlxEngine::load(dir.path()).unwrap();
    let prompt = engine
        .chat(&ChatInput {
            messages: &messages,
            tools: Some(&tools),
            ..Default::default()
        })
        .unwrap()
        .tokens;
    let text = engine.detokenize(&prompt).unwrap();
    assert_eq!(text, expected[0]["prompt_text"].as_str().unwrap());
    assert_eq!(prompt, ids(&expected[0]["prompt_ids"]));
}
