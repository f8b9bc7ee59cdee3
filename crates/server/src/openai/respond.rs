//! Turning a running generation into an OpenAI response: one JSON body, or server-sent
//! events exactly as OpenAI sends them (a first chunk with the role, content deltas, a last
//! chunk with `finish_reason`, optionally a usage chunk, then `data: [DONE]`). The two
//! endpoints differ only in the shapes of a choice, which [`Family`] supplies.

use std::convert::Infallible;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::response::sse::{Event as SseEvent, Sse};
use axum::response::{IntoResponse, Response};
use axum::Json;
use perch_engine::generate::{Event, FinishReason, Finished, GeneratedToken};
use perch_engine::reply::ReplyPart;
use perch_engine::Engine;
use serde_json::{json, Value};

use super::logprobs;
use super::responses::{
    AssistantMessage, ChatChoice, ChatCompletion, ChatCompletionChunk, ChunkChoice, ChunkUsage,
    Completion, CompletionChoice, Delta, FunctionDelta, ToolCallDelta,
};
use super::run::{self, Running};
use super::types::{FunctionCall, MessageToolCall, PromptTokensDetails, Usage};
use super::validate::ValidRequest;
use crate::channel_stream::{channel_stream, send_within};
use crate::reply::{Reply, WholeReply};
use crate::{ApiError, AppState};

/// Which endpoint is answering.
#[derive(Clone, Copy)]
pub(crate) enum Family {
    Chat,
    Completion,
}

/// What every body of one answer shares.
struct Envelope<'a> {
    id: &'a str,
    created: u64,
    model: &'a str,
    /// [`fingerprint`] of the model, computed once per answer, not per chunk.
    fingerprint: String,
}

impl Family {
    fn id(self) -> String {
        let prefix = match self {
            Family::Chat => "chatcmpl",
            Family::Completion => "cmpl",
        };
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        format!("{prefix}-{nanos:x}")
    }

