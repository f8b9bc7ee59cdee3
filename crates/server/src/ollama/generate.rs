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
use perch_engine::reply::ReplyPart;
use perch_engine::sampling_defaults::SamplingDefaults;
use perch_runtime::KeepAlive;
use serde_json::{Map, Value};

use super::types::{
    ChatMessage, ChatRequest, FunctionCall, GenerateChunk, GenerateRequest, OllamaErrorBody,
    Options, ToolCall,
};
use super::{ndjson, rfc3339};
use crate::channel_stream::{channel_stream, send_within};
use crate::extract::JsonBody;
use crate::openai::types::{
    ChatCompletionRequest, CompletionRequest, Content, FunctionCall as OpenAiFunctionCall,
    JsonSchemaFormat, Message, MessageToolCall, Prompt, ResponseFormat, Sampling, Stop,
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

    /// A chunk carrying reply `parts`; `calls` counts the calls sent so far.
    fn chunk(self, model: &str, parts: Vec<ReplyPart>, calls: &mut usize) -> GenerateChunk {
        let mut chunk = GenerateChunk {
            model: model.to_owned(),
            created_at: rfc3339(SystemTime::now()),
            ..GenerateChunk::default()
        };
        let (mut text, mut thinking, mut tool_calls) = (String::new(), String::new(), Vec::new());
        for part in parts {
            match part {
                ReplyPart::Text(t) => text.push_str(&t),
                ReplyPart::Reasoning(r) => thinking.push_str(&r),
                ReplyPart::ToolCall(call) => {
                    tool_calls.push(ToolCall {
                        function: FunctionCall {
                            index: Some(*calls),
                            name: call.name,
                            arguments: serde_json::from_str(&call.arguments).unwrap_or_default(),
                        },
                    });
                    *calls += 1;
                }
            }
        }
        let thinking = (!thinking.is_empty()).then_some(thinking);
        match self {
            Shape::Chat => {
                chunk.message = Some(ChatMessage {
                    role: "assistant".into(),
                    content: text,
                    images: None,
                    tool_calls: (!tool_calls.is_empty()).then_some(tool_calls),
                    tool_name: None,
                    thinking,
                })
            }
            Shape::Generate => {
                chunk.response = Some(text);
                chunk.thinking = thinking;
            }
        }
        chunk
    }
}

