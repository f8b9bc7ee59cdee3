//! The web UI, built from `ui/` by the build script and embedded in the binary: `/`
//! is its page, and its hashed files are served with long caching. The page itself
//! holds no secret, so it needs no API key (the API calls it makes do); the Host check
//! still applies, and a content security policy keeps it to this server's own files.

use axum::http::header::{CACHE_CONTROL, CONTENT_SECURITY_POLICY, CONTENT_TYPE};
use axum::http::{HeaderValue, Method, Uri};
use axum::response::{IntoResponse, Response};

use crate::ApiError;

include!(concat!(env!("OUT_DIR"), "/ui_assets.rs"));

/// What the page may load: only from this server; inline styles for Svelte's
/// transitions; images from data URLs.
const POLICY: &str = "default-src 'self'; style-src 'self' 'unsafe-inline'; \
                      img-src 'self' data:; object-src 'none'; base-uri 'none'; \
                      frame-ancestors 'none'";

/// Answers a GET for `/` or one of the UI's files; anything else is the API's 404.
pub(crate) async fn serve(method: Method, uri: Uri) -> Response {
    let path = match uri.path() {
        "/" => "/index.html",
        other => other,
    };
    let found = ASSETS.iter().find(|(url, ..)| *url == path);
    match (method, found) {
        (Method::GET | Method::HEAD, Some((url, media_type, bytes))) => {
            let mut response = bytes.into_response();
            let headers = response.headers_mut();
            headers.insert(CONTENT_TYPE, HeaderValue::from_static(media_type));
            let cache = if url.starts_with("/assets/") {
                "public, max-age=31536000, immutable"
            } else {
                "no-cache"
            };
            headers.insert(CACHE_CONTROL, HeaderValue::from_static(cache));
            if url.ends_with(".html") {
                headers.insert(CONTENT_SECURITY_POLICY, HeaderValue::from_static(POLICY));
            }
            response
        }
        _ => ApiError::not_found_route().into_response(),
    }
}
