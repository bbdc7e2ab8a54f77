//! data-api: durable log records on a volume, read back over HTTP.
//!
//! `GET /` (legacy: simulated work, then a record), `POST /logs` and `GET /logs`, on top of
//! [`store`]: JSON Lines segments under `LOG_DIR/<INSTANCE_ID>/`, acknowledged only once
//! fdatasync'ed, with group commit. A full volume answers 507, an unusable one 503, `/readyz`
//! follows, and the store recovers by itself.

mod api;
pub mod backup;
mod config;
pub mod import;
pub mod store;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use platform::config::{ConfigError, Validate};
use platform::Service;

pub use api::{Created, RecordList, LEGACY_MESSAGES, MAX_LIMIT, MAX_RECORD_BODY_BYTES};
pub use config::{parse_bytes, Config};
use store::{LogStore, OpenError, RealIo, StoreConfig, StoreIo, StoreMetrics};

/// Local default address (containers set `LISTEN_ADDR=0.0.0.0:5001`).
pub const DEFAULT_ADDR: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 5001);

/// Opens and recovers the store, registers metrics and readiness, and returns the service to
/// bind and serve. A volume that is unusable at start does not fail it: `/readyz` answers 503
/// until the store recovers. An invalid setting, or another process already writing this
/// instance's folder, is a [`ConfigError`].
pub async fn service(config: Config) -> Result<Service, ConfigError> {
    service_with_io(config, Arc::new(RealIo)).await
}

/// As [`service`], with the store's file-system calls going through `io` (fault injection in
/// tests).
pub async fn service_with_io(config: Config, io: Arc<dyn StoreIo>) -> Result<Service, ConfigError> {
    config.validate()?;
    let instance = config.instance()?;
    let service = Service::new(platform::service_info!("data-api"), config.server.clone());
    let metrics = StoreMetrics::new();
    metrics.register(service.metrics());
    let store_config = StoreConfig {
        log_dir: config.log_dir.clone(),
        instance,
        segment_bytes: config.log_segment_bytes,
        retention_bytes: config.log_retention_bytes,
        format_version: config.log_format_version,
    };
    let (store, report) =
        LogStore::open(store_config, io, metrics)
            .await
            .map_err(|err| match err {
                OpenError::Locked { .. } => ConfigError::new("INSTANCE_ID", err.to_string()),
                OpenError::UnsupportedFormat(_) => ConfigError::new("LOG_DIR", err.to_string()),
            })?;
    match &report.unavailable {
        Some(err) => tracing::error!(
            dir = %store.dir().display(),
            error = %err,
            "starting without a writable log store; /readyz answers 503 until it recovers"
        ),
        None => tracing::info!(dir = %store.dir().display(), "log store open"),
    }
    store.start_orphan_retention(
        store::OrphanPolicy {
            max_age: config.log_orphan_retention,
            shared_budget: config.log_shared_retention_bytes,
            interval: config.log_orphan_sweep_interval,
        },
        &[import::LEGACY_INSTANCE],
    );
    let health = store.health();
    service.readiness().add_check("log_store", move || {
        health.check().map_err(|e| e.to_string())
    });
    let state = api::AppState {
        store,
        simulated_latency: Duration::from_millis(config.simulated_latency_ms),
    };
    // API_TOKENS_FILE: every route of the API behind the token check (the common endpoints stay
    // open).
    let callers =
        platform::callers::Callers::from_file(&service, config.api_tokens_file.as_deref())?;
    let service = api::routes(state)
        .into_iter()
        .fold(service, |service, (path, handler)| {
            service.route(path, callers.protect(handler))
        });
    Ok(service.openapi(api::api_doc()))
}
