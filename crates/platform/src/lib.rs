//! What every abn-stack service shares.
//!
//! A service is a library whose `service(config)` describes its routes to a [`Service`]; the
//! binary's `main` is [`run`]. [`Service::into_router`] adds the common endpoints (`/healthz`,
//! `/readyz`, `/metrics`, `/version`, `/openapi.json`) and puts every route in the request
//! pipeline (limits, timeouts, JSON errors, metrics); [`Service::bind`] binds `LISTEN_ADDR` and
//! [`RunningService::serve`] serves until [`Shutdown`] says stop. Tests, the all-in-one runner
//! and the binaries all start services through this same path.
//!
//! | file | its one job |
//! | --- | --- |
//! | `service.rs` | the service description and builder, the router |
//! | `pipeline.rs` | the tower layer every request goes through |
//! | `request_context.rs`, `request_id.rs`, `access_log.rs` | per-request state of the pipeline; `x-request-id` taken or made; the access-log line |
//! | `route_metrics.rs`, `metrics.rs`, `latency_histogram.rs`, `exposition.rs` | HTTP metrics resolved per route; the registry; a lock-free histogram (with trace-id exemplars); OpenMetrics or classic text by `Accept` |
//! | `error.rs` | the JSON error shape, and turning other errors into it |
//! | `common_endpoints.rs`, `openapi.rs` | the common endpoints and their OpenAPI description |
//! | `serve.rs`, `connection.rs`, `http2.rs`, `acceptor.rs`, `first_bytes.rs` | accept loop and drain; one connection; HTTP/2 settings and idle timeout; the acceptor hook; the protocol-detection deadline |
//! | `run.rs`, `core_dumps.rs` | a service binary's `main`; RLIMIT_CORE 0 at its start |
//! | `secret_file.rs`, `secret_watch.rs`, `secret_metrics.rs`, `reloadable.rs` | reading a secret file; keeping it current (watcher and periodic check); the reload metrics; the value requests read |
//! | `callers.rs`, `caller_name.rs` | who may call: API_TOKENS_FILE's bearer tokens, the 401 answer, the route layer; the caller's name a response carries to the access log |
//! | `query.rs` | the `limit` and `since` query parameters every service parses the same way |
//! | `otel.rs`, `trace_sampling.rs` | OpenTelemetry traces: the `OTEL_*` variables, the bounded export queue, `traceparent` in and out; the sampler's decision at a trace's root, so a dropped trace's spans are never built |
//! | `service_info.rs`, `readiness.rs`, `shutdown.rs`, `config.rs`, `http_client.rs` | what is running; `/readyz` state; signals; configuration; the outgoing HTTP client |
//! | `telemetry.rs`, `json_lines.rs`, `log_writer.rs` | logs: the subscriber; the JSON line, written field by field; the writer thread, many lines a write |

pub mod acceptor;
mod access_log;
mod caller_name;
pub mod callers;
mod common_endpoints;
pub mod config;
mod connection;
pub mod core_dumps;
pub mod error;
mod exposition;
mod first_bytes;
pub mod http2;
pub mod http_client;
mod json_lines;
mod latency_histogram;
mod log_writer;
pub mod metrics;
pub mod openapi;
pub mod otel;
mod pipeline;
pub mod query;
pub mod readiness;
pub mod reloadable;
mod request_context;
pub mod request_id;
mod route_metrics;
mod run;
pub mod secret_file;
pub mod secret_metrics;
pub mod secret_watch;
mod serve;
mod service;
pub mod service_info;
pub mod shutdown;
pub mod telemetry;
mod trace_sampling;

pub use acceptor::Acceptor;
pub use error::ApiError;
pub use http2::Http2Settings;
pub use readiness::Readiness;
pub use reloadable::Reloadable;
pub use run::{run, serve_until_signal};
pub use serve::RunningService;
pub use service::Service;
pub use service_info::{ServiceInfo, VersionInfo};
pub use shutdown::Shutdown;
