//! OpenTelemetry traces across two processes: backend-api and a real log-provider, both
//! exporting to a real OTLP/HTTP receiver of the test (protobuf decoded with the
//! opentelemetry-proto types). One download is one trace: the backend's request span, its
//! provider call with one child per attempt (the first refused, so retried), and the provider's
//! own request span under the attempt that reached it. And a collector that is down or hangs
//! changes nothing for clients: every answer as usual, memory bounded, the drops counted.

use std::process::Command;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use futures_util::StreamExt;
use test_support::otlp::{OtlpReceiver, ReceivedSpan};
use test_support::{eventually, ServiceProcess, READY_WAIT};

use crate::common::*;

const BIN: &str = env!("CARGO_BIN_EXE_backend-api");

fn traced(bin: &std::path::Path, collector: &str) -> Command {
    let mut command = Command::new(bin);
    command
        .env_clear()
        .env("OTEL_EXPORTER_OTLP_ENDPOINT", collector)
        .env("SIMULATED_LATENCY_MS", "0");
    command
}

/// In front of the real provider: keeps the `traceparent` each request came with (`-` when
/// none), answers 503 to the first one when asked to (so the backend retries), and passes the
/// others on with their headers (the key, the request id, the trace context).
struct Proxy {
    provider: String,
    refuse_first: bool,
    traceparents: std::sync::Mutex<Vec<String>>,
}

async fn proxy(provider: String, refuse_first: bool) -> (String, Arc<Proxy>) {
    let state = Arc::new(Proxy {
        provider,
        refuse_first,
        traceparents: std::sync::Mutex::new(Vec::new()),
    });
    let app = Router::new()
        .route("/v1/logs", get(forward))
        .with_state(state.clone());
    let addr = serve(app).await;
    (format!("http://{addr}/v1/logs"), state)
}

async fn forward(
    State(proxy): State<Arc<Proxy>>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let first = {
        let mut seen = proxy.traceparents.lock().unwrap();
        seen.push(
            headers
                .get("traceparent")
                .map_or("-".to_string(), |v| v.to_str().unwrap().to_string()),
        );
        seen.len() == 1
    };
    if proxy.refuse_first && first {
        return (StatusCode::SERVICE_UNAVAILABLE, "try again").into_response();
    }
    let mut url = proxy.provider.clone();
    if let Some(query) = query {
        url = format!("{url}?{query}");
    }
    let mut request = reqwest::Client::new().get(url);
    for name in ["authorization", "x-request-id", "traceparent", "tracestate"] {
        if let Some(value) = headers.get(name) {
            request = request.header(name, value.clone());
        }
    }
    let answer = request.send().await.expect("the provider answers");
    let status = answer.status();
    let body = answer.bytes().await.expect("the provider's body");
    (status, Body::from(body)).into_response()
}

fn one<'a>(
    spans: &'a [ReceivedSpan],
    what: &str,
    pick: impl Fn(&ReceivedSpan) -> bool,
) -> &'a ReceivedSpan {
    let found: Vec<&ReceivedSpan> = spans.iter().filter(|s| pick(s)).collect();
    assert_eq!(
        found.len(),
        1,
        "one {what} span expected, got {found:#?}\nall: {spans:#?}"
    );
    found[0]
}

