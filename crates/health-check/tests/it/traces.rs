//! OpenTelemetry traces of a health-check run, the real binary exporting to a real OTLP/HTTP
//! receiver: the run's root span, one child per probe, and the probe's `traceparent` sent to
//! the target (so the target's own span joins the probe's trace).

use std::sync::{Arc, Mutex};

use axum::http::HeaderMap;
use axum::routing::get;
use axum::Router;
use test_support::otlp::OtlpReceiver;
use test_support::{eventually, READY_WAIT};

use crate::common::*;

#[tokio::test]
async fn a_run_is_a_trace_with_one_span_per_probe_sent_to_its_target() {
    let receiver = OtlpReceiver::start().await;
    let seen = Arc::new(Mutex::new(Vec::<String>::new()));
    let record = seen.clone();
    let app = Router::new().route(
        "/healthz",
        get(move |headers: HeaderMap| {
            let record = record.clone();
            async move {
                if let Some(parent) = headers.get("traceparent") {
                    record
                        .lock()
                        .unwrap()
                        .push(parent.to_str().unwrap().to_string());
                }
                "ok"
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    let target = format!("up=http://{addr}/healthz");
    let dir = tempfile::tempdir().unwrap();

    let out = run_bin(
        &["--once", "--target", &target, "--output", "-"],
        &[("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.endpoint.as_str())],
        dir.path(),
    )
    .await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));

    // The run flushed its spans before it exited.
    let spans = eventually("the run's spans arrive", READY_WAIT, || {
        let spans = receiver.spans();
        let both = spans.iter().any(|s| s.name == "health check run")
            && spans.iter().any(|s| s.name == "probe");
        async move { both.then_some(spans) }
    })
    .await;
    let run = spans.iter().find(|s| s.name == "health check run").unwrap();
    assert_eq!(run.service, "health-check");
    assert_eq!(run.parent_span_id, "");
    let probe = spans.iter().find(|s| s.name == "probe").unwrap();
    assert_eq!(probe.trace_id, run.trace_id);
    assert_eq!(probe.parent_span_id, run.span_id);
    assert_eq!(probe.attribute("target"), Some("up"));
    assert_eq!(probe.attribute("ok"), Some("true"));
    assert_eq!(probe.integer("http.response.status_code"), Some(200));
    let sent = seen.lock().unwrap().clone();
    assert_eq!(
        sent,
        vec![format!("00-{}-{}-01", probe.trace_id, probe.span_id)],
        "the target got the probe's trace context"
    );
}
