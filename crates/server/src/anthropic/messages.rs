//! `POST /v1/messages` and `POST /v1/messages/count_tokens`. A request becomes the same
//! validated chat request as OpenAI's endpoint and runs the same way; the answer is read
//! into thinking, text and tool use blocks and sent as one `message`, or as Anthropic's
//! event stream: `message_start`, `ping`, then per block `content_block_start`,
//! `content_block_delta` (`thinking_delta`, `text_delta`, `input_json_delta`) and
//! `content_block_stop`, then `message_delta` (stop reason, usage) and `message_stop`;
//! `ping` again every 15 s while nothing else is sent (a long prompt being read).

use std::convert::Infallible;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use axum::extract::State;
use axum::response::sse::{Event as SseEvent, Sse};
use axum::response::{IntoResponse, Response};
use axum::Json;
use perch_engine::generate::{Event, FinishReason, Finished};
use perch_engine::reply::{ReplyPart, ToolCall};
use serde_json::{json, Value};

use super::convert::{chat_request, Conversation};
use super::types::{
    AnthropicError, CountTokensRequest, MessageResponse, MessageUsage, MessagesRequest,
    OutputBlock, TokenCount,
};
use crate::channel_stream::{channel_stream, send_within};
use crate::extract::JsonBody;
use crate::openai::run;
use crate::openai::types::{Sampling, Stop};
use crate::openai::validate::{self, ValidRequest};
use crate::reply::{Reply, WholeReply};
use crate::{ApiError, AppState};

const ENDPOINT: &str = "/v1/messages";

/// How often a stream with nothing new sends a `ping`.
const PING_EVERY: std::time::Duration = std::time::Duration::from_secs(15);

/// Answers a conversation, as one `message` or (with `stream: true`) as events.
#[utoipa::path(post, path = "/v1/messages", operation_id = "anthropicMessages", tag = "anthropic",
    request_body = MessagesRequest,
    responses((status = 200, description = "A message, or (with stream: true) Anthropic's server-sent events",
        content((MessageResponse = "application/json"), (String = "text/event-stream"))),
        (status = 404, description = "No such model", body = AnthropicError),
        (status = 507, description = "The model does not fit in memory", body = AnthropicError)))]
pub(crate) async fn create(
    State(state): State<AppState>,
    JsonBody(body): JsonBody<MessagesRequest>,
) -> Result<Response, ApiError> {
    let arrived = Instant::now();
    if let Some(t) = body.temperature.filter(|t| !(0.0..=1.0).contains(t)) {
        return Err(ApiError::invalid_field(
            "temperature",
            format!("temperature must be between 0 and 1, got {t}"),
        ));
    }
    let top_k = match body.top_k {
        Some(k) if k < 0 => {
            return Err(ApiError::invalid_field(
                "top_k",
                format!("top_k must be 0 or more, got {k}"),
            ))
        }
        k => k.map(i32::unsigned_abs),
    };
    let stream = body.stream.unwrap_or(false);
    let sampling = Sampling {
        temperature: body.temperature,
        top_p: body.top_p,
        top_k,
        stop: body.stop_sequences.clone().map(|list| Stop::Listed {
            list,
            field: "stop_sequences".into(),
        }),
        max_tokens: Some(body.max_tokens),
        stream: Some(stream),
        ..Sampling::default()
    };
    let chat = chat_request(
        Conversation {
            model: body.model.clone(),
            messages: &body.messages,
            system: body.system.as_ref(),
            tools: body.tools.as_deref(),
            tool_choice: body.tool_choice.as_ref(),
            thinking: body.thinking.as_ref(),
        },
        sampling,
    )?;
    let model = state.acquire(&body.model, None).await?;
    let request = validate::off_runtime(&state, move |s| validate::chat(s, model, chat))
        .await?
        .arrived_at(arrived);
    if stream {
        Ok(stream_events(&state, request)?.into_response())
    } else {
        Ok(Json(whole(&state, request).await?).into_response())
    }
}

/// Counts the prompt tokens of a conversation, tools and system prompt included.
#[utoipa::path(post, path = "/v1/messages/count_tokens", operation_id = "anthropicCountTokens",
    tag = "anthropic", request_body = CountTokensRequest,
    responses((status = 200, description = "The prompt's tokens", body = TokenCount),
        (status = 404, description = "No such model", body = AnthropicError),
        (status = 507, description = "The model does not fit in memory", body = AnthropicError)))]
