//! `health-check serve`, the real binary over HTTP: the page, `/api/v1/status`, badges and
//! per-target metrics follow live targets, one of which stops during the test; `--legacy-log`
//! writes the lines `date` would in `TZ`.

use std::process::Command;
use std::time::Duration;

use crate::common::{run_bin, stderr, TestServer};
use serde_json::Value;
use test_support::{check_config, metric, ServiceProcess};

const BIN: &str = env!("CARGO_BIN_EXE_health-check");

/// A server on its own port that the test can stop: its target then refuses connections.
struct Stoppable {
    url: String,
    stop: tokio::sync::oneshot::Sender<()>,
    served: tokio::task::JoinHandle<()>,
}

impl Stoppable {
    async fn start() -> Self {
        let app = axum::Router::new().route("/up", axum::routing::get(|| async { "up" }));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/up", listener.local_addr().unwrap());
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let served = tokio::spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    let _ = stopped.await;
                })
                .await
                .unwrap()
        });
        Self { url, stop, served }
    }

    async fn stop(self) {
        self.stop.send(()).unwrap();
        self.served.await.unwrap();
    }
}

fn serve(targets: &str, history: &std::path::Path) -> ServiceProcess {
    let mut cmd = Command::new(BIN);
    cmd.arg("serve");
    for (key, _) in std::env::vars() {
        if key.starts_with("HEALTHCHECK_") || key == "RUST_LOG" {
            cmd.env_remove(key);
        }
    }
    cmd.env("HEALTHCHECK_TARGETS", targets)
        .env("HEALTHCHECK_INTERVAL", "200ms")
        .env("HEALTHCHECK_TIMEOUT", "1s")
        .env("HEALTHCHECK_OUTPUT", history);
    ServiceProcess::start(cmd)
}

async fn get(client: &reqwest::Client, url: &str) -> (u16, String, String) {
    let response = client.get(url).send().await.unwrap();
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    (status, content_type, response.text().await.unwrap())
}

fn target<'a>(status: &'a Value, name: &str) -> &'a Value {
    status["targets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["target"] == name)
        .unwrap_or_else(|| panic!("no target {name} in {status}"))
}

