//! Shared test fixtures: the backend and real or deliberately broken providers on port 0.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::http::StatusCode;
use axum::routing::get;
use axum::Router;
use backend_api::Config;
use secrecy::SecretString;
use test_support::TestApp;

pub const KEY: &str = "it-key-7f3a9c2e41d8b6057e9a";

/// A running backend-api (stopped when dropped) and its base URL.
pub struct Backend {
    pub base: String,
    pub _app: TestApp,
}

/// Backend with no simulated latency and the given provider URL and key.
pub fn config(provider: Option<String>, key: Option<&str>) -> Config {
    let mut config = Config::local();
    config.simulated_latency_ms = 0;
    config.external_logs_url = provider.map(|u| u.parse().unwrap());
    config.external_integration_key = key.map(|k| SecretString::from(k.to_string()));
    config
}

pub async fn start_backend(config: Config) -> Backend {
    let app = TestApp::start(backend_api::service(config).await.expect("valid config")).await;
    Backend {
        base: app.url(""),
        _app: app,
    }
}

/// The real log-provider, in process, accepting `key`: its logs URL, and the app (stopped when
/// dropped).
pub async fn start_provider(key: &str, first_byte_delay: Duration) -> (String, TestApp) {
    let mut config = log_provider::Config::local(SecretString::from(key.to_string()));
    config.first_byte_delay = first_byte_delay;
    let app = TestApp::start(log_provider::service(config).await.expect("valid config")).await;
    (app.url("/v1/logs"), app)
}

/// A URL where nothing listens: bind a port, then close it.
pub async fn closed_port_url() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    format!("http://{addr}/v1/logs")
}

/// A provider that accepts connections and never answers.
pub async fn hung_provider() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((stream, _)) = listener.accept().await {
            held.push(stream);
        }
    });
    format!("http://{addr}/v1/logs")
}

/// A provider that always answers `status`, counting attempts.
pub async fn failing_provider(status: StatusCode) -> (String, Arc<AtomicUsize>) {
    let attempts = Arc::new(AtomicUsize::new(0));
    let counter = attempts.clone();
    let app = Router::new().route(
        "/v1/logs",
        get(move || {
            let counter = counter.clone();
            async move {
                counter.fetch_add(1, Ordering::SeqCst);
                (status, "{\"error\":\"upstream trouble\"}")
            }
        }),
    );
    let addr = serve(app).await;
    (format!("http://{addr}/v1/logs"), attempts)
}

pub async fn serve(app: Router) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    addr
}

/// The backend's `/metrics` page.
pub async fn metrics_page(base: &str) -> String {
    reqwest::get(format!("{base}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

pub async fn json(response: reqwest::Response) -> serde_json::Value {
    assert_eq!(response.headers()["content-type"], "application/json");
    response.json().await.unwrap()
}
