//! OpenTelemetry traces of data-api, as a real binary exporting to a real OTLP/HTTP receiver:
//! a write's request span (a child of the caller's `traceparent`) and the group commit's span
//! (records in the batch, fdatasync time) linked to it.

use test_support::otlp::OtlpReceiver;
use test_support::{eventually, ServiceProcess, READY_WAIT};

use crate::common::*;

#[tokio::test]
async fn a_write_produces_its_commit_span_linked_to_the_request() {
    let receiver = OtlpReceiver::start().await;
    let dir = tempfile::tempdir().unwrap();
    let mut command = binary(dir.path(), "traced");
    command.env("OTEL_EXPORTER_OTLP_ENDPOINT", &receiver.endpoint);
    let server = ServiceProcess::start(command);

    let caller_trace = "4bf92f3577b34da6a3ce929d0e0e4736";
    let caller_span = "00f067aa0ba902b7";
    let response = reqwest::Client::new()
        .post(server.url("/logs"))
        .header("traceparent", format!("00-{caller_trace}-{caller_span}-01"))
        .json(&serde_json::json!({ "message": "traced record" }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);

    let spans = eventually("the request and commit spans arrive", READY_WAIT, || {
        let spans = receiver.spans();
        let both = spans.iter().any(|s| s.name == "group commit")
            && spans
                .iter()
                .any(|s| s.attribute("http.route") == Some("/logs"));
        async move { both.then_some(spans) }
    })
    .await;
    let request = spans
        .iter()
        .find(|s| s.attribute("http.route") == Some("/logs"))
        .unwrap();
    assert_eq!(request.service, "data-api");
    assert_eq!(
        request.trace_id, caller_trace,
        "the caller's trace continues"
    );
    assert_eq!(request.parent_span_id, caller_span);
    assert_eq!(request.integer("http.response.status_code"), Some(201));
    assert_eq!(request.name, "POST /logs");

    let commit = spans.iter().find(|s| s.name == "group commit").unwrap();
    assert_eq!(commit.integer("records"), Some(1));
    let fdatasync_ms: f64 = commit
        .attribute("fdatasync_ms")
        .expect("the fdatasync time")
        .parse()
        .unwrap();
    assert!(fdatasync_ms >= 0.0);
    assert!(
        commit
            .links
            .contains(&(request.trace_id.clone(), request.span_id.clone())),
        "the commit links the request it acknowledged: {commit:#?}"
    );
}
