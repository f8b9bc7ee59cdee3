//! The model's vocabulary as `llguidance` sees it: every token's bytes (read from the
//! tokenizer's own description, special tokens marked) in a token trie, and the tokenizer
//! for the few places `llguidance` tokenizes text itself. Built once per model, on the first
//! constrained request, and shared by every request after it.

use std::sync::Arc;

use llguidance::toktrie::{TokEnv, TokRxInfo, TokTrie, TokenizerEnv};
use llguidance::{Matcher, ParserFactory};

use super::{Constraint, Grammar};
use crate::reply::ToolSyntax;
use crate::text::tokenizer::Tokenizer;
use crate::{EngineError, Result};

/// Compiles grammars for one model.
pub struct Vocabulary {
    factory: ParserFactory,
}

/// The trie and the tokenizer behind it.
struct Env {
    trie: TokTrie,
    tokenizer: Tokenizer,
}

impl TokenizerEnv for Env {
    fn tok_trie(&self) -> &TokTrie {
        &self.trie
    }

    fn tokenize_bytes(&self, s: &[u8]) -> Vec<u32> {
        self.tokenizer
            .encode_text(&String::from_utf8_lossy(s))
            .unwrap_or_default()
    }
}

impl Vocabulary {
    /// The vocabulary of `tokenizer`, ending with `eos`.
    pub fn new(tokenizer: &Tokenizer, eos: u32) -> Result<Vocabulary> {
        let json: serde_json::Value = serde_json::from_str(&tokenizer.to_json()?)
            .map_err(|e| EngineError::Tokenizer(e.to_string()))?;
        let words = llguidance::token_bytes_from_tokenizer_json(&json)
            .map_err(|e| EngineError::Tokenizer(format!("reading the vocabulary: {e}")))?;
        let info = TokRxInfo::new(words.len() as u32, eos);
        let env: TokEnv = Arc::new(Env {
            trie: TokTrie::from(&info, &words),
            tokenizer: tokenizer.clone(),
        });
        let mut factory = ParserFactory::new_simple(&env)
            .map_err(|e| EngineError::Tokenizer(format!("building the token trie: {e}")))?;
        factory.quiet();
        Ok(Vocabulary { factory })
    }

    /// `grammar` compiled for a model writing tool calls in `syntax`; `token_id` finds
    /// marker tokens. A schema `llguidance` cannot hold to (an unsupported keyword, a
    /// contradiction) is an invalid request, with its reason.
    pub fn compile(
        &self,
        grammar: &Grammar,
        syntax: ToolSyntax,
        token_id: impl Fn(&str) -> Option<u32>,
    ) -> Result<Constraint> {
        let grammar = grammar
            .compile(syntax, token_id)
            .map_err(EngineError::InvalidRequest)?;
        let matcher = Matcher::new(self.factory.create_parser(grammar));
        if let Some(error) = matcher.get_error() {
            return Err(EngineError::InvalidRequest(error));
        }
        Ok(Constraint::new(matcher))
    }
}
