//! `GET /api/perch/network`: where the server listens, what Tailscale gives this
//! machine, the URLs other machines can use, and whether they need a key.

use std::net::{IpAddr, SocketAddr};

use axum::extract::State;
use axum::Json;
use serde::Serialize;

use crate::exposure::NetworkStatus;
use crate::{ApiError, AppState};

/// The status with the URLs to give other machines.
#[derive(Serialize)]
pub(crate) struct NetworkView {
    #[serde(flatten)]
    status: NetworkStatus,
    /// Base URLs other machines can reach (MagicDNS name first).
    urls: Vec<String>,
    /// Whether requests from other machines must carry an API key.
    key_required: bool,
}

/// Where the server listens and how other machines reach it.
#[utoipa::path(get, path = "/api/perch/network", operation_id = "perchNetwork", tag = "perch",
    responses((status = 200, description = "{listen, addresses, listening, tailscale: {up, addresses, dns_name}, lan_addresses, message, error, urls, key_required}",
        body = serde_json::Value),
        (status = 503, description = "This server was not given its listeners", body = crate::error::ErrorResponse)))]
pub(crate) async fn status(State(state): State<AppState>) -> Result<Json<NetworkView>, ApiError> {
    let status = state
        .exposure
        .as_ref()
        .and_then(|e| e.status())
        .ok_or_else(|| ApiError::unavailable("this server does not manage where it listens"))?;
    let urls = urls(&status);
    let exposed = status.listening.iter().any(|a| !a.ip().is_loopback());
    Ok(Json(NetworkView {
        key_required: exposed || state.api_key.is_some(),
        status,
        urls,
    }))
}

/// `http://ADDRESS:PORT` for each way in from another machine.
fn urls(status: &NetworkStatus) -> Vec<String> {
    let mut hosts: Vec<String> = Vec::new();
    let Some(port) = status.listening.first().map(SocketAddr::port) else {
        return Vec::new();
    };
    let listening: Vec<IpAddr> = status.listening.iter().map(SocketAddr::ip).collect();
    let tailscale = &status.plan.tailscale;
    let on_tailscale: Vec<&IpAddr> = tailscale
        .addresses
        .iter()
        .filter(|ip| listening.contains(ip))
        .collect();
    if !on_tailscale.is_empty() {
        hosts.extend(tailscale.dns_name.clone());
        hosts.extend(on_tailscale.into_iter().map(host));
    }
    let lan = status.plan.lan_addresses.iter();
    hosts.extend(lan.filter(|ip| listening.contains(ip)).map(host));
    hosts
        .into_iter()
        .map(|h| format!("http://{h}:{port}"))
        .collect()
}

fn host(ip: &IpAddr) -> String {
    match ip {
        IpAddr::V6(v6) => format!("[{v6}]"),
        IpAddr::V4(v4) => v4.to_string(),
    }
}
