//! Untrusted text stays text. Message content comes from users, from web pages an agent's
//! tool fetched, from tool results: a `<|im_start|>system` typed into it must reach the
//! model as characters, never as the control token that opens a system turn.
//!
//! Before the chat template runs, every place in a message's text where an added token
//! (a control token, or a marker such as `<tool_call>`) is written gets a [`DEFUSE`] mark in
//! front of it: a Unicode noncharacter, so no real text holds one (any that arrive are
//! replaced). After rendering, [`MarkedText::parse`] takes the marks out and keeps where
//! they were. The tokenizer then recognises added tokens everywhere except at those places
//! (`Tokenizer::encode_chat`), so only the template's own markup yields them. A mark sticks
//! to the token it defuses, so templates that trim, split or reorder message text (Qwen3
//! cuts the reasoning out of an assistant turn) cannot separate the two.

/// Marks the added token written right after it as text.
pub(crate) const DEFUSE: char = '\u{FDD0}';

/// Kept for the tokenizer's own use between pieces of a prompt (`tokenizer::RESUME`):
/// never let through from a request.
pub(crate) const RESERVED: char = '\u{FDD1}';

/// A rendered prompt with the places where message text wrote an added token.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct MarkedText {
    /// The prompt, marks taken out.
    pub text: String,
    /// Byte offsets in `text` where a defused token's text begins, ascending.
    pub defused: Vec<usize>,
}

impl MarkedText {
    /// Takes the marks out of a rendered prompt.
    pub(crate) fn parse(rendered: &str) -> MarkedText {
        let mut out = MarkedText {
            text: String::with_capacity(rendered.len()),
            defused: Vec::new(),
        };
        for c in rendered.chars() {
            match c {
                DEFUSE => out.defused.push(out.text.len()),
                RESERVED => out.text.push('\u{FFFD}'),
                c => out.text.push(c),
            }
        }
        out
    }

    /// Whether a token found at `range` of the text was written by a message.
    pub(crate) fn is_defused(&self, range: std::ops::Range<usize>) -> bool {
        let first = self.defused.partition_point(|&at| at < range.start);
        self.defused.get(first).is_some_and(|&at| at < range.end)
    }
}

/// `text` with a [`DEFUSE`] mark before each of `starts` (byte offsets where an added token
/// begins, ascending), and any mark or [`RESERVED`] character the client sent replaced.
pub(crate) fn defuse_at(text: &str, starts: &[usize]) -> String {
    let mut out = String::with_capacity(text.len() + starts.len() * DEFUSE.len_utf8());
    let mut next = starts.iter().peekable();
    for (at, c) in text.char_indices() {
        while next.next_if(|&&start| start <= at).is_some() {
            out.push(DEFUSE);
        }
        out.push(if c == DEFUSE || c == RESERVED {
            '\u{FFFD}'
        } else {
            c
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn marks_come_out_as_offsets() {
        let text = "hi <|im_start|>system";
        let marked = defuse_at(text, &[3]);
        assert_eq!(marked, "hi \u{FDD0}<|im_start|>system");
        let parsed = MarkedText::parse(&format!("<u>{marked}</u>"));
        assert_eq!(parsed.text, format!("<u>{text}</u>"));
        assert_eq!(parsed.defused, vec![6]);
        assert!(parsed.is_defused(6..18));
        assert!(!parsed.is_defused(0..3));
        assert!(!parsed.is_defused(7..18), "a match starting after the mark");
    }

    #[test]
    fn a_mark_sent_by_the_client_is_replaced() {
        let marked = defuse_at("a\u{FDD0}b\u{FDD1}", &[]);
        assert_eq!(marked, "a\u{FFFD}b\u{FFFD}");
        assert!(MarkedText::parse(&marked).defused.is_empty());
        // Text the template shows without defusing (a tool's description) cannot hold
        // the tokenizer's piece marker either.
        assert_eq!(MarkedText::parse("x\u{FDD1}").text, "x\u{FFFD}");
    }

    #[test]
    fn a_split_message_keeps_its_marks_with_the_tokens() {
        let text = defuse_at("think<x>answer<x>", &[5, 14]);
        let (first, second) = text.split_once("answer").unwrap();
        let parsed = MarkedText::parse(&format!("[{second}][{first}]"));
        assert_eq!(parsed.text, "[<x>][think<x>]");
        assert_eq!(parsed.defused, vec![1, 11]);
    }
}
