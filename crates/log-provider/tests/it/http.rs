//! log-provider over real HTTP on port 0 (the common endpoints are platform's own tests).

use log_provider::{service, Config};
use secrecy::SecretString;
use test_support::TestApp;

const KEY: &str = "test-provider-key-0123456789";

async fn start() -> (String, TestApp) {
    let config = Config::local(SecretString::from(KEY.to_string()));
    let app = TestApp::start(service(config).await.expect("valid")).await;
    (app.url(""), app)
}

async fn json(response: reqwest::Response) -> serde_json::Value {
    assert_eq!(
        response.headers()["content-type"],
        "application/json",
        "errors and documents are JSON"
    );
    response.json().await.unwrap()
}

#[tokio::test]
async fn serves_json_lines_with_the_right_key() {
    let (base, _s) = start().await;
    let response = reqwest::Client::new()
        .get(format!(
            "{base}/v1/logs?limit=1500&since=2026-01-01T00:00:00Z"
        ))
        .bearer_auth(KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "application/x-ndjson");
    let text = response.text().await.unwrap();
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).expect("every line is JSON"))
        .collect();
    assert_eq!(lines.len(), 1500);
    assert_eq!(lines[0]["ts"], "2026-01-01T00:00:00Z");
    assert_eq!(lines[1499]["seq"], 1499);
}

#[tokio::test]
async fn refuses_missing_or_wrong_key_with_json_401() {
    let (base, _s) = start().await;
    let client = reqwest::Client::new();
    for request in [
        client.get(format!("{base}/v1/logs")),
        client.get(format!("{base}/v1/logs")).bearer_auth("wrong"),
        client
            .get(format!("{base}/v1/logs"))
            .bearer_auth(format!("{KEY}x")),
    ] {
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), 401);
        let body = json(response).await;
        assert_eq!(body["code"], "invalid_key");
        assert!(!body.to_string().contains(KEY));
    }
}

#[tokio::test]
async fn invalid_query_is_a_json_400() {
    let (base, _s) = start().await;
    let client = reqwest::Client::new();
    for (query, code) in [
        ("limit=abc", "invalid_limit"),
        ("limit=0", "invalid_limit"),
        ("limit=99999999999", "invalid_limit"),
        ("since=tomorrow", "invalid_since"),
    ] {
        let response = client
            .get(format!("{base}/v1/logs?{query}"))
            .bearer_auth(KEY)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 400, "{query}");
        assert_eq!(json(response).await["code"], code, "{query}");
    }
}

#[tokio::test]
async fn documents_its_route_and_names_itself() {
    let (base, _s) = start().await;
    let client = reqwest::Client::new();
    let doc = json(
        client
            .get(format!("{base}/openapi.json"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert!(
        doc["paths"].get("/v1/logs").is_some(),
        "/v1/logs documented"
    );
    assert!(doc["components"]["securitySchemes"].get("bearer").is_some());
    let version = json(client.get(format!("{base}/version")).send().await.unwrap()).await;
    assert_eq!(version["name"], "log-provider");
}

#[test]
fn check_config_needs_the_key_and_never_prints_it() {
    let bin = env!("CARGO_BIN_EXE_log-provider");
    let (code, out) = test_support::check_config(bin, &[], &[("PROVIDER_KEY", KEY)]);
    assert_eq!((code, out.trim()), (0, "configuration ok"));
    let (code, out) = test_support::check_config(bin, &[], &[]);
    assert_eq!(code, 2, "{out}");
    assert_eq!(out.trim().lines().count(), 1, "one line: {out}");
    assert!(out.contains("PROVIDER_KEY"), "{out}");
    let (code, out) = test_support::check_config(
        bin,
        &[],
        &[("PROVIDER_KEY", KEY), ("PROVIDER_MAX_LIMIT", "0")],
    );
    assert_eq!(code, 2, "{out}");
    assert!(
        out.contains("PROVIDER_MAX_LIMIT") && !out.contains(KEY),
        "{out}"
    );
}
