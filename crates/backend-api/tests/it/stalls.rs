//! A provider whose body stalls mid-stream (a partition after the first byte): the download ends
//! after EXTERNAL_LOGS_READ_IDLE_TIMEOUT as a truncation the client sees, and the metric counts it.

use std::time::Duration;

use crate::common::*;
use axum::body::Body;
use axum::routing::get;
use axum::Router;
use bytes::Bytes;
use futures_util::StreamExt;
use test_support::metric;

/// Sends one line, then nothing, forever (the connection stays open).
async fn stalling_provider() -> String {
    let app = Router::new().route(
        "/v1/logs",
        get(|| async {
            let first = futures_util::stream::once(async {
                Ok::<_, std::io::Error>(Bytes::from_static(b"{\"seq\":0}\n"))
            });
            Body::from_stream(first.chain(futures_util::stream::pending()))
        }),
    );
    let addr = serve(app).await;
    format!("http://{addr}/v1/logs")
}

#[tokio::test]
async fn a_stalled_stream_ends_as_a_reported_truncation() {
    let mut config = config(Some(stalling_provider().await), Some(KEY));
    config.read_idle_timeout = Duration::from_millis(300);
    let backend = start_backend(config).await;
    let response = reqwest::get(format!("{}/download_external_logs", backend.base))
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let mut body = response.bytes_stream();
    let first = body
        .next()
        .await
        .expect("a first chunk")
        .expect("its bytes");
    assert_eq!(&first[..], b"{\"seq\":0}\n");
    // Bounded: the stall must end the stream long before this (the idle timeout is 0.3 s).
    let end = tokio::time::timeout(Duration::from_secs(20), body.next())
        .await
        .expect("the stream ended within the bound");
    match end {
        Some(Err(_)) => {}
        other => panic!("a truncation (a body error), not a clean end: {other:?}"),
    }

    let metrics = metrics_page(&backend.base).await;
    assert_eq!(
        metric(
            &metrics,
            "backend_upstream_truncated_total{reason=\"idle\"}"
        ),
        Some(1.0),
        "{metrics}"
    );
}
