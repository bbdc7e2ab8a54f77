//! A real OTLP/HTTP receiver for the tracing tests: `POST /v1/traces` with a protobuf
//! `ExportTraceServiceRequest`, decoded with the `opentelemetry-proto` types and kept as flat
//! [`ReceivedSpan`]s. It can also stand for a collector that hangs.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use axum::Router;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::common::v1::KeyValue;
use prost::Message;

/// One span as received, with its process's `service.name`.
#[derive(Debug, Clone)]
pub struct ReceivedSpan {
    pub service: String,
    pub name: String,
    pub trace_id: String,
    pub span_id: String,
    /// Empty for a root span.
    pub parent_span_id: String,
    pub attributes: HashMap<String, String>,
    /// The attributes sent as integers (OTLP `int_value`), by key.
    pub integers: HashMap<String, i64>,
    /// `(trace id, span id)` of each linked span.
    pub links: Vec<(String, String)>,
}

impl ReceivedSpan {
    pub fn attribute(&self, key: &str) -> Option<&str> {
        self.attributes.get(key).map(String::as_str)
    }

    /// An attribute sent as an integer; `None` when absent or of another type (the semantic
    /// conventions' `http.response.status_code` is an int, not the text "200").
    pub fn integer(&self, key: &str) -> Option<i64> {
        self.integers.get(key).copied()
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Behaviour {
    Accept,
    /// Reads the request, then never answers.
    Hang,
}

/// The receiver, on 127.0.0.1 port 0 until dropped.
pub struct OtlpReceiver {
    /// Base URL, for `OTEL_EXPORTER_OTLP_ENDPOINT`.
    pub endpoint: String,
    spans: Arc<Mutex<Vec<ReceivedSpan>>>,
    requests: Arc<Mutex<usize>>,
    server: tokio::task::JoinHandle<()>,
}

impl OtlpReceiver {
    /// A collector that accepts everything.
    pub async fn start() -> Self {
        Self::with(Behaviour::Accept).await
    }

    /// A collector that takes each request and never answers.
    pub async fn hanging() -> Self {
        Self::with(Behaviour::Hang).await
    }

    async fn with(behaviour: Behaviour) -> Self {
        let spans = Arc::new(Mutex::new(Vec::new()));
        let requests = Arc::new(Mutex::new(0));
        let state = (spans.clone(), requests.clone(), behaviour);
        let app = Router::new()
            .route("/v1/traces", post(receive))
            .with_state(state);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the receiver");
        let addr = listener.local_addr().expect("its address");
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self {
            endpoint: format!("http://{addr}"),
            spans,
            requests,
            server,
        }
    }

    /// Every span received so far.
    pub fn spans(&self) -> Vec<ReceivedSpan> {
        self.spans.lock().expect("spans lock").clone()
    }

    /// Export requests received so far (answered or not).
    pub fn requests(&self) -> usize {
        *self.requests.lock().expect("requests lock")
    }
}

impl Drop for OtlpReceiver {
    fn drop(&mut self) {
        self.server.abort();
    }
}

type ReceiverState = (Arc<Mutex<Vec<ReceivedSpan>>>, Arc<Mutex<usize>>, Behaviour);

async fn receive(
    State((spans, requests, behaviour)): State<ReceiverState>,
    body: Bytes,
) -> StatusCode {
    *requests.lock().expect("requests lock") += 1;
    if behaviour == Behaviour::Hang {
        std::future::pending::<()>().await;
    }
    let Ok(export) = ExportTraceServiceRequest::decode(body) else {
        return StatusCode::BAD_REQUEST;
    };
    let mut received = Vec::new();
    for resource_spans in export.resource_spans {
        let service = resource_spans
            .resource
            .as_ref()
            .and_then(|r| text_of(&r.attributes, "service.name"))
            .unwrap_or_default();
        for scope in resource_spans.scope_spans {
            for span in scope.spans {
                received.push(ReceivedSpan {
                    service: service.clone(),
                    name: span.name,
                    trace_id: hex(&span.trace_id),
                    span_id: hex(&span.span_id),
                    parent_span_id: hex(&span.parent_span_id),
                    attributes: span
                        .attributes
                        .iter()
                        .filter_map(|kv| Some((kv.key.clone(), show(kv)?)))
                        .collect(),
                    integers: span
                        .attributes
                        .iter()
                        .filter_map(|kv| match kv.value.as_ref()?.value.as_ref()? {
                            Value::IntValue(i) => Some((kv.key.clone(), *i)),
                            _ => None,
                        })
                        .collect(),
                    links: span
                        .links
                        .iter()
                        .map(|l| (hex(&l.trace_id), hex(&l.span_id)))
                        .collect(),
                });
            }
        }
    }
    spans.lock().expect("spans lock").extend(received);
    StatusCode::OK
}

fn text_of(attributes: &[KeyValue], key: &str) -> Option<String> {
    attributes.iter().find(|kv| kv.key == key).and_then(show)
}

/// An attribute's value as text, whatever its type.
fn show(kv: &KeyValue) -> Option<String> {
    match kv.value.as_ref()?.value.as_ref()? {
        Value::StringValue(s) => Some(s.clone()),
        Value::BoolValue(b) => Some(b.to_string()),
        Value::IntValue(i) => Some(i.to_string()),
        Value::DoubleValue(d) => Some(d.to_string()),
        other => Some(format!("{other:?}")),
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