#[tokio::test]
async fn one_download_is_one_trace_across_backend_and_provider() {
    let receiver = OtlpReceiver::start().await;
    let provider_bin = test_support::binary_beside(BIN, "log-provider");
    let mut provider_cmd = traced(&provider_bin, &receiver.endpoint);
    provider_cmd.env("PROVIDER_KEY", KEY);
    let provider = ServiceProcess::start(provider_cmd);
    let (proxy, _) = proxy(provider.url("/v1/logs"), true).await;
    let mut backend_cmd = traced(std::path::Path::new(BIN), &receiver.endpoint);
    backend_cmd
        .env("EXTERNAL_LOGS_URL", &proxy)
        .env("EXTERNAL_INTEGRATION_KEY", KEY);
    let backend = ServiceProcess::start(backend_cmd);

    let response = reqwest::get(backend.url("/download_external_logs?limit=3"))
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let request_id = response.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_string();
    assert_eq!(response.text().await.unwrap().lines().count(), 3);

    // Both processes batch their spans: wait until the provider's request span is in.
    let spans = eventually("the spans of both services arrive", READY_WAIT, || {
        let spans = receiver.spans();
        let provider_done = spans
            .iter()
            .any(|s| s.service == "log-provider" && s.attribute("http.route") == Some("/v1/logs"));
        let backend_done = spans.iter().any(|s| {
            s.service == "backend-api"
                && s.attribute("http.route") == Some("/download_external_logs")
        });
        async move { (provider_done && backend_done).then_some(spans) }
    })
    .await;

    let inbound = one(&spans, "backend request", |s| {
        s.service == "backend-api" && s.attribute("http.route") == Some("/download_external_logs")
    });
    assert_eq!(
        inbound.parent_span_id, "",
        "the client sent no traceparent: a root span"
    );
    assert_eq!(inbound.attribute("request_id"), Some(request_id.as_str()));
    assert_eq!(inbound.integer("http.response.status_code"), Some(200));
    assert_eq!(inbound.name, "GET /download_external_logs");
    let trace = &inbound.trace_id;

    let call = one(&spans, "provider call", |s| s.name == "provider call");
    assert_eq!(&call.trace_id, trace);
    assert_eq!(call.parent_span_id, inbound.span_id);

    let mut attempts: Vec<&ReceivedSpan> = spans
        .iter()
        .filter(|s| s.name == "provider attempt")
        .collect();
    attempts.sort_by_key(|s| s.integer("attempt"));
    assert_eq!(
        attempts.len(),
        2,
        "a refused attempt and a retried one: {attempts:#?}"
    );
    for attempt in &attempts {
        assert_eq!(&attempt.trace_id, trace);
        assert_eq!(
            attempt.parent_span_id, call.span_id,
            "each attempt is a child of the call"
        );
    }
    assert_eq!(attempts[0].integer("attempt"), Some(1));
    assert_eq!(attempts[0].integer("http.response.status_code"), Some(503));
    assert_eq!(attempts[0].attribute("retry.reason"), None);
    assert_eq!(attempts[1].integer("attempt"), Some(2));
    assert_eq!(attempts[1].integer("http.response.status_code"), Some(200));
    assert_eq!(
        attempts[1].attribute("retry.reason"),
        Some("the log provider is unavailable: HTTP 503")
    );

    // The other process: its request span is a child of the attempt that reached it.
    let remote = one(&spans, "provider request", |s| {
        s.service == "log-provider" && s.attribute("http.route") == Some("/v1/logs")
    });
    assert_eq!(&remote.trace_id, trace, "one trace across both processes");
    assert_eq!(remote.parent_span_id, attempts[1].span_id);
    assert_eq!(remote.attribute("request_id"), Some(request_id.as_str()));
    // The access-log line names the trace.
    let mut backend = backend;
    let line = backend
        .wait_for_log(|l| l["target"] == "access_log" && l["route"] == "/download_external_logs")
        .expect("the download's access-log line");
    assert_eq!(line["trace_id"].as_str(), Some(trace.as_str()), "{line}");
}

/// `trace_spans_dropped{reason=...}` on the page, 0 when absent.
fn dropped(page: &str, reason: &str) -> f64 {
    let prefix = format!("trace_spans_dropped_total{{reason=\"{reason}\"}} ");
    page.lines()
        .find_map(|l| l.strip_prefix(prefix.as_str()))
        .map_or(0.0, |v| v.trim().parse().unwrap())
}

fn resident_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS in /proc/<pid>/status")
}

/// `count` requests to `/health_check`, 32 at a time: each answers 200 `healthy`.
async fn burst(base: &str, count: usize) {
    let client = reqwest::Client::new();
    let url = format!("{base}/health_check");
    let answers = futures_util::stream::iter(0..count)
        .map(|_| {
            let request = client.get(&url).send();
            async move {
                let response = request.await.expect("the backend answers");
                (response.status(), response.text().await.unwrap_or_default())
            }
        })
        .buffer_unordered(32)
        .collect::<Vec<_>>()
        .await;
    for (status, body) in answers {
        assert_eq!((status.as_u16(), body.as_str()), (200, "healthy"));
    }
}

#[tokio::test]
async fn a_hung_collector_changes_nothing_for_clients() {
    let collector = OtlpReceiver::hanging().await;
    let backend = ServiceProcess::start(traced(std::path::Path::new(BIN), &collector.endpoint));
    // More spans than the queue holds while the one export in flight hangs.
    burst(&backend.url(""), 4000).await;
    let after_first = resident_kib(backend.pid());
    burst(&backend.url(""), 8000).await;
    let after_second = resident_kib(backend.pid());
    let page = metrics_page(&backend.url("")).await;
    let exports = collector.requests();
    assert!(exports >= 1, "the exporter did try the collector");
    // Every span is queued (at most the queue's 2048), taken by an export (at most 512 each,
    // the hung ones included) or dropped and counted.
    let most_kept = 2048 + 512 * exports;
    assert!(
        dropped(&page, "queue_full") >= (12_000 - most_kept.min(12_000)) as f64,
        "the spans beyond the queue are dropped and counted ({exports} exports):\n{page}"
    );
    assert!(dropped(&page, "queue_full") > 0.0, "{page}");
    // Twice the spans, no more memory to speak of: the queue is bounded.
    assert!(
        after_second < after_first + 16 * 1024,
        "resident memory grew from {after_first} KiB to {after_second} KiB"
    );
}

