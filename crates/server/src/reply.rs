//! A chat's reply as every API family reads it: the engine's parser over the generated
//! text (answer, reasoning, tool calls), keeping only the first call when the request
//! allows one. A plain completion has no parser: its text is all answer.

use perch_engine::reply::{ReplyParser, ReplyPart, ToolCall};

/// The reply of one request, read piece by piece.
#[derive(Clone, Default)]
pub(crate) struct Reply {
    parser: Option<ReplyParser>,
    one_call: bool,
    calls: usize,
}

impl Reply {
    /// A chat's reply, read by `parser`; `one_call` keeps only the first tool call.
    pub fn new(parser: ReplyParser, one_call: bool) -> Reply {
        Reply {
            parser: Some(parser),
            one_call,
            calls: 0,
        }
    }

    /// The parts `text` (the reply's next piece) completes.
    pub fn read(&mut self, text: &str) -> Vec<ReplyPart> {
        match &mut self.parser {
            Some(parser) => {
                let parts = parser.push(text);
                self.keep(parts)
            }
            None if text.is_empty() => Vec::new(),
            None => vec![ReplyPart::Text(text.to_owned())],
        }
    }

    /// The parts still held when the reply has ended.
    pub fn finish(&mut self) -> Vec<ReplyPart> {
        match &mut self.parser {
            Some(parser) => {
                let parts = parser.finish();
                self.keep(parts)
            }
            None => Vec::new(),
        }
    }

    /// Whether the reply made a tool call.
    pub fn made_calls(&self) -> bool {
        self.calls > 0
    }

    fn keep(&mut self, parts: Vec<ReplyPart>) -> Vec<ReplyPart> {
        let mut kept = Vec::with_capacity(parts.len());
        for part in parts {
            if let ReplyPart::ToolCall(_) = part {
                if self.one_call && self.calls > 0 {
                    continue;
                }
                self.calls += 1;
            }
            kept.push(part);
        }
        kept
    }
}

/// A whole reply: the answer, the reasoning and the calls.
#[derive(Default)]
pub(crate) struct WholeReply {
    pub text: String,
    pub reasoning: String,
    pub calls: Vec<ToolCall>,
}

impl WholeReply {
    /// Reads all of `text` through `reply`.
    pub fn read(reply: &mut Reply, text: &str) -> WholeReply {
        let mut whole = WholeReply::default();
        let parts = reply.read(text).into_iter().chain(reply.finish());
        for part in parts {
            match part {
                ReplyPart::Text(t) => whole.text.push_str(&t),
                ReplyPart::Reasoning(r) => whole.reasoning.push_str(&r),
                ReplyPart::ToolCall(call) => whole.calls.push(call),
            }
        }
        whole
    }
}
