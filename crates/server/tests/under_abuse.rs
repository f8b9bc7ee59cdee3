//! The server under abuse, on a real engine (SmolLM2) and a loopback port: clients that go
//! away while their prompt is queued or being read, connections that trickle their
//! headers or body, more connections than allowed, web pages that try to drive the API,
//! and requests that do not fit the context. Each case is long enough that only the
//! behaviour under test can end it: an 8,000-token prompt takes minutes on this CPU.

mod common;

use std::time::Duration;

use common::{
    abandon, long_completion, once_admitted, serve, short_completion, start_with, status_of,
};
use perch_server::{AccessPolicy, AppState, Limits};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

#[tokio::test(flavor = "multi_thread")]
async fn a_prompt_abandoned_during_prefill_stops_and_frees_its_slot() {
    for stream in [false, true] {
        let limits = Limits {
            max_queue: 1,
            ..Limits::default()
        };
        let base = start_with(None, limits).await;
        let url = format!("{base}/v1/completions");
        abandon(
            &url,
            &long_completion(8_000, stream),
            Duration::from_secs(2),
        )
        .await;
        // With one slot, lasting 503s mean the abandoned request still holds it; a
        // timeout means the model is still reading the abandoned prompt.
        assert_eq!(
            status_of(&url, &short_completion()).await,
            200,
            "stream: {stream}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_request_abandoned_while_queued_frees_its_slot_at_once() {
    let limits = Limits {
        max_queue: 2,
        ..Limits::default()
    };
    let base = start_with(None, limits).await;
    let url = format!("{base}/v1/completions");
    // The first long prompt keeps the model busy while the test runs.
    let busy_url = url.clone();
    let busy = tokio::spawn(async move {
        abandon(
            &busy_url,
            &long_completion(8_000, false),
            Duration::from_secs(8),
        )
        .await
    });
    tokio::time::sleep(Duration::from_millis(500)).await;
    abandon(&url, &long_completion(8_000, false), Duration::from_secs(1)).await;
    // The queued request left: its slot is free while the first still runs.
    let impatient = reqwest::Client::builder()
        .timeout(Duration::from_millis(500))
        .build()
        .unwrap();
    let third = once_admitted(&impatient, &url, &short_completion()).await;
    assert!(
        match &third {
            Ok(answer) => answer.status() == 200,
            Err(e) => e.is_timeout(),
        },
        "admitted beside the busy request (answered, or still running), not refused: \
         {third:?}"
    );
    busy.await.unwrap();
    assert_eq!(status_of(&url, &short_completion()).await, 200);
}

/// Connects to the server behind `base`.
async fn connect(base: &str) -> TcpStream {
    TcpStream::connect(base.trim_start_matches("http://"))
        .await
        .unwrap()
}

/// Reads until the server closes the connection (or `limit` passes); returns what came.
async fn read_to_close(socket: &mut TcpStream, limit: Duration) -> Option<String> {
    let mut out = Vec::new();
    match tokio::time::timeout(limit, socket.read_to_end(&mut out)).await {
        Ok(_) => Some(String::from_utf8_lossy(&out).into_owned()),
        Err(_) => None,
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn headers_sent_a_line_at_a_time_are_cut_off() {
    let limits = Limits {
        header_timeout: Duration::from_secs(1),
        ..Limits::default()
    };
    let base = start_with(None, limits).await;
    let mut socket = connect(&base).await;
    socket.write_all(b"GET /health HTTP/1.1\r\n").await.unwrap();
    let mut sent = 0;
    for i in 0..60 {
        tokio::time::sleep(Duration::from_millis(250)).await;
        let line = format!("x-slow-{i}: still here\r\n");
        if socket.write_all(line.as_bytes()).await.is_err() {
            break;
        }
        sent += 1;
        let mut byte = [0u8; 1];
        let peek = tokio::time::timeout(Duration::from_millis(1), socket.read(&mut byte));
        if let Ok(Ok(0) | Err(_)) = peek.await {
            break;
        }
    }
    assert!(
        sent < 60,
        "the server kept a trickling connection open for 15 s"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_idle_keep_alive_connection_is_closed() {
    let limits = Limits {
        header_timeout: Duration::from_secs(1),
        ..Limits::default()
    };
    let base = start_with(None, limits).await;
    let mut socket = connect(&base).await;
    socket
        .write_all(b"GET /health HTTP/1.1\r\nhost: localhost\r\n\r\n")
        .await
        .unwrap();
    // Five times the limit, and far below hyper's own default of 30 s.
    let seen = read_to_close(&mut socket, Duration::from_secs(5))
        .await
        .expect("the idle connection was closed");
    assert!(seen.starts_with("HTTP/1.1 200"), "{seen}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_body_that_never_arrives_gets_408_and_a_huge_one_413() {
    let limits = Limits {
        body_timeout: Duration::from_secs(1),
        ..Limits::default()
    };
    let base = start_with(None, limits).await;
    let mut socket = connect(&base).await;
    socket
        .write_all(
            b"POST /v1/completions HTTP/1.1\r\nhost: localhost\r\ncontent-type: application/json\r\n\
              content-length: 1000\r\n\r\n{\"model\":",
        )
        .await
        .unwrap();
    let seen = read_to_close(&mut socket, Duration::from_secs(30))
        .await
        .expect("the server answered and closed the connection");
    assert!(seen.starts_with("HTTP/1.1 408"), "{seen}");
    assert!(seen.contains("did not arrive within 1 s"), "{seen}");

    let mut socket = connect(&base).await;
    socket
        .write_all(
            b"POST /v1/completions HTTP/1.1\r\nhost: localhost\r\ncontent-type: application/json\r\n\
              content-length: 50000000\r\n\r\n{\"model\":",
        )
        .await
        .unwrap();
    let mut head = [0u8; 12];
    tokio::time::timeout(Duration::from_millis(900), socket.read_exact(&mut head))
        .await
        .expect("refused before the body deadline")
        .unwrap();
    assert_eq!(&head, b"HTTP/1.1 413");
}

#[tokio::test(flavor = "multi_thread")]
async fn connections_past_the_cap_get_one_503_and_are_closed() {
    let limits = Limits {
        max_connections: 4,
        ..Limits::default()
    };
    let base = start_with(None, limits).await;
    let mut open = Vec::new();
    for _ in 0..4 {
        open.push(connect(&base).await);
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut extra = connect(&base).await;
    // A real client sends its request at once; it must still read the answer, not a reset.
    extra
        .write_all(b"GET /health HTTP/1.1\r\nhost: localhost\r\n\r\n")
        .await
        .unwrap();
    let seen = read_to_close(&mut extra, Duration::from_secs(10))
        .await
        .expect("the extra connection was answered and closed");
    assert!(seen.starts_with("HTTP/1.1 503"), "{seen}");
    assert!(seen.contains("4 connections open"), "{seen}");

    drop(open.pop());
    let mut status = 0;
    for _ in 0..50 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        if let Ok(r) = reqwest::get(format!("{base}/health")).await {
            status = r.status().as_u16();
            if status == 200 {
                break;
            }
        }
    }
    assert_eq!(status, 200, "a closed connection frees its place");
}

async fn error_of(response: reqwest::Response) -> (u16, Value) {
    let status = response.status().as_u16();
    let body: Value = response.json().await.unwrap();
    (status, body["error"].clone())
}

#[tokio::test(flavor = "multi_thread")]
async fn web_pages_cannot_drive_the_api_without_being_allowed() {
    let policy = AccessPolicy::for_addresses(&["127.0.0.1".parse().unwrap()])
        .allow_origins(["http://localhost:3000"]);
    let state = AppState::new(common::node().await, None, Limits::default()).with_access(policy);
    let address = serve(state).await;
    let url = format!("http://{address}/v1/completions");
    let http = reqwest::Client::new();
    let body = short_completion().to_string();

    // DNS rebinding: the attacker's name resolves to 127.0.0.1.
    let rebound = http
        .post(&url)
        .header("host", "attacker.example")
        .header("content-type", "application/json")
        .body(body.clone())
        .send()
        .await
        .unwrap();
    let (status, error) = error_of(rebound).await;
    assert_eq!(status, 403);
    assert!(error["message"]
        .as_str()
        .unwrap()
        .contains("attacker.example"));

    // "Simple" requests a page may send without a preflight.
    for content_type in [
        Some("text/plain"),
        Some("application/x-www-form-urlencoded"),
        None,
    ] {
        let mut request = http.post(&url).body(body.clone());
        if let Some(t) = content_type {
            request = request.header("content-type", t);
        }
        let (status, error) = error_of(request.send().await.unwrap()).await;
        assert_eq!(status, 415, "{content_type:?}");
        assert!(error["message"]
            .as_str()
            .unwrap()
            .contains("application/json"));
    }

    let from = |origin: &'static str| {
        http.post(&url)
            .header("origin", origin)
            .header("content-type", "application/json; charset=utf-8")
            .body(body.clone())
    };
    let (status, _) = error_of(from("https://evil.example").send().await.unwrap()).await;
    assert_eq!(status, 403);
    let (status, _) = error_of(from("null").send().await.unwrap()).await;
    assert_eq!(status, 403);
    let allowed = from("http://localhost:3000").send().await.unwrap();
    assert_eq!(allowed.status(), 200);
    assert_eq!(
        allowed.headers()["access-control-allow-origin"],
        "http://localhost:3000"
    );
    let same = http
        .post(&url)
        .header("origin", format!("http://{address}"))
        .json(&short_completion())
        .send()
        .await
        .unwrap();
    assert_eq!(same.status(), 200);

    let preflight = |origin: &'static str| {
        http.request(reqwest::Method::OPTIONS, &url)
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .header(
                "access-control-request-headers",
                "authorization,content-type",
            )
    };
    let ok = preflight("http://localhost:3000").send().await.unwrap();
    assert_eq!(ok.status(), 204);
    assert_eq!(
        ok.headers()["access-control-allow-headers"],
        "authorization,content-type"
    );
    assert!(ok.headers()["access-control-allow-methods"]
        .to_str()
        .unwrap()
        .contains("POST"));
    let refused = preflight("https://evil.example").send().await.unwrap();
    assert_eq!(refused.status(), 403);
    assert!(!refused
        .headers()
        .contains_key("access-control-allow-origin"));
}

#[tokio::test(flavor = "multi_thread")]
async fn the_auth_scheme_is_case_insensitive() {
    let base = start_with(Some("k3y"), Limits::default()).await;
    for scheme in ["Bearer", "bearer", "BEARER"] {
        let status = reqwest::Client::new()
            .get(format!("{base}/v1/models"))
            .header("authorization", format!("{scheme} k3y"))
            .send()
            .await
            .unwrap()
            .status();
        assert_eq!(status, 200, "{scheme}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_prompt_plus_max_tokens_beyond_the_context_is_refused_with_both_numbers() {
    let base = start_with(None, Limits::default()).await;
    let mut body = long_completion(8_000, false);
    body["max_tokens"] = json!(500);
    let response = reqwest::Client::new()
        .post(format!("{base}/v1/completions"))
        .json(&body)
        .send()
        .await
        .unwrap();
    let (status, error) = error_of(response).await;
    assert_eq!(status, 400);
    assert_eq!(error["code"], "context_length_exceeded");
    assert_eq!(error["param"], "max_tokens");
    let message = error["message"].as_str().unwrap();
    for number in ["8000", "500", "8192", "8500"] {
        assert!(message.contains(number), "{message}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn an_embedding_abandoned_midway_stops_and_frees_its_slot() {
    let limits = Limits {
        max_queue: 1,
        ..Limits::default()
    };
    let base = start_with(None, limits).await;
    let url = format!("{base}/v1/embeddings");
    // Sixteen 500-token inputs: several minutes of work on this CPU.
    let inputs: Vec<Vec<u32>> = (0..16)
        .map(|n| (0..500).map(|i| 100 + (n * 500 + i) % 20_000).collect())
        .collect();
    abandon(
        &url,
        &json!({"model": common::MODEL, "input": inputs}),
        Duration::from_secs(2),
    )
    .await;
    let short = json!({"model": common::MODEL, "input": "The capital of France"});
    assert_eq!(status_of(&url, &short).await, 200);
}

#[tokio::test(flavor = "multi_thread")]
async fn embedding_inputs_past_the_prompt_limit_are_refused_or_cut_as_asked() {
    let limits = Limits {
        max_prompt_tokens: 8,
        ..Limits::default()
    };
    let base = start_with(None, limits).await;
    let client = reqwest::Client::new();
    let post = |path: &str, body: Value| client.post(format!("{base}{path}")).json(&body).send();
    let ids: Vec<u32> = (0..12).map(|i| 300 + i).collect();

    let (status, error) = error_of(
        post(
            "/v1/embeddings",
            json!({"model": common::MODEL, "input": [ids.clone()]}),
        )
        .await
        .unwrap(),
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(error["code"], "context_length_exceeded");
    let message = error["message"].as_str().unwrap();
    assert!(
        message.contains("12 tokens") && message.contains('8'),
        "{message}"
    );

    // Ollama's /api/embed cuts inputs to the limit unless told not to.
    let text = "one two three four five six seven eight nine ten eleven twelve";
    let refused = post(
        "/api/embed",
        json!({"model": common::MODEL, "input": text, "truncate": false}),
    )
    .await
    .unwrap();
    assert_eq!(refused.status(), 400);
    let cut: Value = post("/api/embed", json!({"model": common::MODEL, "input": text}))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(cut["prompt_eval_count"], 8);
    // The same vector as the input's first eight tokens, sent as ids.
    let engine = perch_engine::MlxEngine::load(&perch_test_support::test_model()).unwrap();
    let first_eight = &perch_engine::Engine::tokenize(&engine, text, true).unwrap()[..8];
    let whole: Value = post(
        "/v1/embeddings",
        json!({"model": common::MODEL, "input": [first_eight], "encoding_format": "float"}),
    )
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    let vector = |v: &Value| -> Vec<f64> { serde_json::from_value(v.clone()).unwrap() };
    let (cut, whole) = (
        vector(&cut["embeddings"][0]),
        vector(&whole["data"][0]["embedding"]),
    );
    assert_eq!(cut.len(), whole.len());
    let worst = cut
        .iter()
        .zip(&whole)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f64::max);
    assert!(
        worst < 1e-6,
        "the cut input differs from its first 8 tokens by {worst}"
    );
}
