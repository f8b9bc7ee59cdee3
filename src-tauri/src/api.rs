//! The app's client of the node's HTTP API (the same endpoints the web UI uses), run on
//! the node's runtime so the tray's menu handlers never wait on the UI thread.

use std::future::Future;

use serde_json::Value;

/// A client of the node at one base URL.
#[derive(Clone)]
pub struct Api {
    base: String,
    http: reqwest::Client,
    runtime: tokio::runtime::Handle,
}

/// What an API call answered when it failed: the server's message.
#[derive(Debug)]
pub struct ApiFailure {
    pub status: u16,
    pub message: String,
}

impl std::fmt::Display for ApiFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({})", self.message, self.status)
    }
}

impl Api {
    /// A client of the node at `base`, running its requests on `runtime`.
    pub fn new(base: &str, runtime: tokio::runtime::Handle) -> Api {
        Api {
            base: base.trim_end_matches('/').to_owned(),
            http: reqwest::Client::new(),
            runtime,
        }
    }

    /// The node's base URL.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// Runs `work` on the node's runtime, in the background.
    pub fn spawn(&self, work: impl Future<Output = ()> + Send + 'static) {
        self.runtime.spawn(work);
    }

    /// `GET path`, as JSON.
    pub async fn get(&self, path: &str) -> Result<Value, ApiFailure> {
        answer(self.http.get(format!("{}{path}", self.base)).send().await).await
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
            .request(method, format!("{}{path}", self.base))
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