    fn endpoint(self) -> &'static str {
        match self {
            Family::Chat => "/v1/chat/completions",
            Family::Completion => "/v1/completions",
        }
    }

    /// The log-probabilities of `tokens`, whose text starts at byte `offset`.
    fn logprobs(self, engine: &dyn Engine, tokens: &[GeneratedToken], offset: usize) -> Value {
        match self {
            Family::Chat => json!({"content": logprobs::chat_content(engine, tokens)}),
            Family::Completion => logprobs::completion(engine, tokens, offset),
        }
    }

    /// The whole answer.
    fn full(
        self,
        at: &Envelope,
        reply: WholeReply,
        logprobs: Value,
        finish_reason: &'static str,
        finished: &Finished,
    ) -> Value {
        let body = match self {
            Family::Chat => serde_json::to_value(ChatCompletion {
                id: at.id.to_owned(),
                object: "chat.completion",
                created: at.created,
                model: at.model.to_owned(),
                system_fingerprint: at.fingerprint.clone(),
                choices: vec![ChatChoice {
                    index: 0,
                    message: AssistantMessage {
                        role: "assistant",
                        content: (reply.calls.is_empty() || !reply.text.is_empty())
                            .then_some(reply.text),
                        reasoning_content: (!reply.reasoning.is_empty()).then_some(reply.reasoning),
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
                    logprobs,
                    finish_reason,
                }],
                usage: usage(finished),
            }),
            Family::Completion => serde_json::to_value(Completion {
                id: at.id.to_owned(),
                object: "text_completion",
                created: at.created,
                model: at.model.to_owned(),
                system_fingerprint: at.fingerprint.clone(),
                choices: vec![CompletionChoice {
                    index: 0,
                    text: reply.text,
                    logprobs,
                    finish_reason: Some(finish_reason),
                }],
                usage: Some(Some(usage(finished))),
            }),
        };
        body.expect("a response body serializes")
    }

    /// One stream chunk: a choice with `text` (the role too when `first`) and/or a
    /// finish reason, or (with `choice` None) the usage chunk.
    fn chunk(self, at: &Envelope, choice: Option<ChunkParts>, usage: ChunkUsage) -> Value {
        let body = match self {
            Family::Chat => serde_json::to_value(ChatCompletionChunk {
                id: at.id.to_owned(),
                object: "chat.completion.chunk",
                created: at.created,
                model: at.model.to_owned(),
                system_fingerprint: at.fingerprint.clone(),
                choices: choice
                    .map(|c| ChunkChoice {
                        index: 0,
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
                        index: 0,
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
struct ChunkParts {
    delta: Delta,
    first: bool,
    logprobs: Value,
    finish_reason: Option<&'static str>,
}

impl ChunkParts {
    fn new(delta: Delta) -> Self {
        ChunkParts {
            delta,
            first: false,
            logprobs: Value::Null,
            finish_reason: None,
        }
    }
}

/// The stream deltas of reply parts; `calls` counts the calls sent so far.
fn deltas(parts: Vec<ReplyPart>, calls: &mut usize) -> Vec<Delta> {
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

fn finish_reason(f: &Finished, reply: &Reply) -> &'static str {
    match f.reason {
        FinishReason::Length => "length",
        _ if reply.made_calls() => "tool_calls",
        FinishReason::Stop | FinishReason::Cancelled(_) => "stop",
    }
}

fn usage(f: &Finished) -> Usage {
    Usage {
        prompt_tokens: f.prompt_tokens,
        completion_tokens: f.completion_tokens,
        total_tokens: f.prompt_tokens + f.completion_tokens,
        prompt_tokens_details: PromptTokensDetails {
            cached_tokens: f.cached_tokens,
        },
    }
}

/// Which build of Perch answered with which model: the same across answers until either
/// changes.
fn fingerprint(model: &str) -> String {
    use std::hash::{Hash, Hasher};
    // SipHash with fixed keys: the same value in every process.
    let mut hasher = std::hash::DefaultHasher::new();
    (env!("CARGO_PKG_VERSION"), model).hash(&mut hasher);
    format!("fp_{:012x}", hasher.finish() & 0xffff_ffff_ffff)
}

fn created() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Runs `request` and answers as `family`.
pub(crate) async fn respond(
    state: &AppState,
    family: Family,
    request: ValidRequest,
) -> Result<Response, ApiError> {
    let running = run::start(state, family.endpoint(), &request)?;
    if request.stream {
        Ok(stream(family, request, running, state.limits.write_timeout).into_response())
    } else {
        Ok(Json(collect(family, request, running).await?).into_response())
    }
}

async fn collect(
    family: Family,
    mut request: ValidRequest,
    mut running: Running,
) -> Result<Value, ApiError> {
    let mut text = String::new();
    let mut tokens = Vec::new();
    while let Some(event) = running.next().await {
        match event? {
            Event::Chunk {
                text: t,
                tokens: ts,
            } => {
                text.push_str(&t);
                tokens.extend(ts);
            }
            Event::Done(finished) => {
                run::log_finished(family.endpoint(), request.model_name(), &finished);
                let engine = request.engine().as_ref();
                let lp = if request.logprobs.is_some() {
                    family.logprobs(engine, &tokens, 0)
                } else {
                    Value::Null
                };
                let mut reply = WholeReply::read(&mut request.reply, &text);
                if let Some(echo) = request.echo.take() {
                    reply.text.insert_str(0, &echo);
                }
                let reason = finish_reason(&finished, &request.reply);
                let at = Envelope {
                    id: &family.id(),
                    created: created(),
                    model: request.model_name(),
                    fingerprint: fingerprint(request.model_name()),
                };
                return Ok(family.full(&at, reply, lp, reason, &finished));
            }
        }
    }
    Err(ApiError::internal(
        "the model stopped without finishing the answer",
    ))
}

fn stream(
    family: Family,
    mut request: ValidRequest,
    mut running: Running,
    write_timeout: Duration,
) -> Sse<impl futures_util::Stream<Item = Result<SseEvent, Infallible>>> {
    let id = family.id();
    let created = created();
    let stream = channel_stream(move |tx: tokio::sync::mpsc::Sender<SseEvent>| async move {
        // A client that keeps its connection open but reads nothing for `write_timeout`
        // is treated as gone.
        let send = |event: SseEvent| send_within(&tx, event, write_timeout);
        let mut reply = std::mem::take(&mut request.reply);
        let echo = request.echo.take();
        let at = Envelope {
            id: &id,
            created,
            model: request.model_name(),
            fingerprint: fingerprint(request.model_name()),
        };
        let no_usage = || request.include_usage.then_some(None);
        let chunk = |choice: Option<ChunkParts>, usage: ChunkUsage| {
            SseEvent::default().data(family.chunk(&at, choice, usage).to_string())
        };
        let engine = request.engine().clone();
        let mut calls = 0;
        let mut offset = 0;
        let mut first = true;
        if let Some(echo) = echo {
            let echoed = ChunkParts::new(Delta {
                content: Some(echo),
                ..Delta::default()
            });
            if !send(chunk(Some(echoed), no_usage())).await {
                return;
            }
        }
        if let Family::Chat = family {
            let opening = ChunkParts {
                first: true,
                ..ChunkParts::new(Delta {
                    content: Some(String::new()),
                    ..Delta::default()
                })
            };
            if !send(chunk(Some(opening), no_usage())).await {
                return;
            }
            first = false;
        }
        loop {
            // A client that stops reading drops the body, which closes `tx`: stop waiting
            // for the model then, so dropping `running` cancels it even mid-prefill.
            let event = tokio::select! {
                biased;
                _ = tx.closed() => return,
                event = running.next() => event,
            };
            let Some(event) = event else { break };
            match event {
                Ok(Event::Chunk { text, tokens }) => {
                    let mut lp = match request.logprobs {
                        Some(_) => family.logprobs(engine.as_ref(), &tokens, offset),
                        None => Value::Null,
                    };
                    offset += text.len();
                    let mut pieces = deltas(reply.read(&text), &mut calls);
                    if pieces.is_empty() && !lp.is_null() {
                        // Log-probabilities of tokens whose text is held back.
                        pieces.push(Delta {
                            content: Some(String::new()),
                            ..Delta::default()
                        });
                    }
                    for delta in pieces {
                        let choice = ChunkParts {
                            first,
                            logprobs: std::mem::take(&mut lp),
                            ..ChunkParts::new(delta)
                        };
                        first = false;
                        if !send(chunk(Some(choice), no_usage())).await {
                            return;
                        }
                    }
                }
                Ok(Event::Done(finished)) => {
                    run::log_finished(family.endpoint(), request.model_name(), &finished);
                    for delta in deltas(reply.finish(), &mut calls) {
                        let choice = ChunkParts {
                            first,
                            ..ChunkParts::new(delta)
                        };
                        first = false;
                        if !send(chunk(Some(choice), no_usage())).await {
                            return;
                        }
                    }
                    let last = ChunkParts {
                        first,
                        finish_reason: Some(finish_reason(&finished, &reply)),
                        ..ChunkParts::new(Delta::default())
                    };
                    if !send(chunk(Some(last), no_usage())).await {
                        return;
                    }
                    if request.include_usage
                        && !send(chunk(None, Some(Some(usage(&finished))))).await
                    {
                        return;
                    }
                    break;
                }
                Err(e) => {
                    let error = ApiError::from(e);
                    send(SseEvent::default().data(error.body().to_string())).await;
                    break;
                }
            }
        }
        send(SseEvent::default().data("[DONE]")).await;
    });
    Sse::new(stream)
}