pub(crate) async fn count_tokens(
    State(state): State<AppState>,
    JsonBody(body): JsonBody<CountTokensRequest>,
) -> Result<Json<TokenCount>, ApiError> {
    let chat = chat_request(
        Conversation {
            model: body.model.clone(),
            messages: &body.messages,
            system: body.system.as_ref(),
            tools: body.tools.as_deref(),
            tool_choice: body.tool_choice.as_ref(),
            thinking: body.thinking.as_ref(),
        },
        Sampling {
            max_tokens: Some(1),
            ..Sampling::default()
        },
    )?;
    let model = state.acquire(&body.model, None).await?;
    // Counted whatever its length: a client asks to learn whether it fits.
    let (counted, _slot) = run::admitted(&state, "counting the tokens", move || {
        validate::chat_prompt(&model, &chat).map(|(prompt, _)| prompt.tokens.len())
    })
    .await?;
    let counted = counted?;
    Ok(Json(TokenCount {
        input_tokens: counted,
    }))
}

async fn whole(state: &AppState, mut request: ValidRequest) -> Result<MessageResponse, ApiError> {
    let mut running = run::start(state, ENDPOINT, &mut request)?;
    let mut text = String::new();
    while let Some(event) = running.next().await {
        match event? {
            Event::Chunk { text: t, .. } => text.push_str(&t),
            Event::Done(finished) => {
                run::log_finished(ENDPOINT, request.model_name(), &finished);
                let reply = WholeReply::read(&mut request.reply, &text);
                let mut content = Vec::new();
                if !reply.reasoning.is_empty() {
                    content.push(OutputBlock::Thinking {
                        thinking: reply.reasoning,
                        signature: String::new(),
                    });
                }
                // As the stream does: no empty text block.
                if !reply.text.is_empty() {
                    content.push(OutputBlock::Text { text: reply.text });
                }
                content.extend(reply.calls.into_iter().map(tool_use));
                let (stop_reason, stop_sequence) = stop_reason(&finished, &request.reply);
                return Ok(MessageResponse {
                    id: message_id(),
                    kind: "message",
                    role: "assistant",
                    model: request.model_name().to_owned(),
                    content,
                    stop_reason: Some(stop_reason),
                    stop_sequence,
                    usage: usage(&finished),
                });
            }
        }
    }
    Err(ApiError::internal(
        "the model stopped without finishing the answer",
    ))
}

fn stream_events(
    state: &AppState,
    mut request: ValidRequest,
) -> Result<Sse<impl futures_util::Stream<Item = Result<SseEvent, Infallible>>>, ApiError> {
    let mut running = run::start(state, ENDPOINT, &mut request)?;
    let write_timeout = state.limits.write_timeout;
    let stream = channel_stream(move |tx: tokio::sync::mpsc::Sender<SseEvent>| async move {
        let send = |name: &str, data: Value| {
            send_within(
                &tx,
                SseEvent::default().event(name).data(data.to_string()),
                write_timeout,
            )
        };
        let mut reply = std::mem::take(&mut request.reply);
        let start = MessageResponse {
            id: message_id(),
            kind: "message",
            role: "assistant",
            model: request.model_name().to_owned(),
            content: Vec::new(),
            stop_reason: None,
            stop_sequence: None,
            usage: MessageUsage {
                input_tokens: request.generate.prompt.len(),
                output_tokens: 0,
                cache_read_input_tokens: 0,
                cache_creation_input_tokens: 0,
            },
        };
        if !send(
            "message_start",
            json!({"type": "message_start", "message": start}),
        )
        .await
            || !send("ping", json!({"type": "ping"})).await
        {
            return;
        }
        let mut blocks = Blocks::default();
        let mut keep_alive =
            tokio::time::interval_at(tokio::time::Instant::now() + PING_EVERY, PING_EVERY);
        loop {
            let event = tokio::select! {
                biased;
                _ = tx.closed() => return,
                event = running.next() => event,
                // A long prompt sends nothing for minutes; pings keep the client's idle
                // timer (Claude Code's is 180 s) from giving up on the stream.
                _ = keep_alive.tick() => {
                    if !send("ping", json!({"type": "ping"})).await {
                        return;
                    }
                    continue;
                }
            };
            let parts = match event {
                None => return,
                Some(Ok(Event::Chunk { text, .. })) => reply.read(&text),
                Some(Ok(Event::Done(finished))) => {
                    run::log_finished(ENDPOINT, request.model_name(), &finished);
                    let mut events = blocks.events(reply.finish());
                    events.extend(blocks.close());
                    let (stop_reason, stop_sequence) = stop_reason(&finished, &reply);
                    events.push((
                        "message_delta",
                        json!({"type": "message_delta",
                               "delta": {"stop_reason": stop_reason, "stop_sequence": stop_sequence},
                               "usage": {"output_tokens": finished.completion_tokens}}),
                    ));
                    events.push(("message_stop", json!({"type": "message_stop"})));
                    for (name, data) in events {
                        if !send(name, data).await {
                            return;
                        }
                    }
                    return;
                }
                Some(Err(e)) => {
                    let error = ApiError::from(e);
                    let body = AnthropicError::new(error.status(), error.message().to_owned());
                    send("error", json!(body)).await;
                    return;
                }
            };
            for (name, data) in blocks.events(parts) {
                if !send(name, data).await {
                    return;
                }
            }
        }
    });
    Ok(Sse::new(stream))
}

