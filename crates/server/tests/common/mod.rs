//! What the server's integration tests share: the real SmolLM2 engine and a server on a
//! free loopback port.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use perch_engine::{Engine, MlxEngine};
use perch_server::{AppState, Limits, ServedModel};

/// The name the test model is served under.
pub const MODEL: &str = "smollm2";

/// SmolLM2, loaded once and shared by the tests of one file.
pub fn engine() -> Arc<dyn Engine> {
    static ENGINE: OnceLock<Arc<MlxEngine>> = OnceLock::new();
    ENGINE.get_or_init(|| Arc::new(own_engine())).clone()
}

/// SmolLM2 loaded for one test alone, so no other test's request runs ahead of its own.
pub fn own_engine() -> MlxEngine {
    MlxEngine::load(&perch_test_support::test_model()).expect("SmolLM2 loads")
}

/// Serves `state`'s router on a free loopback port for the rest of the test; returns its
/// address.
pub async fn serve(state: AppState) -> std::net::SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(perch_server::serve(
        listener,
        state,
        std::future::pending(),
        Duration::from_secs(1),
    ));
    address
}

/// A server for `engine` with these limits; returns its base URL.
pub async fn start_with(engine: Arc<dyn Engine>, api_key: Option<&str>, limits: Limits) -> String {
    let model = ServedModel {
        name: MODEL.into(),
        engine,
        created: 0,
    };
    let state = AppState::new(vec![model], api_key.map(str::to_owned), limits);
    format!("http://{}", serve(state).await)
}
