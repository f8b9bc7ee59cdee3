//! Where the server listens, kept in step with the live settings: the listen mode and
//! port become addresses (through the runtime's network plan), the listeners move there
//! (new ones up first), and the Host and Origin rules follow — the Tailscale addresses
//! and MagicDNS name when listening there, plus the hosts and origins the settings
//! allow. A change that cannot be bound leaves everything as it was and says why.

use std::net::SocketAddr;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use perch_runtime::network::{self, BindPlan};
use perch_runtime::node_address;
use perch_runtime::settings::Settings;
use serde::Serialize;

use crate::{AccessPolicy, AppState, Listeners};

/// Where the server listens now, as `GET /api/perch/network` shows it.
#[derive(Clone, Debug, Serialize)]
pub(crate) struct NetworkStatus {
    /// The plan for the mode in force.
    #[serde(flatten)]
    pub plan: BindPlan,
    /// The sockets listened on.
    pub listening: Vec<SocketAddr>,
    /// Why the last change could not be made, if it could not.
    pub error: Option<String>,
    /// Addresses of the plan left out because the machine no longer has them.
    pub left_out: Vec<std::net::IpAddr>,
}

/// The listeners and what they were last told.
pub(crate) struct Exposure {
    listeners: Listeners,
    status: RwLock<Option<NetworkStatus>>,
    applying: tokio::sync::Mutex<()>,
    /// The node's address as recorded for the CLI (the record goes when this does).
    recorded: std::sync::Mutex<Option<(String, node_address::Recorded)>>,
}

impl Exposure {
    pub fn new(listeners: Listeners) -> Exposure {
        Exposure {
            listeners,
            status: RwLock::new(None),
            applying: tokio::sync::Mutex::new(()),
            recorded: std::sync::Mutex::new(None),
        }
    }

    /// The status, once the first settings were applied.
    pub fn status(&self) -> Option<NetworkStatus> {
        self.status
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// The port listened on.
    pub fn port(&self) -> u16 {
        self.listeners.port()
    }

    /// Listens where `settings` say, updates the Host and Origin rules and records the
    /// node's address for the CLI; on failure nothing moves and the error is kept in the
    /// status and returned.
    pub async fn apply(&self, state: &AppState, settings: &Settings) -> Result<(), String> {
        let _one_at_a_time = self.applying.lock().await;
        let listen = settings.listen;
        let plan = tokio::task::spawn_blocking(move || network::plan(listen))
            .await
            .map_err(|e| e.to_string())?;
        let bound = self
            .listeners
            .rebind(&plan.addresses, settings.port)
            .await
            .map_err(|e| e.to_string());
        let listening = self.listeners.addresses();
        let ips: Vec<_> = listening.iter().map(SocketAddr::ip).collect();
        if bound.is_ok() {
            self.record(&state.node.settings.home);
            let hosts = settings.allowed_hosts.iter().chain(
                plan.tailscale
                    .dns_name
                    .iter()
                    .filter(|_| ips.iter().any(|ip| network::is_tailscale(*ip))),
            );
            state.set_access(
                AccessPolicy::for_addresses(&ips)
                    .allow_hosts(hosts)
                    .allow_origins(&settings.allowed_origins),
            );
        }
        let (left_out, error) = match &bound {
            Ok(gone) => (gone.clone(), None),
            Err(e) => (Vec::new(), Some(e.clone())),
        };
        if let Some(e) = &error {
            tracing::warn!("could not listen where the settings say: {e}");
        }
        *self
            .status
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(NetworkStatus {
            plan,
            listening,
            error,
            left_out,
        });
        bound.map(drop)
    }

    /// Records where the node listens now, when that changed (the old record goes
    /// first: both are the same file).
    fn record(&self, home: &std::path::Path) {
        let url = self.listeners.local_url();
        let mut recorded = self
            .recorded
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if recorded.as_ref().is_some_and(|(was, _)| *was == url) {
            return;
        }
        *recorded = None;
        match node_address::record(home, &url) {
            Ok(record) => *recorded = Some((url, record)),
            Err(e) => tracing::warn!("could not record the address in {}: {e}", home.display()),
        }
    }
}

/// How often the machine's addresses are looked at again.
const REPLAN_EVERY: Duration = Duration::from_secs(10);

/// Applies the live settings after each change that concerns listening, and again every
/// few seconds so that addresses coming and going (Tailscale starting or stopping) are
/// followed and reported (the caller applied them once already).
pub(crate) async fn follow(state: AppState, exposure: Arc<Exposure>) {
    let mut changes = state.node.live.subscribe();
    let mut last = changes.borrow_and_update().clone();
    let mut replan = tokio::time::interval(REPLAN_EVERY);
    replan.reset();
    loop {
        tokio::select! {
            changed = changes.changed() => {
                if changed.is_err() {
                    return;
                }
                let now = changes.borrow_and_update().clone();
                if concerns_listening(&last, &now) {
                    let _ = exposure.apply(&state, &now).await;
                }
                last = now;
            }
            _ = replan.tick() => {
                let _ = exposure.apply(&state, &last).await;
            }
        }
    }
}

/// Whether going from `old` to `new` changes where or how the server listens.
pub(crate) fn concerns_listening(old: &Settings, new: &Settings) -> bool {
    old.listen != new.listen
        || old.port != new.port
        || old.allowed_hosts != new.allowed_hosts
        || old.allowed_origins != new.allowed_origins
}
