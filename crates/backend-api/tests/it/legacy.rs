//! The legacy endpoints, and liveness under load.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use crate::common::*;

#[tokio::test]
async fn api_1_and_health_check_answer_like_the_legacy_service() {
    let backend = start_backend(config(None, None)).await;
    let mut seen = std::collections::HashSet::new();
    for _ in 0..60 {
        let body = reqwest::get(format!("{}/api_1", backend.base))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let word = body.strip_prefix("completed: ").expect("legacy prefix");
        assert!(["Success", "Created", "Failed"].contains(&word), "{body}");
        seen.insert(word.to_string());
    }
    assert!(seen.len() > 1, "outcomes vary: {seen:?}");
    let health = reqwest::get(format!("{}/health_check", backend.base))
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
    assert_eq!(health.text().await.unwrap(), "healthy");
}

/// The legacy server starved its health checks under load. Here, 1,000 `/api_1` requests are
/// held in flight (their simulated work outlasts the test) and `/healthz` must still answer:
/// shown by the order of events, not by timing.
#[tokio::test]
async fn healthz_answers_while_1000_requests_are_in_flight() {
    const LOAD: usize = 1000;
    let mut config = config(None, None);
    config.simulated_latency_ms = 600_000;
    config.server.shutdown_timeout = std::time::Duration::ZERO;
    let backend = start_backend(config).await;
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()
        .unwrap();
    let completed = Arc::new(AtomicUsize::new(0));
    let mut load = Vec::with_capacity(LOAD);
    for _ in 0..LOAD {
        let (client, url, completed) = (
            client.clone(),
            format!("{}/api_1", backend.base),
            completed.clone(),
        );
        load.push(tokio::spawn(async move {
            let _ = client.get(url).send().await;
            completed.fetch_add(1, Ordering::SeqCst);
        }));
    }
    let probe = reqwest::Client::new();
    test_support::wait_for_in_flight(&probe, &backend.base, LOAD).await;
    let health = probe
        .get(format!("{}/healthz", backend.base))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
    assert_eq!(
        completed.load(Ordering::SeqCst),
        0,
        "all 1,000 were still in flight"
    );
    for task in load {
        task.abort();
    }
}
