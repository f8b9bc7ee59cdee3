//! API errors in OpenAI's shape, `{"error": {"message", "type", "param", "code"}}`, with
//! the HTTP status decided here and nowhere else.

use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use perch_engine::EngineError;
use serde::Serialize;
use utoipa::ToSchema;

/// An error answered to the client.
#[derive(Debug, Clone)]
pub struct ApiError {
    status: StatusCode,
    message: String,
    kind: &'static str,
    param: Option<String>,
    code: Option<&'static str>,
}

impl ApiError {
    fn new(status: StatusCode, kind: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            message: message.into(),
            kind,
            param: None,
            code: None,
        }
    }

    /// 400: the request is malformed or a field is invalid.
    pub fn invalid(message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::BAD_REQUEST, "invalid_request_error", message)
    }

    /// 400 naming the offending field.
    pub fn invalid_field(param: &str, message: impl Into<String>) -> Self {
        ApiError {
            param: Some(param.to_owned()),
            ..ApiError::invalid(message)
        }
    }

    /// 401: missing or wrong API key.
    pub fn unauthorized() -> Self {
        ApiError {
            code: Some("invalid_api_key"),
            ..ApiError::new(
                StatusCode::UNAUTHORIZED,
                "invalid_request_error",
                "missing or incorrect API key: send it as `Authorization: Bearer KEY` or `x-api-key: KEY`",
            )
        }
    }

    /// 401 on a non-loopback address before any API key exists.
    pub fn no_api_key_yet() -> Self {
        ApiError {
            code: Some("invalid_api_key"),
            ..ApiError::new(
                StatusCode::UNAUTHORIZED,
                "invalid_request_error",
                "this Perch has no API key yet: create one in Settings, opened on the \
                 machine itself (on 127.0.0.1), and send it as `Authorization: Bearer KEY` or `x-api-key: KEY`",
            )
        }
    }

    /// 404: no such model.
    pub fn model_not_found(message: impl Into<String>) -> Self {
        ApiError {
            param: Some("model".into()),
            code: Some("model_not_found"),
            ..ApiError::new(StatusCode::NOT_FOUND, "invalid_request_error", message)
        }
    }

    /// 507: the model does not fit in memory; the message says by how much.
    pub fn insufficient_memory(message: impl Into<String>) -> Self {
        ApiError {
            code: Some("insufficient_memory"),
            ..ApiError::new(StatusCode::INSUFFICIENT_STORAGE, "server_error", message)
        }
    }

    /// 507: not enough disk.
    pub fn insufficient_storage(message: impl Into<String>) -> Self {
        ApiError {
            code: Some("insufficient_storage"),
            ..ApiError::new(StatusCode::INSUFFICIENT_STORAGE, "server_error", message)
        }
    }

    /// 409: the request conflicts with the state of a model (a taken name, a model
    /// serving requests, one Perch may only read).
    pub fn conflict(message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::CONFLICT, "invalid_request_error", message)
    }

    /// 409: the server cannot listen where a settings change asks (the message says
    /// which address and why); nothing changed.
    pub fn bind_failed(message: impl Into<String>) -> Self {
        ApiError {
            param: Some("listen".into()),
            ..ApiError::new(StatusCode::CONFLICT, "invalid_request_error", message)
        }
    }

    /// 502: a server Perch fetches from failed.
    pub fn bad_gateway(message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::BAD_GATEWAY, "server_error", message)
    }

    /// 503 for a reason given.
    pub fn unavailable(message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "server_error", message)
    }

    /// 403: a change to the node itself from another machine.
    pub fn admin_elsewhere() -> Self {
        ApiError::new(
            StatusCode::FORBIDDEN,
            "permission_error",
            "settings, API keys and the Hugging Face token can be changed only on the machine \
             Perch runs on (open Perch at http://127.0.0.1 there)",
        )
    }

    /// 404: no such thing (a key, a download) as the message says.
    pub fn not_found(message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::NOT_FOUND, "invalid_request_error", message)
    }

    /// 404: no such endpoint.
    pub fn not_found_route() -> Self {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "invalid_request_error",
            "no such endpoint; see /openapi.json for the ones this server has",
        )
    }

    /// 405: the endpoint exists but not with this method.
    pub fn method_not_allowed() -> Self {
        ApiError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "invalid_request_error",
            "this endpoint does not accept that method; see /openapi.json",
        )
    }

    /// 413: the body is larger than the limit.
    pub fn too_large(limit: usize) -> Self {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "invalid_request_error",
            format!("the request body is larger than the limit of {limit} bytes"),
        )
    }

    /// 400: the prompt does not fit the context.
    pub fn context_length(param: &str, message: impl Into<String>) -> Self {
        ApiError {
            code: Some("context_length_exceeded"),
            ..ApiError::invalid_field(param, message)
        }
    }

    /// 503: the queue is full; retry shortly.
    pub fn overloaded() -> Self {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "server_error",
            "the server is at its request limit; retry in a moment",
        )
    }

    /// 503: too many connections are open; this one is closed after this answer.
    pub fn too_many_connections(limit: usize) -> Self {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "server_error",
            format!("the server has {limit} connections open, its limit; retry in a moment"),
        )
    }

    /// 408: the body did not arrive in time.
    pub fn body_timeout(limit: std::time::Duration) -> Self {
        ApiError::new(
            StatusCode::REQUEST_TIMEOUT,
            "invalid_request_error",
            format!(
                "the request body did not arrive within {} s",
                limit.as_secs_f64()
            ),
        )
    }

    /// 415: a JSON endpoint got another content type.
    pub fn not_json(content_type: Option<&str>) -> Self {
        let sent = content_type.map_or("no Content-Type".to_owned(), |t| {
            format!("Content-Type {t:?}")
        });
        ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "invalid_request_error",
            format!("this endpoint takes JSON: send `Content-Type: application/json` (got {sent})"),
        )
    }

    /// 403: the `Host` header names a host this server does not answer to (a DNS
    /// rebinding attempt, or a name that needs `--allow-host`).
    pub fn unknown_host(host: &str) -> Self {
        ApiError::new(
            StatusCode::FORBIDDEN,
            "invalid_request_error",
            format!(
                "this server does not answer to the host {host:?}; allow the name in the allowed_hosts setting (or --allow-host)"
            ),
        )
    }

    /// 403: a browser request from a web page this server does not allow.
    pub fn forbidden_origin(origin: &str) -> Self {
        ApiError::new(
            StatusCode::FORBIDDEN,
            "invalid_request_error",
            format!(
                "requests from the web page origin {origin:?} are not allowed; allow it in Settings (allowed_origins, or --allow-origin)"
            ),
        )
    }

    /// 500: something failed inside.
    pub fn internal(message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "server_error", message)
    }

    /// The sentence saying what went wrong.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The status this error answers with.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The JSON body.
    pub fn body(&self) -> serde_json::Value {
        let body = ErrorResponse {
            error: ErrorDetail {
                message: self.message.clone(),
                kind: self.kind,
                param: self.param.clone(),
                code: self.code,
            },
        };
        serde_json::to_value(body).expect("an error body serializes")
    }
}

