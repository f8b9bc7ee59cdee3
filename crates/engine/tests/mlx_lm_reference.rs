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
