//! The routers over a real engine (SmolLM2) on a loopback port, driven with reqwest:
//! authentication, error shapes and statuses, queue limits, and SSE framing.

mod common;

use std::time::Duration;

use common::{start_with, MODEL};
use perch_server::Limits;
use serde_json::{json, Value};

fn chat(max_tokens: u32, stream: bool) -> Value {
    json!({"model": MODEL, "max_tokens": max_tokens, "temperature": 0, "stream": stream,
           "messages": [{"role": "user", "content": "What is the capital of France?"}]})
}

async fn error_of(response: reqwest::Response) -> (u16, Value) {
    let status = response.status().as_u16();
    let body: Value = response.json().await.unwrap();
    (status, body["error"].clone())
}

#[tokio::test(flavor = "multi_thread")]
async fn health_is_open_and_the_api_needs_the_key() {
    let base = start_with(Some("k3y"), Limits::default()).await;
    let http = reqwest::Client::new();
    assert_eq!(
        http.get(format!("{base}/health"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    let (status, error) =
        error_of(http.get(format!("{base}/v1/models")).send().await.unwrap()).await;
    assert_eq!(status, 401);
    assert_eq!(error["code"], "invalid_api_key");
    let wrong = http
        .get(format!("{base}/v1/models"))
        .bearer_auth("nope")
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 401);
    let ok = http
        .get(format!("{base}/v1/models"))
        .bearer_auth("k3y")
        .send()
        .await
        .unwrap();
    let list: Value = ok.json().await.unwrap();
    assert_eq!(list["data"][0]["id"], MODEL);
}

#[tokio::test(flavor = "multi_thread")]
async fn errors_have_openai_shape_and_honest_statuses() {
    let limits = Limits {
        max_body_bytes: 1024,
        ..Limits::default()
    };
    let base = start_with(None, limits).await;
    let http = reqwest::Client::new();
    let url = format!("{base}/v1/chat/completions");

    let (status, error) = error_of(
        http.post(&url)
            .header("content-type", "application/json")
            .body("{oops")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        (status, error["type"].as_str()),
        (400, Some("invalid_request_error"))
    );
    assert!(error["message"].as_str().unwrap().contains("JSON"));

    let mut body = chat(4, false);
    body["model"] = "other".into();
    let (status, error) = error_of(http.post(&url).json(&body).send().await.unwrap()).await;
    assert_eq!((status, error["param"].as_str()), (404, Some("model")));

    let mut body = chat(4, false);
    body["top_p"] = json!(1.5);
    let (status, error) = error_of(http.post(&url).json(&body).send().await.unwrap()).await;
    assert_eq!((status, error["param"].as_str()), (400, Some("top_p")));

    let mut body = chat(4, false);
    body["messages"][0]["content"] = json!([{"type": "image_url", "image_url": {"url": "x"}}]);
    let (status, error) = error_of(http.post(&url).json(&body).send().await.unwrap()).await;
    assert_eq!(
        (status, error["param"].as_str()),
        (400, Some("messages[0].content[0]"))
    );

    let (status, error) = error_of(http.get(&url).send().await.unwrap()).await;
    assert_eq!(
        (status, error["type"].as_str()),
        (405, Some("invalid_request_error"))
    );
    let (status, _) = error_of(http.get(format!("{base}/v1/nothing")).send().await.unwrap()).await;
    assert_eq!(status, 404);

    let big = json!({"model": MODEL, "messages": [{"role": "user", "content": "x".repeat(4096)}]});
    let (status, _) = error_of(http.post(&url).json(&big).send().await.unwrap()).await;
    assert_eq!(status, 413);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_full_queue_answers_503_with_retry_after() {
    let base = start_with(
        None,
        Limits {
            max_queue: 1,
            ..Limits::default()
        },
    )
    .await;
    let http = reqwest::Client::new();
    let url = format!("{base}/v1/chat/completions");
    let mut long = http.post(&url).json(&chat(300, true)).send().await.unwrap();
    assert_eq!(long.status(), 200);
    let first = long.chunk().await.unwrap().unwrap();
    assert!(first.starts_with(b"data: "));
    let busy = http.post(&url).json(&chat(4, false)).send().await.unwrap();
    assert_eq!(busy.status(), 503);
    assert_eq!(busy.headers()["retry-after"], "1");
    drop(long);
    // The slot frees once the abandoned stream is cancelled (within a decode step).
    let mut status = 503;
    for _ in 0..100 {
        status = http
            .post(&url)
            .json(&chat(4, false))
            .send()
            .await
            .unwrap()
            .status()
            .as_u16();
        if status == 200 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(status, 200);
}

#[tokio::test(flavor = "multi_thread")]
async fn completions_stream_as_server_sent_events_ending_in_done() {
    let base = start_with(None, Limits::default()).await;
    let body = json!({"model": MODEL, "prompt": [504, 3575, 282, 4649, 314], "max_tokens": 3,
                      "temperature": 0, "stream": true});
    let text = reqwest::Client::new()
        .post(format!("{base}/v1/completions"))
        .json(&body)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let events: Vec<&str> = text.split("\n\n").filter(|e| !e.is_empty()).collect();
    assert_eq!(events.last(), Some(&"data: [DONE]"));
    let chunks: Vec<Value> = events[..events.len() - 1]
        .iter()
        .map(|e| serde_json::from_str(e.strip_prefix("data: ").unwrap()).unwrap())
        .collect();
    assert!(chunks.iter().all(|c| c["object"] == "text_completion"));
    assert_eq!(
        chunks.last().unwrap()["choices"][0]["finish_reason"],
        "length"
    );
    let joined: String = chunks
        .iter()
        .map(|c| c["choices"][0]["text"].as_str().unwrap())
        .collect();
    assert_eq!(joined, " Paris.\n");
}
