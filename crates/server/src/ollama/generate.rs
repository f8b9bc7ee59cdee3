//! `POST /api/chat` and `POST /api/generate`: the body becomes the same validated request
//! as OpenAI's chat and completion endpoints (Ollama's default sampling where the request
//! gives none), runs the same way, and answers as Ollama does — NDJSON chunks ending
//! with one that carries the timings, or one JSON object when `stream` is false. An empty
//! conversation or prompt only loads the model, or unloads it with `keep_alive: 0`.

use std::time::{Duration, Instant, SystemTime};

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::Json;
use perch_engine::generate::{Event, FinishReason, Finished};
use perch_runtime::KeepAlive;
use serde_json::Value;

use super::types::{
    ChatMessage, ChatRequest, GenerateChunk, GenerateRequest, OllamaErrorBody, Options,
};
use super::{ndjson, rfc3339};
use crate::channel_stream::{channel_stream, send_within};
use crate::extract::JsonBody;
use crate::openai::types::{
    ChatCompletionRequest, CompletionRequest, Content, Message, Prompt, Sampling, Stop,
};
use crate::openai::{run, validate};
use crate::{ApiError, AppState};

/// Which endpoint answers.
#[derive(Clone, Copy)]
enum Shape {
    Chat,
    Generate,
}

impl Shape {
    fn endpoint(self) -> &'static str {
        match self {
            Shape::Chat => "/api/chat",
            Shape::Generate => "/api/generate",
        }
    }

    /// A chunk carrying `text`.
    fn chunk(self, model: &str, text: String) -> GenerateChunk {
        let mut chunk = GenerateChunk {
            model: model.to_owned(),
            created_at: rfc3339(SystemTime::now()),
            ..GenerateChunk::default()
        };
        match self {
            Shape::Chat => {
                chunk.message = Some(ChatMessage {
                    role: "assistant".into(),
                    content: text,
                    images: None,
                })
            }
            Shape::Generate => chunk.response = Some(text),
        }
        chunk
    }
}

/// Answers a chat.
#[utoipa::path(post, path = "/api/chat", operation_id = "ollamaChat", tag = "ollama",
    request_body = ChatRequest,
    responses((status = 200, description = "NDJSON chunks (or one object when stream is false)",
            content((GenerateChunk = "application/x-ndjson"), (GenerateChunk = "application/json"))),
        (status = 400, description = "Invalid request", body = OllamaErrorBody),
        (status = 404, description = "No such model", body = OllamaErrorBody),
        (status = 507, description = "The model does not fit in memory", body = OllamaErrorBody)))]
pub(crate) async fn chat(
    State(state): State<AppState>,
    JsonBody(body): JsonBody<ChatRequest>,
) -> Result<Response, ApiError> {
    let arrived = Instant::now();
    refuse_format(body.format.as_ref())?;
    if body.messages.iter().any(|m| m.images.is_some()) {
        return Err(unsupported(
            "images",
            "images are not supported: Perch's models read text",
        ));
    }
    let keep_alive = keep_alive(body.keep_alive.as_ref())?;
    let stream = body.stream.unwrap_or(true);
    if body.messages.is_empty() {
        return load_or_unload(&state, Shape::Chat, &body.model, keep_alive).await;
    }
    let lease = state.acquire(&body.model, keep_alive).await?;
    let loaded_in = arrived.elapsed();
    let openai = ChatCompletionRequest {
        model: body.model,
        messages: body
            .messages
            .into_iter()
            .map(|m| Message {
                role: m.role,
                content: Some(Content::Text(m.content)),
                name: None,
            })
            .collect(),
        max_completion_tokens: None,
        logprobs: None,
        top_logprobs: None,
        tools: body.tools,
        sampling: sampling(body.options.unwrap_or_default(), stream),
    };
    let request = validate::off_runtime(&state, move |s| validate::chat(s, lease, openai)).await?;
    answer(
        &state,
        Shape::Chat,
        request.arrived_at(arrived),
        arrived,
        loaded_in,
    )
    .await
}

