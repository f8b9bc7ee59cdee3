//! `perch serve`: load models and serve the OpenAI-compatible API. Loopback unless told
//! otherwise; any other address needs an API key.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context};
use perch_engine::{Engine, MlxEngine};
use perch_runtime::catalog::DEFAULT_MODEL;
use perch_runtime::ModelStore;
use perch_server::{AppState, Limits, ServedModel};

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
    /// Largest request body in bytes; larger get 413.
    #[arg(long, default_value_t = Limits::default().max_body_bytes)]
    max_body_bytes: usize,
}

/// Loads the models and serves until SIGINT or SIGTERM.
pub fn run(args: ServeArgs) -> anyhow::Result<()> {
    if !args.host.is_loopback() && args.api_key.as_deref().is_none_or(str::is_empty) {
        bail!(
            "refusing to listen on {} without an API key: anyone who can reach this address could use \
             the models. Pass --api-key KEY (or set PERCH_API_KEY), or listen on 127.0.0.1.",
            args.host
        );
    }
    let store = ModelStore::from_env();
    let names = if args.models.is_empty() {
        vec![DEFAULT_MODEL.to_owned()]
    } else {
        args.models.clone()
    };
    let mut models = Vec::new();
    for name in &names {
        let resolved = store
            .resolve(name)
            .with_context(|| format!("resolving {name}"))?;
        eprintln!(
            "perch: loading {} from {} …",
            resolved.name,
            resolved.path.display()
        );
        let engine = MlxEngine::load(&resolved.path)
            .with_context(|| format!("loading {}", resolved.path.display()))?;
        let info = engine.info();
        eprintln!(
            "perch: {} ready in {:.1} s ({:.0} MB of weights, context {})",
            resolved.name,
            info.load_time.as_secs_f64(),
            info.weights_bytes as f64 / 1e6,
            info.config.max_position_embeddings
        );
        let created = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        models.push(ServedModel {
            name: resolved.name,
            engine: Arc::new(engine),
            created,
        });
    }
    let limits = Limits {
        max_queue: args.max_queue,
        max_body_bytes: args.max_body_bytes,
        ..Limits::default()
    };
    let state = AppState::new(models, args.api_key.clone(), limits);

    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind((args.host, args.port))
            .await
            .with_context(|| format!("listening on {}:{}", args.host, args.port))?;
        let address = listener.local_addr()?;
        println!("perch: serving {} on http://{address}/v1", names.join(", "));
        perch_server::serve(listener, state, shutdown_signal()).await?;
        eprintln!("perch: stopped");
        Ok(())
    })
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = terminate => {},
    }
    eprintln!("perch: shutting down: no new requests; finishing the ones in flight");
}
