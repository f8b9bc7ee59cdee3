//! `perch serve`: start the node, load the models named (kept loaded), and serve the
//! APIs and the web UI; other models in the store load on first use. Settings come from
//! the settings file (watched while it runs), with the flags given here on top. Loopback
//! unless told otherwise; requests from any other address need an API key (the first
//! one is created and shown once). Logs go to stderr and to daily files. On SIGINT or
//! SIGTERM it stops accepting, lets requests in flight finish for a grace period,
//! cancels the rest and exits 0; a second signal exits at once.

use std::time::Duration;

use anyhow::{bail, Context};
use perch_engine::buffer_cache;
use perch_runtime::catalog::DEFAULT_MODEL;
use perch_runtime::manifest::ManifestSource;
use perch_runtime::names::{self, ModelName, Origin};
use perch_runtime::secrets::Secrets;
use perch_runtime::settings::{Listen, LiveSettings, Settings};
use perch_runtime::{dirs, logging, network, KeepAlive, LocalModel, Node, NodeSettings};
use perch_server::{AppState, Limits, Listeners};

/// Arguments of `perch serve`.
#[derive(clap::Args)]
pub struct ServeArgs {
    /// Model to serve: a catalog alias (smollm2:135m), a GGUF file or an MLX directory.
    /// Repeat to serve several. Default: smollm2:135m.
    #[arg(long = "model", value_name = "NAME|PATH")]
    models: Vec<String>,
    /// Where to listen: loopback (this machine only), tailscale (also its Tailscale
    /// addresses), network (every interface) or an IP address. Requests from other
    /// machines need an API key. Default: the settings file's, else loopback.
    #[arg(long, alias = "host", value_name = "MODE|IP")]
    listen: Option<Listen>,
    /// Port to listen on (0 picks a free one). Default: the settings file's, else 8435.
    #[arg(long)]
    port: Option<u16>,
    /// Require `Authorization: Bearer KEY` on every API call, from any address (beside
    /// the keys made in Settings).
    #[arg(long, env = "PERCH_API_KEY", hide_env_values = true)]
    api_key: Option<String>,
    /// Requests admitted at once, running or queued; more get 503.
    #[arg(long, default_value_t = Limits::default().max_queue)]
    max_queue: usize,
    /// Longest prompt accepted, in tokens (each model's context bounds it too); longer get
    /// 400.
    #[arg(long, default_value_t = Limits::default().max_prompt_tokens)]
    max_prompt_tokens: usize,
    /// Most tokens one request may generate; a larger `max_tokens` is lowered to this.
    /// Default: the model's context is the only bound.
    #[arg(long, value_name = "TOKENS")]
    max_output_tokens: Option<usize>,
    /// Largest request body in bytes; larger get 413.
    #[arg(long, default_value_t = Limits::default().max_body_bytes)]
    max_body_bytes: usize,
    /// Connections open at once; more get 503 and are closed. Capped by the open-file
    /// limit.
    #[arg(long, default_value_t = Limits::default().max_connections)]
    max_connections: usize,
    /// Seconds a connection has to send a request's headers (also how long an idle
    /// keep-alive connection stays open).
    #[arg(long, value_name = "SECONDS", default_value_t = Limits::default().header_timeout.as_secs_f64())]
    header_timeout: f64,
    /// Seconds a request has to send its whole body; slower get 408.
    #[arg(long, value_name = "SECONDS", default_value_t = Limits::default().body_timeout.as_secs_f64())]
    body_timeout: f64,
    /// Seconds a streaming client may go without reading before its request is cancelled.
    #[arg(long, value_name = "SECONDS", default_value_t = Limits::default().write_timeout.as_secs_f64())]
    write_timeout: f64,
    /// Seconds requests in flight may take to finish once shutdown starts; then they are
    /// cancelled.
    #[arg(long, value_name = "SECONDS", default_value_t = 10.0)]
    shutdown_grace: f64,
    /// Another host name this server answers to (repeat; `*` for any). localhost, the
    /// listening addresses and the Tailscale name are always allowed. Replaces the
    /// settings file's `allowed_hosts` for this run.
    #[arg(long = "allow-host", value_name = "NAME")]
    allow_hosts: Vec<String>,
    /// A web page origin allowed to call the API from a browser, such as
    /// http://localhost:3000 for a web app (repeat; `*` for any). Same-origin only by
    /// default. Replaces the settings file's `allowed_origins` for this run.
    #[arg(long = "allow-origin", value_name = "ORIGIN")]
    allow_origins: Vec<String>,
    /// Tokens of context each model is planned and served with (a model's own maximum,
    /// if less). Longer contexts need more memory for the KV cache. Default: the
    /// settings file's, else 8192.
    #[arg(long, value_name = "TOKENS")]
    context_length: Option<u64>,
    /// How long a model stays loaded after its last request when the request names no
    /// keep-alive: `5m`, `1h`, `0` (unload at once), `-1` (forever). Models named with
    /// --model are kept, unless another model needs their room while they are idle.
    /// Default: the settings file's, else 5m.
    #[arg(long, value_name = "DURATION", allow_hyphen_values = true)]
    keep_alive: Option<String>,
    /// Most models loaded at once; loading another unloads the least recently used idle
    /// one. Default: the settings file's, else 3.
    #[arg(long, value_name = "COUNT")]
    max_loaded_models: Option<usize>,
    /// Most requests each model answers at once, batched together (the rest wait their
    /// turn); each is planned a full context of KV cache, and a model that cannot fit
    /// that many serves fewer. Default: the settings file's, else 4.
    #[arg(long, value_name = "COUNT")]
    parallel: Option<usize>,
    /// The engine GGUF files run on: llama.cpp (every quantization, llama.cpp's speed) or
    /// mlx. MLX directories always run on MLX; a catalog entry may name its own. Default:
    /// the settings file's gguf_engine, else llama.cpp.
    #[arg(long, value_name = "ENGINE")]
    engine: Option<perch_engine::EngineKind>,
    /// Gigabytes of memory kept for the operating system and other programs (default 4
    /// on macOS, 2 elsewhere); models are planned within the rest.
    #[arg(long, value_name = "GB")]
    os_reserve_gb: Option<f64>,
    /// Megabytes of freed GPU/CPU buffers MLX may keep for reuse (0 keeps none).
    #[arg(long, value_name = "MB", default_value_t = buffer_cache::DEFAULT_LIMIT >> 20)]
    buffer_cache_mb: usize,
}

