//! Running a validated request on its model: admission through the bounded queue (503 when
//! full), and a blocking forwarder that moves the engine's events onto an async channel.
//! When the client goes away the channel closes, the forwarder drops the engine stream,
//! and the generation is cancelled at its next step.

use perch_engine::generate::{Event, Finished};
use perch_engine::EngineError;
use tokio::sync::mpsc;

use super::validate::ValidRequest;
use crate::{ApiError, AppState};

/// Events of a running generation, for a handler to render.
pub(crate) struct Running {
    pub events: mpsc::Receiver<Result<Event, EngineError>>,
}

/// Admits `request` and starts it.
pub(crate) fn start(state: &AppState, request: &ValidRequest) -> Result<Running, ApiError> {
    let permit = state
        .queue
        .clone()
        .try_acquire_owned()
        .map_err(|_| ApiError::overloaded())?;
    let stream = request.model.engine.generate(request.generate.clone())?;
    let (tx, rx) = mpsc::channel(64);
    tokio::task::spawn_blocking(move || {
        let _permit = permit;
        for event in stream {
            if tx.blocking_send(event).is_err() {
                break; // The client is gone: dropping `stream` cancels the generation.
            }
        }
    });
    Ok(Running { events: rx })
}

/// One log line per request: model, tokens in and out, time to first token, speed.
pub(crate) fn log_finished(endpoint: &str, model: &str, finished: &Finished) {
    let decode = finished.decode_time.as_secs_f64();
    let tok_s = if decode > 0.0 {
        finished.completion_tokens.saturating_sub(1) as f64 / decode
    } else {
        0.0
    };
    tracing::info!(
        endpoint,
        model,
        prompt_tokens = finished.prompt_tokens,
        completion_tokens = finished.completion_tokens,
        ttft_ms = (finished.time_to_first_token.as_secs_f64() * 1e3).round(),
        tok_s = (tok_s * 10.0).round() / 10.0,
        finish = ?finished.reason,
        "request done"
    );
}
