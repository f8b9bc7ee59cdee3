//! Running a validated request on its model: admission through the bounded queue (503 when
//! full), then the engine's event stream. The [`Running`] value holds both the queue slot
//! and the stream: whoever drops it (a handler whose client went away, an SSE body that
//! stopped being read, shutdown) cancels the generation at its next check and frees the
//! slot at once, in every phase (queued, prefill, decode).

use perch_engine::generate::{Event, Finished};
use perch_engine::{EngineError, GenerationStream};

use super::validate::ValidRequest;
use crate::metrics::CountedPermit;
use crate::{ApiError, AppState};

/// A running generation, for a handler to render. Dropping it cancels the generation.
pub(crate) struct Running {
    stream: GenerationStream,
    /// A place among the requests admitted at once, counted in `perch_requests_admitted`.
    _slot: CountedPermit,
}

impl Running {
    /// The next event; `None` after the last.
    pub async fn next(&mut self) -> Option<Result<Event, EngineError>> {
        self.stream.recv().await
    }
}

/// Admits `request` and starts it. The engine logs under a span naming the endpoint and
/// model, so a cancelled request's log line says which request it was.
pub(crate) fn start(
    state: &AppState,
    endpoint: &'static str,
    request: &ValidRequest,
) -> Result<Running, ApiError> {
    let slot = state
        .queue
        .clone()
        .try_acquire_owned()
        .map_err(|_| ApiError::overloaded())?;
    let span = tracing::info_span!("request", endpoint, model = %request.model_name());
    let stream = span.in_scope(|| request.engine().generate(request.generate.clone()))?;
    Ok(Running {
        stream,
        _slot: CountedPermit::new(slot, "perch_requests_admitted"),
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
        completion_tokens = finished.completion_tokens,
        queue_ms = (finished.queued.as_secs_f64() * 1e3).round(),
        ttft_ms = (finished.time_to_first_token.as_secs_f64() * 1e3).round(),
        tok_s = (tok_s * 10.0).round() / 10.0,
        finish = ?finished.reason,
        "request done"
    );
}
