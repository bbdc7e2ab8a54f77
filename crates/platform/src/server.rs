//! Server bootstrap: common endpoints, limits, metrics, binding and graceful shutdown.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use serde::Serialize;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::timeout::TimeoutLayer;

use crate::config::ServerArgs;
use crate::error::{self, ApiError};
use crate::first_bytes::FirstBytesDeadline;
use crate::metrics::{self, HttpMetrics, MetricsRegistry};
use crate::readiness::{Readiness, ReadinessReport};
use crate::shutdown::Shutdown;

/// What a service is, for `/version`, metrics and logs.
#[derive(Debug, Clone, Copy)]
pub struct ServiceInfo {
    pub name: &'static str,
    pub version: &'static str,
    /// The git revision baked in at build time (`ABN_GIT_REVISION`), when known.
    pub revision: Option<&'static str>,
}

/// `ServiceInfo` for the calling crate: `service_info!("backend-api")`.
#[macro_export]
macro_rules! service_info {
    ($name:expr) => {
        $crate::ServiceInfo {
            name: $name,
            version: env!("CARGO_PKG_VERSION"),
            revision: option_env!("ABN_GIT_REVISION"),
        }
    };
}

/// The `/version` body.
#[derive(Debug, Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct VersionInfo {
    pub name: String,
    pub version: String,
    /// The git revision the binary was built from, when known.
    pub git_revision: Option<String>,
}

/// A service being assembled: its routes, readiness checks, metrics and OpenAPI document.
pub struct Service {
    info: ServiceInfo,
    args: ServerArgs,
    routes: Router,
    readiness: Readiness,
    metrics: MetricsRegistry,
    openapi: utoipa::openapi::OpenApi,
}

#[derive(Clone)]
pub(crate) struct Common {
    info: ServiceInfo,
    readiness: Readiness,
    metrics: MetricsRegistry,
    openapi: Arc<String>,
}

impl Service {
    pub fn new(info: ServiceInfo, args: ServerArgs) -> Self {
        Self {
            info,
            args,
            routes: Router::new(),
            readiness: Readiness::new(),
            metrics: MetricsRegistry::new(),
            openapi: utoipa::openapi::OpenApiBuilder::new().build(),
        }
    }

    /// The service's own routes (state already applied).
    pub fn routes(mut self, routes: Router) -> Self {
        self.routes = self.routes.merge(routes);
        self
    }

    /// The service's own OpenAPI document; the common endpoints are merged in.
    pub fn openapi(mut self, doc: utoipa::openapi::OpenApi) -> Self {
        self.openapi = doc;
        self
    }

    pub fn readiness(&self) -> &Readiness {
        &self.readiness
    }

    pub fn metrics(&self) -> &MetricsRegistry {
        &self.metrics
    }

    pub fn info(&self) -> &ServiceInfo {
        &self.info
    }

    pub fn args(&self) -> &ServerArgs {
        &self.args
    }

    /// The complete application: own routes, common endpoints and every layer.
    pub fn into_router(self) -> Router {
        let http_metrics = HttpMetrics::register(&self.metrics, &self.info);
        let doc = crate::openapi::complete(self.openapi, &self.info);
        let openapi = serde_json::to_string(&doc).expect("OpenAPI document serializes");
        let common = Common {
            info: self.info,
            readiness: self.readiness,
            metrics: self.metrics,
            openapi: Arc::new(openapi),
        };
        let common_routes = Router::new()
            .route("/healthz", get(healthz))
            .route("/readyz", get(readyz))
            .route("/metrics", get(metrics))
            .route("/version", get(version))
            .route("/openapi.json", get(openapi_json))
            .with_state(common);
        self.routes
            .merge(common_routes)
            .fallback(|| async { ApiError::not_found() })
            .method_not_allowed_fallback(|| async { ApiError::method_not_allowed() })
            .layer(TimeoutLayer::with_status_code(
                StatusCode::REQUEST_TIMEOUT,
                self.args.request_timeout,
            ))
            .layer(RequestBodyLimitLayer::new(self.args.max_body_bytes))
            // Outside the limits, so their plain-text refusals become JSON too.
            .layer(middleware::from_fn(json_errors))
            .layer(middleware::from_fn_with_state(http_metrics, metrics::track))
            .layer(CatchPanicLayer::custom(|_| {
                ApiError::internal("internal error").into_response()
            }))
    }

    /// Binds the listener (`LISTEN_ADDR`, or `default_addr`) and logs the bound address.
    pub async fn bind(self, default_addr: SocketAddr) -> io::Result<RunningService> {
        let addr = self.args.listen_addr_or(default_addr);
        let listener = TcpListener::bind(addr).await?;
        let local_addr = listener.local_addr()?;
        tracing::info!(service = self.info.name, version = self.info.version, %local_addr, "listening");
        let args = self.args.clone();
        let readiness = self.readiness.clone();
        let name = self.info.name;
        Ok(RunningService {
            name,
            listener,
            local_addr,
            args,
            readiness,
            router: self.into_router(),
        })
    }
}

/// A bound service, ready to serve.
pub struct RunningService {
    name: &'static str,
    listener: TcpListener,
    local_addr: SocketAddr,
    args: ServerArgs,
    readiness: Readiness,
    router: Router,
}

impl RunningService {
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    pub fn readiness(&self) -> &Readiness {
        &self.readiness
    }

