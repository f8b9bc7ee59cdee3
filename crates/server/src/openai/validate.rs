//! Parse, don't re-check: turns an OpenAI request body into a [`ValidRequest`] once —
//! model resolved, fields range-checked (each error names its field), prompt rendered and
//! tokenized, limits applied. Everything downstream takes the valid type.

use perch_engine::constrain::{Grammar, ToolSpec};
use perch_engine::generate::GenerateRequest;
use perch_engine::sampler::SamplingParams;
use perch_engine::text::chat_prompt::{ChatInput, ChatPrompt};
use perch_engine::text::template::ChatMessage;

use std::sync::Arc;

use perch_engine::{Engine, EngineError};
use perch_runtime::ModelLease;

use super::run;
use super::types::{
    ChatCompletionRequest, CompletionRequest, Content, Prompt, ResponseFormat, Sampling, Stop,
    Tool, ToolChoice,
};
use crate::metrics::CountedPermit;
use crate::reply::Reply;
use crate::{ApiError, AppState};

/// Most choices (`n`) one request may ask for: each is a whole generation.
pub(crate) const MAX_CHOICES: u32 = 16;

/// A request ready for the engine. It holds its model loaded until it is dropped.
pub(crate) struct ValidRequest {
    pub model: ModelLease,
    pub generate: GenerateRequest,
    pub stream: bool,
    pub include_usage: bool,
    /// Answers to generate (`n`).
    pub choices: usize,
    /// Log-probabilities asked for, with this many alternatives.
    pub logprobs: Option<usize>,
    /// Reads the reply (a chat's: answer, reasoning, tool calls).
    pub reply: Reply,
    /// A completion's prompt text, given back before the answer (`echo`).
    pub echo: Option<String>,
    /// Its place in the bounded queue, from [`off_runtime`] until [`run::start`] holds it.
    pub admission: Option<CountedPermit>,
}

impl ValidRequest {
    /// The same request, counted from `arrived` (before its model was loaded).
    pub fn arrived_at(mut self, arrived: std::time::Instant) -> Self {
        self.generate.arrived = Some(arrived);
        self
    }

    /// The model's name.
    pub fn model_name(&self) -> &str {
        &self.model.model().name
    }

    /// The model's engine.
    pub fn engine(&self) -> &Arc<dyn Engine> {
        &self.model.model().engine
    }
}

/// Runs `check` in a place of the bounded queue (see [`run::admitted`]); the valid
/// request keeps that place until it is dropped.
pub(crate) async fn off_runtime(
    state: &AppState,
    check: impl FnOnce(&AppState) -> Result<ValidRequest, ApiError> + Send + 'static,
) -> Result<ValidRequest, ApiError> {
    let owned = state.clone();
    let (checked, slot) =
        run::admitted(state, "checking the request", move || check(&owned)).await?;
    let mut valid = checked?;
    valid.admission = Some(slot);
    Ok(valid)
}

pub(crate) fn chat(
    state: &AppState,
    model: ModelLease,
    body: ChatCompletionRequest,
) -> Result<ValidRequest, ApiError> {
    let (prompt, grammar) = chat_prompt(&model, &body)?;
    let reply = Reply::new(prompt.reply, body.parallel_tool_calls == Some(false));
    let prompt = prompt.tokens;
    let logprobs = match (body.logprobs.unwrap_or(false), body.top_logprobs) {
        (_, Some(n)) if n > 20 => {
            return Err(ApiError::invalid_field(
                "top_logprobs",
                "top_logprobs must be 0–20",
            ))
        }
        (false, Some(n)) if n > 0 => {
            return Err(ApiError::invalid_field(
                "top_logprobs",
                "top_logprobs needs logprobs: true",
            ))
        }
        (true, n) => Some(n.unwrap_or(0) as usize),
        (false, _) => None,
    };
    let max_tokens = body.max_completion_tokens.or(body.sampling.max_tokens);
    let mut valid = finish(
        state,
        model,
        prompt,
        "messages",
        &body.sampling,
        max_tokens,
        logprobs,
    )?;
    valid.reply = reply;
    if let Some((field, grammar)) = grammar {
        constrain(&mut valid, field, &grammar)?;
    }
    Ok(valid)
}