#[tokio::test]
async fn a_collector_that_is_down_changes_nothing_for_clients() {
    let down = closed_port_url().await;
    let base = down.trim_end_matches("/v1/logs").to_string();
    let backend = ServiceProcess::start(traced(std::path::Path::new(BIN), &base));
    burst(&backend.url(""), 200).await;
    let url = backend.url("");
    eventually("the failed exports are counted", READY_WAIT, || {
        let url = url.clone();
        async move {
            let page = metrics_page(&url).await;
            (dropped(&page, "export_failed") > 0.0).then_some(())
        }
    })
    .await;
    burst(&backend.url(""), 200).await;
}

#[test]
fn bad_tracing_variables_stop_the_start_with_one_line() {
    for (variable, value) in [
        ("OTEL_EXPORTER_OTLP_ENDPOINT", "collector:4318"),
        ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "grpc://c:4317"),
        ("OTEL_TRACES_SAMPLER", "sometimes"),
        ("OTEL_TRACES_SAMPLER_ARG", "2"),
        ("OTEL_RESOURCE_ATTRIBUTES", "team"),
        ("OTEL_SERVICE_NAME", " "),
    ] {
        let (code, text) = test_support::check_config(BIN, &[], &[(variable, value)]);
        assert_eq!(code, 2, "{variable}={value}: {text}");
        assert_eq!(text.lines().count(), 1, "{text}");
        assert!(text.contains(variable), "{text}");
    }
    let (code, text) = test_support::check_config(
        BIN,
        &[],
        &[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318"),
            ("OTEL_TRACES_SAMPLER", "parentbased_traceidratio"),
            ("OTEL_TRACES_SAMPLER_ARG", "0.01"),
            ("OTEL_RESOURCE_ATTRIBUTES", "deployment.environment=dev"),
        ],
    );
    assert_eq!(code, 0, "{text}");
    // Empty is unset (the OpenTelemetry specification): no traces, and no refusal.
    let (code, text) = test_support::check_config(BIN, &[], &[("OTEL_EXPORTER_OTLP_ENDPOINT", "")]);
    assert_eq!(code, 0, "{text}");
}

/// `00-<trace id>-<span id>-<flags>` split in its parts.
fn parts(traceparent: &str) -> (String, String) {
    let fields: Vec<&str> = traceparent.split('-').collect();
    assert_eq!(fields.len(), 4, "{traceparent}");
    (fields[1].to_string(), fields[3].to_string())
}

