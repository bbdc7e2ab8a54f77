//! The real binary: configuration errors, secret hygiene over logs and responses, and graceful
//! shutdown under SIGTERM.

use std::process::Command;
use std::time::Duration;

use crate::common::*;
use test_support::{eventually, wait_for_in_flight, ServiceProcess, READY_WAIT};

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
        // The key would travel in clear to a host that is not this machine.
        (
            &[
                ("EXTERNAL_LOGS_URL", "http://log-provider:5002/v1/logs"),
                ("EXTERNAL_INTEGRATION_KEY", KEY),
            ],
            "EXTERNAL_LOGS_URL",
        ),
        (
            &[
                ("EXTERNAL_LOGS_URL", "https://p/v1/logs"),
                ("EXTERNAL_INTEGRATION_KEY", KEY),
                ("EXTERNAL_LOGS_CA_FILE", "/nonexistent/ca.pem"),
            ],
            "EXTERNAL_LOGS_CA_FILE",
        ),
        (
            &[
                ("EXTERNAL_LOGS_URL", "https://p/v1/logs"),
                ("EXTERNAL_INTEGRATION_KEY", KEY),
                ("EXTERNAL_LOGS_CA_FILE", "/etc/hostname"),
            ],
            "EXTERNAL_LOGS_CA_FILE",
        ),
        (
            &[
                ("EXTERNAL_LOGS_URL", "https://p/v1/logs"),
                ("EXTERNAL_INTEGRATION_KEY", KEY),
                ("EXTERNAL_LOGS_CLIENT_CERT_FILE", "/etc/hostname"),
            ],
            "EXTERNAL_LOGS_CLIENT_KEY_FILE",
        ),
        (
            &[("EXTERNAL_LOGS_READ_IDLE_TIMEOUT", "0s")],
            "EXTERNAL_LOGS_READ_IDLE_TIMEOUT",
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

/// A child backend-api with debug logs captured.
fn spawn_backend(envs: &[(&str, &str)]) -> ServiceProcess {
    let mut command = Command::new(BIN);
    command
        .env_clear()
        .env("RUST_LOG", "debug")
        .envs(envs.iter().copied());
    ServiceProcess::start(command)
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
            ("EXTERNAL_LOGS_CONNECT_TIMEOUT", "100ms"),
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
            let response = reqwest::get(backend.url(path)).await.unwrap();
            seen.push_str(&format!("{:?}", response.headers()));
            seen.push_str(&response.text().await.unwrap());
        }
        backend.signal(libc::SIGTERM);
        assert!(backend.wait().success());
        seen.push_str(&backend.output());
    }
    // The legacy variable name goes through the same path.
    let mut legacy = spawn_backend(&[
        ("EXTERNAL_LOGS_URL", "http://127.0.0.1:9/v1/logs"),
        ("EXTERNAL_INTGERATION_KEY", KEY),
    ]);
    legacy.signal(libc::SIGTERM);
    assert!(legacy.wait().success());
    let legacy_output = legacy.output();
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
        .map(|_| tokio::spawn(client.get(backend.url("/api_1")).send()))
        .collect();
    wait_for_in_flight(&client, &backend.url(""), IN_FLIGHT).await;
    backend.signal(libc::SIGTERM);
    let ready = eventually(
        "/readyz answers 503 during the drain",
        READY_WAIT,
        || async {
            let response = client.get(backend.url("/readyz")).send().await.ok()?;
            if response.status() != 503 {
                return None;
            }
            response.json::<serde_json::Value>().await.ok()
        },
    )
    .await;
    assert_eq!(ready["checks"]["draining"], "shutting down");
    for request in requests {
        let response = request.await.unwrap().unwrap();
        assert_eq!(response.status(), 200);
        assert!(response.text().await.unwrap().starts_with("completed: "));
    }
    let (status, backend) = tokio::task::spawn_blocking(move || (backend.wait(), backend))
        .await
        .unwrap();
    assert_eq!(status.code(), Some(0));
    // Lines are written by a thread of their own; the guard main holds writes the queued ones
    // at exit, so the last line is in the log.
    let mut backend = backend;
    let log = backend.output();
    assert!(log.contains("stopped gracefully"), "the last line: {log}");
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
    let _stuck = tokio::spawn(client.get(backend.url("/api_1")).send());
    wait_for_in_flight(&client, &backend.url(""), 1).await;
    backend.signal(libc::SIGTERM);
    tokio::time::sleep(Duration::from_secs(1)).await;
    backend.signal(libc::SIGTERM);
    let status = tokio::task::spawn_blocking(move || backend.wait())
        .await
        .unwrap();
    assert_eq!(status.code(), Some(130));
}

