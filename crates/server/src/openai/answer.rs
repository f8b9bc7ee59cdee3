//! The shapes of OpenAI answers: a whole chat or completion body with its choices, one
//! stream chunk (a choice's delta, or the usage), and what they share: the envelope (id,
//! time, model, fingerprint), finish reasons and usage. The two endpoints differ only in
//! the shape of a choice, which [`Family`] supplies.

use std::time::{SystemTime, UNIX_EPOCH};

use perch_engine::generate::{FinishReason, Finished, GeneratedToken};
use perch_engine::reply::ReplyPart;
use perch_engine::Engine;
use serde_json::{json, Value};

use super::logprobs;
use super::responses::{
    AssistantMessage, ChatChoice, ChatCompletion, ChatCompletionChunk, ChunkChoice, ChunkUsage,
    Completion, CompletionChoice, Delta, FunctionDelta, ToolCallDelta,
};
use super::types::{FunctionCall, MessageToolCall, PromptTokensDetails, Usage};
use crate::reply::{Reply, WholeReply};

/// Which endpoint is answering.
#[derive(Clone, Copy)]
pub(crate) enum Family {
    Chat,
    Completion,
}

/// What every body of one answer shares.
pub(super) struct Envelope<'a> {
    pub id: &'a str,
    pub created: u64,
    pub model: &'a str,
    /// [`fingerprint`] of the model, computed once per answer, not per chunk.
    pub fingerprint: String,
}

/// One choice of a whole answer.
pub(super) struct ChoiceAnswer {
    pub reply: WholeReply,
    pub logprobs: Value,
    pub finish_reason: &'static str,
}

impl Family {
    pub(super) fn id(self) -> String {
        let prefix = match self {
            Family::Chat => "chatcmpl",
            Family::Completion => "cmpl",
        };
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        format!("{prefix}-{nanos:x}")
    }

    pub(super) fn endpoint(self) -> &'static str {
        match self {
            Family::Chat => "/v1/chat/completions",
            Family::Completion => "/v1/completions",
        }
    }

    /// The log-probabilities of `tokens`, whose text starts at byte `offset`.
    pub(super) fn logprobs(
        self,
        engine: &dyn Engine,
        tokens: &[GeneratedToken],
        offset: usize,
    ) -> Value {
        match self {
            Family::Chat => json!({"content": logprobs::chat_content(engine, tokens)}),
            Family::Completion => logprobs::completion(engine, tokens, offset),
        }
    }

    /// The whole answer, its choices in order.
    pub(super) fn full(self, at: &Envelope, choices: Vec<ChoiceAnswer>, usage: Usage) -> Value {
        let body = match self {
            Family::Chat => serde_json::to_value(ChatCompletion {
                id: at.id.to_owned(),
                object: "chat.completion",
                created: at.created,
                model: at.model.to_owned(),
                system_fingerprint: at.fingerprint.clone(),
                choices: choices
                    .into_iter()
                    .enumerate()
                    .map(|(index, c)| {
                        let reply = c.reply;
                        ChatChoice {
                            index,
                            message: AssistantMessage {
                                role: "assistant",
                                content: (reply.calls.is_empty() || !reply.text.is_empty())
                                    .then_some(reply.text),
                                reasoning_content: (!reply.reasoning.is_empty())
                                    .then_some(reply.reasoning),
                                tool_calls: (!reply.calls.is_empty()).then(|| {
                                    reply
                                        .calls
                                        .into_iter()
                                        .map(|c| MessageToolCall {
                                            id: c.id,
                                            kind: "function".into(),
                                            function: FunctionCall {
                                                name: c.name,
                                                arguments: c.arguments,
                                            },
                                        })
                                        .collect()
                                }),
                            },
                            logprobs: c.logprobs,
                            finish_reason: c.finish_reason,
                        }
                    })
                    .collect(),
                usage,
            }),
            Family::Completion => serde_json::to_value(Completion {
                id: at.id.to_owned(),
                object: "text_completion",
                created: at.created,
                model: at.model.to_owned(),
                system_fingerprint: at.fingerprint.clone(),
                choices: choices
                    .into_iter()
                    .enumerate()
                    .map(|(index, c)| CompletionChoice {
                        index,
                        text: c.reply.text,
                        logprobs: c.logprobs,
                        finish_reason: Some(c.finish_reason),
                    })
                    .collect(),
                usage: Some(Some(usage)),
            }),
        };
        body.expect("a response body serializes")
    }

    /// One stream chunk: a choice with `text` (the role too when `first`) and/or a
    /// finish reason, or (with `choice` None) the usage chunk.
    pub(super) fn chunk(
        self,
        at: &Envelope,
        choice: Option<ChunkParts>,
        usage: ChunkUsage,
    ) -> Value {
        let body = match self {
            Family::Chat => serde_json::to_value(ChatCompletionChunk {
                id: at.id.to_owned(),
                object: "chat.completion.chunk",
                created: at.created,
                model: at.model.to_owned(),
                system_fingerprint: at.fingerprint.clone(),
                choices: choice
                    .map(|c| ChunkChoice {
                        index: c.index,
                        delta: Delta {
                            role: c.first.then_some("assistant"),
                            ..c.delta
                        },
                        logprobs: c.logprobs,
                        finish_reason: c.finish_reason,
                    })
                    .into_iter()
                    .collect(),
                usage,
            }),
            Family::Completion => serde_json::to_value(Completion {
                id: at.id.to_owned(),
                object: "text_completion",
                created: at.created,
                model: at.model.to_owned(),
                system_fingerprint: at.fingerprint.clone(),
                choices: choice
                    .map(|c| CompletionChoice {
                        index: c.index,
                        text: c.delta.content.unwrap_or_default(),
                        logprobs: c.logprobs,
                        finish_reason: c.finish_reason,
                    })
                    .into_iter()
                    .collect(),
                usage,
            }),
        };
        body.expect("a response body serializes")
    }
}