    /// Serves until `shutdown` is requested, then: `/readyz` 503 at once, keep serving for the
    /// drain period, stop accepting, let in-flight requests finish up to the shutdown timeout.
    pub async fn serve(self, shutdown: Shutdown) -> io::Result<()> {
        let RunningService {
            name,
            listener,
            local_addr: _,
            args,
            readiness,
            router,
        } = self;

        let mut builder = auto::Builder::new(TokioExecutor::new());
        builder
            .http1()
            .timer(TokioTimer::new())
            .header_read_timeout(args.header_read_timeout)
            .max_buf_size(args.max_header_bytes as usize);
        builder
            .http2()
            .timer(TokioTimer::new())
            .max_header_list_size(args.max_header_bytes);

        let graceful = GracefulShutdown::new();
        let connections = Arc::new(Semaphore::new(args.max_connections as usize));
        let service = TowerToHyperService::new(router);

        // Readiness turns 503 the moment shutdown is requested, while the accept loop goes on
        // for the drain period so that in-flight routing changes can catch up.
        let stop_accepting = {
            let readiness = readiness.clone();
            let shutdown = shutdown.clone();
            let drain = args.drain_period;
            async move {
                shutdown.requested().await;
                readiness.set_draining();
                tracing::info!(service = name, drain = ?drain, "draining");
                tokio::time::sleep(drain).await;
            }
        };
        tokio::pin!(stop_accepting);

        loop {
            let permit = tokio::select! {
                _ = &mut stop_accepting => break,
                permit = connections.clone().acquire_owned() => permit.expect("semaphore never closed"),
            };
            let (stream, _peer) = tokio::select! {
                _ = &mut stop_accepting => break,
                accepted = listener.accept() => match accepted {
                    Ok(pair) => pair,
                    Err(err) => {
                        // Out of file descriptors and similar: back off instead of spinning.
                        tracing::warn!(service = name, error = %err, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                },
            };
            let _ = stream.set_nodelay(true);
            // Bounds the protocol detection, which hyper's header read timeout does not cover.
            let stream = FirstBytesDeadline::new(stream, args.header_read_timeout);
            let connection = builder
                .serve_connection(TokioIo::new(stream), service.clone())
                .into_owned();
            let connection = graceful.watch(connection);
            tokio::spawn(async move {
                let _ = connection.await;
                drop(permit);
            });
        }
        drop(listener);
        tracing::info!(
            service = name,
            "stopped accepting; finishing in-flight requests"
        );
        match tokio::time::timeout(args.shutdown_timeout, graceful.shutdown()).await {
            Ok(()) => tracing::info!(service = name, "stopped gracefully"),
            Err(_) => tracing::warn!(
                service = name,
                timeout = ?args.shutdown_timeout,
                "shutdown timeout reached; closing remaining connections"
            ),
        }
        Ok(())
    }
}

/// Turns any error response that is not JSON yet (framework rejections, limits, timeouts) into
/// the `{"error", "code"}` shape, so clients see one error format.
async fn json_errors(request: Request, next: Next) -> Response {
    let response = next.run(request).await;
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return response;
    }
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if is_json {
        return response;
    }
    let (parts, body) = response.into_parts();
    let detail = axum::body::to_bytes(body, 4096)
        .await
        .ok()
        .and_then(|b| String::from_utf8(b.to_vec()).ok());
    let mut converted = error::from_status(status, detail).into_response();
    for (name, value) in parts.headers.iter() {
        if name != header::CONTENT_TYPE && name != header::CONTENT_LENGTH {
            converted.headers_mut().insert(name.clone(), value.clone());
        }
    }
    converted
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

/// Prometheus metrics in the text exposition format.
#[utoipa::path(get, path = "/metrics", tag = "operations",
    responses((status = 200, description = "Prometheus text format", body = String, content_type = "text/plain")))]
pub(crate) async fn metrics(State(common): State<Common>) -> Response {
    let mut response = Response::new(Body::from(common.metrics.encode()));
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    response
}

/// Name, version and git revision of the running binary.
#[utoipa::path(get, path = "/version", tag = "operations",
    responses((status = 200, description = "What is running", body = VersionInfo)))]
pub(crate) async fn version(State(common): State<Common>) -> Json<VersionInfo> {
    Json(VersionInfo {
        name: common.info.name.to_string(),
        version: common.info.version.to_string(),
        git_revision: common.info.revision.map(str::to_string),
    })
}

/// This document.
#[utoipa::path(get, path = "/openapi.json", tag = "operations",
    responses((status = 200, description = "The OpenAPI 3.1 document of this service", content_type = "application/json")))]
pub(crate) async fn openapi_json(State(common): State<Common>) -> Response {
    let mut response = Response::new(Body::from(common.openapi.as_str().to_owned()));
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

/// Starts a service in the background on `127.0.0.1:0` (whatever its `LISTEN_ADDR`) for tests;
/// returns its
/// address and the task that resolves when it has stopped.
pub async fn spawn(
    service: Service,
    shutdown: Shutdown,
) -> io::Result<(SocketAddr, tokio::task::JoinHandle<io::Result<()>>)> {
    let mut service = service;
    let loopback_any_port = SocketAddr::from(([127, 0, 0, 1], 0));
    service.args.listen_addr = Some(loopback_any_port);
    let running = service.bind(loopback_any_port).await?;
    let addr = running.local_addr();
    Ok((addr, tokio::spawn(running.serve(shutdown))))
}
