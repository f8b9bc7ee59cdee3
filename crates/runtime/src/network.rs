//! Where the server can listen: this machine's addresses, which of them are Tailscale's
//! (100.64.0.0/10 and fd7a:115c:a1e0::/48, or what `tailscale ip` says when the CLI is
//! there) and its MagicDNS name, and the addresses a [`Listen`] mode binds. When
//! Tailscale is not up, the Tailscale mode binds this machine only and says why. The
//! plan is made again from time to time, so an address that comes or goes (Tailscale
//! starting, a new DHCP lease) is followed.

use std::net::{IpAddr, Ipv4Addr};
use std::process::Command;
use std::time::Duration;

use serde::Serialize;

use crate::settings::Listen;

/// What Tailscale gives this machine.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Tailscale {
    /// Whether this machine has a Tailscale address.
    pub up: bool,
    /// Its Tailscale addresses.
    pub addresses: Vec<IpAddr>,
    /// Its MagicDNS name (`box.tail1234.ts.net`), when the CLI says.
    pub dns_name: Option<String>,
}

/// The addresses one mode binds, and a sentence about them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct BindPlan {
    /// The mode asked for.
    #[serde(serialize_with = "as_text")]
    pub listen: Listen,
    /// The addresses to bind.
    pub addresses: Vec<IpAddr>,
    /// Tailscale as found.
    pub tailscale: Tailscale,
    /// This machine's other non-loopback addresses (the local network).
    pub lan_addresses: Vec<IpAddr>,
    /// For people: where it listens, and why not where asked.
    pub message: String,
}

fn as_text<S: serde::Serializer>(listen: &Listen, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(listen)
}

/// Whether `ip` is in Tailscale's ranges.
///
/// ```
/// use perch_runtime::network::is_tailscale;
/// assert!(is_tailscale("100.101.102.103".parse().unwrap()));
/// assert!(is_tailscale("fd7a:115c:a1e0::1".parse().unwrap()));
/// assert!(!is_tailscale("100.128.0.1".parse().unwrap()));
/// assert!(!is_tailscale("192.168.1.2".parse().unwrap()));
/// ```
pub fn is_tailscale(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            a == 100 && (64..128).contains(&b)
        }
        IpAddr::V6(v6) => v6.segments()[..3] == [0xfd7a, 0x115c, 0xa1e0],
    }
}

/// The machine's non-loopback interface addresses (IPv6 link-local left out).
fn interface_addresses() -> Vec<IpAddr> {
    let mut addresses: Vec<IpAddr> = if_addrs::get_if_addrs()
        .unwrap_or_default()
        .into_iter()
        .map(|i| i.ip())
        .filter(|ip| !ip.is_loopback() && !is_link_local_v6(ip))
        .collect();
    addresses.sort();
    addresses.dedup();
    addresses
}

fn is_link_local_v6(ip: &IpAddr) -> bool {
    matches!(ip, IpAddr::V6(v6) if v6.segments()[0] & 0xffc0 == 0xfe80)
}

/// Tailscale on this machine: its addresses from the interfaces (or the CLI), its
/// MagicDNS name from the CLI.
pub fn tailscale() -> Tailscale {
    let mut addresses: Vec<IpAddr> = interface_addresses()
        .into_iter()
        .filter(|ip| is_tailscale(*ip))
        .collect();
    if addresses.is_empty() {
        addresses = cli(&["ip"])
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.trim().parse().ok())
            .filter(|ip| is_tailscale(*ip))
            .collect();
    }
    let dns_name = (!addresses.is_empty())
        .then(|| cli(&["status", "--json"]))
        .flatten()
        .and_then(|json| magic_dns_name(&json));
    Tailscale {
        up: !addresses.is_empty(),
        addresses,
        dns_name,
    }
}

/// `Self.DNSName` from `tailscale status --json`, without the trailing dot.
fn magic_dns_name(status: &str) -> Option<String> {
    let value: serde_json::Value = serde_json::from_str(status).ok()?;
    let name = value.get("Self")?.get("DNSName")?.as_str()?;
    let name = name.trim_end_matches('.');
    (!name.is_empty()).then(|| name.to_owned())
}

/// Runs the `tailscale` CLI (for at most two seconds); its output, if it succeeded.
fn cli(args: &[&str]) -> Option<String> {
    let mut child = Command::new("tailscale")
        .args(args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .ok()?;
    let deadline = std::time::Instant::now() + Duration::from_secs(2);
    loop {
        match child.try_wait() {
            Ok(Some(status)) if status.success() => break,
            Ok(Some(_)) | Err(_) => return None,
            Ok(None) if std::time::Instant::now() > deadline => {
                let _ = child.kill();
                let _ = child.wait();
                return None;
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(20)),
        }
    }
    let mut out = String::new();
    std::io::Read::read_to_string(child.stdout.as_mut()?, &mut out).ok()?;
    Some(out)
}

/// The addresses `listen` binds on this machine now.
pub fn plan(listen: Listen) -> BindPlan {
    let tailscale = tailscale();
    let lan_addresses: Vec<IpAddr> = interface_addresses()
        .into_iter()
        .filter(|ip| !is_tailscale(*ip))
        .collect();
    let loopback = IpAddr::V4(Ipv4Addr::LOCALHOST);
    let (addresses, message) = match listen {
        Listen::Loopback => (vec![loopback], "Listening on this machine only.".to_owned()),
        Listen::Tailscale if tailscale.up => {
            let mut addresses = vec![loopback];
            addresses.extend(&tailscale.addresses);
            let name = tailscale
                .dns_name
                .as_ref()
                .map(|n| format!(" ({n})"))
                .unwrap_or_default();
            (
                addresses,
                format!("Listening on this machine and on Tailscale{name}."),
            )
        }
        Listen::Tailscale => (
            vec![loopback],
            "Tailscale is not up (no Tailscale address on this machine): listening on this \
             machine only."
                .to_owned(),
        ),
        Listen::Network => {
            // Each address rather than 0.0.0.0: moving between modes then only adds and
            // removes addresses, so the new sockets can be up before the old close (a
            // wildcard cannot be bound while its port is held on one address).
            let mut addresses = vec![loopback];
            addresses.extend(&lan_addresses);
            addresses.extend(&tailscale.addresses);
            let list: Vec<String> = addresses[1..].iter().map(ToString::to_string).collect();
            (
                addresses,
                format!(
                    "Listening on this machine and on its networks ({}).",
                    list.join(", ")
                ),
            )
        }
        Listen::Address(ip) => (vec![ip], format!("Listening on {ip}.")),
    };
    BindPlan {
        listen,
        addresses,
        tailscale,
        lan_addresses,
        message,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_magic_dns_name_comes_from_the_status_json() {
        let status = r#"{"Self": {"DNSName": "box.tail1234.ts.net.", "HostName": "box"}}"#;
        assert_eq!(
            magic_dns_name(status).as_deref(),
            Some("box.tail1234.ts.net")
        );
        assert_eq!(magic_dns_name(r#"{"Self": {"DNSName": ""}}"#), None);
        assert_eq!(magic_dns_name("not json"), None);
    }

    #[test]
    fn loopback_binds_loopback_only() {
        let plan = plan(Listen::Loopback);
        assert_eq!(plan.addresses, vec![IpAddr::V4(Ipv4Addr::LOCALHOST)]);
        assert!(plan.lan_addresses.iter().all(|ip| !ip.is_loopback()));
    }
}
