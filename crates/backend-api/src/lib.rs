//! `backend-api`: the legacy simulated operation (`/api_1`, `/health_check`) and the download of
//! logs from the external provider (`/download_external_logs`).

mod config;
mod external_logs;
mod rate_limit;
mod simulated;

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use axum::routing::get;
use platform::config::ConfigError;
use utoipa::OpenApi;

pub use config::{Config, DEFAULT_EXTERNAL_LOGS_MAX_LIMIT};

/// Local default address (127.0.0.1:5000, the legacy service's port); containers set LISTEN_ADDR.
pub const DEFAULT_ADDR: SocketAddr =
    SocketAddr::new(std::net::IpAddr::V4(Ipv4Addr::LOCALHOST), 5000);

#[derive(OpenApi)]
#[openapi(
    paths(simulated::api_1, simulated::health_check, external_logs::download),
    components(schemas(external_logs::ProviderLogLine))
)]
struct Api;

/// The document as served: `limit`'s range is the configured EXTERNAL_LOGS_MAX_LIMIT.
fn api_doc(max_limit: u64) -> utoipa::openapi::OpenApi {
    let mut doc = Api::openapi();
    platform::openapi::bound_query_integer(
        &mut doc,
        "/download_external_logs",
        "limit",
        1,
        max_limit,
    );
    doc
}

/// Validates the configuration and assembles the service; the caller binds and serves it.
pub async fn service(config: Config) -> Result<platform::Service, ConfigError> {
    platform::config::Validate::validate(&config)?;
    let (integration, warnings) = config.integration()?;
    for warning in &warnings.0 {
        tracing::warn!("{warning}");
    }
    match &integration {
        Some(i) => tracing::info!(provider = %i.url, "external log integration enabled"),
        None => tracing::info!("external log integration disabled (EXTERNAL_LOGS_URL unset)"),
    }
    let service = platform::Service::new(
        platform::service_info!("backend-api"),
        config.server.clone(),
    );
    let metrics = external_logs::UpstreamMetrics::register(service.metrics());
    let watch = |path: &std::path::Path| {
        service.watch_secret("external_integration_key", path, config::authorization)
    };
    let callers =
        platform::callers::Callers::from_file(&service, config.api_tokens_file.as_deref())?;
    let access = external_logs::Access {
        callers,
        limit: rate_limit::DownloadLimit::new(config.download_rate_limit),
    };
    let external_logs =
        external_logs::ExternalLogs::new(integration, &config, metrics, watch, access)?;
    let work = simulated::SimulatedWork {
        latency: Duration::from_millis(config.simulated_latency_ms),
    };
    Ok(service
        .route("/api_1", get(simulated::api_1).with_state(work))
        .instant_route("/health_check", get(simulated::health_check))
        .route(
            "/download_external_logs",
            get(external_logs::download).with_state(external_logs),
        )
        .openapi(api_doc(config.max_limit)))
}