/// Completes a prompt (through the chat template unless `raw`).
#[utoipa::path(post, path = "/api/generate", operation_id = "ollamaGenerate", tag = "ollama",
    request_body = GenerateRequest,
    responses((status = 200, description = "NDJSON chunks (or one object when stream is false)",
            content((GenerateChunk = "application/x-ndjson"), (GenerateChunk = "application/json"))),
        (status = 400, description = "Invalid request", body = OllamaErrorBody),
        (status = 404, description = "No such model", body = OllamaErrorBody),
        (status = 507, description = "The model does not fit in memory", body = OllamaErrorBody)))]
pub(crate) async fn generate(
    State(state): State<AppState>,
    JsonBody(body): JsonBody<GenerateRequest>,
) -> Result<Response, ApiError> {
    let arrived = Instant::now();
    refuse_format(body.format.as_ref())?;
    let refused = [
        (
            "suffix",
            body.suffix.is_some(),
            "fill-in-the-middle (suffix) is not supported",
        ),
        (
            "images",
            body.images.is_some(),
            "images are not supported: Perch's models read text",
        ),
        (
            "context",
            body.context.as_ref().is_some_and(|c| !c.is_empty()),
            "context is not supported: send the conversation to /api/chat",
        ),
        (
            "template",
            body.template.is_some(),
            "template is not supported: the model's own chat template is used",
        ),
    ];
    if let Some((field, _, message)) = refused.iter().find(|r| r.1) {
        return Err(unsupported(field, message));
    }
    let keep_alive = keep_alive(body.keep_alive.as_ref())?;
    let stream = body.stream.unwrap_or(true);
    if body.prompt.is_empty() {
        return load_or_unload(&state, Shape::Generate, &body.model, keep_alive).await;
    }
    let lease = state.acquire(&body.model, keep_alive).await?;
    let loaded_in = arrived.elapsed();
    let sampling = sampling(body.options.unwrap_or_default(), stream);
    let request = if body.raw.unwrap_or(false) {
        let openai = CompletionRequest {
            model: body.model,
            prompt: Prompt::Text(body.prompt),
            logprobs: None,
            echo: None,
            sampling,
        };
        validate::off_runtime(&state, move |s| validate::completion(s, lease, openai)).await?
    } else {
        let mut messages = Vec::new();
        if let Some(system) = body.system {
            messages.push(Message {
                role: "system".into(),
                content: Some(Content::Text(system)),
                name: None,
            });
        }
        messages.push(Message {
            role: "user".into(),
            content: Some(Content::Text(body.prompt)),
            name: None,
        });
        let openai = ChatCompletionRequest {
            model: body.model,
            messages,
            max_completion_tokens: None,
            logprobs: None,
            top_logprobs: None,
            tools: None,
            sampling,
        };
        validate::off_runtime(&state, move |s| validate::chat(s, lease, openai)).await?
    };
    answer(
        &state,
        Shape::Generate,
        request.arrived_at(arrived),
        arrived,
        loaded_in,
    )
    .await
}

/// Ollama's options as the shared sampling fields, with Ollama's defaults.
fn sampling(o: Options, stream: bool) -> Sampling {
    Sampling {
        temperature: Some(o.temperature.unwrap_or(0.8)),
        top_p: Some(o.top_p.unwrap_or(0.9)),
        top_k: Some(o.top_k.unwrap_or(40)),
        min_p: o.min_p,
        seed: o.seed,
        stop: o.stop.map(Stop::Many),
        max_tokens: o
            .num_predict
            .filter(|&n| n >= 0)
            .map(|n| u32::try_from(n).unwrap_or(u32::MAX)),
        presence_penalty: o.presence_penalty,
        frequency_penalty: o.frequency_penalty,
        repetition_penalty: Some(o.repeat_penalty.unwrap_or(1.1)),
        stream: Some(stream),
        ..Sampling::default()
    }
}

fn keep_alive(value: Option<&Value>) -> Result<Option<KeepAlive>, ApiError> {
    KeepAlive::from_field(value).map_err(|m| ApiError::invalid_field("keep_alive", m))
}

fn refuse_format(format: Option<&Value>) -> Result<(), ApiError> {
    match format {
        None | Some(Value::Null) => Ok(()),
        Some(Value::String(s)) if s.is_empty() => Ok(()),
        Some(_) => Err(unsupported(
            "format",
            "structured output (format) is not supported yet",
        )),
    }
}

