//! The node the app hosts, built in-process on a Tokio runtime of its own the way
//! `perch serve` builds it: the same settings file, secrets, data folder and log files,
//! listening where the settings say. When the port is taken (a `perch serve` already
//! runs), the app says so and quits instead of failing silently.

use std::time::Duration;

use anyhow::Context;
use perch_runtime::secrets::Secrets;
use perch_runtime::settings::LiveSettings;
use perch_runtime::{dirs, logging, network, Node, NodeSettings};
use perch_server::{AppState, Limits, Listeners};
use tokio::sync::oneshot;

/// How long requests in flight may take to finish when the app quits.
const GRACE: Duration = Duration::from_secs(5);

/// A running node and its server.
pub struct Hosted {
    /// The URL this machine reaches it at.
    pub url: String,
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
        let logs = logging::init_with_files(&dirs::logs(), first.log_days).ok();
        let mut settings = NodeSettings::from_env();
        settings.log_dir = logs.as_ref().map(|l| l.dir.clone());
        let secrets = Secrets::open(&settings.home)?;
        let runtime = tokio::runtime::Runtime::new()?;
        let (stop, stopped) = oneshot::channel::<()>();
        let (url, served) = runtime.block_on(async move {
            let watching = live.watch().ok();
            let node = Node::start(settings, live, secrets).context("reading the secret store")?;
            let plan = tokio::task::spawn_blocking(move || network::plan(first.listen)).await?;
            let listeners = Listeners::bind(&plan.addresses, first.port)
                .await
                .map_err(|e| taken(e, first.port))?;
            let url = listeners.local_url();
            let state =
                AppState::new(node, None, Limits::default()).listening_on(listeners.clone());
            let served = tokio::spawn(async move {
                let _watching = watching;
                let shutdown = async move {
                    let _ = stopped.await;
                };
                if let Err(e) = perch_server::serve(listeners, state, shutdown, GRACE).await {
                    tracing::error!("the server stopped: {e}");
                }
            });
            anyhow::Ok((url, served))
        })?;
        tracing::info!("Perch.app serving on {url}");
        Ok(Hosted {
            url,
            runtime,
            stop,
            served,
            _logs: logs,
        })
    }

    /// The runtime the node runs on, for the app's own requests to it.
    pub fn runtime(&self) -> tokio::runtime::Handle {
        self.runtime.handle().clone()
    }

    /// Stops serving (requests in flight get the grace period) and drops the node.
    pub fn stop(self) {
        let _ = self.stop.send(());
        let _ = self.runtime.block_on(self.served);
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

/// Says why the app cannot start, as a desktop notification (the app has no window yet),
/// and exits.
pub fn tell_and_exit(message: &str) -> ! {
    let shown = std::process::Command::new(if cfg!(target_os = "macos") {
        "osascript"
    } else {
        "notify-send"
    })
    .args(if cfg!(target_os = "macos") {
        vec![
            "-e".to_owned(),
            format!("display alert \"Perch could not start\" message {message:?}"),
        ]
    } else {
        vec!["Perch could not start".to_owned(), message.to_owned()]
    })
    .status();
    if !shown.is_ok_and(|s| s.success()) {
        tracing::error!("Perch could not start: {message}");
    }
    std::process::exit(1)
}
