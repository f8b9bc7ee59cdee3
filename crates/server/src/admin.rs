//! The guard on the routes that change the node itself (settings, API keys, the hub
//! token): they answer only requests from this machine (not passed on by a proxy) and
//! from no other web page, whatever keys or allowlists say. An API key given to another
//! machine lets it use the models, not take over the node.

use axum::extract::Request;
use axum::http::header::{HOST, ORIGIN};
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::access::same_origin;
use crate::arrival::from_this_machine;
use crate::ApiError;

/// The middleware.
pub(crate) async fn this_machine_only(request: Request, next: Next) -> Response {
    if !from_this_machine(&request) {
        return ApiError::admin_elsewhere().into_response();
    }
    if let Some(origin) = foreign_origin(&request) {
        return ApiError::forbidden_origin(&origin).into_response();
    }
    next.run(request).await
}

/// The request's `Origin`, when it is not this server's own page.
fn foreign_origin(request: &Request) -> Option<String> {
    let header = |name| {
        request
            .headers()
            .get(name)
            .map(|v: &HeaderValue| String::from_utf8_lossy(v.as_bytes()).into_owned())
    };
    let origin = header(ORIGIN)?;
    (!same_origin(&origin, &header(HOST).unwrap_or_default())).then_some(origin)
}
