//! Errors on Ollama's routes in Ollama's shape. Every layer of the server (host and
//! origin checks, the API key, body rules, validation, the handlers) makes one
//! [`crate::ApiError`]; for a path of Ollama's API this middleware rewrites its body from
//! OpenAI's `{"error": {"message": …}}` to Ollama's `{"error": "…"}`, keeping the status.
//! So the shape is decided here, once, for every error a client of that API can see.

use axum::body::Body;
use axum::extract::Request;
use axum::http::header::{CONTENT_LENGTH, CONTENT_TYPE};
use axum::middleware::Next;
use axum::response::Response;
use serde_json::{json, Value};

use super::types::OllamaErrorBody;

/// Largest error body reshaped (errors are a sentence long).
const MAX_ERROR_BODY: usize = 64 << 10;

/// Whether `path` belongs to Ollama's API (`/api/…`, but not Perch's `/api/perch/…`).
pub(crate) fn is_ollama_path(path: &str) -> bool {
    path.starts_with("/api/") && !path.starts_with("/api/perch/")
}

/// Reshapes error bodies on Ollama's routes.
pub(crate) async fn reshape(request: Request, next: Next) -> Response {
    let ollama = is_ollama_path(request.uri().path());
    let response = next.run(request).await;
    let is_json = response
        .headers()
        .get(CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    if !ollama || response.status().is_success() || !is_json {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, MAX_ERROR_BODY).await else {
        return Response::from_parts(parts, Body::empty());
    };
    let message = serde_json::from_slice::<Value>(&bytes)
        .ok()
        .and_then(|v| v["error"]["message"].as_str().map(str::to_owned));
    let Some(error) = message else {
        return Response::from_parts(parts, Body::from(bytes));
    };
    let reshaped =
        serde_json::to_vec(&json!(OllamaErrorBody { error })).expect("an error body serializes");
    parts.headers.remove(CONTENT_LENGTH);
    Response::from_parts(parts, Body::from(reshaped))
}
