//! The running node, reached over its HTTP API: `perch serve` records its address in
//! `PERCH_HOME`, and the model commands use it when something answers there (sending
//! `PERCH_API_KEY` if set), so what the terminal does is what the web UI and the menu
//! bar see.

use std::time::Duration;

use anyhow::{bail, Context};
use perch_runtime::node_address;
use serde_json::Value;

/// A node that answered.
pub struct Remote {
    /// Its base URL.
    pub url: String,
    http: reqwest::Client,
    api_key: Option<String>,
}

impl Remote {
    /// The node recorded in `home`, if it answers.
    pub async fn find(home: &std::path::Path) -> Option<Remote> {
        let address = node_address::read(home)?;
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(2))
            .build()
            .ok()?;
        let health = http
            .get(format!("{}/health", address.url))
            .timeout(Duration::from_secs(3))
            .send()
            .await
            .ok()?;
        health.status().is_success().then(|| Remote {
            url: address.url,
            http,
            api_key: std::env::var("PERCH_API_KEY")
                .ok()
                .filter(|k| !k.is_empty()),
        })
    }

    /// A request to `path`.
    pub fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        let request = self.http.request(method, format!("{}{path}", self.url));
        match &self.api_key {
            Some(key) => request.bearer_auth(key),
            None => request,
        }
    }

    /// Sends `request` and returns its JSON body, or the node's error message.
    pub async fn json(&self, request: reqwest::RequestBuilder) -> anyhow::Result<Value> {
        let response = request.send().await.context("the node did not answer")?;
        check(response)
            .await?
            .json()
            .await
            .context("the node's answer is not JSON")
    }
}

/// The response if it succeeded; the node's error message if not.
pub async fn check(response: reqwest::Response) -> anyhow::Result<reqwest::Response> {
    if response.status().is_success() {
        return Ok(response);
    }
    let status = response.status();
    let body: Value = response.json().await.unwrap_or(Value::Null);
    let message = body["error"]["message"]
        .as_str()
        .or_else(|| body["error"].as_str())
        .unwrap_or("no message");
    bail!("{message} ({status})")
}
