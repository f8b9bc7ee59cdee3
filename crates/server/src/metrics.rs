//! `GET /metrics`: Prometheus metrics through the `metrics` facade and its Prometheus
//! exporter. Behind the API key like every other route but `/health`.
//!
//! What is counted, and where:
//! - `perch_http_requests_total{endpoint, status}`: every answer (the middleware here),
//!   with status 499 for a client that left first;
//! - `perch_prompt_tokens_total`, `perch_cached_prompt_tokens_total` (read from the
//!   prefix cache), `perch_completion_tokens_total`,
//!   `perch_time_to_first_token_seconds` (from arrival), `perch_inter_token_seconds` per
//!   `model`: each finished generation (`openai/run.rs`; each gap between tokens is
//!   recorded at its request's mean gap);
//! - `perch_requests_admitted`: requests holding a place in the bounded queue: being
//!   checked and tokenized, waiting for their model, or running (`openai/run.rs`);
//! - `perch_requests_cancelled_total{phase}`: generations cancelled when queued, in
//!   prefill or in decode (the engine, which alone sees a request whose client left);
//! - `perch_connections_open`, `perch_connections_refused_total`: `connections.rs`;
//! - `perch_model_weights_bytes{model}`: the resident weights of each served model, set
//!   at each scrape.

use std::sync::OnceLock;
use std::time::Duration;

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use tokio::sync::OwnedSemaphorePermit;

use crate::AppState;

/// Bucket bounds of the latency histograms, in seconds: from a fast GPU's inter-token
/// gap to a long prompt on a small CPU.
const LATENCY_BUCKETS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0,
];

/// The process-wide exporter, installed on first use. (In a process that already has
/// another recorder, such as a test binary that built several servers, the first one
/// installed keeps counting.)
fn handle() -> &'static PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE.get_or_init(|| {
        let recorder = PrometheusBuilder::new()
            .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), LATENCY_BUCKETS)
            .expect("the bucket list is not empty")
            .build_recorder();
        let handle = recorder.handle();
        let _ = metrics::set_global_recorder(recorder);
        handle
    })
}

/// Installs the exporter and keeps its histograms drained; abort the task when the server
/// stops.
pub(crate) fn start() -> tokio::task::JoinHandle<()> {
    let handle = handle();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(5));
        loop {
            tick.tick().await;
            handle.run_upkeep();
        }
    })
}

pub(crate) fn router() -> Router<AppState> {
    Router::new().route("/metrics", get(render))
}

async fn render(State(state): State<AppState>) -> Response {
    for model in state.node.manager.loaded() {
        metrics::gauge!("perch_model_weights_bytes", "model" => model.name.clone())
            .set(model.engine.info().weights_bytes as f64);
    }
    let handle = handle();
    handle.run_upkeep();
    (
        [("content-type", "text/plain; version=0.0.4")],
        handle.render(),
    )
        .into_response()
}

/// Counts each answer by route and status; a request whose client went away before the
/// answer counts with status 499 (as nginx logs it).
pub(crate) async fn count_requests(request: Request, next: Next) -> Response {
    let endpoint = request
        .extensions()
        .get::<MatchedPath>()
        .map_or("unmatched".to_owned(), |p| p.as_str().to_owned());
    let mut count = Answer {
        endpoint,
        status: 499,
    };
    let response = next.run(request).await;
    count.status = response.status().as_u16();
    response
}

/// Counts one answer when dropped, whether or not the handler finished.
struct Answer {
    endpoint: String,
    status: u16,
}

impl Drop for Answer {
    fn drop(&mut self) {
        metrics::counter!(
            "perch_http_requests_total",
            "endpoint" => std::mem::take(&mut self.endpoint),
            "status" => self.status.to_string()
        )
        .increment(1);
    }
}

/// A place under a limit (a queue slot, an open connection), counted in `gauge` for as
/// long as it is held, however its holder ends: finished, failed or aborted.
pub(crate) struct CountedPermit {
    _permit: OwnedSemaphorePermit,
    gauge: &'static str,
}

impl CountedPermit {
    pub(crate) fn new(permit: OwnedSemaphorePermit, gauge: &'static str) -> Self {
        metrics::gauge!(gauge).increment(1);
        CountedPermit {
            _permit: permit,
            gauge,
        }
    }
}

impl Drop for CountedPermit {
    fn drop(&mut self) {
        metrics::gauge!(self.gauge).decrement(1);
    }
}
