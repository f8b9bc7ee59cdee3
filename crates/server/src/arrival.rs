//! Where a request came from: the local address its connection arrived on, and whether
//! a proxy says it was passed on from elsewhere. A request counts as from this machine
//! only when both say so: a reverse proxy or `tailscale serve` on the machine connects
//! over loopback but carries other machines' requests, and marks them with forwarding
//! headers.

use std::net::SocketAddr;

use axum::extract::Request;

/// The local address a connection arrived on.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Arrival {
    pub local: SocketAddr,
}

/// Headers proxies add to requests they pass on.
const FORWARDING: [&str; 5] = [
    "forwarded",
    "x-forwarded-for",
    "x-forwarded-host",
    "x-real-ip",
    "tailscale-user-login",
];

/// Whether `request` arrived on loopback (a request with no arrival did not come through
/// a socket the server listens on, and counts as from elsewhere).
pub(crate) fn on_loopback(request: &Request) -> bool {
    request
        .extensions()
        .get::<Arrival>()
        .is_some_and(|a| a.local.ip().is_loopback())
}

/// Whether `request` came from this machine: it arrived on loopback and no proxy passed
/// it on.
pub(crate) fn from_this_machine(request: &Request) -> bool {
    on_loopback(request)
        && !FORWARDING
            .iter()
            .any(|name| request.headers().contains_key(*name))
}
