//! Running a validated request on its model: admission through the bounded queue (503 when
//! full), then one engine generation per choice (`n`), their events merged as they come.
//! The [`Running`] value holds the queue slot and the streams: whoever drops it (a handler
//! whose client went away, an SSE body that stopped being read, shutdown) cancels every
//! generation at its next check and frees the slot at once, in every phase (queued,
//! prefill, decode).

use std::task::Poll;

use perch_engine::generate::{Event, Finished};
use perch_engine::{EngineError, GenerationStream};

use super::validate::ValidRequest;
use crate::metrics::CountedPermit;
use crate::{ApiError, AppState};

/// A request's running generations, one per choice, for a handler to render. Dropping it
/// cancels them.
pub(crate) struct Running {
    /// By choice index; `None` once a stream has given its last event.
    streams: Vec<Option<GenerationStream>>,
    /// A place among the requests admitted at once, counted in `perch_requests_admitted`.
    _slot: CountedPermit,
}

impl Running {
    /// The next event of a request with one choice (Ollama's and Anthropic's have no
    /// `n`); `None` after the last.
    pub async fn next(&mut self) -> Option<Result<Event, EngineError>> {
        self.next_of_any().await.map(|(_, event)| event)
    }

    /// The next event of any choice, with the choice's index; `None` after the last of
    /// all of them.
    pub async fn next_of_any(&mut self) -> Option<(usize, Result<Event, EngineError>)> {
        std::future::poll_fn(|cx| {
            for (index, slot) in self.streams.iter_mut().enumerate() {
                let Some(stream) = slot else { continue };
                match stream.poll_recv(cx) {
                    Poll::Ready(Some(event)) => return Poll::Ready(Some((index, event))),
                    Poll::Ready(None) => *slot = None,
                    Poll::Pending => {}
                }
            }
            if self.streams.iter().all(Option::is_none) {
                Poll::Ready(None)
            } else {
                Poll::Pending
            }
        })
        .await
    }
}

/// A place among the requests admitted at once (503 when none is free), counted in
/// `perch_requests_admitted` while it is held.
pub(crate) fn admit(state: &AppState) -> Result<CountedPermit, ApiError> {
    let slot = state
        .queue
        .clone()
        .try_acquire_owned()
        .map_err(|_| ApiError::overloaded())?;
    Ok(CountedPermit::new(slot, "perch_requests_admitted"))
}

/// Takes a place in the queue (503 when none is free), then runs `work` (rendering,
/// tokenizing, compiling grammars: CPU work that grows with the body) on the blocking
/// pool, so it never holds up the async workers that accept connections and notice
/// clients leaving. The place travels with the work and comes back with its result: a
/// client that goes away meanwhile cannot free it while the work it started still runs.
pub(crate) async fn admitted<T: Send + 'static>(
    state: &AppState,
    what: &str,
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<(T, CountedPermit), ApiError> {
    let slot = admit(state)?;
    tokio::task::spawn_blocking(move || (work(), slot))
        .await
        .map_err(|e| ApiError::internal(format!("{what} failed: {e}")))
}

/// Starts `request`'s choices in its place in the queue (taken now if it has none).
/// Choice `i` of a seeded request is seeded with `seed + i`, so the choices differ and
/// each is reproducible. The engine logs under a span naming the endpoint and model, so a
/// cancelled request's log line says which request it was.
pub(crate) fn start(
    state: &AppState,
    endpoint: &'static str,
    request: &mut ValidRequest,
) -> Result<Running, ApiError> {
    let slot = match request.admission.take() {
        Some(slot) => slot,
        None => admit(state)?,
    };
    let span = tracing::info_span!("request", endpoint, model = %request.model_name());
    let streams = (0..request.choices)
        .map(|i| {
            let mut generate = request.generate.clone();
            generate.sampling.seed = generate.sampling.seed.map(|s| s.wrapping_add(i as u64));
            span.in_scope(|| request.engine().generate(generate))
                .map(Some)
        })
        .collect::<Result<_, _>>()?;
    Ok(Running {
        streams,
        _slot: slot,
    })
}

/// One log line per request (model, tokens in and out, time to first token, speed), and
/// the same in the metrics.
pub(crate) fn log_finished(endpoint: &str, model: &str, finished: &Finished) {
    let decode = finished.decode_time.as_secs_f64();
    let gaps = finished.completion_tokens.saturating_sub(1);
    let tok_s = if decode > 0.0 {
        gaps as f64 / decode
    } else {
        0.0
    };
    let model_label = model.to_owned();
    metrics::counter!("perch_prompt_tokens_total", "model" => model_label.clone())
        .increment(finished.prompt_tokens as u64);
    metrics::counter!("perch_completion_tokens_total", "model" => model_label.clone())
        .increment(finished.completion_tokens as u64);
    metrics::counter!("perch_cached_prompt_tokens_total", "model" => model_label.clone())
        .increment(finished.cached_tokens as u64);
    metrics::histogram!("perch_time_to_first_token_seconds", "model" => model_label.clone())
        .record(finished.time_to_first_token.as_secs_f64());
    if gaps > 0 {
        // Each gap between tokens counted at the request's mean gap.
        metrics::histogram!("perch_inter_token_seconds", "model" => model_label)
            .record_many(decode / gaps as f64, gaps);
    }
    tracing::info!(
        endpoint,
        model,
        prompt_tokens = finished.prompt_tokens,
        cached_tokens = finished.cached_tokens,
        completion_tokens = finished.completion_tokens,
        queue_ms = (finished.queued.as_secs_f64() * 1e3).round(),
        ttft_ms = (finished.time_to_first_token.as_secs_f64() * 1e3).round(),
        tok_s = (tok_s * 10.0).round() / 10.0,
        finish = ?finished.reason,
        "request done"
    );
}