/// What one stream chunk's choice says.
pub(super) struct ChunkParts {
    /// Which choice.
    pub index: usize,
    pub delta: Delta,
    pub first: bool,
    pub logprobs: Value,
    pub finish_reason: Option<&'static str>,
}

impl ChunkParts {
    pub(super) fn new(index: usize, delta: Delta) -> Self {
        ChunkParts {
            index,
            delta,
            first: false,
            logprobs: Value::Null,
            finish_reason: None,
        }
    }
}

/// The stream deltas of reply parts; `calls` counts the calls sent so far.
pub(super) fn deltas(parts: Vec<ReplyPart>, calls: &mut usize) -> Vec<Delta> {
    let mut out = Vec::new();
    for part in parts {
        match part {
            ReplyPart::Text(text) => out.push(Delta {
                content: Some(text),
                ..Delta::default()
            }),
            ReplyPart::Reasoning(text) => out.push(Delta {
                reasoning_content: Some(text),
                ..Delta::default()
            }),
            ReplyPart::ToolCall(call) => {
                let index = *calls;
                *calls += 1;
                let piece = |id, kind, name, arguments| Delta {
                    tool_calls: Some(vec![ToolCallDelta {
                        index,
                        id,
                        kind,
                        function: FunctionDelta { name, arguments },
                    }]),
                    ..Delta::default()
                };
                out.push(piece(
                    Some(call.id),
                    Some("function"),
                    Some(call.name),
                    String::new(),
                ));
                out.push(piece(None, None, None, call.arguments));
            }
        }
    }
    out
}

pub(super) fn finish_reason(f: &Finished, reply: &Reply) -> &'static str {
    match f.reason {
        FinishReason::Length => "length",
        _ if reply.made_calls() => "tool_calls",
        FinishReason::Stop | FinishReason::Cancelled(_) => "stop",
    }
}

/// The usage of an answer whose choices ended as `finished`: the prompt counted once (every
/// choice reads the same one), the completions added up.
pub(super) fn usage(finished: &[Finished]) -> Usage {
    let first = finished.first();
    let prompt_tokens = first.map_or(0, |f| f.prompt_tokens);
    let completion_tokens = finished.iter().map(|f| f.completion_tokens).sum();
    Usage {
        prompt_tokens,
        completion_tokens,
        total_tokens: prompt_tokens + completion_tokens,
        prompt_tokens_details: PromptTokensDetails {
            cached_tokens: first.map_or(0, |f| f.cached_tokens),
        },
    }
}

/// Which build of Perch answered with which model: the same across answers until either
/// changes.
pub(super) fn fingerprint(model: &str) -> String {
    use std::hash::{Hash, Hasher};
    // SipHash with fixed keys: the same value in every process.
    let mut hasher = std::hash::DefaultHasher::new();
    (env!("CARGO_PKG_VERSION"), model).hash(&mut hasher);
    format!("fp_{:012x}", hasher.finish() & 0xffff_ffff_ffff)
}

pub(super) fn created() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}