#[test]
fn check_config_verdicts_without_binding() {
    let bin = BIN;
    // The address is taken: a start would fail, the check must not even try to bind.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let (code, out) = test_support::check_config(bin, &[], &[("LISTEN_ADDR", &addr)]);
    assert_eq!((code, out.trim()), (0, "configuration ok"));

    let integration = [
        ("EXTERNAL_LOGS_URL", "http://127.0.0.1:9/v1/logs"),
        ("EXTERNAL_INTEGRATION_KEY", KEY),
    ];
    let (code, out) = test_support::check_config(bin, &[], &integration);
    assert_eq!((code, out.trim()), (0, "configuration ok"));

    // The pair the charts once rendered: a start exits 2 on it, so the check must too.
    let (code, out) = test_support::check_config(
        bin,
        &[],
        &[("REQUEST_TIMEOUT", "30s"), ("EXTERNAL_LOGS_TIMEOUT", "30s")],
    );
    assert_eq!(code, 2, "{out}");
    assert_eq!(out.trim().lines().count(), 1, "one line: {out}");
    assert!(out.contains("EXTERNAL_LOGS_TIMEOUT"), "{out}");

    let (code, out) = test_support::check_config(bin, &[], &integration[..1]);
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("EXTERNAL_INTEGRATION_KEY"), "{out}");
    assert!(!out.contains(KEY), "no secret: {out}");
}

/// Plain HTTP beyond loopback: --check-config refuses it like a start does; the dev-only flag
/// lets it start, with a warning in the log.
#[test]
fn plaintext_beyond_loopback_needs_the_dev_flag() {
    let plaintext = [
        ("EXTERNAL_LOGS_URL", "http://log-provider:5002/v1/logs"),
        ("EXTERNAL_INTEGRATION_KEY", KEY),
    ];
    let (code, out) = test_support::check_config(BIN, &[], &plaintext);
    assert_eq!(code, 2, "{out}");
    assert_eq!(out.trim().lines().count(), 1, "one line: {out}");
    assert!(out.contains("EXTERNAL_LOGS_URL"), "{out}");
    assert!(!out.contains(KEY), "no secret: {out}");

    let allowed = [
        plaintext[0],
        plaintext[1],
        ("EXTERNAL_LOGS_ALLOW_PLAINTEXT", "true"),
    ];
    let (code, out) = test_support::check_config(BIN, &[], &allowed);
    assert_eq!((code, out.trim()), (0, "configuration ok"));
    let mut backend = spawn_backend(&allowed);
    let warning = backend.wait_for_log(|line| {
        line["level"] == "WARN"
            && line["message"]
                .as_str()
                .is_some_and(|m| m.contains("EXTERNAL_LOGS_ALLOW_PLAINTEXT"))
    });
    backend.signal(libc::SIGTERM);
    assert!(backend.wait().success());
    assert!(
        warning.is_some(),
        "a warning at start: {}",
        backend.output()
    );
}