/// `think` as the template variable models that can think read.
fn thinking_kwargs(think: Option<&Value>) -> Result<Option<Map<String, Value>>, ApiError> {
    let enable = match think {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::Bool(b)) => *b,
        Some(Value::String(level)) if ["low", "medium", "high"].contains(&level.as_str()) => true,
        Some(other) => {
            return Err(ApiError::invalid_field(
                "think",
                format!("think must be true, false, \"low\", \"medium\" or \"high\", not {other}"),
            ))
        }
    };
    Ok(Some(Map::from_iter([(
        "enable_thinking".to_owned(),
        Value::Bool(enable),
    )])))
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
    let format = response_format(body.format.as_ref())?;
    if body.messages.iter().any(|m| m.images.is_some()) {
        return Err(unsupported(
            "images",
            "images are not supported: Perch's models read text",
        ));
    }
    validate::check_tools(body.tools.as_deref().unwrap_or_default())?;
    let template_kwargs = thinking_kwargs(body.think.as_ref())?;
    let keep_alive = keep_alive(body.keep_alive.as_ref())?;
    let stream = body.stream.unwrap_or(true);
    if body.messages.is_empty() {
        return load_or_unload(&state, Shape::Chat, &body.model, keep_alive).await;
    }
    let lease = state.acquire(&body.model, keep_alive).await?;
    let loaded_in = arrived.elapsed();
    let openai = ChatCompletionRequest {
        model: body.model,
        messages: body.messages.into_iter().map(message).collect(),
        max_completion_tokens: None,
        logprobs: None,
        top_logprobs: None,
        tools: body.tools,
        tool_choice: None,
        parallel_tool_calls: None,
        response_format: format,
        chat_template_kwargs: template_kwargs,
        sampling: sampling(
            body.options.unwrap_or_default(),
            stream,
            &lease.model().engine.info().sampling_defaults,
        ),
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
    let format = response_format(body.format.as_ref())?;
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
    let template_kwargs = thinking_kwargs(body.think.as_ref())?;
    let keep_alive = keep_alive(body.keep_alive.as_ref())?;
    let stream = body.stream.unwrap_or(true);
    if body.prompt.is_empty() {
        return load_or_unload(&state, Shape::Generate, &body.model, keep_alive).await;
    }
    let lease = state.acquire(&body.model, keep_alive).await?;
    let loaded_in = arrived.elapsed();
    let sampling = sampling(
        body.options.unwrap_or_default(),
        stream,
        &lease.model().engine.info().sampling_defaults,
    );
    let request = if body.raw.unwrap_or(false) {
        let openai = CompletionRequest {
            model: body.model,
            prompt: Prompt::Text(body.prompt),
            logprobs: None,
            echo: None,
            sampling,
        };
        let grammar = format
            .as_ref()
            .map(validate::response_grammar)
            .transpose()?
            .flatten();
        validate::off_runtime(&state, move |s| {
            let mut request = validate::completion(s, lease, openai)?;
            if let Some(grammar) = &grammar {
                validate::constrain(&mut request, "format", grammar)?;
            }
            Ok(request)
        })
        .await?
    } else {
        let mut messages = Vec::new();
        if let Some(system) = body.system {
            messages.push(Message {
                role: "system".into(),
                content: Some(Content::Text(system)),
                ..Message::default()
            });
        }
        messages.push(Message {
            role: "user".into(),
            content: Some(Content::Text(body.prompt)),
            ..Message::default()
        });
        let openai = ChatCompletionRequest {
            model: body.model,
            messages,
            max_completion_tokens: None,
            logprobs: None,
            top_logprobs: None,
            tools: None,
            tool_choice: None,
            parallel_tool_calls: None,
            response_format: format,
            chat_template_kwargs: template_kwargs,
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

/// An Ollama message as an OpenAI one (calls get ids, arguments become JSON text).
fn message(m: ChatMessage) -> Message {
    let tool_calls = m.tool_calls.map(|calls| {
        calls
            .into_iter()
            .enumerate()
            .map(|(i, call)| MessageToolCall {
                id: format!("call_{i}"),
                kind: "function".into(),
                function: OpenAiFunctionCall {
                    name: call.function.name,
                    arguments: Value::Object(call.function.arguments).to_string(),
                },
            })
            .collect()
    });
    Message {
        role: m.role,
        content: Some(Content::Text(m.content)),
        name: m.tool_name,
        tool_calls,
        reasoning_content: m.thinking,
        ..Message::default()
    }
}

/// Ollama's options as the shared sampling fields: the request's, else the model's
/// recommendation (`recommended`), else Ollama's defaults.
fn sampling(o: Options, stream: bool, recommended: &SamplingDefaults) -> Sampling {
    Sampling {
        temperature: Some(o.temperature.or(recommended.temperature).unwrap_or(0.8)),
        top_p: Some(o.top_p.or(recommended.top_p).unwrap_or(0.9)),
        top_k: Some(match o.top_k {
            Some(k) => k.max(0).unsigned_abs(),
            None => recommended.top_k.unwrap_or(40),
        }),
        min_p: o.min_p.or(recommended.min_p),
        seed: o.seed.and_then(|s| u64::try_from(s).ok()),
        stop: o.stop.map(|list| Stop::Listed {
            list,
            field: "options.stop".into(),
        }),
        max_tokens: o
            .num_predict
            .filter(|&n| n >= 0)
            .map(|n| u32::try_from(n).unwrap_or(u32::MAX)),
        presence_penalty: o.presence_penalty,
        frequency_penalty: o.frequency_penalty,
        repetition_penalty: Some(
            o.repeat_penalty
                .or(recommended.repetition_penalty)
                .unwrap_or(1.1),
        ),
        stream: Some(stream),
        ..Sampling::default()
    }
}

pub(super) fn keep_alive(value: Option<&Value>) -> Result<Option<KeepAlive>, ApiError> {
    KeepAlive::from_field(value).map_err(|m| ApiError::invalid_field("keep_alive", m))
}

/// Ollama's `format` (`"json"` or a JSON schema) as OpenAI's `response_format`.
fn response_format(format: Option<&Value>) -> Result<Option<ResponseFormat>, ApiError> {
    let (kind, schema) = match format {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::String(s)) if s.is_empty() => return Ok(None),
        Some(Value::String(s)) if s == "json" => ("json_object", None),
        Some(schema @ Value::Object(_)) => ("json_schema", Some(schema.clone())),
        Some(other) => {
            return Err(unsupported(
                "format",
                &format!("format must be \"json\" or a JSON schema object, not {other}"),
            ))
        }
    };
    Ok(Some(ResponseFormat {
        kind: kind.into(),
        json_schema: schema.map(|schema| JsonSchemaFormat {
            name: None,
            description: None,
            schema: Some(schema),
            strict: None,
        }),
    }))
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
    let mut chunk = shape.chunk(model, Vec::new(), &mut 0);
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
    mut request: validate::ValidRequest,
    arrived: Instant,
    loaded_in: Duration,
) -> Result<Response, ApiError> {
    let mut running = run::start(state, shape.endpoint(), &mut request)?;
    let name = request.model_name().to_owned();
    let mut reply = std::mem::take(&mut request.reply);
    let mut calls = 0;
    if !request.stream {
        let mut parts = Vec::new();
        while let Some(event) = running.next().await {
            match event.map_err(ApiError::from)? {
                Event::Chunk { text, .. } => parts.extend(reply.read(&text)),
                Event::Done(finished) => {
                    run::log_finished(shape.endpoint(), &name, &finished);
                    parts.extend(reply.finish());
                    let mut last = shape.chunk(&name, parts, &mut calls);
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
                    let parts = reply.read(&text);
                    if !parts.is_empty()
                        && !send(ndjson(&shape.chunk(&name, parts, &mut calls))).await
                    {
                        return;
                    }
                }
                Some(Ok(Event::Done(finished))) => {
                    run::log_finished(shape.endpoint(), &name, &finished);
                    let rest = reply.finish();
                    if !rest.is_empty()
                        && !send(ndjson(&shape.chunk(&name, rest, &mut calls))).await
                    {
                        return;
                    }
                    let mut last = shape.chunk(&name, Vec::new(), &mut calls);
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

pub(super) fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}
