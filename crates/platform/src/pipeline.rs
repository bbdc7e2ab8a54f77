//! The request pipeline: one tower layer around every route (and the router's fallback) that
//! counts the request in flight, refuses bodies over the limit, bounds the handler's time where
//! it can take time, turns panics and plain-text errors into JSON errors, and records the route's
//! metrics; it gives each request its id (`x-request-id`) and span, and writes the access-log
//! line. One boxed future per request; the route's metric children were resolved when the router
//! was built.

use std::convert::Infallible;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::{Body, HttpBody};
use axum::extract::Request;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use futures_util::FutureExt;
use prometheus_client::metrics::gauge::Gauge;
use tower::{Layer, Service};
use tracing::Instrument;

use crate::access_log::AccessLog;
use crate::error::{self, ApiError};
use crate::request_context::RequestContext;
use crate::route_metrics::RouteMetrics;

/// The pipeline of one route: its metrics, the body limit and, for routes that wait on something,
/// the request timeout.
#[derive(Clone)]
pub(crate) struct Pipeline {
    shared: Arc<Shared>,
}

struct Shared {
    /// The route template (the metric label), for the access log.
    route: String,
    access_log: AccessLog,
    metrics: RouteMetrics,
    in_flight: Gauge,
    max_body_bytes: usize,
    /// `None` for routes that answer at once from memory: no timer armed per request.
    timeout: Option<Duration>,
}

impl Pipeline {
    pub(crate) fn new(
        route: &str,
        access_log: AccessLog,
        metrics: RouteMetrics,
        in_flight: Gauge,
        max_body_bytes: usize,
        timeout: Option<Duration>,
    ) -> Self {
        Self {
            shared: Arc::new(Shared {
                route: route.to_string(),
                access_log,
                metrics,
                in_flight,
                max_body_bytes,
                timeout,
            }),
        }
    }
}

impl<S> Layer<S> for Pipeline {
    type Service = PipelineService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        PipelineService {
            inner,
            shared: self.shared.clone(),
        }
    }
}

#[derive(Clone)]
pub(crate) struct PipelineService<S> {
    inner: S,
    shared: Arc<Shared>,
}

impl<S> Service<Request> for PipelineService<S>
where
    S: Service<Request, Response = Response, Error = Infallible> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    type Response = Response;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request) -> Self::Future {
        let mut context = RequestContext::begin(&mut request);
        let span = context.span(&self.shared.route, request.headers());
        let in_flight = InFlight::enter(self.shared.clone());
        let answer = match limit_body(&mut request, self.shared.max_body_bytes) {
            Err(refusal) => Answer::Refused(refusal),
            Ok(()) => {
                // The service that was polled ready handles this request; its clone waits for
                // the next one (tower's rule for services called from a shared handle).
                let clone = self.inner.clone();
                let mut inner = std::mem::replace(&mut self.inner, clone);
                Answer::Handler(inner.call(request))
            }
        };
        Box::pin(
            async move {
                let shared = &in_flight.0;
                let response = match answer {
                    Answer::Refused(refusal) => refusal.into_response(),
                    Answer::Handler(handler) => {
                        let handled = AssertUnwindSafe(bounded(handler, shared.timeout))
                            .catch_unwind()
                            .await;
                        match handled {
                            Ok(response) => error::json_errors(response).await,
                            Err(_panic) => ApiError::internal("internal error").into_response(),
                        }
                    }
                };
                let mut response = response;
                let elapsed = context.finish(&mut response);
                // Looked up once, for the exemplar and the access-log line.
                let trace_id = context.trace_id();
                let trace_id = trace_id.as_deref();
                shared
                    .metrics
                    .record(&context.method, response.status(), elapsed, trace_id);
                shared.access_log.write(
                    &shared.route,
                    &context.method,
                    &mut response,
                    elapsed,
                    trace_id,
                );
                Ok(response)
            }
            .instrument(span),
        )
    }
}

enum Answer<F> {
    Refused(ApiError),
    Handler(F),
}

/// The handler's response, or a 408 once `timeout` has passed.
async fn bounded<F>(handler: F, timeout: Option<Duration>) -> Response
where
    F: Future<Output = Result<Response, Infallible>>,
{
    let outcome = match timeout {
        None => Ok(handler.await),
        Some(timeout) => tokio::time::timeout(timeout, handler).await,
    };
    match outcome {
        Ok(Ok(response)) => response,
        Ok(Err(never)) => match never {},
        Err(_elapsed) => error::from_status(StatusCode::REQUEST_TIMEOUT, None).into_response(),
    }
}

/// 413 at once when the declared length is over the limit; otherwise a body that fails once more
/// than the limit has arrived (axum's extractors answer that with 413 too). Requests without a
/// body are left as they are.
fn limit_body(request: &mut Request, max_body_bytes: usize) -> Result<(), ApiError> {
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|length| length > max_body_bytes as u64) {
        return Err(error::from_status(StatusCode::PAYLOAD_TOO_LARGE, None));
    }
    if !request.body().is_end_stream() {
        let body = std::mem::take(request.body_mut());
        *request.body_mut() = Body::new(http_body_util::Limited::new(body, max_body_bytes));
    }
    Ok(())
}

/// Counts a request in flight until its future is done or dropped (a client that went away).
struct InFlight(Arc<Shared>);

impl InFlight {
    fn enter(shared: Arc<Shared>) -> Self {
        shared.in_flight.inc();
        Self(shared)
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.dec();
    }
}
