//! Embedding requests, shared by OpenAI's `/v1/embeddings` and Ollama's `/api/embed`:
//! inputs tokenized off the async workers, each checked against the model's context and
//! the server's prompt limit (or cut to fit, when the caller asks as Ollama's `truncate`
//! does), after admission through the same bounded queue as generations, and run on the
//! model's worker. A client that goes away cancels its request there.

use std::time::Instant;

use perch_engine::embed::{EmbedRequest, Embeddings};
use perch_runtime::ModelLease;

use crate::openai::run;
use crate::{ApiError, AppState};

/// Most inputs in one request (OpenAI's limit).
pub(crate) const MAX_INPUTS: usize = 2048;

/// What to embed: texts, or token ids of the model's own vocabulary.
pub(crate) enum EmbedInputs {
    Texts(Vec<String>),
    Tokens(Vec<Vec<u32>>),
}

/// An embedding request in any API's terms.
pub(crate) struct EmbedAsk {
    pub inputs: EmbedInputs,
    pub dimensions: Option<u32>,
    /// Cut inputs longer than the model reads at once, instead of refusing them.
    pub truncate: bool,
    /// The request field that holds the inputs, named in errors.
    pub field: &'static str,
}

/// Embeds `ask` with `lease`'s model. `endpoint` names the route in logs.
pub(crate) async fn embed(
    state: &AppState,
    lease: &ModelLease,
    ask: EmbedAsk,
    endpoint: &'static str,
) -> Result<Embeddings, ApiError> {
    let count = match &ask.inputs {
        EmbedInputs::Texts(t) => t.len(),
        EmbedInputs::Tokens(t) => t.len(),
    };
    if count > MAX_INPUTS {
        return Err(ApiError::invalid_field(
            ask.field,
            format!("at most {MAX_INPUTS} inputs per request, got {count}"),
        ));
    }
    let longest = state
        .limits
        .max_prompt_tokens
        .min(lease.model().context_length() as usize);
    let engine = lease.model().engine.clone();
    let field = ask.field;
    let (inputs, _slot) = run::admitted(state, "tokenizing the inputs", move || {
        let mut inputs = match ask.inputs {
            EmbedInputs::Texts(texts) => texts
                .iter()
                .map(|t| engine.tokenize(t, true))
                .collect::<Result<Vec<_>, _>>()?,
            EmbedInputs::Tokens(ids) => ids,
        };
        for (i, input) in inputs.iter_mut().enumerate() {
            if input.len() > longest {
                if !ask.truncate {
                    return Err(ApiError::context_length(
                        field,
                        format!(
                            "input {i} is {} tokens, more than the {longest} this model \
                             embeds at once",
                            input.len()
                        ),
                    ));
                }
                input.truncate(longest);
            }
        }
        Ok(inputs)
    })
    .await?;
    let inputs = inputs?;

    let model = lease.model().name.clone();
    let span = tracing::info_span!("request", endpoint, model = %model);
    let started = Instant::now();
    let request = EmbedRequest {
        inputs,
        dimensions: ask.dimensions.map(|d| d as usize),
    };
    let mut job = span.in_scope(|| lease.model().engine.embed(request))?;
    let embeddings = job.result().await?;
    metrics::counter!("perch_prompt_tokens_total", "model" => model.clone())
        .increment(embeddings.prompt_tokens as u64);
    tracing::info!(
        endpoint,
        model,
        inputs = embeddings.vectors.len(),
        prompt_tokens = embeddings.prompt_tokens,
        queue_ms = (embeddings.queued.as_secs_f64() * 1e3).round(),
        ms = (started.elapsed().as_secs_f64() * 1e3).round(),
        "embedding done"
    );
    Ok(embeddings)
}