/// A time limit in seconds: more than zero (or zero too, where `zero_ok`).
fn seconds(flag: &str, value: f64, zero_ok: bool) -> anyhow::Result<Duration> {
    match Duration::try_from_secs_f64(value) {
        Ok(d) if zero_ok || !d.is_zero() => Ok(d),
        _ => bail!("--{flag} must be a number of seconds above 0, got {value}"),
    }
}

/// A count limit: at least 1, at most a million (a semaphore's bound, and far past any
/// machine's).
fn count(flag: &str, value: usize) -> anyhow::Result<usize> {
    if !(1..=1_000_000).contains(&value) {
        bail!("--{flag} must be between 1 and 1000000, got {value}");
    }
    Ok(value)
}

/// The settings file's values with the flags given on top (for this run only).
fn settings_with_flags(args: &ServeArgs) -> anyhow::Result<std::sync::Arc<LiveSettings>> {
    let path = dirs::settings_file();
    LiveSettings::open(&path, |s: &mut Settings| {
        if let Some(listen) = args.listen {
            s.listen = listen;
        }
        if let Some(port) = args.port {
            s.port = port;
        }
        if let Some(context) = args.context_length {
            s.context_length = context;
        }
        if let Some(keep_alive) = &args.keep_alive {
            s.keep_alive = keep_alive.clone();
        }
        if let Some(count) = args.max_loaded_models {
            s.max_loaded_models = count;
        }
        if let Some(count) = args.parallel {
            s.parallel = count;
        }
        if let Some(engine) = args.engine {
            s.gguf_engine = engine;
        }
        if !args.allow_hosts.is_empty() {
            s.allowed_hosts = args.allow_hosts.clone();
        }
        if !args.allow_origins.is_empty() {
            s.allowed_origins = args.allow_origins.clone();
        }
    })
    .with_context(|| format!("the settings ({} and the flags)", path.display()))
}

