//! The memory gauge: `GET /api/perch/memory` (the latest reading) and
//! `GET /api/perch/memory/stream` (server-sent events, one reading a second).

use std::convert::Infallible;

use axum::extract::State;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::Json;
use futures_util::Stream;
use perch_runtime::gauge::MemoryReading;

use crate::AppState;

/// Total memory, what the system and each loaded model use, and the headroom.
#[utoipa::path(get, path = "/api/perch/memory", operation_id = "perchMemory", tag = "perch",
    responses((status = 200, description = "{total, used_by_system, used_by_perch, models: [{name, weights, kv, planned}], headroom, budget} in bytes",
        body = serde_json::Value)))]
pub(crate) async fn now(State(state): State<AppState>) -> Json<MemoryReading> {
    Json(state.node.gauge.now())
}

/// The same reading as server-sent events, once a second.
#[utoipa::path(get, path = "/api/perch/memory/stream", operation_id = "perchMemoryStream",
    tag = "perch",
    responses((status = 200, description = "Server-sent events, each a memory reading",
        content_type = "text/event-stream", body = String)))]
pub(crate) async fn stream(
    State(state): State<AppState>,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let readings = state.node.gauge.subscribe();
    let events = futures_util::stream::unfold((readings, true), |(mut rx, first)| async move {
        if !first && rx.changed().await.is_err() {
            return None;
        }
        let reading = rx.borrow_and_update().clone();
        let event = Event::default()
            .json_data(&reading)
            .unwrap_or_else(|_| Event::default());
        Some((Ok(event), (rx, false)))
    });
    Sse::new(events).keep_alive(KeepAlive::default())
}
