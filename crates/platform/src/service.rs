//! A service being assembled: its routes, readiness checks, metrics, OpenAPI document and
//! connection settings; [`Service::into_router`] puts the common endpoints and the request
//! pipeline around them, [`Service::bind`] binds the listener.

use std::io;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, OnceLock};

use axum::body::Bytes;
use axum::response::IntoResponse;
use axum::routing::{any, MethodRouter};
use axum::Router;
use tokio::net::TcpListener;

use crate::acceptor::Acceptor;
use crate::access_log::AccessLog;
use crate::common_endpoints::{self, Common};
use crate::config::ServerArgs;
use crate::connection::ConnectionServer;
use crate::error::ApiError;
use crate::http2::Http2Settings;
use crate::metrics::{HttpMetrics, MetricsRegistry};
use crate::pipeline::Pipeline;
use crate::readiness::Readiness;
use crate::reloadable::Reloadable;
use crate::route_metrics::{RouteMetrics, UNMATCHED};
use crate::secret_file::SecretFileError;
use crate::secret_metrics::SecretMetrics;
use crate::serve::RunningService;
use crate::service_info::ServiceInfo;

pub struct Service {
    info: ServiceInfo,
    args: ServerArgs,
    routes: Vec<Route>,
    readiness: Readiness,
    metrics: MetricsRegistry,
    openapi: utoipa::openapi::OpenApi,
    http2: Option<Http2Settings>,
    acceptor: Option<Arc<dyn Acceptor>>,
    /// Registered with the first watched secret: services without one do not show them.
    secret_metrics: OnceLock<SecretMetrics>,
}

struct Route {
    path: String,
    handler: MethodRouter,
    /// Whether the handler can take time (I/O, an upstream, simulated work): then it runs under
    /// `REQUEST_TIMEOUT`.
    timed: bool,
}

impl Service {
    pub fn new(info: ServiceInfo, args: ServerArgs) -> Self {
        Self {
            info,
            args,
            routes: Vec::new(),
            readiness: Readiness::new(),
            metrics: MetricsRegistry::new(),
            openapi: utoipa::openapi::OpenApiBuilder::new().build(),
            http2: None,
            acceptor: None,
            secret_metrics: OnceLock::new(),
        }
    }

    /// A route whose handler can take time: it answers 408 after `REQUEST_TIMEOUT`.
    /// `path` is also the route's metric label; `handler` has its state applied.
    pub fn route(self, path: impl Into<String>, handler: MethodRouter) -> Self {
        self.add(path.into(), handler, true)
    }

    /// A route whose handler answers at once from memory: no request timer is armed for it.
    pub fn instant_route(self, path: impl Into<String>, handler: MethodRouter) -> Self {
        self.add(path.into(), handler, false)
    }

    fn add(mut self, path: String, handler: MethodRouter, timed: bool) -> Self {
        self.routes.push(Route {
            path,
            handler,
            timed,
        });
        self
    }

    /// The service's own OpenAPI document; the common endpoints are merged in.
    pub fn openapi(mut self, doc: utoipa::openapi::OpenApi) -> Self {
        self.openapi = doc;
        self
    }

    /// Serves HTTP/2 (cleartext, or over the acceptor's TLS) next to HTTP/1 with these settings.
    /// Without it a service speaks HTTP/1 only.
    pub fn http2(mut self, settings: Http2Settings) -> Self {
        self.http2 = Some(settings);
        self
    }

    /// Serves every connection through `acceptor` (a TLS acceptor, for example).
    pub fn acceptor(mut self, acceptor: impl Acceptor) -> Self {
        self.acceptor = Some(Arc::new(acceptor));
        self
    }

    pub fn readiness(&self) -> &Readiness {
        &self.readiness
    }

    pub fn metrics(&self) -> &MetricsRegistry {
        &self.metrics
    }

    /// A value read from a secret file now (an error is a start error) and reloaded live, with
    /// its reloads in the service's metrics under `name`: see [`crate::secret_watch`].
    pub fn watch_secret<T, F>(
        &self,
        name: &'static str,
        path: &Path,
        parse: F,
    ) -> Result<Reloadable<T>, SecretFileError>
    where
        T: Send + Sync + 'static,
        F: Fn(&str) -> Result<T, String> + Send + Sync + 'static,
    {
        let metrics = self
            .secret_metrics
            .get_or_init(|| SecretMetrics::register(&self.metrics));
        crate::secret_watch::watch(name, path, parse, metrics)
    }

    pub fn info(&self) -> &ServiceInfo {
        &self.info
    }

    pub fn args(&self) -> &ServerArgs {
        &self.args
    }

    /// The complete application: own routes and common endpoints, each in the request pipeline,
    /// and JSON 404 and 405 answers.
    pub fn into_router(self) -> Router {
        let http_metrics = HttpMetrics::register(&self.metrics, &self.info);
        crate::otel::register_metrics(&self.metrics);
        crate::telemetry::register_metrics(&self.metrics);
        let doc = crate::openapi::complete(self.openapi, &self.info);
        let openapi = serde_json::to_vec(&doc).expect("OpenAPI document serializes");
        let common = Common {
            info: self.info,
            readiness: self.readiness,
            metrics: self.metrics,
            openapi: Bytes::from(openapi),
        };
        let common_routes = common_endpoints::routes(common)
            .into_iter()
            .map(|(path, handler)| Route {
                path: path.to_string(),
                handler,
                timed: false,
            });
        let args = &self.args;
        let pipeline = |route: &str, timed: bool| {
            Pipeline::new(
                route,
                AccessLog::for_route(args.access_log, route),
                RouteMetrics::new(&http_metrics, route),
                http_metrics.in_flight.clone(),
                args.max_body_bytes,
                timed.then_some(args.request_timeout),
            )
        };
        let mut router = Router::new();
        for route in self.routes.into_iter().chain(common_routes) {
            let handler = route
                .handler
                .fallback(|| async { ApiError::method_not_allowed().into_response() })
                .layer(pipeline(&route.path, route.timed));
            router = router.route(&route.path, handler);
        }
        router.fallback_service(
            any(|| async { ApiError::not_found().into_response() })
                .layer(pipeline(UNMATCHED, false)),
        )
    }

    /// Binds the listener (`LISTEN_ADDR`, or `default_addr`) and logs the bound address.
    pub async fn bind(self, default_addr: SocketAddr) -> io::Result<RunningService> {
        let addr = self.args.listen_addr_or(default_addr);
        self.bind_to(addr).await
    }

    /// Binds `addr`, whatever `LISTEN_ADDR` says (tests, the all-in-one runner).
    pub async fn bind_to(self, addr: SocketAddr) -> io::Result<RunningService> {
        let listener = TcpListener::bind(addr).await?;
        let local_addr = listener.local_addr()?;
        tracing::info!(service = self.info.name, version = self.info.version, %local_addr, "listening");
        let name = self.info.name;
        let args = self.args.clone();
        let readiness = self.readiness.clone();
        let http2 = self.http2;
        let acceptor = self.acceptor.clone();
        let connections = ConnectionServer::new(self.into_router(), &args, http2, acceptor);
        Ok(RunningService {
            name,
            listener,
            local_addr,
            args,
            readiness,
            connections,
        })
    }
}
