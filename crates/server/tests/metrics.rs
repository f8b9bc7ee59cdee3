//! Prometheus metrics of a real server (in a test binary of its own: the recorder is
//! process-wide, so the counts here are this test's alone).

mod common;

use std::time::Duration;

use common::{abandon, long_completion, short_completion, start_with, status_of};
use perch_server::Limits;

#[tokio::test(flavor = "multi_thread")]
async fn metrics_count_answers_tokens_and_abandoned_prompts_behind_the_key() {
    let limits = Limits {
        max_queue: 1,
        ..Limits::default()
    };
    let base = start_with(None, limits).await;
    let url = format!("{base}/v1/completions");
    assert_eq!(status_of(&url, &short_completion()).await, 200);
    abandon(&url, &long_completion(8_000, false), Duration::from_secs(2)).await;
    assert_eq!(status_of(&url, &short_completion()).await, 200);

    let keyed = start_with(Some("k3y"), Limits::default()).await;
    let http = reqwest::Client::new();
    let refused = http.get(format!("{keyed}/metrics")).send().await.unwrap();
    assert_eq!(refused.status(), 401);
    let text = http
        .get(format!("{keyed}/metrics"))
        .bearer_auth("k3y")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for line in [
        "perch_http_requests_total{endpoint=\"/v1/completions\",status=\"200\"} 2",
        "perch_http_requests_total{endpoint=\"/metrics\",status=\"401\"}",
        "perch_requests_cancelled_total{phase=\"prefill\"} 1",
        "perch_completion_tokens_total{model=\"smollm2\"} 4",
        "perch_time_to_first_token_seconds_count{model=\"smollm2\"} 2",
        "perch_model_weights_bytes{model=\"smollm2\"}",
        "perch_requests_admitted 0",
    ] {
        // A line with a value must match whole; one without, up to its value.
        let found = text
            .lines()
            .any(|l| l == line || l.starts_with(&format!("{line} ")));
        assert!(found, "no {line} in:\n{text}");
    }
}
