//! `/download_external_logs` against real, down, hung, rejecting and failing providers.

use std::sync::atomic::Ordering;
use std::time::Duration;

use crate::common::*;
use axum::body::Body;
use axum::http::StatusCode;
use axum::routing::get;
use axum::Router;
use bytes::Bytes;
use futures_util::StreamExt;
use test_support::metric;

#[tokio::test]
async fn streams_the_providers_logs_with_query_passed_through() {
    let (provider, _p) = start_provider(KEY, Duration::ZERO).await;
    let backend = start_backend(config(Some(provider), Some(KEY))).await;
    let response = reqwest::get(format!(
        "{}/download_external_logs?since=2026-03-01T00:00:00Z&limit=250",
        backend.base
    ))
    .await
    .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "application/x-ndjson");
    let text = response.text().await.unwrap();
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 250);
    assert_eq!(lines[0]["ts"], "2026-03-01T00:00:00Z");

    let metrics = reqwest::get(format!("{}/metrics", backend.base))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(
        metric(&metrics, "backend_upstream_requests_total{outcome=\"ok\"}"),
        Some(1.0)
    );
    assert_eq!(
        metric(&metrics, "backend_upstream_bytes_total"),
        Some(text.len() as f64)
    );
}

#[tokio::test]
async fn rejected_key_is_a_502_and_is_not_retried() {
    let (provider, _p) = start_provider("the-providers-real-key", Duration::ZERO).await;
    let backend = start_backend(config(Some(provider), Some(KEY))).await;
    let response = reqwest::get(format!("{}/download_external_logs", backend.base))
        .await
        .unwrap();
    assert_eq!(response.status(), 502);
    let body = json(response).await;
    assert_eq!(body["code"], "provider_rejected_key");
    assert!(!body.to_string().contains(KEY));

    let (provider, attempts) = failing_provider(StatusCode::FORBIDDEN).await;
    let backend = start_backend(config(Some(provider), Some(KEY))).await;
    let response = reqwest::get(format!("{}/download_external_logs", backend.base))
        .await
        .unwrap();
    assert_eq!(response.status(), 502);
    assert_eq!(
        attempts.load(Ordering::SeqCst),
        1,
        "a rejected key is final"
    );
}

#[tokio::test]
async fn provider_down_is_a_502() {
    let backend = start_backend(config(Some(closed_port_url().await), Some(KEY))).await;
    let response = reqwest::get(format!("{}/download_external_logs", backend.base))
        .await
        .unwrap();
    assert_eq!(response.status(), 502);
    assert_eq!(json(response).await["code"], "provider_unavailable");
}

#[tokio::test]
async fn failing_provider_is_retried_then_a_502() {
    let (provider, attempts) = failing_provider(StatusCode::SERVICE_UNAVAILABLE).await;
    let mut config = config(Some(provider), Some(KEY));
    config.retries = 2;
    let backend = start_backend(config).await;
    let response = reqwest::get(format!("{}/download_external_logs", backend.base))
        .await
        .unwrap();
    assert_eq!(response.status(), 502);
    assert_eq!(json(response).await["code"], "provider_unavailable");
    assert_eq!(
        attempts.load(Ordering::SeqCst),
        3,
        "one attempt and two retries"
    );
}

#[tokio::test]
async fn hung_provider_is_a_504_within_one_budget() {
    let mut config = config(Some(hung_provider().await), Some(KEY));
    config.first_byte_budget = Duration::from_millis(300);
    config.connect_timeout = Duration::from_millis(100);
    config.retries = 5;
    let backend = start_backend(config).await;
    let response = reqwest::get(format!("{}/download_external_logs", backend.base))
        .await
        .unwrap();
    assert_eq!(response.status(), 504);
    assert_eq!(json(response).await["code"], "provider_timeout");
}

#[tokio::test]
async fn slow_provider_is_a_504() {
    let (provider, _p) = start_provider(KEY, Duration::from_secs(20)).await;
    let mut config = config(Some(provider), Some(KEY));
    config.first_byte_budget = Duration::from_millis(300);
    config.connect_timeout = Duration::from_millis(100);
    let backend = start_backend(config).await;
    let response = reqwest::get(format!("{}/download_external_logs", backend.base))
        .await
        .unwrap();
    assert_eq!(response.status(), 504);
    let body = json(response).await;
    assert_eq!(body["code"], "provider_timeout");
    assert!(body["error"].as_str().unwrap().contains("0.3 s"), "{body}");
}

#[tokio::test]
async fn unconfigured_integration_is_a_503() {
    let backend = start_backend(config(None, None)).await;
    let response = reqwest::get(format!("{}/download_external_logs", backend.base))
        .await
        .unwrap();
    assert_eq!(response.status(), 503);
    assert_eq!(json(response).await["code"], "integration_not_configured");
}

/// 100 MiB pass through while the provider withholds most of its body until the client has
/// seen the first bytes: a backend that buffered the body would never answer, so this proves
/// streaming without any timing.
#[tokio::test]
async fn a_large_download_streams() {
    const CHUNK: usize = 1 << 20;
    const CHUNKS: usize = 100;
    let (first_bytes_seen, release) = tokio::sync::oneshot::channel::<()>();
    let release = std::sync::Arc::new(tokio::sync::Mutex::new(Some(release)));
    let app = Router::new().route(
        "/v1/logs",
        get(move || {
            let release = release.clone();
            async move {
                let gate = release.lock().await.take().expect("one download");
                let head = futures_util::stream::iter(
                    (0..4).map(|_| Ok::<_, std::io::Error>(Bytes::from(vec![b'a'; CHUNK]))),
                );
                let tail = futures_util::stream::once(async move {
                    let _ = gate.await;
                    futures_util::stream::iter(
                        (4..CHUNKS).map(|_| Ok(Bytes::from(vec![b'b'; CHUNK]))),
                    )
                })
                .flatten();
                Body::from_stream(head.chain(tail))
            }
        }),
    );
    let addr = serve(app).await;
    let backend = start_backend(config(Some(format!("http://{addr}/v1/logs")), Some(KEY))).await;

    let response = reqwest::get(format!("{}/download_external_logs", backend.base))
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let mut body = response.bytes_stream();
    let mut received = 0usize;
    let mut first_bytes_seen = Some(first_bytes_seen);
    while let Some(chunk) = body.next().await {
        received += chunk.unwrap().len();
        if let Some(signal) = first_bytes_seen.take() {
            signal.send(()).unwrap();
        }
    }
    assert_eq!(received, CHUNK * CHUNKS);
}