/// With a sampler that keeps no new trace (`parentbased_traceidratio` at 0), a request without
/// `traceparent` exports nothing, and its provider call says the trace is dropped (sampled flag
/// 00), so the provider drops it too; a caller's unsampled trace stays dropped and keeps its
/// trace id; a caller's sampled trace is followed across both services. The kept trace's spans
/// arrive after everything the dropped ones could have sent (one queue, in order), so "no other
/// span" is checked, not hoped.
#[tokio::test]
async fn the_sampler_decides_at_the_root_and_the_provider_follows() {
    let receiver = OtlpReceiver::start().await;
    let provider_bin = test_support::binary_beside(BIN, "log-provider");
    let mut provider_cmd = traced(&provider_bin, &receiver.endpoint);
    provider_cmd.env("PROVIDER_KEY", KEY);
    let provider = ServiceProcess::start(provider_cmd);
    let (proxy, seen) = proxy(provider.url("/v1/logs"), false).await;
    let mut backend_cmd = traced(std::path::Path::new(BIN), &receiver.endpoint);
    backend_cmd
        .env("EXTERNAL_LOGS_URL", &proxy)
        .env("EXTERNAL_INTEGRATION_KEY", KEY)
        .env("OTEL_TRACES_SAMPLER", "parentbased_traceidratio")
        .env("OTEL_TRACES_SAMPLER_ARG", "0");
    let mut backend = ServiceProcess::start(backend_cmd);
    let client = reqwest::Client::new();
    let download = backend.url("/download_external_logs?limit=1");

    for _ in 0..5 {
        let response = client.get(&download).send().await.unwrap();
        assert_eq!(response.status(), 200);
    }
    let dropped_caller = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00";
    let response = client
        .get(&download)
        .header("traceparent", dropped_caller)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let kept_trace = "4bf92f3577b34da6a3ce929d0e0e4736";
    let kept_caller = format!("00-{kept_trace}-00f067aa0ba902b7-01");
    let response = client
        .get(&download)
        .header("traceparent", &kept_caller)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);

    let seen = seen.traceparents.lock().unwrap().clone();
    assert_eq!(seen.len(), 7, "{seen:?}");
    let mut new_traces = std::collections::HashSet::new();
    for traceparent in &seen[..5] {
        let (trace, flags) = parts(traceparent);
        assert_eq!(
            flags, "00",
            "a dropped trace is sent as dropped: {traceparent}"
        );
        new_traces.insert(trace);
    }
    assert_eq!(new_traces.len(), 5, "each request its own trace: {seen:?}");
    assert_eq!(
        parts(&seen[5]),
        (
            "0af7651916cd43dd8448eb211c80319c".to_string(),
            "00".to_string()
        ),
        "the caller's dropped trace goes on, dropped"
    );
    assert_eq!(parts(&seen[6]), (kept_trace.to_string(), "01".to_string()));

    let spans = eventually(
        "the kept trace arrives from both services",
        READY_WAIT,
        || {
            let spans = receiver.spans();
            let done = ["backend-api", "log-provider"].iter().all(|service| {
                spans.iter().any(|s| {
                    &s.service == service
                        && s.trace_id == kept_trace
                        && s.attribute("http.route").is_some()
                })
            });
            async move { done.then_some(spans) }
        },
    )
    .await;
    let others: Vec<&ReceivedSpan> = spans.iter().filter(|s| s.trace_id != kept_trace).collect();
    assert!(
        others.is_empty(),
        "dropped traces exported spans: {others:#?}"
    );
    let inbound = one(&spans, "backend request", |s| {
        s.service == "backend-api" && s.attribute("http.route") == Some("/download_external_logs")
    });
    assert_eq!(
        inbound.parent_span_id, "00f067aa0ba902b7",
        "the caller's span is the parent"
    );
    let attempt = one(&spans, "provider attempt", |s| s.name == "provider attempt");
    let remote = one(&spans, "provider request", |s| s.service == "log-provider");
    assert_eq!(remote.parent_span_id, attempt.span_id);

    // A dropped request's access-log line names no trace; the kept one's does.
    backend
        .wait_for_log(|l| l["target"] == "access_log" && l["trace_id"] == kept_trace)
        .expect("the kept request's access-log line");
    let named: Vec<Option<String>> = backend
        .output()
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|l| l["target"] == "access_log" && l["route"] == "/download_external_logs")
        .map(|l| l["trace_id"].as_str().map(str::to_string))
        .collect();
    let mut expected = vec![None; 6];
    expected.push(Some(kept_trace.to_string()));
    assert_eq!(named, expected);
}

/// The `/metrics` page as asked for with `accept`, and its content type.
async fn metrics_as(base: &str, accept: &str) -> (String, String) {
    let response = reqwest::Client::new()
        .get(format!("{base}/metrics"))
        .header("accept", accept)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let content_type = response.headers()["content-type"]
        .to_str()
        .unwrap()
        .to_string();
    (content_type, response.text().await.unwrap())
}

#[tokio::test]
async fn a_traced_request_is_the_exemplar_of_its_latency_bucket_in_openmetrics_only() {
    let receiver = OtlpReceiver::start().await;
    let backend = ServiceProcess::start(traced(std::path::Path::new(BIN), &receiver.endpoint));
    let response = reqwest::get(backend.url("/health_check")).await.unwrap();
    assert_eq!(response.status(), 200);

    let trace_id = eventually("the request's span arrives", READY_WAIT, || {
        let span = receiver
            .spans()
            .into_iter()
            .find(|s| s.attribute("http.route") == Some("/health_check"));
        async move { span.map(|s| s.trace_id) }
    })
    .await;

    let (content_type, page) = metrics_as(&backend.url(""), "application/openmetrics-text").await;
    assert!(
        content_type.starts_with("application/openmetrics-text"),
        "{content_type}"
    );
    let exemplars: Vec<&str> = page
        .lines()
        .filter(|line| {
            line.starts_with("http_request_duration_seconds_bucket{")
                && line.contains("route=\"/health_check\"")
                && line.contains(" # ")
        })
        .collect();
    assert_eq!(
        exemplars.len(),
        1,
        "one request, one bucket's exemplar:\n{page}"
    );
    let (_, exemplar) = exemplars[0].split_once(" # ").unwrap();
    let parts: Vec<&str> = exemplar.split(' ').collect();
    assert_eq!(parts.len(), 3, "labels, value, timestamp: {exemplar}");
    assert_eq!(parts[0], format!("{{trace_id=\"{trace_id}\"}}"));
    let seconds: f64 = parts[1].parse().unwrap();
    assert!(seconds >= 0.0, "{exemplar}");

    let (content_type, classic) = metrics_as(&backend.url(""), "text/plain;version=0.0.4").await;
    assert!(
        content_type.starts_with("text/plain; version=0.0.4"),
        "{content_type}"
    );
    assert!(
        classic.contains("route=\"/health_check\""),
        "the same series: {classic}"
    );
    assert!(
        !classic.contains(" # {"),
        "the classic format has no exemplars: {classic}"
    );
}
