//! What the server's integration tests share: a node whose store holds the real SmolLM2
//! test model, a server on a free loopback port, and clients that go away.
#![allow(dead_code)]

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use perch_runtime::secrets::Secrets;
use perch_runtime::settings::LiveSettings;
use perch_runtime::{Node, NodeSettings};
use perch_server::{AppState, Limits};
use serde_json::{json, Value};

/// The name the test model is stored under.
pub const MODEL: &str = "smollm2";

/// A store holding the test model as `smollm2`, made once per test binary; nodes share it
/// and only read it.
pub fn test_home() -> PathBuf {
    static HOME: OnceLock<PathBuf> = OnceLock::new();
    HOME.get_or_init(|| {
        let home = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
            .join(format!("server-home-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&home);
        let store = perch_runtime::ModelStore::new(home.clone(), None);
        store
            .add(&perch_test_support::test_model(), Some(MODEL))
            .expect("the test model enters the store");
        home
    })
    .clone()
}

/// A node of its own over the test store, with the test model loaded, so no other
/// test's request runs ahead of its own. Runs inside the test's Tokio runtime.
pub async fn node() -> Arc<Node> {
    let settings = NodeSettings {
        home: test_home(),
        hf_cache: None,
        ..NodeSettings::from_env()
    };
    let node = start_node(settings);
    node.manager.load(MODEL, None).await.expect("SmolLM2 loads");
    node
}

/// A node with `settings`, default live settings and no API keys, each kept in files of
/// its own beside the test store.
pub fn start_node(settings: NodeSettings) -> Arc<Node> {
    static NODES: AtomicUsize = AtomicUsize::new(0);
    let n = NODES.fetch_add(1, Ordering::Relaxed);
    let files = test_home().join(format!("node-{}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&files);
    let live = LiveSettings::open(&files.join("settings.toml"), |_| {}).unwrap();
    Node::start(settings, live, Secrets::File(files.join("secrets.json"))).unwrap()
}

/// Serves `state`'s router on a free loopback port for the rest of the test; returns its
/// address.
pub async fn serve(state: AppState) -> std::net::SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(perch_server::serve(
        listener.into(),
        state,
        std::future::pending(),
        Duration::from_secs(1),
    ));
    address
}

/// A server over a node of its own with these limits; returns its base URL.
pub async fn start_with(api_key: Option<&str>, limits: Limits) -> String {
    let state = AppState::new(node().await, api_key.map(str::to_owned), limits);
    format!("http://{}", serve(state).await)
}

/// A completion whose prompt is `tokens` token ids long.
pub fn long_completion(tokens: u32, stream: bool) -> Value {
    let prompt: Vec<u32> = (0..tokens).map(|i| 100 + i % 20_000).collect();
    json!({"model": MODEL, "prompt": prompt, "max_tokens": 1, "stream": stream})
}

pub fn short_completion() -> Value {
    json!({"model": MODEL, "prompt": "The capital of France is", "max_tokens": 2,
           "temperature": 0})
}

/// Sends `body` and gives up on it after `wait`, closing the connection: a client that
/// went away.
pub async fn abandon(url: &str, body: &Value, wait: Duration) {
    let client = reqwest::Client::builder().timeout(wait).build().unwrap();
    let outcome = client.post(url).json(body).send().await;
    match outcome {
        Err(e) => assert!(e.is_timeout(), "{e}"),
        // A stream answers its headers at once; dropping it mid-body leaves too.
        Ok(response) => {
            assert_eq!(response.status(), 200);
            tokio::time::sleep(wait).await;
        }
    }
}

/// Posts `body` with `client` until it is admitted: the server needs a moment to notice a
/// client that went away, so 503s are retried for up to 3 s (a request abandoned but
/// still holding its slot would make them go on for minutes).
pub async fn once_admitted(
    client: &reqwest::Client,
    url: &str,
    body: &Value,
) -> reqwest::Result<reqwest::Response> {
    for _ in 0..30 {
        match client.post(url).json(body).send().await {
            Ok(r) if r.status() == 503 => tokio::time::sleep(Duration::from_millis(100)).await,
            other => return other,
        }
    }
    panic!("still 503 three seconds after the other client went away");
}

/// Posts `body` once admitted, with a generous deadline (far shorter than the abandoned
/// work would take), and returns the status.
pub async fn status_of(url: &str, body: &Value) -> u16 {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(120))
        .build()
        .unwrap();
    once_admitted(&client, url, body)
        .await
        .expect("answered long before the abandoned prompt could have finished")
        .status()
        .as_u16()
}
