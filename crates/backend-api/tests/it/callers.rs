//! Caller authentication and per-caller rate limits on the real binary: API_TOKENS_FILE and
//! DOWNLOAD_RATE_LIMIT against the real log-provider.

use std::process::Command;
use std::time::Duration;

use crate::common::*;
use test_support::ServiceProcess;

const BIN: &str = env!("CARGO_BIN_EXE_backend-api");
const CI_TOKEN: &str = "ci-token-5b1f0c9e77d24a8e";
const OPS_TOKEN: &str = "ops-token-93c4de0a18f6b2c7";
/// Per minute: one request a second comes back after a burst of 60.
const LIMIT: u32 = 60;

async fn download(
    client: &reqwest::Client,
    backend: &ServiceProcess,
    token: Option<&str>,
) -> reqwest::Response {
    let mut request = client.get(backend.url("/download_external_logs?limit=1"));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    request.send().await.unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn tokens_are_required_reloaded_live_and_rate_limited_per_caller() {
    let (provider, _p) = start_provider(KEY, Duration::ZERO).await;
    let dir = tempfile::tempdir().unwrap();
    let tokens = dir.path().join("tokens");
    std::fs::write(&tokens, format!("ci-reader:{CI_TOKEN}\nops:{OPS_TOKEN}\n")).unwrap();
    let mut command = Command::new(BIN);
    command
        .env_clear()
        .env("RUST_LOG", "debug")
        .env("EXTERNAL_LOGS_URL", &provider)
        .env("EXTERNAL_INTEGRATION_KEY", KEY)
        .env("API_TOKENS_FILE", &tokens)
        .env("DOWNLOAD_RATE_LIMIT", LIMIT.to_string());
    let mut backend = ServiceProcess::start(command);
    let client = reqwest::Client::new();
    let mut seen = String::new();

    for (token, label) in [(None, "no token"), (Some("wrong-token"), "a wrong token")] {
        let response = download(&client, &backend, token).await;
        assert_eq!(response.status(), 401, "{label}");
        assert_eq!(response.headers()["www-authenticate"], "Bearer");
        let body = json(response).await;
        assert_eq!(body["code"], "invalid_token", "{label}: {body}");
    }
    let response = download(&client, &backend, Some(CI_TOKEN)).await;
    assert_eq!(response.status(), 200);
    seen.push_str(&response.text().await.unwrap());
    // Open routes stay open.
    for path in ["/healthz", "/readyz", "/metrics"] {
        assert_eq!(
            client.get(backend.url(path)).send().await.unwrap().status(),
            200,
            "{path}"
        );
    }

    // ci-reader removed from the file (edited in place): refused after the reload (bounded: 15 s).
    std::fs::write(&tokens, format!("ops:{OPS_TOKEN}\n")).unwrap();
    let mut refused = false;
    for _ in 0..150 {
        if download(&client, &backend, Some(CI_TOKEN)).await.status() == 401 {
            refused = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(refused, "a removed token still worked after 15 s");

    // A burst over the limit (bounded: twice the allowance): 429 with Retry-After.
    let mut limited = None;
    for _ in 0..2 * LIMIT {
        let response = download(&client, &backend, Some(OPS_TOKEN)).await;
        match response.status().as_u16() {
            200 => seen.push_str(&response.text().await.unwrap()),
            429 => {
                limited = Some(response);
                break;
            }
            other => panic!("unexpected {other}"),
        }
    }
    let limited = limited.expect("no 429 within twice the allowance");
    let retry_after: u64 = limited.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(retry_after >= 1);
    let body = json(limited).await;
    assert_eq!(body["code"], "rate_limited");
    seen.push_str(&body.to_string());
    // After the window it says, the caller is served again.
    tokio::time::sleep(Duration::from_secs(retry_after)).await;
    assert_eq!(
        download(&client, &backend, Some(OPS_TOKEN)).await.status(),
        200
    );

    let metrics = client
        .get(backend.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for series in [
        r#"backend_download_requests_total{caller="ops",outcome="rate_limited"} 1"#,
        r#"backend_download_requests_total{caller="unknown",outcome="unauthorized"}"#,
        r#"secret_reloads_total{secret="api_tokens",outcome="ok"} 1"#,
    ] {
        assert!(metrics.contains(series), "{series} in\n{metrics}");
    }
    seen.push_str(&metrics);
    backend.signal(libc::SIGTERM);
    assert!(backend.wait().success());
    let output = backend.output();
    assert!(
        output.contains(r#""caller":"ops""#),
        "the caller's name is logged: {output}"
    );
    seen.push_str(&output);
    for token in [CI_TOKEN, OPS_TOKEN, KEY] {
        assert!(!seen.contains(token), "a token leaked");
    }
}

/// A missing or bad API_TOKENS_FILE stops --check-config in one line naming it, never a token.
#[test]
fn a_bad_tokens_file_fails_the_check() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("tokens");
    std::fs::write(&bad, format!("ci-reader {CI_TOKEN}\n")).unwrap();
    let missing = dir.path().join("missing");
    for path in [&bad, &missing] {
        let (code, output) =
            test_support::check_config(BIN, &[], &[("API_TOKENS_FILE", path.to_str().unwrap())]);
        assert_eq!(code, 2, "{output}");
        assert_eq!(output.trim().lines().count(), 1, "{output}");
        assert!(
            output.contains("API_TOKENS_FILE") && !output.contains(CI_TOKEN),
            "{output}"
        );
    }
}
