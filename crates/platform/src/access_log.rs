//! The access log: one structured line per finished request (with `trace_id` when traces are exported), written by the pipeline once the
//! response head is ready (target `access_log`, inside the request's span, so it carries the
//! request id like every other line of the request). Its fields are borrowed from the request
//! and response: the line itself is the only thing allocated.

use std::time::Duration;

use axum::body::HttpBody;
use axum::http::Method;
use axum::response::Response;

use crate::callers::CallerName;
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

    /// `bytes` is the body's length when it is known at the head (absent for a streamed body);
    /// `caller` the token name a protected route put on the response.
    pub(crate) fn write(self, route: &str, method: &Method, response: &Response, took: Duration) {
        let status = response.status().as_u16();
        let bytes = response.body().size_hint().exact();
        let caller = response
            .extensions()
            .get::<CallerName>()
            .map(CallerName::as_str);
        let duration_ms = took.as_secs_f64() * 1000.0;
        if self == AccessLog::Off {
            return;
        }
        // Ties the line to its trace when traces are exported (absent otherwise).
        let trace_id = crate::otel::trace_id(&tracing::Span::current());
        let trace_id = trace_id.as_deref();
        match self {
            AccessLog::Off => {}
            AccessLog::Info => tracing::info!(
                target: "access_log",
                method = method.as_str(), route, status, duration_ms, bytes, caller, trace_id,
                "request"
            ),
            AccessLog::Debug => tracing::debug!(
                target: "access_log",
                method = method.as_str(), route, status, duration_ms, bytes, caller, trace_id,
                "request"
            ),
        }
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
