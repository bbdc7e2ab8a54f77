//! The endpoints every service answers: `/healthz`, `/readyz`, `/metrics`, `/version` and
//! `/openapi.json`. Each answers at once from memory, so none of them runs under the request
//! timeout.

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, MethodRouter};
use axum::Json;

use crate::exposition::Format;
use crate::metrics::MetricsRegistry;
use crate::readiness::{Readiness, ReadinessReport};
use crate::service_info::{ServiceInfo, VersionInfo};

/// What the common endpoints read.
#[derive(Clone)]
pub(crate) struct Common {
    pub(crate) info: ServiceInfo,
    pub(crate) readiness: Readiness,
    pub(crate) metrics: MetricsRegistry,
    /// The service's complete OpenAPI document, serialized once.
    pub(crate) openapi: Bytes,
}

/// The common routes with their state applied.
pub(crate) fn routes(common: Common) -> [(&'static str, MethodRouter); 5] {
    [
        ("/healthz", get(healthz)),
        ("/readyz", get(readyz).with_state(common.clone())),
        ("/metrics", get(metrics).with_state(common.clone())),
        ("/version", get(version).with_state(common.clone())),
        ("/openapi.json", get(openapi_json).with_state(common)),
    ]
}

/// Liveness: 200 while the process can answer at all.
#[utoipa::path(get, path = "/healthz", tag = "operations",
    responses((status = 200, description = "The process is alive", body = String, content_type = "text/plain")))]
pub(crate) async fn healthz() -> &'static str {
    "ok"
}

/// Readiness: 200 only when the service can serve; 503 while draining or a check fails.
#[utoipa::path(get, path = "/readyz", tag = "operations",
    responses(
        (status = 200, description = "Ready", body = ReadinessReport),
        (status = 503, description = "Not ready (draining or a check fails)", body = ReadinessReport)
    ))]
pub(crate) async fn readyz(State(common): State<Common>) -> Response {
    let (ready, report) = common.readiness.report();
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(report)).into_response()
}

/// Prometheus metrics: OpenMetrics text, or the classic text format for a scraper whose
/// `Accept` asks only for `text/plain`.
#[utoipa::path(get, path = "/metrics", tag = "operations",
    responses((status = 200, description = "OpenMetrics 1.0.0 text; classic text format 0.0.4 when Accept asks only for text/plain", 
        content((String = "application/openmetrics-text"), (String = "text/plain")))))]
pub(crate) async fn metrics(State(common): State<Common>, headers: HeaderMap) -> Response {
    let accept = headers
        .get(header::ACCEPT)
        .and_then(|value| value.to_str().ok());
    let format = Format::negotiate(accept);
    with_content_type(
        Body::from(format.render(common.metrics.encode())),
        format.content_type(),
    )
}

/// Name, version and git revision of the running binary.
#[utoipa::path(get, path = "/version", tag = "operations",
    responses((status = 200, description = "What is running", body = VersionInfo)))]
pub(crate) async fn version(State(common): State<Common>) -> Json<VersionInfo> {
    Json(VersionInfo::from(&common.info))
}

/// This document.
#[utoipa::path(get, path = "/openapi.json", tag = "operations",
    responses((status = 200, description = "The OpenAPI 3.1 document of this service", content_type = "application/json")))]
pub(crate) async fn openapi_json(State(common): State<Common>) -> Response {
    with_content_type(Body::from(common.openapi.clone()), "application/json")
}

fn with_content_type(body: Body, content_type: &'static str) -> Response {
    let mut response = Response::new(body);
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}