/// The content blocks of a streamed answer: which is open, and how many came before.
#[derive(Default)]
struct Blocks {
    open: Option<&'static str>,
    next_index: usize,
}

impl Blocks {
    /// The events that give out `parts`.
    fn events(&mut self, parts: Vec<ReplyPart>) -> Vec<(&'static str, Value)> {
        let mut events = Vec::new();
        for part in parts {
            match part {
                ReplyPart::Text(text) => {
                    self.open_block(&mut events, "text", json!({"type": "text", "text": ""}));
                    events.push(self.delta(json!({"type": "text_delta", "text": text})));
                }
                ReplyPart::Reasoning(thinking) => {
                    self.open_block(
                        &mut events,
                        "thinking",
                        json!({"type": "thinking", "thinking": "", "signature": ""}),
                    );
                    events
                        .push(self.delta(json!({"type": "thinking_delta", "thinking": thinking})));
                }
                ReplyPart::ToolCall(call) => {
                    events.extend(self.close());
                    let block =
                        json!({"type": "tool_use", "id": call.id, "name": call.name, "input": {}});
                    self.open_block(&mut events, "tool_use", block);
                    events.push(self.delta(
                        json!({"type": "input_json_delta", "partial_json": call.arguments}),
                    ));
                    events.extend(self.close());
                }
            }
        }
        events
    }

    /// Opens a block of `kind` unless one is open, closing any other.
    fn open_block(
        &mut self,
        events: &mut Vec<(&'static str, Value)>,
        kind: &'static str,
        block: Value,
    ) {
        if self.open == Some(kind) {
            return;
        }
        events.extend(self.close());
        self.open = Some(kind);
        events.push((
            "content_block_start",
            json!({"type": "content_block_start", "index": self.next_index, "content_block": block}),
        ));
    }

    fn delta(&self, delta: Value) -> (&'static str, Value) {
        (
            "content_block_delta",
            json!({"type": "content_block_delta", "index": self.next_index, "delta": delta}),
        )
    }

    /// Closes the open block, if any.
    fn close(&mut self) -> Option<(&'static str, Value)> {
        self.open.take()?;
        let index = self.next_index;
        self.next_index += 1;
        Some((
            "content_block_stop",
            json!({"type": "content_block_stop", "index": index}),
        ))
    }
}

fn tool_use(call: ToolCall) -> OutputBlock {
    OutputBlock::ToolUse {
        id: call.id,
        name: call.name,
        input: serde_json::from_str(&call.arguments).unwrap_or_else(|_| json!({})),
    }
}

/// Anthropic's stop reason, and the stop sequence that ended the answer.
fn stop_reason(finished: &Finished, reply: &Reply) -> (&'static str, Option<String>) {
    match finished.reason {
        FinishReason::Length => ("max_tokens", None),
        _ if reply.made_calls() => ("tool_use", None),
        _ => match &finished.stop_sequence {
            Some(stop) => ("stop_sequence", Some(stop.clone())),
            None => ("end_turn", None),
        },
    }
}

fn usage(finished: &Finished) -> MessageUsage {
    MessageUsage {
        input_tokens: finished.prompt_tokens,
        output_tokens: finished.completion_tokens,
        cache_read_input_tokens: finished.cached_tokens,
        cache_creation_input_tokens: 0,
    }
}

fn message_id() -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!("msg_{nanos:x}")
}
