//! Models through the HTTP API on a real node: a model that cannot fit is refused with
//! 507 and the planner's shortfall, whichever API family asks; the memory gauge reports
//! the loaded model's weights, now and once a second as server-sent events; models load
//! on first use and unload on request.

mod common;

use std::time::Duration;

use common::{serve, start_node, test_home, MODEL};
use futures_util::StreamExt;
use perch_runtime::NodeSettings;
use perch_server::{AppState, Limits};
use serde_json::{json, Value};

/// A server over a node that loads nothing up front; `os_reserve` bytes are kept back.
async fn start(os_reserve: u64) -> String {
    let node = start_node(NodeSettings {
        home: test_home(),
        hf_cache: None,
        os_reserve,
        ..NodeSettings::from_env()
    });
    let state = AppState::new(node, None, Limits::default());
    format!("http://{}", serve(state).await)
}

async fn get(url: String) -> Value {
    reqwest::get(url).await.unwrap().json().await.unwrap()
}

async fn post(url: String, body: Value) -> Value {
    reqwest::Client::new()
        .post(url)
        .json(&body)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_model_that_cannot_fit_is_refused_with_507_and_the_shortfall() {
    let base = start(u64::MAX / 2).await;
    let http = reqwest::Client::new();
    let chat = json!({"model": MODEL, "messages": [{"role": "user", "content": "hi"}]});

    let openai = http
        .post(format!("{base}/v1/chat/completions"))
        .json(&chat)
        .send()
        .await
        .unwrap();
    assert_eq!(openai.status(), 507);
    let body: Value = openai.json().await.unwrap();
    let message = body["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("does not fit") && message.contains("short by"),
        "{message}"
    );
    assert_eq!(body["error"]["code"], "insufficient_memory");

    let ollama = http
        .post(format!("{base}/api/chat"))
        .json(&json!({"model": MODEL, "messages": [{"role": "user", "content": "hi"}], "stream": false}))
        .send()
        .await
        .unwrap();
    assert_eq!(ollama.status(), 507);
    let body: Value = ollama.json().await.unwrap();
    assert!(
        body["error"].as_str().unwrap().contains("short by"),
        "{body}"
    );

    let loaded = get(format!("{base}/api/ps")).await;
    assert_eq!(loaded["models"], json!([]), "nothing was loaded");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_gauge_reports_the_loaded_model_now_and_every_second() {
    let base = start(0).await;
    let http = reqwest::Client::new();
    let loaded = post(format!("{base}/api/perch/load"), json!({"model": MODEL})).await;
    assert_eq!(loaded["name"], MODEL);
    let weights = perch_engine::inspect::inspect(&perch_test_support::test_model())
        .unwrap()
        .weights_bytes;

    // The gauge samples once a second; the load shows in the next reading.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let now = get(format!("{base}/api/perch/memory")).await;
    assert!(now["total"].as_u64().unwrap() > 0);
    assert_eq!(now["models"][0]["name"], MODEL);
    assert_eq!(now["models"][0]["weights"].as_u64().unwrap(), weights);
    assert!(now["used_by_perch"].as_u64().unwrap() >= weights, "{now}");
    assert!(now["headroom"].as_u64().unwrap() < now["budget"].as_u64().unwrap());

    let stream = http
        .get(format!("{base}/api/perch/memory/stream"))
        .send()
        .await
        .unwrap();
    assert_eq!(stream.headers()["content-type"], "text/event-stream");
    let mut body = stream.bytes_stream();
    let mut text = String::new();
    let started = std::time::Instant::now();
    // The latest reading at once, then one a second: four take at least two seconds.
    while text.matches("data:").count() < 4 {
        let chunk = tokio::time::timeout(Duration::from_secs(5), body.next())
            .await
            .expect("a reading within a few seconds")
            .unwrap()
            .unwrap();
        text.push_str(&String::from_utf8_lossy(&chunk));
    }
    assert!(
        started.elapsed() >= Duration::from_millis(1900),
        "one a second, not a burst"
    );
    assert!(text.contains(&format!("\"name\":\"{MODEL}\"")), "{text}");

    let unloaded = post(format!("{base}/api/perch/unload"), json!({"model": MODEL})).await;
    assert_eq!(unloaded["unloaded"], "now");
    let ps = get(format!("{base}/api/ps")).await;
    assert_eq!(ps["models"], json!([]));
}
