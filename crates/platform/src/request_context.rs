//! What the request pipeline keeps about one request from its arrival to its answer: its
//! method, start time and request id, taken from the request in [`RequestContext::begin`] and
//! put on the response in [`RequestContext::finish`].

use std::time::{Duration, Instant};

use axum::extract::Request;
use axum::http::{HeaderMap, HeaderValue, Method};
use axum::response::Response;

use crate::otel;
use crate::request_id::{self, X_REQUEST_ID};

pub(crate) struct RequestContext {
    pub(crate) method: Method,
    started: Instant,
    request_id: HeaderValue,
    /// Whether the request's span is in a kept trace (its status is then recorded on it).
    traced: bool,
}

impl RequestContext {
    /// Before anything else of the pipeline runs: the request carries its id from here on.
    pub(crate) fn begin(request: &mut Request) -> Self {
        Self {
            method: request.method().clone(),
            started: Instant::now(),
            request_id: request_id::take_or_generate(request.headers_mut()),
            traced: false,
        }
    }

    /// The request's span: every line logged while it is handled carries `request_id`. When
    /// traces are exported and the sampler keeps this request's trace, it is also the server span
    /// of the trace (route template, method, status), a child of the caller's `traceparent`.
    pub(crate) fn span(&mut self, route: &str, headers: &HeaderMap) -> tracing::Span {
        // A sane id is visible ASCII, so always text.
        let id = self.request_id.to_str().unwrap_or_default();
        if !otel::enabled() {
            return tracing::info_span!("request", request_id = id);
        }
        let root = otel::request_root(headers);
        self.traced = root.is_kept();
        if !self.traced {
            // A dropped trace: the span the log lines need, and nothing the trace would.
            return root.open(|| tracing::info_span!("request", request_id = id));
        }
        let method = self.method.as_str();
        root.open(|| {
            tracing::info_span!(
                "request",
                request_id = id,
                otel.name = format!("{method} {route}"),
                otel.kind = "server",
                http.route = route,
                http.request.method = method,
                http.response.status_code = tracing::field::Empty,
                otel.status_code = tracing::field::Empty,
            )
        })
    }

    /// The request's trace id when its trace is exported (inside the request's span).
    pub(crate) fn trace_id(&self) -> Option<String> {
        if !self.traced {
            return None;
        }
        otel::trace_id(&tracing::Span::current())
    }

    /// Once the response head is ready (JSON errors included): the id goes on the response;
    /// returns the time it took.
    pub(crate) fn finish(&self, response: &mut Response) -> Duration {
        response
            .headers_mut()
            .insert(X_REQUEST_ID, self.request_id.clone());
        if self.traced {
            let status = response.status();
            let span = tracing::Span::current();
            // i64: tracing-opentelemetry writes unsigned integers as strings.
            span.record("http.response.status_code", i64::from(status.as_u16()));
            if status.is_server_error() {
                span.record("otel.status_code", "ERROR");
            }
        }
        self.started.elapsed()
    }
}
