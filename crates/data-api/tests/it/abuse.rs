//! HTTP abuse against the real data-api on loopback port 0: oversized heads and bodies (declared
//! and chunked), slowloris, silent connections, malformed requests and bad JSON records.

use test_support::http_abuse as abuse;

use std::net::SocketAddr;
use std::time::Duration;

use test_support::TestApp;

const MAX_HEADER_BYTES: u32 = 8192;
const MAX_BODY_BYTES: usize = 16 * 1024;

struct Server {
    addr: SocketAddr,
    _app: TestApp,
    _dir: tempfile::TempDir,
}

async fn start(max_connections: u32) -> Server {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut config = data_api::Config::local(dir.path().to_path_buf());
    config.instance_id = Some("abuse".to_string());
    config.simulated_latency_ms = 0;
    config.server.max_header_bytes = MAX_HEADER_BYTES;
    config.server.max_body_bytes = MAX_BODY_BYTES;
    config.server.header_read_timeout = Duration::from_secs(1);
    config.server.max_connections = max_connections;
    let service = data_api::service(config).await.expect("starts");
    let app = TestApp::start(service).await;
    Server {
        addr: app.addr,
        _app: app,
        _dir: dir,
    }
}

#[tokio::test]
async fn headers_over_the_limit_get_431() {
    let server = start(10_000).await;
    abuse::headers_over_limit_get_431(server.addr, MAX_HEADER_BYTES as usize).await;
}

#[tokio::test]
async fn bodies_over_the_limit_get_413_declared_or_chunked() {
    let server = start(10_000).await;
    abuse::declared_body_over_limit_gets_413(server.addr, "/logs", MAX_BODY_BYTES).await;
    abuse::chunked_body_over_limit_gets_413(server.addr, "/logs", MAX_BODY_BYTES).await;
}

#[tokio::test]
async fn slowloris_is_closed_while_others_are_served() {
    let server = start(10_000).await;
    abuse::slowloris_is_closed_while_others_are_served(server.addr, Duration::from_millis(200))
        .await;
}

#[tokio::test]
async fn silent_connections_cannot_hold_every_slot() {
    let server = start(16).await;
    abuse::silent_connections_are_closed(server.addr, 16).await;
}

#[tokio::test]
async fn malformed_requests_are_refused_without_a_crash() {
    let server = start(10_000).await;
    abuse::malformed_requests_are_refused(server.addr).await;
}

#[tokio::test]
async fn bad_records_get_json_errors() {
    let server = start(10_000).await;
    let too_long = format!("{{\"message\":\"{}\"}}", "m".repeat(8193));
    let deep = format!("{}{}", "[".repeat(5000), "]".repeat(5000));
    let json = "application/json";
    let cases: Vec<(&str, &str, &str, &[u8], u16)> = vec![
        ("POST", "/logs", json, b"", 400),
        ("POST", "/logs", json, b"{", 400),
        ("POST", "/logs", json, b"null", 400),
        ("POST", "/logs", json, b"[\"message\"]", 400),
        ("POST", "/logs", json, b"{\"message\": 7}", 400),
        ("POST", "/logs", json, b"{\"message\": \"\xff\xfe\"}", 400),
        ("POST", "/logs", json, b"{\"message\": \"\\ud800\"}", 400),
        (
            "POST",
            "/logs",
            json,
            b"{\"message\": \"a\", \"extra\": 1}",
            400,
        ),
        (
            "POST",
            "/logs",
            json,
            b"{\"message\": \"a\"}{\"message\": \"b\"}",
            400,
        ),
        ("POST", "/logs", json, deep.as_bytes(), 400),
        ("POST", "/logs", json, b"{\"message\": \"\"}", 422),
        ("POST", "/logs", json, too_long.as_bytes(), 422),
        (
            "POST",
            "/logs",
            json,
            b"{\"message\": \"a\", \"level\": \"fatal\"}",
            422,
        ),
        ("POST", "/logs", "text/plain", b"{\"message\": \"a\"}", 415),
        (
            "POST",
            "/logs",
            "application/jsonx",
            b"{\"message\": \"a\"}",
            415,
        ),
        ("GET", "/logs?limit=0", json, b"", 400),
        ("GET", "/logs?limit=1001", json, b"", 400),
        ("GET", "/logs?limit=%ff", json, b"", 400),
        ("GET", "/logs?since=%00", json, b"", 400),
        ("PUT", "/logs", json, b"{\"message\": \"a\"}", 405),
    ];
    abuse::bad_bodies_get_json_errors(server.addr, &cases).await;
    // A control character or newline in a message is stored escaped, as one record.
    let body = br#"{"message": "a\nb\u0000c\r\n{}\n"}"#;
    let mut request = format!(
        "POST /logs HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    request.extend_from_slice(body);
    let answer = abuse::send(server.addr, &request).await;
    assert_eq!(answer.status, Some(201), "{answer:?}");
    let listed = abuse::get(server.addr, "/logs?limit=10").await;
    let records: serde_json::Value = serde_json::from_slice(&listed.body).expect("JSON");
    assert_eq!(
        records["records"].as_array().map(Vec::len),
        Some(1),
        "{records}"
    );
    assert_eq!(records["records"][0]["message"], "a\nb\u{0}c\r\n{}\n");
}
