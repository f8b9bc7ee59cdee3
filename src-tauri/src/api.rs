//! The app's client of the node's HTTP API (the same endpoints the web UI uses), run on
//! the node's runtime so the tray's menu handlers never wait on the UI thread. It asks
//! the listeners for the address each time, so it follows the server when it moves.

use std::future::Future;
use std::time::Duration;

use perch_server::Listeners;
use serde_json::Value;

/// A client of the hosted node.
#[derive(Clone)]
pub struct Api {
    listeners: Listeners,
    http: reqwest::Client,
    runtime: tokio::runtime::Handle,
}

/// What an API call answered when it failed: the server's message.
#[derive(Debug)]
pub struct ApiFailure {
    pub status: u16,
    pub message: String,
}

impl Api {
    /// A client of the node listening on `listeners`, running its requests on `runtime`.
    pub fn new(listeners: Listeners, runtime: tokio::runtime::Handle) -> Api {
        let http = reqwest::Client::builder()
            .no_proxy()
            .timeout(Duration::from_secs(30))
            .build()
            .expect("an HTTP client builds");
        Api {
            listeners,
            http,
            runtime,
        }
    }

    /// The node's base URL now.
    pub fn base(&self) -> String {
        self.listeners.local_url()
    }

    /// Runs `work` on the node's runtime, in the background.
    pub fn spawn(&self, work: impl Future<Output = ()> + Send + 'static) {
        self.runtime.spawn(work);
    }

    /// `GET path`, as JSON.
    pub async fn get(&self, path: &str) -> Result<Value, ApiFailure> {
        answer(self.http.get(format!("{}{path}", self.base())).send().await).await
    }

    /// `METHOD path` with a JSON body, as JSON (`null` for an empty answer).
    pub async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Value,
    ) -> Result<Value, ApiFailure> {
        let request = self
            .http
            .request(method, format!("{}{path}", self.base()))
            .json(&body);
        answer(request.send().await).await
    }
}

async fn answer(sent: reqwest::Result<reqwest::Response>) -> Result<Value, ApiFailure> {
    let response = sent.map_err(|e| ApiFailure {
        status: 0,
        message: format!("Perch is not answering: {e}"),
    })?;
    let status = response.status().as_u16();
    let text = response.text().await.unwrap_or_default();
    let body: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
    if (200..300).contains(&status) {
        return Ok(body);
    }
    let message = body["error"]["message"]
        .as_str()
        .or(body["error"].as_str())
        .map(str::to_owned)
        .unwrap_or(text);
    Err(ApiFailure { status, message })
}
