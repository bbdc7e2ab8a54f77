//! The access log: one structured line per finished request (with `trace_id` when traces are
//! exported), target `access_log`, inside the request's span so it carries the request id like
//! every other line of the request. A response whose length is known at the head is logged then;
//! a streamed one (a download, a listing) when its body ends, with the bytes sent, the whole
//! duration and how the stream ended (`stream`: `complete`, `error`, or `aborted` when the client
//! went away first). Fields are borrowed where the line is written at once; a stream's are kept
//! with its body, the only allocation besides the line.

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes, HttpBody};
use axum::http::Method;
use axum::response::Response;
use http_body::{Frame, SizeHint};

use crate::caller_name::CallerName;
use crate::config::Switch;

/// How a route's requests are logged.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum AccessLog {
    Off,
    Info,
    /// Probes and scrapes: at debug, so they do not flood the log.
    Debug,
}

/// The routes probes and scrapers call every few seconds.
const QUIET_ROUTES: [&str; 3] = ["/healthz", "/readyz", "/metrics"];

impl AccessLog {
    pub(crate) fn for_route(switch: Switch, route: &str) -> Self {
        match switch {
            Switch::Off => AccessLog::Off,
            Switch::On if QUIET_ROUTES.contains(&route) => AccessLog::Debug,
            Switch::On => AccessLog::Info,
        }
    }

    /// Logs `response`, whose head took `took` (with `trace_id` when its trace is exported): now when its body's length is known, otherwise
    /// once the streamed body ends (its body is wrapped to count and notice the end). `caller` is
    /// the token name a protected route put on the response.
    pub(crate) fn write(
        self,
        route: &str,
        method: &Method,
        response: &mut Response,
        took: Duration,
        trace_id: Option<&str>,
    ) {
        if self == AccessLog::Off {
            return;
        }
        let status = response.status().as_u16();
        let caller = response.extensions().get::<CallerName>();
        if let Some(bytes) = response.body().size_hint().exact() {
            return self.line(route, method, status, caller, bytes, took, trace_id, None);
        }
        let entry = StreamEntry {
            level: self,
            route: route.into(),
            method: method.clone(),
            status,
            caller: caller.cloned(),
            trace_id: trace_id.map(Box::from),
            started: Instant::now()
                .checked_sub(took)
                .unwrap_or_else(Instant::now),
            span: tracing::Span::current(),
        };
        let body = std::mem::take(response.body_mut());
        *response.body_mut() = Body::new(LoggedStream {
            body,
            bytes: 0,
            entry: Some(entry),
        });
    }

    #[allow(clippy::too_many_arguments)]
    fn line(
        self,
        route: &str,
        method: &Method,
        status: u16,
        caller: Option<&CallerName>,
        bytes: u64,
        took: Duration,
        trace_id: Option<&str>,
        stream: Option<&'static str>,
    ) {
        let duration_ms = took.as_secs_f64() * 1000.0;
        let caller = caller.map(CallerName::as_str);
        let method = method.as_str();
        match self {
            AccessLog::Off => {}
            AccessLog::Info => tracing::info!(
                target: "access_log",
                method, route, status, duration_ms, bytes, caller, trace_id, stream,
                "request"
            ),
            AccessLog::Debug => tracing::debug!(
                target: "access_log",
                method, route, status, duration_ms, bytes, caller, trace_id, stream,
                "request"
            ),
        }
    }
}

/// What a streamed response's line needs once its body ends.
struct StreamEntry {
    level: AccessLog,
    route: Box<str>,
    method: Method,
    status: u16,
    caller: Option<CallerName>,
    /// Ties the line to its trace when traces are exported.
    trace_id: Option<Box<str>>,
    started: Instant,
    span: tracing::Span,
}

/// A streamed body that counts what it yields and writes the access-log line at its end, or when
/// it is dropped before (the connection closed).
struct LoggedStream {
    body: Body,
    bytes: u64,
    /// Taken when the line is written: once.
    entry: Option<StreamEntry>,
}

impl LoggedStream {
    fn finish(&mut self, how: &'static str) {
        if let Some(entry) = self.entry.take() {
            entry.span.in_scope(|| {
                entry.level.line(
                    &entry.route,
                    &entry.method,
                    entry.status,
                    entry.caller.as_ref(),
                    self.bytes,
                    entry.started.elapsed(),
                    entry.trace_id.as_deref(),
                    Some(how),
                )
            });
        }
    }
}

impl HttpBody for LoggedStream {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        let polled = Pin::new(&mut self.body).poll_frame(cx);
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    self.bytes += data.len() as u64;
                }
                // hyper stops polling a body that says it has ended.
                if self.body.is_end_stream() {
                    self.finish("complete");
                }
            }
            Poll::Ready(Some(Err(_))) => self.finish("error"),
            Poll::Ready(None) => self.finish("complete"),
            Poll::Pending => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

impl Drop for LoggedStream {
    fn drop(&mut self) {
        let how = if self.body.is_end_stream() {
            "complete"
        } else {
            "aborted"
        };
        self.finish(how);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probes_are_quiet_and_off_is_off() {
        assert_eq!(
            AccessLog::for_route(Switch::On, "/healthz"),
            AccessLog::Debug
        );
        assert_eq!(
            AccessLog::for_route(Switch::On, "/metrics"),
            AccessLog::Debug
        );
        assert_eq!(AccessLog::for_route(Switch::On, "/logs"), AccessLog::Info);
        assert_eq!(AccessLog::for_route(Switch::Off, "/logs"), AccessLog::Off);
    }
}
