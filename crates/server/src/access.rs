//! Who may talk to the server from a browser. Two checks run before authentication on
//! every route, so a web page the user happens to visit cannot drive a keyless loopback
//! server:
//!
//! - `Host` must name this server (`localhost`, an address it listens on — any address
//!   when bound to all interfaces — its Tailscale MagicDNS name when it listens there, or
//!   a name in the `allowed_hosts` setting). This defeats DNS rebinding, where an
//!   attacker's domain is made to resolve to 127.0.0.1; so `*` (any host) never applies to
//!   requests that arrive on loopback, which is where a rebound page's requests land.
//! - A request that carries `Origin` (browsers add it to cross-origin and to most
//!   non-GET requests) must come from the server's own origin or one on the allowlist
//!   (the `allowed_origins` setting, for web apps such as Open WebUI). Allowed cross-origin requests
//!   get CORS headers, and their preflights are answered here.
//!
//! Together with the JSON content-type rule in `extract.rs`, no page can make the browser
//! send a completion without a preflight that this module refuses.

use std::net::IpAddr;

use axum::extract::{Request, State};
use axum::http::header::{
    ACCESS_CONTROL_ALLOW_HEADERS, ACCESS_CONTROL_ALLOW_METHODS, ACCESS_CONTROL_ALLOW_ORIGIN,
    ACCESS_CONTROL_MAX_AGE, ACCESS_CONTROL_REQUEST_HEADERS, ACCESS_CONTROL_REQUEST_METHOD, HOST,
    ORIGIN, VARY,
};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::arrival::on_loopback;
use crate::{ApiError, AppState};

/// The hosts and web origins the server answers to.
///
/// ```
/// use perch_server::AccessPolicy;
/// let policy = AccessPolicy::for_addresses(&["127.0.0.1".parse().unwrap()])
///     .allow_hosts(["mac-mini.tail1234.ts.net"])
///     .allow_origins(["http://localhost:3000"]);
/// assert!(policy.allows_host("localhost:8435", true));
/// assert!(policy.allows_host("[::1]:8435", true));
/// assert!(policy.allows_host("mac-mini.tail1234.ts.net", false));
/// assert!(!policy.allows_host("attacker.example:8435", false));
/// assert!(policy.lists_origin("http://localhost:3000"));
/// ```
#[derive(Clone, Debug)]
pub struct AccessPolicy {
    bound: Vec<IpAddr>,
    hosts: Vec<String>,
    origins: Vec<String>,
}

impl AccessPolicy {
    /// The policy of a server listening on `bound`: it answers to `localhost` and to those
    /// addresses (to any address of the machine when one is unspecified), and allows no
    /// other web origins.
    pub fn for_addresses(bound: &[IpAddr]) -> Self {
        AccessPolicy {
            bound: bound.to_vec(),
            hosts: Vec::new(),
            origins: Vec::new(),
        }
    }

    /// Also answers to these host names (a port, if given, is ignored; `*` turns the host
    /// check off).
    pub fn allow_hosts<S: AsRef<str>>(mut self, hosts: impl IntoIterator<Item = S>) -> Self {
        self.hosts.extend(
            hosts
                .into_iter()
                .map(|h| normalize_host(strip_port(h.as_ref()))),
        );
        self
    }

    /// Also allows browser requests from these origins, such as `http://localhost:3000`
    /// (`*` allows any page).
    pub fn allow_origins<S: AsRef<str>>(mut self, origins: impl IntoIterator<Item = S>) -> Self {
        self.origins
            .extend(origins.into_iter().map(|o| normalize_origin(o.as_ref())));
        self
    }

    /// Whether a request whose `Host` header is `host` (with or without a port) is for
    /// this server; `on_loopback` says whether it arrived on a loopback address, where
    /// `*` does not apply.
    pub fn allows_host(&self, host: &str, on_loopback: bool) -> bool {
        let name = normalize_host(strip_port(host));
        let listed = |h: &String| (h == "*" && !on_loopback) || *h == name;
        if name == "localhost" || self.hosts.iter().any(listed) {
            return true;
        }
        let Ok(ip) = name.trim_matches(['[', ']']).parse::<IpAddr>() else {
            return false;
        };
        self.bound
            .iter()
            .any(|b| b.is_unspecified() || *b == ip || (b.is_loopback() && ip.is_loopback()))
    }

    /// Whether `origin` is on the allowlist.
    pub fn lists_origin(&self, origin: &str) -> bool {
        let origin = normalize_origin(origin);
        self.origins.iter().any(|o| o == "*" || *o == origin)
    }
}

fn normalize_host(host: &str) -> String {
    host.trim().trim_end_matches('.').to_ascii_lowercase()
}

fn normalize_origin(origin: &str) -> String {
    origin.trim().trim_end_matches('/').to_ascii_lowercase()
}

