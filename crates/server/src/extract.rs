//! The JSON body extractor: requires `Content-Type: application/json` (415; otherwise a
//! web page could send a body as `text/plain` without a CORS preflight), enforces the
//! body limit (413) and read deadline (408), and turns parse failures into OpenAI-shaped
//! 400s that name the field (`messages[0].content: invalid type…`).

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use serde::de::DeserializeOwned;

use crate::{ApiError, AppState};

/// A request body parsed as `T`.
pub(crate) struct JsonBody<T>(pub T);

/// A request type, with a check run on the raw JSON before it is parsed (fields inside a
/// `#[serde(flatten)]` part lose their path in serde's errors, so those are parsed alone
/// first to name the field).
pub(crate) trait RequestBody: DeserializeOwned {
    fn precheck(_value: &serde_json::Value) -> Result<(), ApiError> {
        Ok(())
    }
}

/// Parses `value` as `T`, naming the field that does not fit.
pub(crate) fn parse<T: DeserializeOwned>(value: &serde_json::Value) -> Result<T, ApiError> {
    serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        if path == "." {
            ApiError::invalid(inner.to_string())
        } else {
            let field = path.split(['.', '[']).next().unwrap_or(&path).to_owned();
            ApiError::invalid_field(&field, format!("{path}: {inner}"))
        }
    })
}

impl<T: RequestBody> FromRequest<AppState> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &AppState) -> Result<Self, ApiError> {
        let content_type = request
            .headers()
            .get(axum::http::header::CONTENT_TYPE)
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
        if !content_type.as_deref().is_some_and(is_json) {
            return Err(ApiError::not_json(content_type.as_deref()));
        }
        let limit = state.limits.max_body_bytes;
        let declared = request
            .headers()
            .get(axum::http::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
        if declared.is_some_and(|n| n > limit as u64) {
            return Err(ApiError::too_large(limit));
        }
        let deadline = state.limits.body_timeout;
        let read = tokio::time::timeout(deadline, Bytes::from_request(request, state));
        let bytes = read
            .await
            .map_err(|_| ApiError::body_timeout(deadline))?
            .map_err(|e| {
                if e.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
                    ApiError::too_large(limit)
                } else {
                    ApiError::invalid(format!("could not read the request body: {e}"))
                }
            })?;
        let value: serde_json::Value = serde_json::from_slice(&bytes)
            .map_err(|e| ApiError::invalid(format!("the body is not valid JSON: {e}")))?;
        if !value.is_object() {
            return Err(ApiError::invalid("the body must be a JSON object"));
        }
        T::precheck(&value)?;
        parse(&value).map(JsonBody)
    }
}

/// `application/json`, in any case, with or without parameters (`; charset=utf-8`).
fn is_json(content_type: &str) -> bool {
    content_type
        .split(';')
        .next()
        .is_some_and(|t| t.trim().eq_ignore_ascii_case("application/json"))
}