/// Loads the models and serves until SIGINT or SIGTERM.
pub fn run(args: ServeArgs) -> anyhow::Result<()> {
    if args.api_key.as_deref().is_some_and(|k| k.trim().is_empty()) {
        bail!(
            "the API key is blank: clients could never present it. Pass a real key with \
             --api-key KEY (or PERCH_API_KEY), or none at all."
        );
    }
    let live = settings_with_flags(&args)?;
    let first = live.current();
    let log_files = logging::init_for_node(first.log_days);
    let limits = Limits {
        max_queue: count("max-queue", args.max_queue)?,
        max_body_bytes: args.max_body_bytes,
        max_prompt_tokens: count("max-prompt-tokens", args.max_prompt_tokens)?,
        max_output_tokens: args
            .max_output_tokens
            .map(|n| count("max-output-tokens", n))
            .transpose()?,
        max_connections: perch_server::connection_cap(count(
            "max-connections",
            args.max_connections,
        )?),
        header_timeout: seconds("header-timeout", args.header_timeout, false)?,
        body_timeout: seconds("body-timeout", args.body_timeout, false)?,
        write_timeout: seconds("write-timeout", args.write_timeout, false)?,
    };
    let grace = seconds("shutdown-grace", args.shutdown_grace, true)?;
    let cache_bytes = args
        .buffer_cache_mb
        .checked_mul(1 << 20)
        .context("--buffer-cache-mb is too large")?;
    let mut settings = NodeSettings::from_env();
    settings.buffer_cache = cache_bytes as u64;
    settings.log_dir = log_files.as_ref().map(|f| f.dir.clone());
    if let Some(gb) = args.os_reserve_gb {
        if !(0.0..=1e6).contains(&gb) {
            bail!("--os-reserve-gb must be a number of gigabytes from 0, got {gb}");
        }
        settings.os_reserve = (gb * (1u64 << 30) as f64) as u64;
    }
    let secrets = Secrets::open(&settings.home)?;
    let names = if args.models.is_empty() {
        vec![DEFAULT_MODEL.to_owned()]
    } else {
        args.models.clone()
    };

    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(async move {
        let _watching = live
            .watch()
            .map_err(|e| tracing::warn!("the settings file is not watched: {e}"))
            .ok();
        let node = Node::start(settings, live, secrets).context("reading the secret store")?;
        let mut served = Vec::new();
        for name in &names {
            let local = local_model(&node, name).await?;
            eprintln!("perch: loading {} …", local.name());
            let loaded = node
                .manager
                .load(local.name(), Some(KeepAlive::Forever))
                .await
                .with_context(|| format!("loading {name}"))?;
            let info = loaded.engine.info();
            eprintln!(
                "perch: {} ready in {:.1} s ({:.0} MB of weights, context {}, {} at once)",
                loaded.name,
                info.load_time.as_secs_f64(),
                info.weights_bytes as f64 / 1e6,
                loaded.context_length(),
                info.serving.sequences
            );
            served.push(loaded.name.clone());
        }
        if first.listen.is_exposed() && args.api_key.is_none() && node.keys.is_empty() {
            // Shown once, to a person: never into a service manager's log.
            if std::io::IsTerminal::is_terminal(&std::io::stderr()) {
                let key = node.keys.create("first key")?;
                eprintln!(
                    "perch: created an API key for other machines (shown this once; manage \
                     keys in Settings): {}",
                    key.key
                );
            } else {
                tracing::warn!(
                    "no API key exists yet: other machines are refused until one is created in \
                     Settings (on this machine)"
                );
            }
        }
        let plan = tokio::task::spawn_blocking(move || network::plan(first.listen)).await?;
        let listeners = Listeners::bind(&plan.addresses, first.port)
            .await
            .with_context(|| format!("listening ({})", plan.message))?;
        let local = listeners.local_url();
        let state =
            AppState::new(node, args.api_key.clone(), limits).listening_on(listeners.clone());
        println!("perch: serving {} on {local}/v1", served.join(", "));
        eprintln!("perch: {} The web UI is at {local}/", plan.message);
        let signals = Signals::listen().context("listening for signals")?;
        perch_server::serve(listeners, state, shutdown_signal(signals, grace), grace).await?;
        eprintln!("perch: stopped");
        Ok(())
    })
}

/// The model `name` names on this machine: a path is added to the store once (found
/// again by where it came from); a model not in the store yet is pulled, with a progress
/// bar.
async fn local_model(node: &Node, name: &str) -> anyhow::Result<LocalModel> {
    if let ModelName::Path(path) = names::parse(name, Origin::Local)? {
        let store = node.store.clone();
        return tokio::task::spawn_blocking(move || {
            let path = std::fs::canonicalize(&path)
                .with_context(|| format!("{} cannot be read", path.display()))?;
            let added = store.list().into_iter().find(|m| {
                matches!(&m.manifest.source, ManifestSource::Local { path: from } if *from == path)
            });
            match added {
                Some(model) => Ok(model),
                None => Ok(store.add(&path, None)?),
            }
        })
        .await?;
    }
    if let Some(model) = node.store.get(name) {
        return Ok(model);
    }
    crate::models::pull::pull_here(&node.downloads, name).await
}

/// Completes at the first SIGINT or SIGTERM; a second one exits the process at once, with
/// the shell's status for death by that signal (130 for Ctrl-C, 143 for SIGTERM). The
/// listeners exist from the start, so a second signal sent right after the first is
/// never missed.
async fn shutdown_signal(mut signals: Signals, grace: Duration) {
    let _ = signals.next().await;
    eprintln!(
        "perch: shutting down: no new requests; finishing the ones in flight for up to {:.0} s \
         (press Ctrl-C again to quit now)",
        grace.as_secs_f64()
    );
    tokio::spawn(async move {
        let number = signals.next().await;
        eprintln!("perch: second signal: quitting now");
        perch_runtime::process::quit_now(128 + number);
    });
}

/// Listeners for SIGINT and SIGTERM.
struct Signals {
    #[cfg(unix)]
    interrupt: tokio::signal::unix::Signal,
    #[cfg(unix)]
    terminate: tokio::signal::unix::Signal,
}

impl Signals {
    /// Starts listening (inside a Tokio runtime).
    fn listen() -> std::io::Result<Signals> {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{signal, SignalKind};
            Ok(Signals {
                interrupt: signal(SignalKind::interrupt())?,
                terminate: signal(SignalKind::terminate())?,
            })
        }
        #[cfg(not(unix))]
        Ok(Signals {})
    }

    /// The number of the next signal.
    async fn next(&mut self) -> i32 {
        #[cfg(unix)]
        {
            tokio::select! {
                _ = self.interrupt.recv() => 2,
                _ = self.terminate.recv() => 15,
            }
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
            2
        }
    }
}