fn unsupported(field: &str, message: &str) -> ApiError {
    ApiError::invalid_field(field, message)
}

/// An empty prompt: load the model (keeping it for `keep_alive`), or unload it when
/// `keep_alive` is 0.
async fn load_or_unload(
    state: &AppState,
    shape: Shape,
    model: &str,
    keep_alive: Option<KeepAlive>,
) -> Result<Response, ApiError> {
    let mut chunk = shape.chunk(model, String::new());
    chunk.done = true;
    if keep_alive == Some(KeepAlive::For(Duration::ZERO)) {
        if state.local_model(model).await.is_none() {
            return Err(super::not_found(model));
        }
        state.node.manager.unload(model);
        chunk.done_reason = Some("unload".into());
    } else {
        let started = Instant::now();
        state.node.manager.load(model, keep_alive).await?;
        chunk.load_duration = Some(nanos(started.elapsed()));
        chunk.done_reason = Some("load".into());
    }
    Ok(Json(chunk).into_response())
}

/// Runs the request and answers in NDJSON chunks, or one object.
async fn answer(
    state: &AppState,
    shape: Shape,
    request: validate::ValidRequest,
    arrived: Instant,
    loaded_in: Duration,
) -> Result<Response, ApiError> {
    let mut running = run::start(state, shape.endpoint(), &request)?;
    let name = request.model_name().to_owned();
    if !request.stream {
        let mut text = String::new();
        while let Some(event) = running.next().await {
            match event.map_err(ApiError::from)? {
                Event::Chunk { text: t, .. } => text.push_str(&t),
                Event::Done(finished) => {
                    run::log_finished(shape.endpoint(), &name, &finished);
                    let mut last = shape.chunk(&name, text);
                    finish(&mut last, &finished, arrived, loaded_in);
                    return Ok(Json(last).into_response());
                }
            }
        }
        return Err(ApiError::internal(
            "the model stopped without finishing the answer",
        ));
    }
    let write_timeout = state.limits.write_timeout;
    let lines = channel_stream(move |tx: tokio::sync::mpsc::Sender<Bytes>| async move {
        // Holds the model's lease until the stream ends.
        let _request = request;
        let send = |line: Bytes| send_within(&tx, line, write_timeout);
        loop {
            let event = tokio::select! {
                e = running.next() => e,
                () = tx.closed() => return,
            };
            match event {
                None => return,
                Some(Err(e)) => {
                    let _ = send(ndjson(&OllamaErrorBody {
                        error: e.to_string(),
                    }))
                    .await;
                    return;
                }
                Some(Ok(Event::Chunk { text, .. })) => {
                    if !text.is_empty() && !send(ndjson(&shape.chunk(&name, text))).await {
                        return;
                    }
                }
                Some(Ok(Event::Done(finished))) => {
                    run::log_finished(shape.endpoint(), &name, &finished);
                    let mut last = shape.chunk(&name, String::new());
                    finish(&mut last, &finished, arrived, loaded_in);
                    let _ = send(ndjson(&last)).await;
                    return;
                }
            }
        }
    });
    Ok((
        [("content-type", "application/x-ndjson")],
        Body::from_stream(lines),
    )
        .into_response())
}

/// Fills the last chunk's reason and timings.
fn finish(chunk: &mut GenerateChunk, finished: &Finished, arrived: Instant, loaded_in: Duration) {
    chunk.done = true;
    chunk.done_reason = Some(
        match finished.reason {
            FinishReason::Stop => "stop",
            FinishReason::Length => "length",
            FinishReason::Cancelled(_) => "cancelled",
        }
        .into(),
    );
    chunk.total_duration = Some(nanos(arrived.elapsed()));
    chunk.load_duration = Some(nanos(loaded_in));
    chunk.prompt_eval_count = Some(finished.prompt_tokens as u64);
    // From the model starting on the prompt (after any load and queue) to the first token.
    chunk.prompt_eval_duration = Some(nanos(
        finished.time_to_first_token.saturating_sub(finished.queued),
    ));
    chunk.eval_count = Some(finished.completion_tokens as u64);
    chunk.eval_duration = Some(nanos(finished.decode_time));
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}
