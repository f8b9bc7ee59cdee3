//! The tokenizer: Hugging Face's `tokenizers` over a `tokenizer.json`, which an MLX
//! directory ships and which [`crate::format::gguf`] builds from GGUF metadata. Plain
//! prompts are tokenized as they are, added tokens written in them included; chat prompts
//! through [`Tokenizer::encode_chat`], where only the template's markup yields them.
//! Decoding drops special tokens except the reply markers ([`MARKERS`]) that the reply
//! parser reads.

use std::str::FromStr;

use tokenizers::AddedToken;

use super::added_tokens::AddedTokens;
use super::untrusted::{self, MarkedText};
use crate::reply::syntax::MARKERS;
use crate::{EngineError, Result};

/// Text ↔ token ids for one model.
#[derive(Clone)]
pub struct Tokenizer {
    inner: tokenizers::Tokenizer,
    /// The same vocabulary with every added token read as text, plus [`RESUME`].
    text_only: tokenizers::Tokenizer,
    /// `RESUME`'s id in `text_only`.
    resume_id: u32,
    added: AddedTokens,
    bos_token: Option<String>,
    eos_token: Option<String>,
}

/// Written before a piece of a chat prompt that follows an added token, so the piece is
/// tokenized as it is in the whole prompt (a SentencePiece pre-tokenizer puts its `▁` only
/// in front of a prompt's first piece); its token is then dropped. [`untrusted`] keeps this
/// character out of every prompt.
const RESUME: char = untrusted::RESERVED;

impl Tokenizer {
    /// Builds a tokenizer from the text of a `tokenizer.json`; `bos_token` and `eos_token`
    /// (from `tokenizer_config.json` or GGUF metadata) are what chat templates see.
    pub fn from_json(
        json: &str,
        bos_token: Option<String>,
        eos_token: Option<String>,
    ) -> Result<Tokenizer> {
        let mut value: serde_json::Value =
            serde_json::from_str(json).map_err(|e| EngineError::Tokenizer(e.to_string()))?;
        set_special(&mut value, |content| {
            MARKERS.contains(&content).then_some(false)
        });
        let inner = tokenizers::Tokenizer::from_str(&value.to_string()).map_err(tokenizer_error)?;
        let added = AddedTokens::of(&inner)?;
        let (text_only, resume_id) = text_only(value)?;
        Ok(Tokenizer {
            inner,
            text_only,
            resume_id,
            added,
            bos_token,
            eos_token,
        })
    }

    /// Token ids of `text`. Special tokens written in the text (`<|im_start|>`) become
    /// their ids. `add_special` adds what the tokenizer's post-processor adds (a BOS).
    pub fn encode(&self, text: &str, add_special: bool) -> Result<Vec<u32>> {
        let encoding = self
            .inner
            .encode_fast(text, add_special)
            .map_err(tokenizer_error)?;
        Ok(encoding.get_ids().to_vec())
    }

    /// Token ids of `text` with every added token in it read as text.
    pub fn encode_text(&self, text: &str) -> Result<Vec<u32>> {
        let mut ids = Vec::new();
        self.encode_piece(text, 0, &mut ids)?;
        Ok(ids)
    }

    /// The `tokenizer.json` this tokenizer reads (with the reply markers not special).
    pub fn to_json(&self) -> Result<String> {
        self.inner.to_string(false).map_err(tokenizer_error)
    }

    /// `text` (a message's content, a tool result…) made ready for a chat template: added
    /// tokens written in it will be tokenized as text by [`Self::encode_chat`].
    pub fn defuse(&self, text: &str) -> String {
        untrusted::defuse_at(text, &self.added.starts(text))
    }

    /// Token ids of a rendered chat prompt. Added tokens become their ids where the
    /// template wrote them and stay text where a message did; the rest is tokenized as
    /// [`Self::encode`] does (the same ids when no message writes an added token).
    pub fn encode_chat(&self, prompt: &MarkedText) -> Result<Vec<u32>> {
        let text = prompt.text.as_str();
        let mut ids = Vec::new();
        let mut piece_start = 0;
        for found in self.added.find(text, |at| prompt.is_defused(at)) {
            self.encode_piece(&text[piece_start..found.span.start], piece_start, &mut ids)?;
            ids.push(found.id);
            piece_start = found.span.end;
        }
        self.encode_piece(&text[piece_start..], piece_start, &mut ids)?;
        Ok(ids)
    }

