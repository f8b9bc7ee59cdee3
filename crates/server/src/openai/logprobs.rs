//! Log-probabilities in OpenAI's two shapes: chat's `{content: [{token, logprob, bytes,
//! top_logprobs}]}` and completions' `{tokens, token_logprobs, top_logprobs, text_offset}`.

use perch_engine::generate::GeneratedToken;
use perch_engine::Engine;
use serde_json::{json, Value};

fn token_text(engine: &dyn Engine, id: u32) -> String {
    engine.detokenize(&[id]).unwrap_or_default()
}

fn entry(engine: &dyn Engine, id: u32, logprob: f32) -> Value {
    let token = token_text(engine, id);
    json!({"token": token, "logprob": logprob, "bytes": token.as_bytes()})
}

/// Chat-shaped entries for `tokens`.
pub(crate) fn chat_content(engine: &dyn Engine, tokens: &[GeneratedToken]) -> Vec<Value> {
    tokens
        .iter()
        .filter_map(|t| {
            let lp = t.logprob.as_ref()?;
            let mut e = entry(engine, t.id, lp.logprob);
            e["top_logprobs"] = lp.top.iter().map(|&(id, p)| entry(engine, id, p)).collect();
            Some(e)
        })
        .collect()
}

/// Completions-shaped log-probabilities for `tokens`, whose text starts at `offset`.
pub(crate) fn completion(
    engine: &dyn Engine,
    tokens: &[GeneratedToken],
    mut offset: usize,
) -> Value {
    let (mut texts, mut lps, mut tops, mut offsets) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for t in tokens {
        let Some(lp) = &t.logprob else { continue };
        let text = token_text(engine, t.id);
        offsets.push(offset);
        offset += text.len();
        texts.push(text);
        lps.push(lp.logprob);
        let top: serde_json::Map<String, Value> = lp
            .top
            .iter()
            .map(|&(id, p)| (token_text(engine, id), json!(p)))
            .collect();
        tops.push(Value::Object(top));
    }
    json!({"tokens": texts, "token_logprobs": lps, "top_logprobs": tops, "text_offset": offsets})
}
