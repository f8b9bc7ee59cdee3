//! The node the app hosts, built in-process on a Tokio runtime of its own the way
//! `perch serve` builds it: the same settings file, secrets, data folder, log files and
//! connection cap, listening where the settings say. When the port is taken (a `perch
//! serve` already runs), the app says so and quits instead of failing silently.

use std::time::Duration;

use anyhow::Context;
use perch_runtime::secrets::Secrets;
use perch_runtime::settings::LiveSettings;
use perch_runtime::{dirs, logging, network, Node, NodeSettings};
use perch_server::{AppState, Limits, Listeners};
use tokio::sync::oneshot;

/// How long requests in flight may take to finish when the app quits, as for
/// `perch serve`.
const GRACE: Duration = Duration::from_secs(10);

/// A running node and its server.
pub struct Hosted {
    listeners: Listeners,
    runtime: tokio::runtime::Runtime,
    stop: oneshot::Sender<()>,
    served: tokio::task::JoinHandle<()>,
    _logs: Option<logging::LogFiles>,
}

impl Hosted {
    /// Builds the node and starts serving.
    pub fn start() -> anyhow::Result<Hosted> {
        let path = dirs::settings_file();
        let live = LiveSettings::open(&path, |_| {})
            .with_context(|| format!("the settings in {}", path.display()))?;
        let first = live.current();
        let logs = logging::init_for_node(first.log_days);
        let mut settings = NodeSettings::from_env();
        settings.log_dir = logs.as_ref().map(|l| l.dir.clone());
        let secrets = Secrets::open(&settings.home)?;
        let runtime = tokio::runtime::Runtime::new()?;
        let (stop, stopped) = oneshot::channel::<()>();
        let (listeners, served) = runtime.block_on(async move {
            let watching = live.watch().ok();
            let node = Node::start(settings, live, secrets).context("reading the secret store")?;
            let plan = tokio::task::spawn_blocking(move || network::plan(first.listen)).await?;
            let listeners = Listeners::bind(&plan.addresses, first.port)
                .await
                .map_err(|e| taken(e, first.port))?;
            tracing::info!(
                "Perch.app serving on {}: {}",
                listeners.local_url(),
                plan.message
            );
            let limits = Limits {
                max_connections: perch_server::connection_cap(Limits::default().max_connections),
                ..Limits::default()
            };
            let state = AppState::new(node, None, limits).listening_on(listeners.clone());
            let serving = listeners.clone();
            let served = tokio::spawn(async move {
                let _watching = watching;
                let shutdown = async move {
                    let _ = stopped.await;
                };
                if let Err(e) = perch_server::serve(serving, state, shutdown, GRACE).await {
                    tracing::error!("the server stopped: {e}");
                }
            });
            anyhow::Ok((listeners, served))
        })?;
        Ok(Hosted {
            listeners,
            runtime,
            stop,
            served,
            _logs: logs,
        })
    }

    /// Where the server listens (it moves when the settings say).
    pub fn listeners(&self) -> Listeners {
        self.listeners.clone()
    }

    /// The runtime the node runs on, for the app's own requests to it.
    pub fn runtime(&self) -> tokio::runtime::Handle {
        self.runtime.handle().clone()
    }

    /// Stops serving: requests in flight get the grace period, then work still running
    /// (a load, a download) is abandoned rather than waited for.
    pub fn stop(self) {
        let _ = self.stop.send(());
        let _ = self.runtime.block_on(self.served);
        self.runtime.shutdown_timeout(Duration::from_secs(1));
    }
}

/// A bind error, said for people when the port is taken.
fn taken(e: std::io::Error, port: u16) -> anyhow::Error {
    if e.kind() == std::io::ErrorKind::AddrInUse {
        anyhow::anyhow!(
            "port {port} is already in use, probably by `perch serve`: quit it (or set another \
             `port` in {}) and open Perch again",
            dirs::settings_file().display()
        )
    } else {
        anyhow::Error::new(e).context("listening")
    }
}

/// Says why the app cannot start, as a desktop alert (the app has no window yet) and on
/// stderr, and exits with status 1.
pub fn tell_and_exit(message: &str) -> ! {
    eprintln!("Perch could not start: {message}");
    let mut alert = if cfg!(target_os = "macos") {
        let quoted = message.replace('\\', "\\\\").replace('"', "\\\"");
        let mut command = std::process::Command::new("osascript");
        command.args([
            "-e",
            &format!("display alert \"Perch could not start\" message \"{quoted}\""),
        ]);
        command
    } else {
        let mut command = std::process::Command::new("notify-send");
        command.args(["Perch could not start", message]);
        command
    };
    let _ = alert.status();
    std::process::exit(1)
}
