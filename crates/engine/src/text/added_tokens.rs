//! Where a text writes the tokenizer's added tokens (`<|im_start|>`, `[INST]`,
//! `<tool_call>`…), found the way Hugging Face's `tokenizers` finds them before it
//! tokenizes the rest: leftmost-longest, with each token's `lstrip`, `rstrip` and
//! `single_word` rules. [`crate::text::untrusted`] uses it to mark the ones in message text,
//! and the tokenizer to split a chat prompt at the ones the template wrote.

use std::ops::Range;

use aho_corasick::{AhoCorasick, AhoCorasickBuilder, MatchKind};

use crate::{EngineError, Result};

/// One added token and its matching rules.
#[derive(Clone, Debug)]
struct Rules {
    id: u32,
    lstrip: bool,
    rstrip: bool,
    single_word: bool,
}

/// An added token found in a text.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Found {
    /// Its id.
    pub id: u32,
    /// Where its text is.
    pub at: Range<usize>,
    /// Where it is with the whitespace its `lstrip`/`rstrip` rules take in.
    pub span: Range<usize>,
}

/// The added tokens of one tokenizer.
#[derive(Clone, Debug)]
pub(crate) struct AddedTokens {
    matcher: AhoCorasick,
    rules: Vec<Rules>,
}

impl AddedTokens {
    /// The added tokens of `tokenizer`.
    pub fn of(tokenizer: &tokenizers::Tokenizer) -> Result<AddedTokens> {
        let mut tokens: Vec<_> = tokenizer.get_added_tokens_decoder().into_iter().collect();
        tokens.sort_by_key(|(id, _)| *id);
        tokens.retain(|(_, t)| !t.content.is_empty());
        let matcher = AhoCorasickBuilder::new()
            .match_kind(MatchKind::LeftmostLongest)
            .build(tokens.iter().map(|(_, t)| t.content.as_str()))
            .map_err(|e| EngineError::Tokenizer(format!("added tokens: {e}")))?;
        let rules = tokens
            .iter()
            .map(|(id, t)| Rules {
                id: *id,
                lstrip: t.lstrip,
                rstrip: t.rstrip,
                single_word: t.single_word,
            })
            .collect();
        Ok(AddedTokens { matcher, rules })
    }

    /// The added tokens written in `text`, in order, leaving out those `skip` says are
    /// text (whose places then take no whitespace either).
    pub fn find(&self, text: &str, skip: impl Fn(Range<usize>) -> bool) -> Vec<Found> {
        let mut found: Vec<Found> = Vec::new();
        for m in self.matcher.find_iter(text) {
            let rules = &self.rules[m.pattern().as_usize()];
            let at = m.start()..m.end();
            if skip(at.clone()) {
                continue;
            }
            if rules.single_word && !(word_ends_at(text, at.start) && word_starts_at(text, at.end))
            {
                continue;
            }
            let previous_end = found.last().map_or(0, |f| f.span.end);
            let mut span = at.clone();
            if rules.lstrip {
                let before = &text[previous_end..at.start];
                span.start = previous_end + before.trim_end().len();
            }
            if rules.rstrip {
                let after = &text[at.end..];
                span.end = at.end + (after.len() - after.trim_start().len());
            }
            found.push(Found {
                id: rules.id,
                at,
                span,
            });
        }
        found
    }

    /// The byte offsets in `text` where an added token begins.
    pub fn starts(&self, text: &str) -> Vec<usize> {
        self.matcher.find_iter(text).map(|m| m.start()).collect()
    }
}

/// Whether a `single_word` token may begin at `at`: nothing word-like right before it.
fn word_ends_at(text: &str, at: usize) -> bool {
    !text[..at].chars().next_back().is_some_and(is_word_char)
}

/// Whether a `single_word` token may end at `at`: nothing word-like right after it.
fn word_starts_at(text: &str, at: usize) -> bool {
    !text[at..].chars().next().is_some_and(is_word_char)
}

fn is_word_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}
