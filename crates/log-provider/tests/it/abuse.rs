//! HTTP abuse against the real log-provider on loopback port 0: oversized heads and bodies,
//! slowloris, many idle connections, malformed requests and query parameters.

use test_support::http_abuse as abuse;

use std::net::SocketAddr;
use std::time::Duration;

use log_provider::{service, Config};
use secrecy::SecretString;
use test_support::TestApp;

const KEY: &str = "abuse-test-provider-key-0123456789";
const MAX_HEADER_BYTES: u32 = 8192;
const MAX_BODY_BYTES: usize = 4096;
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(1);

async fn start() -> (SocketAddr, TestApp) {
    start_with_max_connections(10_000).await
}

async fn start_with_max_connections(max_connections: u32) -> (SocketAddr, TestApp) {
    let mut config = Config::local(SecretString::from(KEY.to_string()));
    config.server.max_connections = max_connections;
    config.server.max_header_bytes = MAX_HEADER_BYTES;
    config.server.max_body_bytes = MAX_BODY_BYTES;
    config.server.header_read_timeout = HEADER_READ_TIMEOUT;
    let app = TestApp::start(service(config).await.expect("valid")).await;
    (app.addr, app)
}

#[tokio::test]
async fn headers_over_the_limit_get_431() {
    let (addr, _s) = start().await;
    abuse::headers_over_limit_get_431(addr, MAX_HEADER_BYTES as usize).await;
}

#[tokio::test]
async fn bodies_over_the_limit_get_413() {
    let (addr, _s) = start().await;
    abuse::declared_body_over_limit_gets_413(addr, "/v1/logs", MAX_BODY_BYTES).await;
}

#[tokio::test]
async fn slowloris_is_closed_while_others_are_served() {
    let (addr, _s) = start().await;
    abuse::slowloris_is_closed_while_others_are_served(addr, Duration::from_millis(200)).await;
}

#[tokio::test]
async fn two_thousand_idle_connections_do_not_starve_the_service() {
    let (addr, _s) = start().await;
    let growth =
        abuse::idle_connections_do_not_starve_the_service(addr, 2000, 256 * 1024 * 1024).await;
    eprintln!(
        "2000 idle connections: resident set grew by {} KiB",
        growth / 1024
    );
}

#[tokio::test]
async fn silent_connections_cannot_hold_every_slot() {
    let (addr, _s) = start_with_max_connections(32).await;
    abuse::silent_connections_are_closed(addr, 32).await;
}

#[tokio::test]
async fn malformed_requests_are_refused_without_a_crash() {
    let (addr, _s) = start().await;
    abuse::malformed_requests_are_refused(addr).await;
}

#[tokio::test]
async fn malformed_query_parameters_get_json_400() {
    let (addr, _s) = start().await;
    let queries = [
        ("limit=0", "invalid_limit"),
        ("limit=-1", "invalid_limit"),
        ("limit=18446744073709551616", "invalid_limit"),
        ("limit=%ff%fe", "invalid_limit"),
        ("limit=1e3", "invalid_limit"),
        ("since=%ff", "invalid_since"),
        ("since=9999-99-99T99:99:99Z", "invalid_since"),
        ("since=2026-01-01T00:00:00+25:00", "invalid_since"),
        ("since=2026-01-01%2000:00:00Z", "invalid_since"),
        ("since=2026-01-01T00:00:00", "invalid_since"),
    ];
    for (query, code) in queries {
        let request = format!(
            "GET /v1/logs?{query} HTTP/1.1\r\nHost: test\r\nAuthorization: Bearer {KEY}\r\nConnection: close\r\n\r\n"
        );
        let answer = abuse::send(addr, request.as_bytes()).await;
        assert_eq!(answer.status, Some(400), "{query}: {answer:?}");
        assert_eq!(answer.json_error()["code"], code, "{query}");
    }
    // Without the key, nothing about the query is revealed: 401 first.
    let answer = abuse::get(addr, "/v1/logs?limit=0").await;
    assert_eq!(answer.status, Some(401));
    assert_eq!(answer.json_error()["code"], "invalid_key");
    abuse::assert_serving(addr).await;
}
