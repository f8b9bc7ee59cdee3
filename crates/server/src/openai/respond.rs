//! Turning a running generation into an OpenAI response: one JSON body, or server-sent
//! events exactly as OpenAI sends them (a first chunk with the role, content deltas, a last
//! chunk with `finish_reason`, optionally a usage chunk, then `data: [DONE]`). The two
//! endpoints differ only in the shapes of a choice, which [`Family`] supplies.

use std::convert::Infallible;
use std::time::{SystemTime, UNIX_EPOCH};

use axum::response::sse::{Event as SseEvent, Sse};
use axum::response::{IntoResponse, Response};
use axum::Json;
use perch_engine::generate::{Event, FinishReason, Finished, GeneratedToken};
use perch_engine::Engine;
use serde_json::{json, Value};

use super::logprobs;
use super::run::{self, Running};
use super::types::{PromptTokensDetails, Usage};
use super::validate::ValidRequest;
use crate::{ApiError, AppState};

/// Which endpoint is answering.
#[derive(Clone, Copy)]
pub(crate) enum Family {
    Chat,
    Completion,
}

impl Family {
    fn object(self, streaming: bool) -> &'static str {
        match (self, streaming) {
            (Family::Chat, false) => "chat.completion",
            (Family::Chat, true) => "chat.completion.chunk",
            (Family::Completion, _) => "text_completion",
        }
    }

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

    fn full_choice(self, text: String, logprobs: Value, finish: &str) -> Value {
        match self {
            Family::Chat => json!({
                "index": 0, "message": {"role": "assistant", "content": text},
                "logprobs": logprobs, "finish_reason": finish,
            }),
            Family::Completion => {
                json!({"index": 0, "text": text, "logprobs": logprobs, "finish_reason": finish})
            }
        }
    }

    fn delta_choice(
        self,
        text: Option<&str>,
        first: bool,
        logprobs: Value,
        finish: Option<&str>,
    ) -> Value {
        match self {
            Family::Chat => {
                let mut delta = serde_json::Map::new();
                if first {
                    delta.insert("role".into(), "assistant".into());
                }
                if let Some(t) = text {
                    delta.insert("content".into(), t.into());
                }
                json!({"index": 0, "delta": delta, "logprobs": logprobs, "finish_reason": finish})
            }
            Family::Completion => {
                json!({"index": 0, "text": text.unwrap_or(""), "logprobs": logprobs, "finish_reason": finish})
            }
        }
    }
}

fn finish_reason(f: &Finished) -> &'static str {
    match f.reason {
        FinishReason::Length => "length",
        FinishReason::Stop | FinishReason::Cancelled => "stop",
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
    let running = run::start(state, &request)?;
    if request.stream {
        Ok(stream(family, request, running).into_response())
    } else {
        Ok(Json(collect(family, &request, running).await?).into_response())
    }
}

async fn collect(
    family: Family,
    request: &ValidRequest,
    mut running: Running,
) -> Result<Value, ApiError> {
    let mut text = String::new();
    let mut tokens = Vec::new();
    while let Some(event) = running.events.recv().await {
        match event? {
            Event::Chunk {
                text: t,
                tokens: ts,
            } => {
                text.push_str(&t);
                tokens.extend(ts);
            }
            Event::Done(finished) => {
                run::log_finished(family.endpoint(), &request.model.name, &finished);
                let engine = request.model.engine.as_ref();
                let lp = if request.logprobs.is_some() {
                    family.logprobs(engine, &tokens, 0)
                } else {
                    Value::Null
                };
                return Ok(json!({
                    "id": family.id(),
                    "object": family.object(false),
                    "created": created(),
                    "model": request.model.name,
                    "choices": [family.full_choice(text, lp, finish_reason(&finished))],
                    "usage": usage(&finished),
                }));
            }
        }
    }
    Err(ApiError::internal(
        "the model stopped without finishing the answer",
    ))
}

fn stream(
    family: Family,
    request: ValidRequest,
    mut running: Running,
) -> Sse<impl futures_util::Stream<Item = Result<SseEvent, Infallible>>> {
    let id = family.id();
    let created = created();
    let stream = async_stream(move |tx| async move {
        let chunk = |choices: Value, usage: Option<Usage>| {
            let mut body = json!({
                "id": id, "object": family.object(true), "created": created,
                "model": request.model.name, "choices": choices,
            });
            if request.include_usage {
                body["usage"] = serde_json::to_value(usage).unwrap_or(Value::Null);
            }
            SseEvent::default().data(body.to_string())
        };
        let engine = request.model.engine.clone();
        let mut offset = 0;
        let mut first = true;
        if let Family::Chat = family {
            let _ = tx
                .send(chunk(
                    json!([family.delta_choice(Some(""), true, Value::Null, None)]),
                    None,
                ))
                .await;
            first = false;
        }
        while let Some(event) = running.events.recv().await {
            match event {
                Ok(Event::Chunk { text, tokens }) => {
                    if text.is_empty() && request.logprobs.is_none() {
                        continue;
                    }
                    let lp = match request.logprobs {
                        Some(_) => family.logprobs(engine.as_ref(), &tokens, offset),
                        None => Value::Null,
                    };
                    offset += text.len();
                    let choice = family.delta_choice(Some(&text), first, lp, None);
                    first = false;
                    if tx.send(chunk(json!([choice]), None)).await.is_err() {
                        return;
                    }
                }
                Ok(Event::Done(finished)) => {
                    run::log_finished(family.endpoint(), &request.model.name, &finished);
                    let last = family.delta_choice(
                        None,
                        first,
                        Value::Null,
                        Some(finish_reason(&finished)),
                    );
                    let _ = tx.send(chunk(json!([last]), None)).await;
                    if request.include_usage {
                        let _ = tx.send(chunk(json!([]), Some(usage(&finished)))).await;
                    }
                    break;
                }
                Err(e) => {
                    let error = ApiError::from(e);
                    let _ = tx
                        .send(SseEvent::default().data(error.body().to_string()))
                        .await;
                    break;
                }
            }
        }
        let _ = tx.send(SseEvent::default().data("[DONE]")).await;
    });
    Sse::new(stream)
}

/// A stream fed by an async task through a channel; dropping the stream (the client went
/// away) closes the channel, which ends the task and with it the generation.
fn async_stream<F, Fut>(task: F) -> impl futures_util::Stream<Item = Result<SseEvent, Infallible>>
where
    F: FnOnce(tokio::sync::mpsc::Sender<SseEvent>) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let (tx, rx) = tokio::sync::mpsc::channel(16);
    tokio::spawn(task(tx));
    futures_util::stream::unfold(
        rx,
        |mut rx| async move { rx.recv().await.map(|e| (Ok(e), rx)) },
    )
}