    /// Tokenizes one piece of a chat prompt between added tokens, every added token read
    /// as text, as it would be tokenized at byte `offset` of the prompt.
    fn encode_piece(&self, piece: &str, offset: usize, ids: &mut Vec<u32>) -> Result<()> {
        if piece.is_empty() {
            return Ok(());
        }
        if offset == 0 {
            let encoding = self
                .text_only
                .encode_fast(piece, false)
                .map_err(tokenizer_error)?;
            ids.extend_from_slice(encoding.get_ids());
            return Ok(());
        }
        let encoding = self
            .text_only
            .encode_fast(format!("{RESUME}{piece}"), false)
            .map_err(tokenizer_error)?;
        match encoding.get_ids().split_first() {
            Some((&first, rest)) if first == self.resume_id => ids.extend_from_slice(rest),
            _ => {
                return Err(EngineError::Tokenizer(
                    "the tokenizer did not keep a piece marker whole".into(),
                ))
            }
        }
        Ok(())
    }

    /// The text of `ids`; `skip_special` drops special tokens.
    pub fn decode(&self, ids: &[u32], skip_special: bool) -> Result<String> {
        self.inner
            .decode(ids, skip_special)
            .map_err(tokenizer_error)
    }

    /// The id of a token string, such as `<|im_end|>`.
    pub fn token_id(&self, token: &str) -> Option<u32> {
        self.inner.token_to_id(token)
    }

    /// Vocabulary size, special tokens included.
    pub fn vocab_size(&self) -> usize {
        self.inner.get_vocab_size(true)
    }

    /// Whether `id` is a special (control) token.
    pub fn is_special(&self, id: u32) -> bool {
        self.inner
            .get_added_tokens_decoder()
            .get(&id)
            .is_some_and(|t| t.special)
    }

    /// The BOS token's text, for chat templates.
    pub fn bos_token(&self) -> Option<&str> {
        self.bos_token.as_deref()
    }

    /// The EOS token's text, for chat templates.
    pub fn eos_token(&self) -> Option<&str> {
        self.eos_token.as_deref()
    }
}

fn tokenizer_error(e: tokenizers::Error) -> EngineError {
    EngineError::Tokenizer(e.to_string())
}

/// Sets the `special` flag of the added tokens in a `tokenizer.json` value where `flag`
/// gives one for the token's text.
fn set_special(value: &mut serde_json::Value, flag: impl Fn(&str) -> Option<bool>) {
    let Some(added) = value
        .get_mut("added_tokens")
        .and_then(serde_json::Value::as_array_mut)
    else {
        return;
    };
    for token in added {
        let content = token["content"].as_str().unwrap_or_default();
        if let Some(special) = flag(content) {
            token["special"] = special.into();
        }
    }
}

/// The tokenizer of `value` with every added token special and special tokens read as
/// text, and [`RESUME`] added as the one token it still recognises; with `RESUME`'s id.
fn text_only(mut value: serde_json::Value) -> Result<(tokenizers::Tokenizer, u32)> {
    set_special(&mut value, |_| Some(true));
    let mut tokenizer =
        tokenizers::Tokenizer::from_str(&value.to_string()).map_err(tokenizer_error)?;
    tokenizer.set_encode_special_tokens(true);
    tokenizer.add_tokens(&[AddedToken::from(RESUME.to_string(), false).normalized(false)]);
    let resume_id = tokenizer
        .token_to_id(&RESUME.to_string())
        .ok_or_else(|| EngineError::Tokenizer("could not add the piece marker".into()))?;
    Ok((tokenizer, resume_id))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A SentencePiece-style tokenizer: `▁` put only before a prompt's first piece.
    fn sentencepiece_like() -> Tokenizer {
        let metaspace = serde_json::json!({
            "type": "Metaspace", "replacement": "▁", "prepend_scheme": "first", "split": true
        });
        let json = serde_json::json!({
            "version": "1.0", "truncation": null, "padding": null, "normalizer": null,
            "added_tokens": [{"id": 5, "content": "[INST]", "single_word": false,
                "lstrip": false, "rstrip": false, "normalized": false, "special": true}],
            "pre_tokenizer": metaspace, "decoder": metaspace, "post_processor": null,
            "model": {"type": "WordLevel", "unk_token": "<unk>", "vocab": {
                "<unk>": 0, "▁hi": 1, "hi": 2, "▁there": 3, "[INST]": 5}},
        });
        Tokenizer::from_json(&json.to_string(), None, None).unwrap()
    }

    #[test]
    fn pieces_after_a_control_token_tokenize_as_in_the_whole_prompt() {
        let tokenizer = sentencepiece_like();
        let prompt = MarkedText::parse("hi there[INST]hi there");
        let whole = tokenizer.encode(&prompt.text, false).unwrap();
        assert_eq!(whole, vec![1, 3, 5, 2, 3]);
        assert_eq!(tokenizer.encode_chat(&prompt).unwrap(), whole);
    }

    #[test]
    fn a_defused_control_token_is_text() {
        let tokenizer = sentencepiece_like();
        let prompt = MarkedText::parse(&format!("[INST]{}", tokenizer.defuse("[INST]hi")));
        let ids = tokenizer.encode_chat(&prompt).unwrap();
        assert_eq!(ids.iter().filter(|&&id| id == 5).count(), 1, "{ids:?}");
        assert_eq!(ids[0], 5);
    }
}
