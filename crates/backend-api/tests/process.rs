//! The real binary: configuration errors, secret hygiene over logs and responses, and graceful
//! shutdown under SIGTERM.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;

const BIN: &str = env!("CARGO_BIN_EXE_backend-api");

fn run_to_exit(envs: &[(&str, &str)]) -> (i32, String) {
    let output = Command::new(BIN)
        .env_clear()
        .envs(envs.iter().copied())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&output.stderr).to_string()
        + &String::from_utf8_lossy(&output.stdout);
    (output.status.code().unwrap_or(-1), text)
}

#[test]
fn bad_configuration_stops_with_exit_2_and_one_line() {
    let cases: &[(&[(&str, &str)], &str)] = &[
        (&[("LISTEN_ADDR", "localhost:five")], "LISTEN_ADDR"),
        (
            &[("EXTERNAL_LOGS_URL", "http://127.0.0.1:9/v1/logs")],
            "EXTERNAL_INTEGRATION_KEY",
        ),
        (
            &[("SIMULATED_LATENCY_MS", "half a second")],
            "SIMULATED_LATENCY_MS",
        ),
        (
            &[
                ("EXTERNAL_LOGS_URL", "ftp://x/"),
                ("EXTERNAL_INTEGRATION_KEY", KEY),
            ],
            "EXTERNAL_LOGS_URL",
        ),
        (
            &[
                ("EXTERNAL_LOGS_URL", "http://x/"),
                ("EXTERNAL_INTEGRATION_KEY", "bad key with spaces"),
            ],
            "EXTERNAL_INTEGRATION_KEY",
        ),
    ];
    for (envs, variable) in cases {
        let (code, output) = run_to_exit(envs);
        assert_eq!(code, 2, "{envs:?}: {output}");
        assert_eq!(output.trim().lines().count(), 1, "one line: {output}");
        assert!(output.contains(variable), "names {variable}: {output}");
        assert!(
            !output.contains(KEY) && !output.contains("bad key"),
            "no secret: {output}"
        );
    }
}

/// A child backend-api whose stdout and stderr are captured line by line.
struct Child_ {
    child: Child,
    base: String,
    output: Arc<Mutex<String>>,
}

fn spawn_backend(envs: &[(&str, &str)]) -> Child_ {
    let mut child = Command::new(BIN)
        .env_clear()
        .env("LISTEN_ADDR", "127.0.0.1:0")
        .env("LOG_FORMAT", "json")
        .env("RUST_LOG", "debug")
        .envs(envs.iter().copied())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let output = Arc::new(Mutex::new(String::new()));
    let (addr_tx, addr_rx) = std::sync::mpsc::channel();
    for stream in [
        Box::new(child.stdout.take().unwrap()) as Box<dyn std::io::Read + Send>,
        Box::new(child.stderr.take().unwrap()),
    ] {
        let (output, addr_tx) = (output.clone(), addr_tx.clone());
        std::thread::spawn(move || {
            for line in BufReader::new(stream).lines().map_while(Result::ok) {
                if let Ok(event) = serde_json::from_str::<serde_json::Value>(&line) {
                    if event["message"] == "listening" {
                        let _ = addr_tx.send(event["local_addr"].as_str().unwrap().to_string());
                    }
                }
                output.lock().unwrap().push_str(&line);
                output.lock().unwrap().push('\n');
            }
        });
    }
    let addr = addr_rx
        .recv_timeout(Duration::from_secs(30))
        .expect("the bound address is logged");
    Child_ {
        child,
        base: format!("http://{addr}"),
        output,
    }
}

fn sigterm(child: &Child) {
    // SAFETY: kill(2) with a pid we own and a valid signal number.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
}

