//! Turning a request's running generations into an OpenAI response: one JSON body with a
//! choice per generation, or server-sent events exactly as OpenAI sends them (per choice a
//! first chunk with the role, content deltas and a last chunk with `finish_reason`; then
//! optionally a usage chunk, then `data: [DONE]`). The shapes are in [`super::answer`].

use std::convert::Infallible;
use std::time::Duration;

use axum::response::sse::{Event as SseEvent, Sse};
use axum::response::{IntoResponse, Response};
use axum::Json;
use perch_engine::generate::{Event, Finished, GeneratedToken};
use serde_json::Value;

use super::answer::{
    created, deltas, fingerprint, finish_reason, usage, ChoiceAnswer, ChunkParts, Envelope, Family,
};
use super::responses::{ChunkUsage, Delta};
use super::run::{self, Running};
use super::validate::ValidRequest;
use crate::channel_stream::{channel_stream, send_within};
use crate::reply::{Reply, WholeReply};
use crate::{ApiError, AppState};

/// Runs `request` and answers as `family`.
pub(crate) async fn respond(
    state: &AppState,
    family: Family,
    mut request: ValidRequest,
) -> Result<Response, ApiError> {
    let running = run::start(state, family.endpoint(), &mut request)?;
    if request.stream {
        Ok(stream(family, request, running, state.limits.write_timeout).into_response())
    } else {
        Ok(Json(collect(family, request, running).await?).into_response())
    }
}

/// One choice's generation, gathered whole.
struct Gathered {
    text: String,
    tokens: Vec<GeneratedToken>,
    reply: Reply,
    finished: Option<Finished>,
}

async fn collect(
    family: Family,
    request: ValidRequest,
    mut running: Running,
) -> Result<Value, ApiError> {
    let mut choices: Vec<Gathered> = (0..request.choices)
        .map(|_| Gathered {
            text: String::new(),
            tokens: Vec::new(),
            reply: request.reply.clone(),
            finished: None,
        })
        .collect();
    while let Some((index, event)) = running.next_of_any().await {
        let choice = &mut choices[index];
        match event? {
            Event::Chunk { text, tokens } => {
                choice.text.push_str(&text);
                choice.tokens.extend(tokens);
            }
            Event::Done(finished) => {
                run::log_finished(family.endpoint(), request.model_name(), &finished);
                choice.finished = Some(finished);
            }
        }
    }
    let engine = request.engine().as_ref();
    let mut answers = Vec::with_capacity(choices.len());
    let mut finished = Vec::with_capacity(choices.len());
    for mut choice in choices {
        let done = choice
            .finished
            .take()
            .ok_or_else(|| ApiError::internal("the model stopped without finishing the answer"))?;
        let logprobs = if request.logprobs.is_some() {
            family.logprobs(engine, &choice.tokens, 0)
        } else {
            Value::Null
        };
        let mut reply = WholeReply::read(&mut choice.reply, &choice.text);
        if let Some(echo) = &request.echo {
            reply.text.insert_str(0, echo);
        }
        answers.push(ChoiceAnswer {
            reply,
            logprobs,
            finish_reason: finish_reason(&done, &choice.reply),
        });
        finished.push(done);
    }
    let at = Envelope {
        id: &family.id(),
        created: created(),
        model: request.model_name(),
        fingerprint: fingerprint(request.model_name()),
    };
    Ok(family.full(&at, answers, usage(&finished)))
}

/// Where one choice's stream stands.
struct Streaming {
    reply: Reply,
    /// Tool calls sent so far.
    calls: usize,
    /// Bytes of text sent so far (completions' log-probabilities count from here).
    offset: usize,
    /// Whether the next chunk is the choice's first (it carries the role).
    first: bool,
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
        let reply = std::mem::take(&mut request.reply);
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
        let mut choices: Vec<Streaming> = (0..request.choices)
            .map(|_| Streaming {
                reply: reply.clone(),
                calls: 0,
                offset: 0,
                first: true,
            })
            .collect();
        let mut finished = Vec::with_capacity(choices.len());
        for (index, choice) in choices.iter_mut().enumerate() {
            if let Some(echo) = &echo {
                let echoed = ChunkParts::new(
                    index,
                    Delta {
                        content: Some(echo.clone()),
                        ..Delta::default()
                    },
                );
                if !send(chunk(Some(echoed), no_usage())).await {
                    return;
                }
            }
            if let Family::Chat = family {
                let opening = ChunkParts {
                    first: true,
                    ..ChunkParts::new(
                        index,
                        Delta {
                            content: Some(String::new()),
                            ..Delta::default()
                        },
                    )
                };
                if !send(chunk(Some(opening), no_usage())).await {
                    return;
                }
                choice.first = false;
            }
        }
        loop {
            // A client that stops reading drops the body, which closes `tx`: stop waiting
            // for the model then, so dropping `running` cancels it even mid-prefill.
            let event = tokio::select! {
                biased;
                _ = tx.closed() => return,
                event = running.next_of_any() => event,
            };
            let Some((index, event)) = event else { break };
            let choice = &mut choices[index];
            match event {
                Ok(Event::Chunk { text, tokens }) => {
                    let mut lp = match request.logprobs {
                        Some(_) => family.logprobs(engine.as_ref(), &tokens, choice.offset),
                        None => Value::Null,
                    };
                    choice.offset += text.len();
                    let mut pieces = deltas(choice.reply.read(&text), &mut choice.calls);
                    if pieces.is_empty() && !lp.is_null() {
                        // Log-probabilities of tokens whose text is held back.
                        pieces.push(Delta {
                            content: Some(String::new()),
                            ..Delta::default()
                        });
                    }
                    for delta in pieces {
                        let parts = ChunkParts {
                            first: choice.first,
                            logprobs: std::mem::take(&mut lp),
                            ..ChunkParts::new(index, delta)
                        };
                        choice.first = false;
                        if !send(chunk(Some(parts), no_usage())).await {
                            return;
                        }
                    }
                }
                Ok(Event::Done(done)) => {
                    run::log_finished(family.endpoint(), request.model_name(), &done);
                    for delta in deltas(choice.reply.finish(), &mut choice.calls) {
                        let parts = ChunkParts {
                            first: choice.first,
                            ..ChunkParts::new(index, delta)
                        };
                        choice.first = false;
                        if !send(chunk(Some(parts), no_usage())).await {
                            return;
                        }
                    }
                    let last = ChunkParts {
                        first: choice.first,
                        finish_reason: Some(finish_reason(&done, &choice.reply)),
                        ..ChunkParts::new(index, Delta::default())
                    };
                    if !send(chunk(Some(last), no_usage())).await {
                        return;
                    }
                    finished.push(done);
                }
                Err(e) => {
                    let error = ApiError::from(e);
                    send(SseEvent::default().data(error.body().to_string())).await;
                    break;
                }
            }
        }
        if finished.len() == choices.len()
            && request.include_usage
            && !send(chunk(None, Some(Some(usage(&finished))))).await
        {
            return;
        }
        send(SseEvent::default().data("[DONE]")).await;
    });
    Sse::new(stream)
}