/// Polls `/api/v1/status` until `done` holds (bounded: 200 polls of 50 ms).
async fn status_until(
    client: &reqwest::Client,
    hc: &ServiceProcess,
    what: &str,
    done: impl Fn(&Value) -> bool,
) -> Value {
    for _ in 0..200 {
        let (code, _, body) = get(client, &hc.url("/api/v1/status")).await;
        if code == 200 {
            let status: Value = serde_json::from_str(&body).unwrap();
            if done(&status) {
                return status;
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("/api/v1/status never showed {what}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn page_status_badges_and_metrics_follow_a_target_that_stops() {
    let server = TestServer::start().await;
    let gone = Stoppable::start().await;
    let dir = tempfile::tempdir().unwrap();
    let history = dir.path().join("health/health_check.log");
    let targets = format!(
        "api={},broken={},gone={}",
        server.url("/ok"),
        server.url("/fail"),
        gone.url
    );
    let mut hc = serve(&targets, &history);
    let client = reqwest::Client::new();
    hc.wait_ready(200).await;

    let probed = |s: &Value| {
        s["targets"]
            .as_array()
            .is_some_and(|t| t.len() == 3 && t.iter().all(|t| t["probes"].as_u64() >= Some(2)))
    };
    let before = status_until(&client, &hc, "two probes of every target", probed).await;
    assert_eq!(target(&before, "gone")["up"], true);
    gone.stop().await;
    let after = status_until(&client, &hc, "gone down", |s| {
        target(s, "gone")["up"] == false
    })
    .await;

    let api = target(&after, "api");
    assert_eq!(api["up"], true);
    assert_eq!(api["uptime_24h_percent"], 100.0);
    assert!(api["incidents"].as_array().unwrap().is_empty());
    let broken = target(&after, "broken");
    assert_eq!(broken["up"], false);
    assert_eq!(broken["uptime_7d_percent"], 0.0);
    assert_eq!(broken["last_failure"]["status"], 500);
    let gone_now = target(&after, "gone");
    let incident = &gone_now["incidents"][0];
    assert_eq!(incident["ended"], Value::Null, "open: {incident}");
    assert!(
        incident["reason"].as_str().unwrap().contains("connection"),
        "{incident}"
    );
    let recent = gone_now["recent"].as_array().unwrap();
    assert!(recent.first().unwrap()["ok"] == true && recent.last().unwrap()["ok"] == false);
    let uptime = gone_now["uptime_24h_percent"].as_f64().unwrap();
    assert!(uptime > 0.0 && uptime < 100.0, "{uptime}");

    // The page: every target, its state in words, no external asset.
    let (code, content_type, page) = get(&client, &hc.url("/")).await;
    assert_eq!(code, 200);
    assert_eq!(content_type, "text/html; charset=utf-8");
    for name in ["api", "broken", "gone"] {
        assert!(page.contains(&format!("<h2>{name}</h2>")), "{name}");
    }
    assert!(page.contains("<noscript><meta http-equiv=\"refresh\""));
    assert!(page.contains("<strong>open</strong> since"));
    // Offline: no stylesheet, script, image or font is fetched from anywhere.
    for external in ["<link", "src=", "@import", "url("] {
        assert!(!page.contains(external), "found {external}");
    }

    // Badges: text says the state; an unknown target is a JSON 404.
    let (code, content_type, badge) = get(&client, &hc.url("/badge/api.svg")).await;
    assert_eq!((code, content_type.as_str()), (200, "image/svg+xml"));
    assert!(badge.contains("aria-label=\"api: 100.00%\""), "{badge}");
    let (_, _, badge) = get(&client, &hc.url("/badge/broken.svg")).await;
    assert!(badge.contains("aria-label=\"broken: down\""), "{badge}");
    let (code, content_type, body) = get(&client, &hc.url("/badge/nobody.svg")).await;
    assert_eq!((code, content_type.as_str()), (404, "application/json"));
    assert!(body.contains("unknown_target"), "{body}");

    // Metrics: per target, with the declared types.
    let (_, _, page) = get(&client, &hc.url("/metrics")).await;
    for (family, kind) in [
        ("healthcheck_target_up", "gauge"),
        ("healthcheck_probe_duration_seconds", "histogram"),
        ("healthcheck_last_success_timestamp_seconds", "gauge"),
        ("healthcheck_probes", "counter"),
    ] {
        assert!(
            page.contains(&format!("# TYPE {family} {kind}\n")),
            "{family}"
        );
    }
    assert_eq!(
        metric(&page, "healthcheck_target_up{target=\"api\"}"),
        Some(1.0)
    );
    assert_eq!(
        metric(&page, "healthcheck_target_up{target=\"gone\"}"),
        Some(0.0)
    );
    assert_eq!(
        metric(
            &page,
            "healthcheck_probes_total{target=\"broken\",result=\"ok\"}"
        ),
        Some(0.0)
    );
    assert!(metric(
        &page,
        "healthcheck_probes_total{target=\"gone\",result=\"failed\"}"
    )
    .is_some_and(|n| n >= 1.0));
    assert!(metric(
        &page,
        "healthcheck_probe_duration_seconds_count{target=\"api\"}"
    )
    .is_some_and(|n| n >= 2.0));
    assert!(metric(
        &page,
        "healthcheck_last_success_timestamp_seconds{target=\"gone\"}"
    )
    .is_some_and(|t| t > 1.7e9));
    assert_eq!(
        metric(
            &page,
            "healthcheck_last_success_timestamp_seconds{target=\"broken\"}"
        ),
        None
    );

    // The OpenAPI document describes the status routes.
    let (_, _, doc) = get(&client, &hc.url("/openapi.json")).await;
    let doc: Value = serde_json::from_str(&doc).unwrap();
    for path in ["/", "/api/v1/status", "/badge/{file}", "/metrics"] {
        assert!(doc["paths"][path]["get"].is_object(), "{path}");
    }

    hc.signal(libc::SIGTERM);
    let exit = hc.wait();
    assert!(exit.success(), "{exit:?}\n{}", hc.output());
}

#[test]
fn serve_needs_a_history_file() {
    let (code, text) = check_config(
        BIN,
        &["serve"],
        &[
            ("HEALTHCHECK_TARGETS", "a=http://127.0.0.1:1/"),
            ("HEALTHCHECK_OUTPUT", "-"),
        ],
    );
    assert_eq!(code, 2, "{text}");
    assert_eq!(text.lines().count(), 1, "{text}");
    assert!(
        text.starts_with("configuration error: HEALTHCHECK_OUTPUT"),
        "{text}"
    );
    let (code, text) = check_config(
        BIN,
        &["serve"],
        &[
            ("HEALTHCHECK_TARGETS", "a=http://127.0.0.1:1/"),
            ("LISTEN_ADDR", "nowhere"),
        ],
    );
    assert_eq!(code, 2, "{text}");
    assert!(
        text.starts_with("configuration error: LISTEN_ADDR"),
        "{text}"
    );
}

/// The legacy log's lines carry the date `date` prints for the probe's second in `TZ`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn legacy_log_is_dated_like_date_in_tz() {
    let server = TestServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let history = dir.path().join("history.log");
    let legacy = dir.path().join("var/log/health_check.log");
    // A POSIX TZ string: three hours east of UTC, named ABC, needing no zoneinfo files.
    let tz = "ABC-3";
    let targets = format!("api={}", server.url("/ok"));
    let out = run_bin(
        &["--once", "--legacy-log", legacy.to_str().unwrap()],
        &[
            ("HEALTHCHECK_TARGETS", &targets),
            ("HEALTHCHECK_OUTPUT", history.to_str().unwrap()),
            ("TZ", tz),
        ],
        dir.path(),
    )
    .await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let record = &crate::common::history(&history)[0];
    let secs = record
        .time()
        .unwrap()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let date = Command::new("date")
        .arg(format!("--date=@{secs}"))
        .env("TZ", tz)
        .env("LC_ALL", "C")
        .output()
        .expect("date runs");
    let expected_date = String::from_utf8(date.stdout).unwrap();
    let expected = format!(
        "{}: API at {} is reachable - Health check passed\n",
        expected_date.trim_end(),
        server.url("/ok")
    );
    assert!(expected.contains(" ABC "), "{expected}");
    assert_eq!(std::fs::read_to_string(&legacy).unwrap(), expected);
}
