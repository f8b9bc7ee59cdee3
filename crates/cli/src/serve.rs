//! `perch serve`: start the node, load the models named (kept loaded), and serve the
//! OpenAI-compatible API; other models in the store load on first use. Loopback unless told
//! otherwise; any other address needs an API key. On SIGINT or SIGTERM it stops accepting,
//! lets requests in flight finish for a grace period, cancels the rest and exits 0; a
//! second signal exits at once.

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use anyhow::{bail, Context};
use perch_engine::buffer_cache;
use perch_runtime::catalog::DEFAULT_MODEL;
use perch_runtime::manifest::ManifestSource;
use perch_runtime::names::{self, ModelName, Origin};
use perch_runtime::{node_address, KeepAlive, LocalModel, Node, NodeSettings};
use perch_server::{AccessPolicy, AppState, Limits};

/// Arguments of `perch serve`.
#[derive(clap::Args)]
pub struct ServeArgs {
    /// Model to serve: a catalog alias (smollm2:135m), a GGUF file or an MLX directory.
    /// Repeat to serve several. Default: smollm2:135m.
    #[arg(long = "model", value_name = "NAME|PATH")]
    models: Vec<String>,
    /// Address to listen on. Anything but loopback needs --api-key.
    #[arg(long, default_value_t = IpAddr::V4(Ipv4Addr::LOCALHOST))]
    host: IpAddr,
    /// Port to listen on (0 picks a free one).
    #[arg(long, default_value_t = 8435)]
    port: u16,
    /// Require `Authorization: Bearer KEY` on every API call.
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
    /// Another host name this server answers to, such as its Tailscale name (repeat;
    /// `*` for any). localhost and the listening address are always allowed.
    #[arg(long = "allow-host", value_name = "NAME")]
    allow_hosts: Vec<String>,
    /// A web page origin allowed to call the API from a browser, such as
    /// http://localhost:3000 for a web app (repeat; `*` for any). Same-origin only by
    /// default.
    #[arg(long = "allow-origin", value_name = "ORIGIN")]
    allow_origins: Vec<String>,
    /// Tokens of context each model is planned and served with (a model's own maximum,
    /// if less). Longer contexts need more memory for the KV cache.
    #[arg(long, value_name = "TOKENS", default_value_t = NodeSettings::from_env().context_length)]
    context_length: u64,
    /// How long a model stays loaded after its last request when the request names no
    /// keep-alive: `5m`, `1h`, `0` (unload at once), `-1` (forever). Models named with
    /// --model are kept, unless another model needs their room while they are idle.
    #[arg(
        long,
        value_name = "DURATION",
        default_value = "5m",
        allow_hyphen_values = true
    )]
    keep_alive: String,
    /// Most models loaded at once; loading another unloads the least recently used idle
    /// one.
    #[arg(long, value_name = "COUNT", default_value_t = NodeSettings::from_env().manager.max_loaded)]
    max_loaded_models: usize,
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