/// Drives every path, error paths included, against providers that accept the key, reject it,
/// are down and are slow, and searches every response and log line for the key.
#[tokio::test(flavor = "multi_thread")]
async fn the_key_never_appears_in_logs_responses_or_metrics() {
    let (good, _g) = start_provider(KEY, Duration::ZERO).await;
    let (other, _o) = start_provider("a-different-provider-key", Duration::ZERO).await;
    let (slow, _s) = start_provider(KEY, Duration::from_secs(20)).await;
    let down = closed_port_url().await;
    let mut seen = String::new();
    for provider in [good, other, slow, down] {
        let mut backend = spawn_backend(&[
            ("EXTERNAL_LOGS_URL", provider.as_str()),
            ("EXTERNAL_INTEGRATION_KEY", KEY),
            ("EXTERNAL_LOGS_TIMEOUT", "300ms"),
            ("SIMULATED_LATENCY_MS", "0"),
        ]);
        for path in [
            "/download_external_logs?limit=5",
            "/api_1",
            "/readyz",
            "/version",
            "/openapi.json",
            "/nope",
            "/metrics",
        ] {
            let response = reqwest::get(format!("{}{path}", backend.base))
                .await
                .unwrap();
            seen.push_str(&format!("{:?}", response.headers()));
            seen.push_str(&response.text().await.unwrap());
        }
        sigterm(&backend.child);
        assert!(backend.child.wait().unwrap().success());
        seen.push_str(&backend.output.lock().unwrap());
    }
    // The legacy variable name goes through the same path.
    let mut legacy = spawn_backend(&[
        ("EXTERNAL_LOGS_URL", "http://127.0.0.1:9/v1/logs"),
        ("EXTERNAL_INTGERATION_KEY", KEY),
    ]);
    sigterm(&legacy.child);
    assert!(legacy.child.wait().unwrap().success());
    let legacy_output = legacy.output.lock().unwrap().clone();
    assert!(
        legacy_output.contains("EXTERNAL_INTGERATION_KEY is deprecated"),
        "{legacy_output}"
    );
    seen.push_str(&legacy_output);

    for code in [
        "provider_rejected_key",
        "provider_unavailable",
        "provider_timeout",
        "completed: ",
    ] {
        assert!(seen.contains(code), "the run exercised {code}");
    }
    assert!(!seen.contains(KEY), "the key leaked");
}

/// SIGTERM with 100 `/api_1` requests in flight: /readyz turns 503 during the drain, every
/// request still answers 200, and the process exits 0.
#[tokio::test(flavor = "multi_thread")]
async fn sigterm_drains_in_flight_requests_and_exits_0() {
    const IN_FLIGHT: usize = 100;
    let mut backend = spawn_backend(&[("SIMULATED_LATENCY_MS", "3000"), ("DRAIN_PERIOD", "4s")]);
    let client = reqwest::Client::new();
    let requests: Vec<_> = (0..IN_FLIGHT)
        .map(|_| tokio::spawn(client.get(format!("{}/api_1", backend.base)).send()))
        .collect();
    loop {
        let page = client
            .get(format!("{}/metrics", backend.base))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        if metric(&page, "http_requests_in_flight").unwrap_or(0.0) >= (IN_FLIGHT + 1) as f64 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    sigterm(&backend.child);
    let ready = loop {
        let response = client
            .get(format!("{}/readyz", backend.base))
            .send()
            .await
            .unwrap();
        if response.status() == 503 {
            break response.json::<serde_json::Value>().await.unwrap();
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    assert_eq!(ready["checks"]["draining"], "shutting down");
    for request in requests {
        let response = request.await.unwrap().unwrap();
        assert_eq!(response.status(), 200);
        assert!(response.text().await.unwrap().starts_with("completed: "));
    }
    let status = tokio::task::spawn_blocking(move || backend.child.wait())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(status.code(), Some(0));
}

/// A second SIGTERM (after a pause, so it is not a duplicate delivery of the first) cuts the
/// graceful stop short: the process exits at once with 130 while a request is still running.
#[tokio::test(flavor = "multi_thread")]
async fn a_second_signal_exits_at_once() {
    let mut backend = spawn_backend(&[
        ("SIMULATED_LATENCY_MS", "600000"),
        ("SHUTDOWN_TIMEOUT", "600s"),
    ]);
    let client = reqwest::Client::new();
    let _stuck = tokio::spawn(client.get(format!("{}/api_1", backend.base)).send());
    loop {
        let page = client
            .get(format!("{}/metrics", backend.base))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        if metric(&page, "http_requests_in_flight").unwrap_or(0.0) >= 2.0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    sigterm(&backend.child);
    tokio::time::sleep(Duration::from_secs(1)).await;
    sigterm(&backend.child);
    let status = tokio::task::spawn_blocking(move || backend.child.wait())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(status.code(), Some(130));
}