/// The real binary's `/metrics`: OpenMetrics for Prometheus' own Accept header (and for none),
/// the classic text format, with metadata naming the counter samples, for a client that asks
/// only for `text/plain`.
#[tokio::test(flavor = "multi_thread")]
async fn metrics_content_type_follows_the_scrapers_accept() {
    let backend = spawn_backend(&[("SIMULATED_LATENCY_MS", "0")]);
    let client = reqwest::Client::new();
    client.get(backend.url("/api_1")).send().await.unwrap();
    let scrape = |accept: Option<&'static str>| {
        let mut request = client.get(backend.url("/metrics"));
        if let Some(accept) = accept {
            request = request.header("accept", accept);
        }
        async move {
            let response = request.send().await.unwrap();
            let content_type = response.headers()["content-type"]
                .to_str()
                .unwrap()
                .to_string();
            (content_type, response.text().await.unwrap())
        }
    };
    let prometheus = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";
    for accept in [Some(prometheus), None] {
        let (content_type, page) = scrape(accept).await;
        assert_eq!(
            content_type,
            "application/openmetrics-text; version=1.0.0; charset=utf-8"
        );
        assert!(page.contains("# TYPE http_requests counter\n"), "{page}");
        // The log writer's queue never filled here: nothing dropped, and it says so.
        assert!(page.contains("\nlog_lines_dropped_total 0\n"), "{page}");
        assert!(page.ends_with("# EOF\n"), "{page}");
    }
    let (content_type, page) = scrape(Some("text/plain;version=0.0.4")).await;
    assert_eq!(content_type, "text/plain; version=0.0.4; charset=utf-8");
    assert!(
        page.contains("# TYPE http_requests_total counter\n"),
        "{page}"
    );
    assert!(
        page.contains("# TYPE backend_upstream_requests_total counter\n"),
        "{page}"
    );
    assert!(!page.contains("# EOF"), "{page}");
}

/// EXTERNAL_INTEGRATION_KEY_FILE: a missing, empty or bad file, or the file next to the variable,
/// stops a start and fails --check-config alike, in one line naming the variable, never the key.
#[test]
fn key_file_errors_stop_the_start_and_the_check() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing");
    let empty = dir.path().join("empty");
    std::fs::write(&empty, " \n").unwrap();
    let bad = dir.path().join("bad");
    std::fs::write(&bad, format!("{KEY} with a space")).unwrap();
    let good = dir.path().join("good");
    std::fs::write(&good, format!("{KEY}\n")).unwrap();
    let url = ("EXTERNAL_LOGS_URL", "http://127.0.0.1:9/v1/logs");
    let file = |p: &std::path::Path| p.to_str().unwrap().to_owned();
    let (missing, empty, bad, good) = (file(&missing), file(&empty), file(&bad), file(&good));
    let cases = [
        (
            vec![url, ("EXTERNAL_INTEGRATION_KEY_FILE", &*missing)],
            "cannot read",
        ),
        (
            vec![url, ("EXTERNAL_INTEGRATION_KEY_FILE", &*empty)],
            "is empty",
        ),
        (
            vec![url, ("EXTERNAL_INTEGRATION_KEY_FILE", &*bad)],
            "visible ASCII",
        ),
        (
            vec![
                url,
                ("EXTERNAL_INTEGRATION_KEY_FILE", &*good),
                ("EXTERNAL_INTEGRATION_KEY", KEY),
            ],
            "not both",
        ),
    ];
    for (envs, problem) in &cases {
        for (code, output) in [
            run_to_exit(envs),
            test_support::check_config(BIN, &[], envs),
        ] {
            assert_eq!(code, 2, "{envs:?}: {output}");
            assert_eq!(output.trim().lines().count(), 1, "one line: {output}");
            assert!(
                output.contains("EXTERNAL_INTEGRATION_KEY") && output.contains(problem),
                "{problem}: {output}"
            );
            assert!(!output.contains(KEY), "no secret: {output}");
        }
    }
    let good_envs = [url, ("EXTERNAL_INTEGRATION_KEY_FILE", &*good)];
    let (code, output) = test_support::check_config(BIN, &[], &good_envs);
    assert_eq!((code, output.trim()), (0, "configuration ok"));
}

/// The binary disables core dumps at start: RLIMIT_CORE is 0, soft and hard (its memory holds
/// the key). Read from the running process's /proc/<pid>/limits.
#[test]
fn core_dumps_are_disabled() {
    use std::os::unix::process::CommandExt;
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes into the struct it is given.
    assert_eq!(unsafe { libc::getrlimit(libc::RLIMIT_CORE, &mut limit) }, 0);
    assert_ne!(
        limit.rlim_max, 0,
        "the hard core limit is 0 already: this test cannot tell"
    );
    let mut command = Command::new(BIN);
    command.env_clear().env("EXTERNAL_INTEGRATION_KEY", KEY);
    // The child starts with core dumps allowed (soft limit raised to the hard one), so only the
    // binary itself can bring both to 0.
    // SAFETY: setrlimit is async-signal-safe, as pre_exec requires.
    unsafe {
        command.pre_exec(move || {
            let allowed = libc::rlimit {
                rlim_cur: limit.rlim_max,
                rlim_max: limit.rlim_max,
            };
            if libc::setrlimit(libc::RLIMIT_CORE, &allowed) == 0 {
                Ok(())
            } else {
                Err(std::io::Error::last_os_error())
            }
        });
    }
    let backend = ServiceProcess::start(command);
    let limits = std::fs::read_to_string(format!("/proc/{}/limits", backend.pid())).unwrap();
    let core = limits
        .lines()
        .find(|line| line.starts_with("Max core file size"))
        .expect("a core file size line");
    let values: Vec<&str> = core.split_whitespace().skip(4).take(2).collect();
    assert_eq!(values, ["0", "0"], "{core}");
}