/// What a chat's answer must be, and the field that asks for it: the calls `tool_choice`
/// forces, else `response_format`'s JSON.
fn chat_grammar(body: &ChatCompletionRequest) -> Result<AskedGrammar, ApiError> {
    let tools = body.tools.as_deref().unwrap_or_default();
    let forced: Option<Vec<&Tool>> = match &body.tool_choice {
        Some(ToolChoice::Mode(mode)) if mode == "required" => Some(tools.iter().collect()),
        Some(ToolChoice::Named(named)) => {
            if named.kind != "function" {
                return Err(ApiError::invalid_field(
                    "tool_choice.type",
                    format!(
                        "tool_choice of type {:?} is not supported; use function",
                        named.kind
                    ),
                ));
            }
            let name = &named.function.name;
            let tool = tools
                .iter()
                .find(|t| &t.function.name == name)
                .ok_or_else(|| {
                    ApiError::invalid_field(
                        "tool_choice.function.name",
                        format!("tool_choice names {name:?}, which is not among the tools"),
                    )
                })?;
            Some(vec![tool])
        }
        _ => None,
    };
    if let Some(forced) = forced {
        if forced.is_empty() {
            return Err(ApiError::invalid_field(
                "tool_choice",
                "tool_choice required needs tools to choose from",
            ));
        }
        let tools = forced
            .into_iter()
            .map(|t| ToolSpec {
                name: t.function.name.clone(),
                parameters: t.function.parameters.clone(),
            })
            .collect();
        let parallel = body.parallel_tool_calls != Some(false);
        return Ok(Some((
            "tool_choice",
            Grammar::ToolCalls { tools, parallel },
        )));
    }
    Ok(body
        .response_format
        .as_ref()
        .map(response_grammar)
        .transpose()?
        .flatten()
        .map(|grammar| ("response_format", grammar)))
}

/// The grammar `response_format` asks for (none for `text`).
pub(crate) fn response_grammar(format: &ResponseFormat) -> Result<Option<Grammar>, ApiError> {
    let grammar = match format.kind.as_str() {
        "text" => return Ok(None),
        "json_object" => Grammar::JsonObject,
        "json_schema" => {
            let schema = format
                .json_schema
                .as_ref()
                .and_then(|j| j.schema.clone())
                .ok_or_else(|| {
                    ApiError::invalid_field(
                        "response_format.json_schema.schema",
                        "json_schema needs a schema",
                    )
                })?;
            Grammar::JsonSchema(schema)
        }
        other => {
            return Err(ApiError::invalid_field(
                "response_format.type",
                format!(
                    "unknown response_format type {other:?}: use text, json_object or json_schema"
                ),
            ))
        }
    };
    Ok(Some(grammar))
}

/// Holds `request`'s output to `grammar`, which `field` asked for.
pub(crate) fn constrain(
    request: &mut ValidRequest,
    field: &str,
    grammar: &Grammar,
) -> Result<(), ApiError> {
    let constraint = request.engine().constrain(grammar).map_err(|e| match e {
        EngineError::InvalidRequest(why) => ApiError::invalid_field(field, why),
        // The vocabulary could not be built: Perch's fault, not the request's.
        other => ApiError::from(other),
    })?;
    request.generate.constraint = Some(constraint);
    Ok(())
}

