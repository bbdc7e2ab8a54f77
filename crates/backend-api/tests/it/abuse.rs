//! HTTP abuse against the real backend-api (wired to a real log-provider) on loopback port 0:
//! oversized heads and bodies, slowloris, silent connections, malformed requests and hostile
//! query strings passed on to the provider.

use test_support::http_abuse as abuse;

use std::net::SocketAddr;
use std::time::Duration;

use backend_api::{service, Config};
use secrecy::SecretString;
use test_support::TestApp;

const KEY: &str = "abuse-test-integration-key-5d1e";
const MAX_HEADER_BYTES: u32 = 8192;
const MAX_BODY_BYTES: usize = 4096;

struct Stack {
    backend: SocketAddr,
    _apps: [TestApp; 2],
}

async fn start(max_connections: u32) -> Stack {
    let provider = log_provider::Config::local(SecretString::from(KEY.to_string()));
    let provider = TestApp::start(log_provider::service(provider).await.expect("valid")).await;
    let provider_addr = provider.addr;
    let mut config = Config::local();
    config.simulated_latency_ms = 0;
    config.external_logs_url = Some(
        format!("http://{provider_addr}/v1/logs")
            .parse()
            .expect("URL"),
    );
    config.external_integration_key = Some(SecretString::from(KEY.to_string()));
    config.retries = 0;
    config.server.max_header_bytes = MAX_HEADER_BYTES;
    config.server.max_body_bytes = MAX_BODY_BYTES;
    config.server.header_read_timeout = Duration::from_secs(1);
    config.server.max_connections = max_connections;
    let backend = TestApp::start(service(config).await.expect("valid")).await;
    Stack {
        backend: backend.addr,
        _apps: [provider, backend],
    }
}

#[tokio::test]
async fn headers_over_the_limit_get_431() {
    let stack = start(10_000).await;
    abuse::headers_over_limit_get_431(stack.backend, MAX_HEADER_BYTES as usize).await;
}

#[tokio::test]
async fn bodies_over_the_limit_get_413() {
    let stack = start(10_000).await;
    abuse::declared_body_over_limit_gets_413(stack.backend, "/api_1", MAX_BODY_BYTES).await;
}

#[tokio::test]
async fn slowloris_is_closed_while_others_are_served() {
    let stack = start(10_000).await;
    abuse::slowloris_is_closed_while_others_are_served(stack.backend, Duration::from_millis(200))
        .await;
}

#[tokio::test]
async fn silent_connections_cannot_hold_every_slot() {
    let stack = start(16).await;
    abuse::silent_connections_are_closed(stack.backend, 16).await;
}

#[tokio::test]
async fn malformed_requests_are_refused_without_a_crash() {
    let stack = start(10_000).await;
    abuse::malformed_requests_are_refused(stack.backend).await;
}

/// Whatever the query, the answer is the provider's body or a JSON error (a bad `since` or
/// `limit` refused before calling out); never a crash, and the key never comes back.
#[tokio::test]
async fn hostile_queries_get_the_providers_answer_or_a_json_error() {
    let stack = start(10_000).await;
    let queries = [
        "limit=0",
        "limit=99999999999999999999999",
        "limit=%ff%fe&since=%00",
        "since=yesterday&since=today",
        "a=%zz&b=%&c==&&&",
        "limit=2&#fragment",
        "limit=2&Authorization=Bearer%20x",
    ];
    for query in queries {
        let answer = abuse::get(stack.backend, &format!("/download_external_logs?{query}")).await;
        let status = answer.status.expect("an answer");
        assert!(
            status == 200 || status == 400,
            "{query}: {status} {answer:?}"
        );
        if status == 400 {
            let code = answer.json_error()["code"].clone();
            assert!(
                [
                    "invalid_limit",
                    "invalid_since",
                    "bad_request",
                    "provider_refused_request"
                ]
                .contains(&code.as_str().unwrap_or_default()),
                "{query}: {code}"
            );
        }
        assert!(!answer.head.contains(KEY) && !String::from_utf8_lossy(&answer.body).contains(KEY));
    }
    abuse::assert_serving(stack.backend).await;
}
