//! Who may use the node and who may change it, through the real server on loopback:
//! requests a proxy passed on (forwarding headers) count as from another machine and
//! need an API key; keys made here work at once and stop working when revoked; changing
//! the node (keys, settings, the hub token) is refused to other machines whatever key
//! they carry, and to other web pages even when their origin is allowed; `*` in the
//! allowed hosts does not open loopback to DNS rebinding.

mod common;

use common::{serve, start_node, test_home};
use perch_runtime::NodeSettings;
use perch_server::{AccessPolicy, AppState, Limits};
use serde_json::{json, Value};

/// A server over a node with no keys yet, answering to any host name off loopback and
/// to pages from `http://localhost:3000`.
async fn start() -> String {
    let node = start_node(NodeSettings {
        home: test_home(),
        hf_cache: None,
        ..NodeSettings::from_env()
    });
    let policy = AccessPolicy::for_addresses(&["127.0.0.1".parse().unwrap()])
        .allow_hosts(["*"])
        .allow_origins(["http://localhost:3000"]);
    let state = AppState::new(node, None, Limits::default()).with_access(policy);
    format!("http://{}", serve(state).await)
}

/// A request as a reverse proxy on this machine passes it on from another one.
fn proxied(request: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
    request.header("x-forwarded-for", "192.0.2.7")
}

async fn answer(request: reqwest::RequestBuilder) -> (u16, Value) {
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let text = response.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread")]
async fn keys_let_other_machines_use_the_node_but_only_this_machine_changes_it() {
    let root = start().await;
    let http = reqwest::Client::new();
    let models = format!("{root}/v1/models");

    // Before any key exists, other machines are told how to get one.
    let (status, body) = answer(proxied(http.get(&models))).await;
    assert_eq!(status, 401);
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("no API key yet"),
        "{body}"
    );
    assert_eq!(
        answer(http.get(&models)).await.0,
        200,
        "this machine needs none"
    );

    // This machine makes a key; other machines use it.
    let (status, made) = answer(
        http.post(format!("{root}/api/perch/keys"))
            .json(&json!({"name": "laptop"})),
    )
    .await;
    assert_eq!(status, 200, "{made}");
    let key = made["key"].as_str().unwrap().to_owned();
    let id = made["id"].as_str().unwrap().to_owned();
    assert_eq!(
        answer(proxied(http.get(&models)).bearer_auth(&key)).await.0,
        200
    );
    assert_eq!(answer(proxied(http.get(&models))).await.0, 401);
    // The key with its last character changed (a key that ends in 0 gets a 1).
    let last = if key.ends_with('0') { '1' } else { '0' };
    let guess = format!("{}{last}", &key[..key.len() - 1]);
    assert_eq!(
        answer(proxied(http.get(&models)).bearer_auth(guess))
            .await
            .0,
        401
    );
    assert_eq!(
        answer(proxied(http.get(format!("{root}/health")))).await.0,
        200
    );

    // A key does not let another machine change the node.
    for request in [
        http.post(format!("{root}/api/perch/keys"))
            .json(&json!({"name": "mine"})),
        http.put(format!("{root}/api/perch/settings"))
            .json(&json!({"listen": "network"})),
        http.put(format!("{root}/api/perch/hub-token"))
            .json(&json!({"token": "hf_x"})),
        http.delete(format!("{root}/api/perch/keys/{id}")),
    ] {
        let (status, body) = answer(proxied(request).bearer_auth(&key)).await;
        assert_eq!(status, 403, "{body}");
        assert_eq!(body["error"]["type"], "permission_error", "{body}");
    }
    let (status, settings) =
        answer(proxied(http.get(format!("{root}/api/perch/settings"))).bearer_auth(&key)).await;
    assert_eq!(
        (status, &settings["listen"]),
        (200, &json!("loopback")),
        "reading is allowed"
    );

    // Nor does an allowed web origin, or any other page.
    for origin in ["http://localhost:3000", "http://attacker.example"] {
        let (status, body) = answer(
            http.post(format!("{root}/api/perch/keys"))
                .header("origin", origin)
                .json(&json!({"name": "page"})),
        )
        .await;
        assert_eq!(status, 403, "{origin}: {body}");
        let (status, _) = answer(
            http.delete(format!("{root}/api/perch/hub-token"))
                .header("origin", origin),
        )
        .await;
        assert_eq!(status, 403, "{origin}");
    }
    let listed = answer(http.get(format!("{root}/api/perch/keys"))).await.1;
    assert_eq!(listed["keys"].as_array().unwrap().len(), 1, "{listed}");

    // `*` in the allowed hosts never covers loopback, where rebound pages land.
    let (status, _) = answer(http.get(&models).header("host", "attacker.example")).await;
    assert_eq!(status, 403);

    // A revoked key stops working at once.
    let (status, _) = answer(http.delete(format!("{root}/api/perch/keys/{id}"))).await;
    assert_eq!(status, 204);
    assert_eq!(
        answer(proxied(http.get(&models)).bearer_auth(&key)).await.0,
        401
    );
    let (status, _) = answer(http.delete(format!("{root}/api/perch/keys/{id}"))).await;
    assert_eq!(status, 404);
}
