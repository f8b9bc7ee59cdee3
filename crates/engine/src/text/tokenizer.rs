//! The tokenizer: Hugging Face's `tokenizers` over a `tokenizer.json`, which an MLX
//! directory ships and which [`crate::format::gguf`] builds from GGUF metadata.

use std::str::FromStr;

use crate::{EngineError, Result};

/// Text ↔ token ids for one model.
#[derive(Clone)]
pub struct Tokenizer {
    inner: tokenizers::Tokenizer,
    bos_token: Option<String>,
    eos_token: Option<String>,
}

impl Tokenizer {
    /// Builds a tokenizer from the text of a `tokenizer.json`; `bos_token` and `eos_token`
    /// (from `tokenizer_config.json` or GGUF metadata) are what chat templates see.
    pub fn from_json(
        json: &str,
        bos_token: Option<String>,
        eos_token: Option<String>,
    ) -> Result<Tokenizer> {
        let inner = tokenizers::Tokenizer::from_str(json)
            .map_err(|e| EngineError::Tokenizer(e.to_string()))?;
        Ok(Tokenizer {
            inner,
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
            .map_err(|e| EngineError::Tokenizer(e.to_string()))?;
        Ok(encoding.get_ids().to_vec())
    }

    /// The text of `ids`; `skip_special` drops special tokens.
    pub fn decode(&self, ids: &[u32], skip_special: bool) -> Result<String> {
        self.inner
            .decode(ids, skip_special)
            .map_err(|e| EngineError::Tokenizer(e.to_string()))
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