/// A streamed download's access-log line is written when its body ends: the bytes the client
/// got and the whole duration, `stream="complete"`; a client that goes away mid-stream gets
/// `stream="aborted"` with the bytes sent until then.
#[tokio::test(flavor = "multi_thread")]
async fn a_streamed_download_is_logged_when_it_ends_with_its_bytes() {
    let (provider, _provider) = start_provider(KEY, Duration::ZERO).await;
    let mut backend = spawn_backend(&[
        ("EXTERNAL_LOGS_URL", provider.as_str()),
        ("EXTERNAL_INTEGRATION_KEY", KEY),
    ]);
    let client = reqwest::Client::new();
    let whole = client
        .get(backend.url("/download_external_logs?limit=500"))
        .header("x-request-id", "stream-whole")
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    let line = backend
        .wait_for_log(|l| l["target"] == "access_log" && l["span"]["request_id"] == "stream-whole")
        .expect("the download's access-log line");
    assert_eq!(line["stream"], "complete", "{line}");
    assert_eq!(line["bytes"].as_u64(), Some(whole.len() as u64), "{line}");
    assert_eq!(line["status"], 200, "{line}");

    // Far more than the sockets' buffers hold: the backend is still sending when the client
    // reads one chunk and closes the connection.
    let mut response = client
        .get(backend.url("/download_external_logs?limit=2000000"))
        .header("x-request-id", "stream-cut")
        .send()
        .await
        .unwrap();
    let first = response.chunk().await.unwrap().expect("a first chunk");
    drop(response);
    let line = backend
        .wait_for_log(|l| l["target"] == "access_log" && l["span"]["request_id"] == "stream-cut")
        .expect("the cut download's access-log line");
    assert_eq!(line["stream"], "aborted", "{line}");
    let sent = line["bytes"].as_u64().expect("bytes sent");
    assert!(sent >= first.len() as u64, "{line}");
    assert!(sent < 2_000_000 * 20, "not the whole download: {line}");
}

/// A log stream nobody reads (a stuck collector, a full pipe) never holds up a request: the
/// lines wait in the writer's queue, the requests answer. With the line written on the request's
/// thread, the pipe's 64 KiB would fill within a few hundred requests and every later one hang.
#[tokio::test(flavor = "multi_thread")]
async fn requests_answer_while_nobody_reads_the_log() {
    use std::io::BufRead;
    const REQUESTS: usize = 3000;
    /// Killed however the test ends, so a failure leaves no hung server behind.
    struct Server(std::process::Child);
    impl Drop for Server {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let mut child = Server(
        Command::new(BIN)
            .env_clear()
            .env("LISTEN_ADDR", "127.0.0.1:0")
            .env("LOG_FORMAT", "json")
            .env("SIMULATED_LATENCY_MS", "0")
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap(),
    );
    // Read up to the address, then never again: the pipe fills.
    let mut stdout = std::io::BufReader::new(child.0.stdout.take().unwrap());
    let addr = loop {
        let mut line = String::new();
        assert!(
            stdout.read_line(&mut line).unwrap() > 0,
            "exited before listening"
        );
        if let Ok(value) = serde_json::from_str::<serde_json::Value>(&line) {
            if value["message"] == "listening" {
                break value["local_addr"].as_str().unwrap().to_string();
            }
        }
    };
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    for n in 0..REQUESTS {
        let response = client
            .get(format!("http://{addr}/api_1"))
            .send()
            .await
            .unwrap_or_else(|e| panic!("request {n} of {REQUESTS}: {e}"));
        assert_eq!(response.status(), 200, "request {n}");
    }
}