/// `example.com:8435` → `example.com`, `[::1]:8435` → `[::1]`; a bare IPv6 address stays.
fn strip_port(host: &str) -> &str {
    if let Some(end) = host.find(']') {
        return &host[..=end];
    }
    match host.rsplit_once(':') {
        Some((name, port)) if !name.contains(':') && port.bytes().all(|b| b.is_ascii_digit()) => {
            name
        }
        _ => host,
    }
}

/// The middleware: checks `Host` and `Origin`, answers preflights, adds CORS headers.
pub(crate) async fn check(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let policy = state.access();
    let headers = request.headers();
    let host = header(headers, HOST).unwrap_or_default();
    if !policy.allows_host(&host, on_loopback(&request)) {
        return ApiError::unknown_host(&host).into_response();
    }
    let Some(origin) = header(headers, ORIGIN) else {
        return next.run(request).await;
    };
    let listed = policy.lists_origin(&origin);
    if !same_origin(&origin, &host) && !listed {
        return ApiError::forbidden_origin(&origin).into_response();
    }
    if request.method() == Method::OPTIONS && headers.contains_key(ACCESS_CONTROL_REQUEST_METHOD) {
        return preflight(&origin, headers);
    }
    let mut response = next.run(request).await;
    if listed {
        allow_origin(response.headers_mut(), &origin);
    }
    response
}

/// Whether a page at `origin` is this server's own, reached as `host`.
pub(crate) fn same_origin(origin: &str, host: &str) -> bool {
    normalize_origin(origin) == normalize_origin(&format!("http://{host}"))
}

fn header(headers: &HeaderMap, name: axum::http::HeaderName) -> Option<String> {
    headers
        .get(name)
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
}

/// 204 to an allowed origin's preflight, granting the headers it asked for.
fn preflight(origin: &str, headers: &HeaderMap) -> Response {
    let mut response = StatusCode::NO_CONTENT.into_response();
    let out = response.headers_mut();
    allow_origin(out, origin);
    out.insert(
        ACCESS_CONTROL_ALLOW_METHODS,
        HeaderValue::from_static("GET, POST, OPTIONS"),
    );
    if let Some(asked) = headers.get(ACCESS_CONTROL_REQUEST_HEADERS) {
        out.insert(ACCESS_CONTROL_ALLOW_HEADERS, asked.clone());
    }
    out.insert(ACCESS_CONTROL_MAX_AGE, HeaderValue::from_static("600"));
    response
}

fn allow_origin(headers: &mut HeaderMap, origin: &str) {
    if let Ok(value) = HeaderValue::from_str(origin) {
        headers.insert(ACCESS_CONTROL_ALLOW_ORIGIN, value);
        headers.append(VARY, HeaderValue::from_static("Origin"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_are_stripped_from_names_and_addresses() {
        assert_eq!(strip_port("localhost:8435"), "localhost");
        assert_eq!(strip_port("127.0.0.1"), "127.0.0.1");
        assert_eq!(strip_port("[::1]:80"), "[::1]");
        assert_eq!(strip_port("::1"), "::1");
    }

    #[test]
    fn a_loopback_server_answers_to_loopback_only() {
        let policy = AccessPolicy::for_addresses(&["127.0.0.1".parse().unwrap()]);
        for ok in [
            "localhost",
            "LOCALHOST:1",
            "127.0.0.1:8435",
            "127.1.2.3",
            "[::1]:9",
        ] {
            assert!(policy.allows_host(ok, true), "{ok}");
        }
        for bad in [
            "",
            "evil.example",
            "localhost.evil.example",
            "10.0.0.5:8435",
        ] {
            assert!(!policy.allows_host(bad, true), "{bad}");
        }
    }

    #[test]
    fn a_server_on_all_interfaces_answers_to_any_address_but_only_listed_names() {
        let policy = AccessPolicy::for_addresses(&["0.0.0.0".parse().unwrap()])
            .allow_hosts(["Box.Tailnet.ts.net."]);
        assert!(policy.allows_host("100.64.1.2:8435", false));
        assert!(policy.allows_host("box.tailnet.ts.net:8435", false));
        assert!(!policy.allows_host("rebind.example", false));
        let open = AccessPolicy::for_addresses(&["0.0.0.0".parse().unwrap()]).allow_hosts(["*"]);
        assert!(open.allows_host("anything.example", false));
        assert!(
            !open.allows_host("rebind.example", true),
            "* never covers a request on loopback"
        );
    }

    #[test]
    fn origins_match_whole_and_without_a_trailing_slash() {
        let policy = AccessPolicy::for_addresses(&["127.0.0.1".parse().unwrap()])
            .allow_origins(["http://localhost:3000/"]);
        assert!(policy.lists_origin("http://localhost:3000"));
        assert!(!policy.lists_origin("http://localhost:3001"));
        assert!(!policy.lists_origin("null"));
    }
}
