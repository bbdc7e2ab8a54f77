//! `log-provider`: a stand-in for the external log provider that backend-api downloads from.
//!
//! `GET /v1/logs?since=&limit=` answers generated log lines as JSON Lines, streamed in chunks so
//! that a large answer costs constant memory. Every request must carry
//! `Authorization: Bearer <key>` with one of the accepted keys (PROVIDER_KEY, or the lines of
//! PROVIDER_KEY_FILE, reloaded live), compared in constant time.
//!
//! `log-provider dev-certs` ([`dev_certs`]) makes a dev CA and a server certificate for it,
//! kept from run to run, so compose serves the stand-in over HTTPS as a real provider is.

mod auth;
mod config;
pub mod dev_certs;
mod logs;
mod tls;

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;

use axum::routing::get;
use platform::config::ConfigError;
use utoipa::OpenApi;

pub use config::{Config, KeysSource, DEFAULT_MAX_LIMIT};
/// The query parser, public for property tests of outside input.
pub use logs::LogsRequest;

/// Local default address (127.0.0.1:5002, next to backend-api and data-api); containers set LISTEN_ADDR.
pub const DEFAULT_ADDR: SocketAddr =
    SocketAddr::new(std::net::IpAddr::V4(Ipv4Addr::LOCALHOST), 5002);

#[derive(OpenApi)]
#[openapi(
    paths(logs::download),
    components(schemas(logs::LogLine)),
    // Only /v1/logs needs the key (declared on the path); the common endpoints are open.
    modifiers(&BearerAuth)
)]
struct Api;

struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        let components = doc.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// Assembles the service; the caller binds and serves it. It serves HTTP/2 next to HTTP/1, as an
/// external provider may.
pub async fn service(config: Config) -> Result<platform::Service, ConfigError> {
    let source = config.keys()?;
    let tls = config.tls()?;
    let service = platform::Service::new(
        platform::service_info!("log-provider"),
        config.server.clone(),
    );
    let keys = match source {
        KeysSource::Value(keys) => platform::Reloadable::fixed(keys),
        KeysSource::File(path) => service
            .watch_secret("provider_keys", &path, config::key_set)
            .map_err(|err| ConfigError::new("PROVIDER_KEY_FILE", err.to_string()))?,
    };
    let state = logs::LogsState {
        keys: Arc::new(auth::ProviderKeys::new(keys)),
        max_limit: config.max_limit,
        first_byte_delay: config.first_byte_delay,
    };
    let service = match tls {
        None => service,
        Some(files) => {
            let key = files.key.clone();
            let current = service
                .watch_secret("tls_certificate", &files.cert, move |pem| {
                    tls::server_config(pem, &key)
                })
                .map_err(|err| ConfigError::new("TLS_CERT_FILE", err.to_string()))?;
            tracing::info!(cert = %files.cert.display(), "serving HTTPS");
            service.acceptor(tls::TlsAcceptor::new(current))
        }
    };
    Ok(service
        .route("/v1/logs", get(logs::download).with_state(state))
        .http2(platform::Http2Settings::default())
        .openapi(api_doc(config.max_limit)))
}

/// The document as served: `limit`'s range is the configured PROVIDER_MAX_LIMIT.
fn api_doc(max_limit: u64) -> utoipa::openapi::OpenApi {
    let mut doc = Api::openapi();
    platform::openapi::bound_query_integer(&mut doc, "/v1/logs", "limit", 1, max_limit);
    doc
}
