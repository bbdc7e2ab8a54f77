//! What every abn-stack service shares.
//!
//! A service is a library that builds an axum [`Router`](axum::Router) of its own routes and hands
//! it to [`server::Service`], which adds the common endpoints (`/healthz`, `/readyz`, `/metrics`,
//! `/version`, `/openapi.json`), the request limits and metrics, binds `LISTEN_ADDR` and serves
//! until [`shutdown::Shutdown`] says stop. Tests, the all-in-one runner and the binaries all start
//! services through this same path.

pub mod config;
pub mod error;
mod first_bytes;
pub mod http_client;
pub mod metrics;
pub mod openapi;
pub mod query;
pub mod readiness;
pub mod server;
pub mod shutdown;
pub mod telemetry;

pub use error::ApiError;
pub use readiness::Readiness;
pub use server::{RunningService, Service, ServiceInfo};
pub use shutdown::Shutdown;
