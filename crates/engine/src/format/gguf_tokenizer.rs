//! Rebuilds a Hugging Face `tokenizer.json` from GGUF metadata, for byte-level BPE
//! vocabularies (`tokenizer.ggml.model = gpt2`): vocab, merges, special tokens by token
//! type, and the pre-tokenizer named by `tokenizer.ggml.pre`.

use perch_mlx::io::{GgufArray, GgufScalar, GgufSummary};
use serde_json::{json, Value};

use crate::{EngineError, Result};

/// Llama 3's split: numbers in runs of up to three digits.
const LLAMA3_SPLIT: &str = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";
/// Qwen2's split: like Llama 3's, but every digit alone.
const QWEN2_SPLIT: &str = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";

/// GGUF token types that are not ordinary vocabulary.
const TOKEN_TYPE_CONTROL: i32 = 3;
const TOKEN_TYPE_USER_DEFINED: i32 = 4;

/// A tokenizer rebuilt from GGUF.
pub struct BuiltTokenizer {
    /// The `tokenizer.json` text.
    pub json: String,
    /// The BOS token's text.
    pub bos_token: Option<String>,
    /// The EOS token's text.
    pub eos_token: Option<String>,
    /// Ids that end generation: EOS, and end-of-turn / end-of-message when present.
    pub eos_token_ids: Vec<u32>,
}

/// Builds the tokenizer of a GGUF model from its checked header.
pub fn build(header: &GgufSummary) -> Result<BuiltTokenizer> {
    let text = |key: &str| header.scalars.get(key).and_then(GgufScalar::as_str);
    let strings = |key: &str| match header.arrays.get(key) {
        Some(GgufArray::Strings(list)) => Some(list),
        _ => None,
    };
    let model = text("tokenizer.ggml.model").unwrap_or_default();
    if model != "gpt2" {
        return Err(EngineError::Tokenizer(format!(
            "GGUF tokenizer model {model:?} is not supported yet (byte-level BPE, \"gpt2\", is)"
        )));
    }
    let tokens = strings("tokenizer.ggml.tokens")
        .ok_or_else(|| EngineError::Tokenizer("GGUF has no tokenizer.ggml.tokens".into()))?;
    let merges = strings("tokenizer.ggml.merges")
        .cloned()
        .unwrap_or_default();
    let types: Vec<i32> = match header.arrays.get("tokenizer.ggml.token_type") {
        Some(GgufArray::Numbers(kinds)) => kinds.iter().map(|&k| k as i32).collect(),
        _ => vec![1; tokens.len()],
    };
    let pre = text("tokenizer.ggml.pre").unwrap_or("default");
    let id = |key: &str| -> Result<Option<u32>> {
        Ok(header
            .scalars
            .get(key)
            .and_then(GgufScalar::as_u64)
            .map(|v| v as u32))
    };
    let bos_id = id("tokenizer.ggml.bos_token_id")?;
    let eos_id = id("tokenizer.ggml.eos_token_id")?;
    let add_bos = matches!(
        header.scalars.get("tokenizer.ggml.add_bos_token"),
        Some(GgufScalar::Bool(true))
    );
    let text_of = |id: Option<u32>| id.and_then(|i| tokens.get(i as usize).cloned());

    let mut vocab = serde_json::Map::with_capacity(tokens.len());
    let mut added = Vec::new();
    for (i, token) in tokens.iter().enumerate() {
        vocab.entry(token.clone()).or_insert(json!(i));
        let kind = types.get(i).copied().unwrap_or(1);
        if kind == TOKEN_TYPE_CONTROL || kind == TOKEN_TYPE_USER_DEFINED {
            added.push(json!({
                "id": i, "content": token, "single_word": false, "lstrip": false,
                "rstrip": false, "normalized": false, "special": kind == TOKEN_TYPE_CONTROL,
            }));
        }
    }
    let byte_level = |use_regex: bool| json!({"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": use_regex});
    let split = |pattern: &str| json!({"type": "Split", "pattern": {"Regex": pattern}, "behavior": "Isolated", "invert": false});
    let pre_tokenizer = match pre {
        "default" | "gpt2" => byte_level(true),
        "smollm" => json!({"type": "Sequence", "pretokenizers": [
            {"type": "Digits", "individual_digits": true}, byte_level(true)]}),
        "llama-bpe" | "llama3" | "smaug-bpe" => {
            json!({"type": "Sequence", "pretokenizers": [split(LLAMA3_SPLIT), byte_level(false)]})
        }
        "qwen2" | "deepseek-r1-qwen" => {
            json!({"type": "Sequence", "pretokenizers": [split(QWEN2_SPLIT), byte_level(false)]})
        }
        other => {
            return Err(EngineError::Tokenizer(format!(
                "GGUF pre-tokenizer {other:?} is not supported yet (gpt2, smollm, llama-bpe, qwen2 are)"
            )))
        }
    };
    let post_processor = match (add_bos, text_of(bos_id)) {
        (true, Some(bos)) => json!({
            "type": "TemplateProcessing",
            "single": [{"SpecialToken": {"id": bos, "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}}],
            "pair": [{"SpecialToken": {"id": bos, "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}},
                     {"SpecialToken": {"id": bos, "type_id": 1}}, {"Sequence": {"id": "B", "type_id": 1}}],
            "special_tokens": {bos.clone(): {"id": bos, "ids": [bos_id], "tokens": [bos]}},
        }),
        _ => Value::Null,
    };
    let tokenizer = json!({
        "version": "1.0",
        "truncation": null,
        "padding": null,
        "added_tokens": added,
        "normalizer": null,
        "pre_tokenizer": pre_tokenizer,
        "post_processor": post_processor,
        "decoder": {"type": "ByteLevel", "add_prefix_space": true, "trim_offsets": true, "use_regex": true},
        "model": {
            "type": "BPE", "dropout": null, "unk_token": null, "continuing_subword_prefix": null,
            "end_of_word_suffix": null, "fuse_unk": false, "byte_fallback": false,
            "ignore_merges": false, "vocab": vocab, "merges": merges,
        },
    });
    let mut eos_token_ids: Vec<u32> = Vec::new();
    for key in [
        "tokenizer.ggml.eos_token_id",
        "tokenizer.ggml.eot_token_id",
        "tokenizer.ggml.eom_token_id",
    ] {
        if let Some(id) = id(key)? {
            if !eos_token_ids.contains(&id) {
                eos_token_ids.push(id);
            }
        }
    }
    Ok(BuiltTokenizer {
        json: tokenizer.to_string(),
        bos_token: text_of(bos_id),
        eos_token: text_of(eos_id),
        eos_token_ids,
    })
}
