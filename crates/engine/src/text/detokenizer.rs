//! Streaming detokenization: turns tokens into text deltas as they arrive, never emitting
//! half a UTF-8 character (emoji, CJK, byte-fallback pieces) and keeping the leading space
//! a token carries only in context.
//!
//! Each step decodes a short window of recent tokens twice (with and without the newest)
//! and emits the difference once it no longer ends in an incomplete character.

use super::tokenizer::Tokenizer;
use crate::Result;

/// Incremental decoder for one sequence.
#[derive(Default)]
pub struct Detokenizer {
    tokens: Vec<u32>,
    /// Start of the context window decoded for comparison.
    prefix_offset: usize,
    /// Tokens before this index have been emitted as text.
    read_offset: usize,
}

impl Detokenizer {
    /// Adds `token` and returns the text it completes (possibly empty while a character
    /// is still incomplete).
    pub fn push(&mut self, tokenizer: &Tokenizer, token: u32) -> Result<String> {
        self.tokens.push(token);
        let prefix = tokenizer.decode(&self.tokens[self.prefix_offset..self.read_offset], true)?;
        let full = tokenizer.decode(&self.tokens[self.prefix_offset..], true)?;
        if full.len() > prefix.len()
            && !full.ends_with('\u{FFFD}')
            && full.is_char_boundary(prefix.len())
        {
            let delta = full[prefix.len()..].to_owned();
            self.prefix_offset = self.read_offset;
            self.read_offset = self.tokens.len();
            Ok(delta)
        } else {
            Ok(String::new())
        }
    }

    /// Text still held back at the end of the sequence (an incomplete character, decoded
    /// with replacement characters).
    pub fn flush(&mut self, tokenizer: &Tokenizer) -> Result<String> {
        let prefix = tokenizer.decode(&self.tokens[self.prefix_offset..self.read_offset], true)?;
        let full = tokenizer.decode(&self.tokens[self.prefix_offset..], true)?;
        self.prefix_offset = self.tokens.len();
        self.read_offset = self.tokens.len();
        Ok(full.get(prefix.len()..).unwrap_or_default().to_owned())
    }
}