/// Loads the models and serves until SIGINT or SIGTERM.
pub fn run(args: ServeArgs) -> anyhow::Result<()> {
    if args.api_key.as_deref().is_some_and(|k| k.trim().is_empty()) {
        bail!(
            "the API key is blank: clients could never present it. Pass a real key with \
             --api-key KEY (or PERCH_API_KEY), or none at all on loopback."
        );
    }
    if !args.host.is_loopback() && args.api_key.is_none() {
        bail!(
            "refusing to listen on {} without an API key: anyone who can reach this address could use \
             the models. Pass --api-key KEY (or set PERCH_API_KEY), or listen on 127.0.0.1.",
            args.host
        );
    }
    let limits = Limits {
        max_queue: count("max-queue", args.max_queue)?,
        max_body_bytes: args.max_body_bytes,
        max_prompt_tokens: count("max-prompt-tokens", args.max_prompt_tokens)?,
        max_output_tokens: args
            .max_output_tokens
            .map(|n| count("max-output-tokens", n))
            .transpose()?,
        max_connections: connection_cap(count("max-connections", args.max_connections)?),
        header_timeout: seconds("header-timeout", args.header_timeout, false)?,
        body_timeout: seconds("body-timeout", args.body_timeout, false)?,
        write_timeout: seconds("write-timeout", args.write_timeout, false)?,
    };
    let grace = seconds("shutdown-grace", args.shutdown_grace, true)?;
    let access = AccessPolicy::for_address(args.host)
        .allow_hosts(&args.allow_hosts)
        .allow_origins(&args.allow_origins);
    let cache_bytes = args
        .buffer_cache_mb
        .checked_mul(1 << 20)
        .context("--buffer-cache-mb is too large")?;
    let mut settings = NodeSettings::from_env();
    settings.buffer_cache = cache_bytes as u64;
    if !(256..=10_000_000).contains(&args.context_length) {
        bail!(
            "--context-length must be between 256 and 10000000 tokens, got {}",
            args.context_length
        );
    }
    settings.context_length = args.context_length;
    settings.manager.keep_alive =
        KeepAlive::parse(&args.keep_alive).map_err(|e| anyhow::anyhow!("--keep-alive: {e}"))?;
    settings.manager.max_loaded = count("max-loaded-models", args.max_loaded_models)?;
    if let Some(gb) = args.os_reserve_gb {
        if !(0.0..=1e6).contains(&gb) {
            bail!("--os-reserve-gb must be a number of gigabytes from 0, got {gb}");
        }
        settings.os_reserve = (gb * (1u64 << 30) as f64) as u64;
    }
    let names = if args.models.is_empty() {
        vec![DEFAULT_MODEL.to_owned()]
    } else {
        args.models.clone()
    };

    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(async move {
        let node = Node::start(settings);
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
                "perch: {} ready in {:.1} s ({:.0} MB of weights, context {})",
                loaded.name,
                info.load_time.as_secs_f64(),
                info.weights_bytes as f64 / 1e6,
                loaded.context_length()
            );
            served.push(loaded.name.clone());
        }
        let home = node.settings.home.clone();
        let state = AppState::new(node, args.api_key.clone(), limits).with_access(access);
        let listener = tokio::net::TcpListener::bind((args.host, args.port))
            .await
            .with_context(|| format!("listening on {}:{}", args.host, args.port))?;
        let address = listener.local_addr()?;
        println!(
            "perch: serving {} on http://{address}/v1",
            served.join(", ")
        );
        // The model commands find this node through the record.
        let _recorded = node_address::record(&home, &format!("http://{address}"))
            .map_err(|e| tracing::warn!("could not record the address in {}: {e}", home.display()))
            .ok();
        let signals = Signals::listen().context("listening for signals")?;
        perch_server::serve(listener, state, shutdown_signal(signals, grace), grace).await?;
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

/// Raises the soft open-file limit to the hard one and caps `wanted` connections below
/// it, keeping room for model files, logs and the listener.
fn connection_cap(wanted: usize) -> usize {
    const RESERVED: u64 = 64;
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(files) => {
            let cap = usize::try_from(files.saturating_sub(RESERVED)).unwrap_or(usize::MAX);
            if wanted > cap {
                tracing::warn!(
                    files,
                    max_connections = cap,
                    "the open-file limit allows fewer connections than asked for"
                );
            }
            wanted.min(cap).max(1)
        }
        Err(e) => {
            tracing::warn!("could not raise the open-file limit: {e}");
            wanted
        }
    }
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
        quit_now(128 + number);
    });
}

/// Ends the process with `status` at once. `std::process::exit` would first run the C
/// and C++ exit handlers, and MLX's static destructors can wait there for a computation in
/// flight (a long prefill chunk) — seconds on a busy machine, which is not "at once".
fn quit_now(status: i32) -> ! {
    #[cfg(unix)]
    // SAFETY: `_exit` takes a plain integer and never returns; skipping exit handlers
    // is the point (output was written with unbuffered or line-flushed writes).
    unsafe {
        libc::_exit(status)
    }
    #[cfg(not(unix))]
    std::process::exit(status)
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
