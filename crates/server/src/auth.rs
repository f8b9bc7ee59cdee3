//! API-key authentication. A request from another machine (one that arrived on an
//! address other than loopback, or that a proxy passed on) must present one of the
//! node's API keys (or the key given with `--api-key`) as `Authorization: Bearer KEY` (the
//! scheme in any case) or as `x-api-key: KEY` (Anthropic's header), keys compared in
//! constant time; so must every request when
//! `--api-key` was given. `/health` stays open.

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use perch_runtime::api_keys::constant_time_eq;

use crate::arrival::from_this_machine;
use crate::{ApiError, AppState};

pub(crate) async fn require_api_key(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    if from_this_machine(&request) && state.api_key.is_none() {
        return next.run(request).await;
    }
    let headers = request.headers();
    let presented = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(bearer_token)
        .or_else(|| {
            headers
                .get("x-api-key")
                .and_then(|v| v.to_str().ok())
                .map(str::trim)
        });
    let valid = presented.is_some_and(|key| {
        let given = state
            .api_key
            .as_ref()
            .is_some_and(|expected| constant_time_eq(key.as_bytes(), expected.as_bytes()));
        given | state.node.keys.verify(key)
    });
    if valid {
        next.run(request).await
    } else if state.api_key.is_none() && state.node.keys.is_empty() {
        ApiError::no_api_key_yet().into_response()
    } else {
        ApiError::unauthorized().into_response()
    }
}

/// The token of a `Bearer` credential; the scheme is case-insensitive (RFC 9110 §11.1).
fn bearer_token(value: &str) -> Option<&str> {
    let (scheme, token) = value.trim().split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}
