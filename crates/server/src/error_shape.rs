//! Errors in each API family's own shape. Every layer of the server (host and origin
//! checks, the API key, body rules, validation, the handlers) makes one
//! [`crate::ApiError`], in OpenAI's `{"error": {"message": …}}`; this middleware rewrites the
//! body for the other families, keeping the status:
//! - Ollama's routes (`/api/…` but not Perch's `/api/perch/…`): `{"error": "…"}`;
//! - Anthropic's (`/v1/messages…`): `{"type": "error", "error": {"type": …, "message": …}}`,
//!   its type named from the status as Anthropic names them.
//!
//! So the shape is decided here, once, for every error a client of an API can see.

use axum::body::Body;
use axum::extract::Request;
use axum::http::header::{CONTENT_LENGTH, CONTENT_TYPE};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::Response;
use serde_json::{json, Value};

use crate::anthropic::types::AnthropicError;
use crate::ollama::types::OllamaErrorBody;

/// Largest error body reshaped (errors are a sentence long).
const MAX_ERROR_BODY: usize = 64 << 10;

/// The API families whose errors are not OpenAI's.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Shape {
    Ollama,
    Anthropic,
}

impl Shape {
    /// The family `path` belongs to, when its errors have their own shape.
    pub fn of(path: &str) -> Option<Shape> {
        if path.starts_with("/api/") && !path.starts_with("/api/perch/") {
            Some(Shape::Ollama)
        } else if path == "/v1/messages" || path.starts_with("/v1/messages/") {
            Some(Shape::Anthropic)
        } else {
            None
        }
    }

    /// The error body, in this family's shape.
    pub fn body(self, status: StatusCode, message: String) -> Value {
        match self {
            Shape::Ollama => json!(OllamaErrorBody { error: message }),
            Shape::Anthropic => json!(AnthropicError::new(status, message)),
        }
    }
}

/// Reshapes error bodies on Ollama's and Anthropic's routes.
pub(crate) async fn reshape(request: Request, next: Next) -> Response {
    let shape = Shape::of(request.uri().path());
    let response = next.run(request).await;
    let is_json = response
        .headers()
        .get(CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    let Some(shape) = shape else {
        return response;
    };
    if response.status().is_success() || !is_json {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, MAX_ERROR_BODY).await else {
        return Response::from_parts(parts, Body::empty());
    };
    let message = serde_json::from_slice::<Value>(&bytes)
        .ok()
        .and_then(|v| v["error"]["message"].as_str().map(str::to_owned));
    let Some(message) = message else {
        return Response::from_parts(parts, Body::from(bytes));
    };
    let reshaped =
        serde_json::to_vec(&shape.body(parts.status, message)).expect("an error body serializes");
    parts.headers.remove(CONTENT_LENGTH);
    Response::from_parts(parts, Body::from(reshaped))
}