/// Checks each tool: a function with a valid name and an object for parameters.
pub(crate) fn check_tools(tools: &[Tool]) -> Result<(), ApiError> {
    for (i, tool) in tools.iter().enumerate() {
        if tool.kind != "function" {
            return Err(ApiError::invalid_field(
                &format!("tools[{i}].type"),
                format!(
                    "tools of type {:?} are not supported; use function",
                    tool.kind
                ),
            ));
        }
        let name = &tool.function.name;
        let valid_name = (1..=64).contains(&name.len())
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
        if !valid_name {
            return Err(ApiError::invalid_field(
                &format!("tools[{i}].function.name"),
                format!("{name:?} is not a valid function name: use 1–64 letters, digits, _ or -"),
            ));
        }
        if let Some(p) = &tool.function.parameters {
            if !p.is_object() {
                return Err(ApiError::invalid_field(
                    &format!("tools[{i}].function.parameters"),
                    "parameters must be a JSON Schema object",
                ));
            }
        }
    }
    Ok(())
}

/// The grammar a chat's answer must follow, with the field that asks for it.
type AskedGrammar = Option<(&'static str, Grammar)>;

/// A chat's prompt (its messages, with their tool calls and results, and the offered tools,
/// through the model's template) and the grammar its answer must follow.
pub(crate) fn chat_prompt(
    model: &ModelLease,
    body: &ChatCompletionRequest,
) -> Result<(ChatPrompt, AskedGrammar), ApiError> {
    if body.messages.is_empty() {
        return Err(ApiError::invalid_field(
            "messages",
            "messages must hold at least one message",
        ));
    }
    let mut messages = Vec::with_capacity(body.messages.len());
    for (i, m) in body.messages.iter().enumerate() {
        let role = match m.role.as_str() {
            "developer" => "system",
            r @ ("system" | "user" | "assistant" | "tool") => r,
            other => {
                return Err(ApiError::invalid_field(
                    &format!("messages[{i}].role"),
                    format!(
                        "unknown role {other:?} (use system, developer, user, assistant or tool)"
                    ),
                ))
            }
        };
        let content = match &m.content {
            None => String::new(),
            Some(Content::Text(t)) => t.clone(),
            Some(Content::Parts(parts)) => {
                let mut text = Vec::new();
                for (j, p) in parts.iter().enumerate() {
                    match (p.kind.as_str(), &p.text) {
                        ("text", Some(t)) => text.push(t.as_str()),
                        _ => {
                            return Err(ApiError::invalid_field(
                                &format!("messages[{i}].content[{j}]"),
                                format!(
                                    "content parts of type {:?} are not supported; send text parts",
                                    p.kind
                                ),
                            ))
                        }
                    }
                }
                text.join("\n")
            }
        };
        let mut message = ChatMessage::new(role, &content);
        if let Some(name) = &m.name {
            message.extra.insert("name".into(), name.clone().into());
        }
        if let Some(calls) = &m.tool_calls {
            let calls =
                serde_json::to_value(calls).map_err(|e| ApiError::internal(e.to_string()))?;
            message.extra.insert("tool_calls".into(), calls);
        }
        if let Some(id) = &m.tool_call_id {
            message
                .extra
                .insert("tool_call_id".into(), id.clone().into());
        }
        if let Some(reasoning) = &m.reasoning_content {
            message
                .extra
                .insert("reasoning_content".into(), reasoning.clone().into());
        }
        messages.push(message);
    }
    let tools = offered_tools(body)?;
    let engine = &model.model().engine;
    let grammar = chat_grammar(body)?;
    let input = ChatInput {
        messages: &messages,
        tools: tools.as_ref(),
        template_kwargs: body.chat_template_kwargs.as_ref(),
        constrained: grammar.is_some(),
    };
    let prompt = engine.chat(&input).map_err(|e| match e {
        EngineError::Tokenizer(_) => ApiError::from(e),
        e => ApiError::invalid_field("messages", e.to_string()),
    })?;
    Ok((prompt, grammar))
}

/// The tools the model is offered, as the template takes them: checked, and none when
/// `tool_choice` is `none`.
fn offered_tools(body: &ChatCompletionRequest) -> Result<Option<serde_json::Value>, ApiError> {
    let tools = body.tools.as_deref().unwrap_or_default();
    check_tools(tools)?;
    let offered = match &body.tool_choice {
        None => !tools.is_empty(),
        Some(ToolChoice::Mode(mode)) => match mode.as_str() {
            "none" => false,
            "auto" => true,
            "required" => true,
            other => {
                return Err(ApiError::invalid_field(
                    "tool_choice",
                    format!(
                    "unknown tool_choice {other:?}: use none, auto, required or a named function"
                ),
                ))
            }
        },
        Some(ToolChoice::Named(_)) => true,
    };
    if !offered || tools.is_empty() {
        return Ok(None);
    }
    serde_json::to_value(tools)
        .map(Some)
        .map_err(|e| ApiError::internal(e.to_string()))
}

pub(crate) fn completion(
    state: &AppState,
    model: ModelLease,
    body: CompletionRequest,
) -> Result<ValidRequest, ApiError> {
    let echo = body.echo.unwrap_or(false);
    if echo && body.logprobs.is_some() {
        return Err(ApiError::invalid_field(
            "echo",
            "echo with logprobs is not supported (Perch does not score prompt tokens)",
        ));
    }
    let engine = &model.model().engine;
    let prompt = match &body.prompt {
        Prompt::Text(t) => engine.tokenize(t, true)?,
        Prompt::Texts(list) if list.len() == 1 => engine.tokenize(&list[0], true)?,
        Prompt::Texts(_) => {
            return Err(ApiError::invalid_field(
                "prompt",
                "only one prompt per request is supported",
            ))
        }
        Prompt::Tokens(ids) => {
            let vocab = engine.info().config.vocab_size as u32;
            if let Some(bad) = ids.iter().find(|&&id| id >= vocab) {
                return Err(ApiError::invalid_field(
                    "prompt",
                    format!("token id {bad} is beyond the vocabulary of {vocab}"),
                ));
            }
            ids.clone()
        }
    };
    if prompt.is_empty() {
        return Err(ApiError::invalid_field("prompt", "the prompt is empty"));
    }
    let logprobs = match body.logprobs {
        Some(n) if n > 5 => {
            return Err(ApiError::invalid_field("logprobs", "logprobs must be 0–5"))
        }
        other => other.map(|n| n as usize),
    };
    let max_tokens = body.sampling.max_tokens;
    let echo = if echo {
        Some(engine.detokenize(&prompt)?)
    } else {
        None
    };
    let mut valid = finish(
        state,
        model,
        prompt,
        "prompt",
        &body.sampling,
        max_tokens,
        logprobs,
    )?;
    valid.echo = echo;
    Ok(valid)
}

fn finish(
    state: &AppState,
    model: ModelLease,
    prompt: Vec<u32>,
    prompt_field: &str,
    s: &Sampling,
    max_tokens: Option<u32>,
    logprobs: Option<usize>,
) -> Result<ValidRequest, ApiError> {
    let context = model.model().context_length() as usize;
    // A prompt must leave room in the context for at least one generated token.
    let longest = (context - 1).min(state.limits.max_prompt_tokens);
    if prompt.len() > longest {
        return Err(ApiError::context_length(
            prompt_field,
            // Anthropic's wording, which Claude Code recognises.
            format!(
                "prompt is too long: {} tokens > {longest} maximum (this server's limit for \
                 this model, whose context is {context})",
                prompt.len(),
            ),
        ));
    }
    let choices = match s.n {
        None => 1,
        Some(n) if (1..=MAX_CHOICES).contains(&n) => n as usize,
        Some(n) => {
            return Err(ApiError::invalid_field(
                "n",
                format!("n must be between 1 and {MAX_CHOICES}, got {n}"),
            ))
        }
    };
    let range = |field: &str, value: Option<f32>, lo: f32, hi: f32| -> Result<(), ApiError> {
        match value {
            Some(v) if !(lo..=hi).contains(&v) => Err(ApiError::invalid_field(
                field,
                format!("{field} must be between {lo} and {hi}, got {v}"),
            )),
            _ => Ok(()),
        }
    };
    range("temperature", s.temperature, 0.0, 2.0)?;
    range("top_p", s.top_p, f32::MIN_POSITIVE, 1.0)?;
    range("min_p", s.min_p, 0.0, 1.0)?;
    range("presence_penalty", s.presence_penalty, -2.0, 2.0)?;
    range("frequency_penalty", s.frequency_penalty, -2.0, 2.0)?;
    range(
        "repetition_penalty",
        s.repetition_penalty,
        f32::MIN_POSITIVE,
        10.0,
    )?;
    let vocab = model.model().engine.info().config.vocab_size as u32;
    let mut logit_bias = Vec::new();
    for (key, &bias) in s.logit_bias.iter().flatten() {
        let id: u32 = key.parse().map_err(|_| {
            ApiError::invalid_field(
                "logit_bias",
                format!("logit_bias key {key:?} is not a token id"),
            )
        })?;
        if id >= vocab {
            return Err(ApiError::invalid_field(
                "logit_bias",
                format!("token id {id} is beyond the vocabulary of {vocab}"),
            ));
        }
        range("logit_bias", Some(bias), -100.0, 100.0)?;
        logit_bias.push((id, bias));
    }
    let stop = match &s.stop {
        None => Vec::new(),
        Some(Stop::One(one)) => vec![one.clone()],
        Some(Stop::Many(list)) if list.len() <= 4 => list.clone(),
        Some(Stop::Many(_)) => {
            return Err(ApiError::invalid_field("stop", "at most 4 stop sequences"))
        }
        Some(Stop::Listed { list, .. }) if list.len() <= Stop::MOST_LISTED => list.clone(),
        Some(Stop::Listed { field, .. }) => {
            return Err(ApiError::invalid_field(
                field,
                format!("at most {} stop sequences", Stop::MOST_LISTED),
            ))
        }
    };
    let room = context - prompt.len();
    // The server's cap lowers what is asked for before the context is checked.
    let cap = state.limits.max_output_tokens.unwrap_or(usize::MAX);
    let max_tokens = max_tokens.map(|n| (n as usize).min(cap));
    let max_tokens = match max_tokens {
        Some(0) => {
            return Err(ApiError::invalid_field(
                "max_tokens",
                "max_tokens must be at least 1",
            ))
        }
        Some(n) if n > room => {
            return Err(ApiError::context_length(
                "max_tokens",
                // Anthropic's wording, which Claude Code recognises and retries on.
                format!(
                    "input length and `max_tokens` exceed context limit: {} + {n} > {context} \
                     ({} in all), decrease input length or `max_tokens` and try again: ask for \
                     at most {room}",
                    prompt.len(),
                    prompt.len() + n
                ),
            ));
        }
        Some(n) => n,
        None => room.min(cap),
    };
    // The request's fields, else the model's recommendation, else the API's defaults.
    let recommended = &model.model().engine.info().sampling_defaults;
    let sampling = SamplingParams {
        temperature: s.temperature.or(recommended.temperature).unwrap_or(1.0),
        top_p: s.top_p.or(recommended.top_p).unwrap_or(1.0),
        top_k: s.top_k.or(recommended.top_k).unwrap_or(0) as usize,
        min_p: s.min_p.or(recommended.min_p).unwrap_or(0.0),
        repetition_penalty: s
            .repetition_penalty
            .or(recommended.repetition_penalty)
            .unwrap_or(1.0),
        presence_penalty: s.presence_penalty.unwrap_or(0.0),
        frequency_penalty: s.frequency_penalty.unwrap_or(0.0),
        logit_bias,
        seed: s.seed,
        logprobs,
    };
    let stream = s.stream.unwrap_or(false);
    let include_usage = stream && s.stream_options.as_ref().is_some_and(|o| o.include_usage);
    Ok(ValidRequest {
        model,
        generate: GenerateRequest {
            prompt,
            sampling,
            max_tokens,
            stop,
            ignore_eos: false,
            arrived: None,
            constraint: None,
        },
        stream,
        include_usage,
        choices,
        logprobs,
        reply: Reply::default(),
        echo: None,
        admission: None,
    })
}
