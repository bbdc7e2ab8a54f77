//! Caller authentication on the real binary: with API_TOKENS_FILE set, `GET /`, `POST /logs` and
//! `GET /logs` need a known bearer token (401 with a JSON error and WWW-Authenticate otherwise),
//! a token removed from the file is refused after the live reload, the common endpoints stay
//! open, and the caller's name (never a token) is in the access log.

use std::time::Duration;

use test_support::ServiceProcess;

use crate::common::{binary, BIN};

const WRITER_TOKEN: &str = "writer-token-0d9e4c1b7a3f5e28";
const READER_TOKEN: &str = "reader-token-6b2a8f0c4e1d9735";

fn request(
    client: &reqwest::Client,
    data: &ServiceProcess,
    route: &str,
    token: Option<&str>,
) -> reqwest::RequestBuilder {
    let mut request = match route {
        "POST /logs" => client
            .post(data.url("/logs"))
            .json(&serde_json::json!({"message": "from a caller"})),
        "GET /logs" => client.get(data.url("/logs?limit=5")),
        "GET /" => client.get(data.url("/")),
        other => panic!("no route {other}"),
    };
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    request
}

#[tokio::test(flavor = "multi_thread")]
async fn the_api_needs_a_known_token_and_the_common_endpoints_do_not() {
    let dir = tempfile::tempdir().unwrap();
    let tokens = dir.path().join("tokens");
    std::fs::write(
        &tokens,
        format!("writer:{WRITER_TOKEN}\nreader:{READER_TOKEN}\n"),
    )
    .unwrap();
    let mut command = binary(&dir.path().join("logs"), "data-api-test");
    command.env("API_TOKENS_FILE", &tokens);
    let mut data = ServiceProcess::start(command);
    data.wait_ready(200).await;
    let client = reqwest::Client::new();
    let mut seen = String::new();

    for route in ["POST /logs", "GET /logs", "GET /"] {
        for (token, label) in [(None, "no token"), (Some("wrong-token"), "a wrong token")] {
            let response = request(&client, &data, route, token).send().await.unwrap();
            assert_eq!(response.status(), 401, "{route} with {label}");
            assert_eq!(response.headers()["www-authenticate"], "Bearer");
            let body: serde_json::Value = response.json().await.unwrap();
            assert_eq!(body["code"], "invalid_token", "{route}: {body}");
        }
    }
    let created = request(&client, &data, "POST /logs", Some(WRITER_TOKEN))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    seen.push_str(&created.text().await.unwrap());
    for route in ["GET /logs", "GET /"] {
        let response = request(&client, &data, route, Some(READER_TOKEN))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{route}");
        seen.push_str(&response.text().await.unwrap());
    }
    for path in ["/healthz", "/readyz", "/metrics"] {
        let response = client.get(data.url(path)).send().await.unwrap();
        assert_eq!(response.status(), 200, "{path}");
        seen.push_str(&response.text().await.unwrap());
    }

    // writer removed (the file edited in place): refused after the reload (bounded: 15 s).
    std::fs::write(&tokens, format!("reader:{READER_TOKEN}\n")).unwrap();
    let mut refused = false;
    for _ in 0..150 {
        let status = request(&client, &data, "POST /logs", Some(WRITER_TOKEN))
            .send()
            .await
            .unwrap()
            .status();
        if status == 401 {
            refused = true;
            break;
        }
        assert_eq!(status, 201);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(refused, "a removed token still worked after 15 s");
    let still = request(&client, &data, "GET /logs", Some(READER_TOKEN))
        .send()
        .await
        .unwrap();
    assert_eq!(still.status(), 200);

    data.signal(libc::SIGTERM);
    assert!(data.wait().success());
    let output = data.output();
    let access: Vec<serde_json::Value> = output
        .lines()
        .filter_map(|line| serde_json::from_str(line).ok())
        .filter(|line: &serde_json::Value| line["target"] == "access_log")
        .collect();
    let post_by_writer = access.iter().any(|line| {
        line["route"] == "/logs"
            && line["method"] == "POST"
            && line["status"] == 201
            && line["caller"] == "writer"
    });
    assert!(
        post_by_writer,
        "the caller's name is in the access log: {output}"
    );
    let refused_line = access
        .iter()
        .any(|line| line["status"] == 401 && line.get("caller").is_none());
    assert!(
        refused_line,
        "a refused request is logged without a caller: {output}"
    );
    seen.push_str(&output);
    for token in [WRITER_TOKEN, READER_TOKEN, "wrong-token"] {
        assert!(!seen.contains(token), "a token leaked");
    }
}

/// A missing or bad API_TOKENS_FILE stops --check-config in one line naming it, never a token.
#[test]
fn a_bad_tokens_file_fails_the_check() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("tokens");
    std::fs::write(&bad, format!("writer {WRITER_TOKEN}\n")).unwrap();
    let missing = dir.path().join("missing");
    let log_dir = dir.path().join("logs");
    for path in [&bad, &missing] {
        let (code, output) = test_support::check_config(
            BIN,
            &[],
            &[
                ("API_TOKENS_FILE", path.to_str().unwrap()),
                ("LOG_DIR", log_dir.to_str().unwrap()),
                ("INSTANCE_ID", "data-api-test"),
            ],
        );
        assert_eq!(code, 2, "{output}");
        assert_eq!(output.trim().lines().count(), 1, "{output}");
        assert!(
            output.contains("API_TOKENS_FILE") && !output.contains(WRITER_TOKEN),
            "{output}"
        );
    }
}