/// The body of every error: `{"error": {message, type, param, code}}`.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorResponse {
    /// What went wrong.
    pub error: ErrorDetail,
}

/// What went wrong, in OpenAI's words.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorDetail {
    /// A sentence saying what to do about it.
    pub message: String,
    /// `invalid_request_error` or `server_error`.
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// The request field at fault, if one is.
    pub param: Option<String>,
    /// `invalid_api_key`, `model_not_found`, `context_length_exceeded`, or null.
    pub code: Option<&'static str>,
}

impl From<EngineError> for ApiError {
    fn from(e: EngineError) -> Self {
        match e {
            EngineError::InvalidRequest(message) => ApiError::invalid(message),
            other => ApiError::internal(other.to_string()),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = (self.status, axum::Json(self.body())).into_response();
        let headers = response.headers_mut();
        if self.status == StatusCode::SERVICE_UNAVAILABLE {
            headers.insert("retry-after", HeaderValue::from_static("1"));
        }
        if matches!(
            self.status,
            StatusCode::REQUEST_TIMEOUT | StatusCode::PAYLOAD_TOO_LARGE
        ) {
            // The rest of the body may still be on its way: do not read it as a request.
            headers.insert("connection", HeaderValue::from_static("close"));
        }
        response
    }
}

impl From<perch_runtime::ManagerError> for ApiError {
    fn from(e: perch_runtime::ManagerError) -> Self {
        use perch_runtime::ManagerError as M;
        match e {
            M::NotFound(m) => ApiError::model_not_found(m),
            M::BadName(m) => ApiError::invalid_field("model", m),
            M::InsufficientMemory(m) => ApiError::insufficient_memory(m),
            M::Busy(m) => ApiError::unavailable(m),
            e @ M::LoadFailed { .. } => ApiError::internal(e.to_string()),
        }
    }
}
