//! The direct alerting path with the real binary: receivers in the test (a generic webhook, a
//! Slack-style hook whose path holds a secret, one answering 503, one refusing connections, one
//! that hangs) and a target the test turns up and down.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::common::{refused_url, run_bin, stderr, stdout};
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::Value;
use test_support::{metric, ServiceProcess};

const BIN: &str = env!("CARGO_BIN_EXE_health-check");
/// The Slack hook's path is its credential: it must never show in logs or metrics.
const SLACK_SECRET: &str = "T0001/B0001/sekrit-hook-token";

#[derive(Clone, Default)]
struct Shared {
    target_up: Arc<AtomicBool>,
    /// (path, body) of every notification that reached /hook or /slack/...
    received: Arc<Mutex<Vec<(String, Value)>>>,
    failing_arrivals: Arc<AtomicUsize>,
    hanging_arrivals: Arc<AtomicUsize>,
}

/// The target (`/target`: 200 or 503 as the test sets it) and the receivers, on one listener.
struct World {
    base: String,
    shared: Shared,
    dir: tempfile::TempDir,
}

impl World {
    async fn start() -> Self {
        let shared = Shared::default();
        shared.target_up.store(true, Ordering::SeqCst);
        let app = Router::new()
            .route(
                "/target",
                get(|State(s): State<Shared>| async move {
                    if s.target_up.load(Ordering::SeqCst) {
                        StatusCode::OK
                    } else {
                        StatusCode::SERVICE_UNAVAILABLE
                    }
                }),
            )
            .route("/hook", post(record))
            .route("/slack/{*rest}", post(record))
            .route(
                "/failing/{*rest}",
                post(|State(s): State<Shared>| async move {
                    s.failing_arrivals.fetch_add(1, Ordering::SeqCst);
                    StatusCode::SERVICE_UNAVAILABLE
                }),
            )
            .route(
                "/hanging",
                post(|State(s): State<Shared>| async move {
                    s.hanging_arrivals.fetch_add(1, Ordering::SeqCst);
                    std::future::pending::<StatusCode>().await
                }),
            )
            .with_state(shared.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Self {
            base,
            shared,
            dir: tempfile::tempdir().unwrap(),
        }
    }

    fn set_up(&self, up: bool) {
        self.shared.target_up.store(up, Ordering::SeqCst);
    }

    fn received(&self) -> Vec<(String, Value)> {
        self.shared.received.lock().unwrap().clone()
    }

    fn history(&self) -> PathBuf {
        self.dir.path().join("health/health_check.log")
    }

    /// A config file: the target, `alerting` with `receivers` (YAML list items) and `delivery`.
    fn config(&self, receivers: &str, delivery: &str, down_after: u32) -> PathBuf {
        let path = self.dir.path().join("health-check.yaml");
        std::fs::write(
            &path,
            format!(
                "targets:\n  - name: api\n    url: {}/target\n    down_after: {down_after}\n\
                 alerting:\n  delivery: {delivery}\n  receivers:\n{receivers}",
                self.base
            ),
        )
        .unwrap();
        path
    }

    fn hook_receivers(&self) -> String {
        format!(
            "    - {{name: ops, type: webhook, url: '{0}/hook'}}\n    - {{name: chat, type: slack, url_file: '{1}'}}\n",
            self.base,
            self.secret_file(&format!("{}/slack/{SLACK_SECRET}", self.base)).display()
        )
    }

    /// One receiver that never answers; the target goes down at its first failure.
    fn hanging_receiver_config(&self, delivery: &str) -> PathBuf {
        let receivers = format!(
            "    - {{name: hanging, type: webhook, url: '{}/hanging'}}\n",
            self.base
        );
        self.config(&receivers, delivery, 1)
    }

    fn secret_file(&self, url: &str) -> PathBuf {
        let path = self.dir.path().join("chat-webhook-url");
        std::fs::write(&path, format!("{url}\n")).unwrap();
        path
    }

    async fn once(&self, config: &Path) -> std::process::Output {
        let (config, history) = (config.to_str().unwrap(), self.history());
        run_bin(
            &["--once"],
            &[
                ("HEALTHCHECK_CONFIG", config),
                ("HEALTHCHECK_OUTPUT", history.to_str().unwrap()),
                ("HEALTHCHECK_TIMEOUT", "2s"),
                ("LOG_FORMAT", "json"),
            ],
            self.dir.path(),
        )
        .await
    }

    fn serve(&self, config: &Path) -> ServiceProcess {
        let mut cmd = Command::new(BIN);
        cmd.arg("serve");
        for (key, _) in std::env::vars() {
            if key.starts_with("HEALTHCHECK_") || key == "RUST_LOG" {
                cmd.env_remove(key);
            }
        }
        cmd.env("HEALTHCHECK_CONFIG", config)
            .env("HEALTHCHECK_INTERVAL", "200ms")
            .env("HEALTHCHECK_TIMEOUT", "1s")
            .env("HEALTHCHECK_OUTPUT", self.history());
        ServiceProcess::start(cmd)
    }
}

async fn record(
    State(s): State<Shared>,
    uri: axum::http::Uri,
    Json(body): Json<Value>,
) -> StatusCode {
    s.received
        .lock()
        .unwrap()
        .push((uri.path().to_string(), body));
    StatusCode::OK
}

/// The states (`down`/`up`) the generic webhook received, in order.
fn webhook_states(received: &[(String, Value)]) -> Vec<String> {
    received
        .iter()
        .filter(|(path, _)| path == "/hook")
        .map(|(_, body)| body["state"].as_str().unwrap().to_string())
        .collect()
}

fn slack_texts(received: &[(String, Value)]) -> Vec<String> {
    received
        .iter()
        .filter(|(path, _)| path.starts_with("/slack/"))
        .map(|(_, body)| body["text"].as_str().unwrap().to_string())
        .collect()
}

fn assert_no_secret(text: &str) {
    assert!(
        !text.contains("sekrit") && !text.contains("/slack/"),
        "a webhook URL leaked:\n{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cronjob_sequence_of_once_runs_notifies_once_per_incident() {
    let world = World::start().await;
    let config = world.config(&world.hook_receivers(), "{attempts: 2}", 2);
    // (target up?, states the webhook holds after that run): down after 2 failures, up after 1.
    let runs: [(bool, &[&str]); 10] = [
        (true, &[]),
        (false, &[]),
        (false, &["down"]),
        (false, &["down"]),
        (false, &["down"]),
        (true, &["down", "up"]),
        (true, &["down", "up"]),
        (false, &["down", "up"]),
        (false, &["down", "up", "down"]),
        (true, &["down", "up", "down", "up"]),
    ];
    for (n, (up, expected)) in runs.iter().enumerate() {
        world.set_up(*up);
        let out = world.once(&config).await;
        assert_eq!(
            out.status.code(),
            Some(if *up { 0 } else { 1 }),
            "run {n}: {}",
            stderr(&out)
        );
        assert_no_secret(&stdout(&out));
        assert_no_secret(&stderr(&out));
        // --once waits for its deliveries before it exits: the receivers hold them already.
        let received = world.received();
        assert_eq!(webhook_states(&received), *expected, "after run {n}");
        assert_eq!(
            slack_texts(&received).len(),
            expected.len(),
            "after run {n}"
        );
    }
    let received = world.received();
    let first_down = &received.iter().find(|(p, _)| p == "/hook").unwrap().1;
    assert_eq!(first_down["target"], "api");
    assert_eq!(first_down["consecutive"], 2);
    assert_eq!(first_down["status"], 503);
    assert_eq!(first_down["url"], format!("{}/target", world.base));
    let texts = slack_texts(&received);
    assert!(
        texts[0].contains("api is DOWN after 2 failed probes"),
        "{}",
        texts[0]
    );
    assert!(texts[1].contains("api is UP again"), "{}", texts[1]);
    let state: Value = serde_json::from_slice(
        &std::fs::read(
            world
                .dir
                .path()
                .join("health/health_check.log.alert-state.json"),
        )
        .unwrap(),
    )
    .unwrap();
    assert_eq!(state["targets"]["api"]["down"], false);
    assert_eq!(state["targets"]["api"]["last_sent"], "up");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_corrupt_or_missing_state_is_rebuilt_from_the_history_without_a_storm() {
    let world = World::start().await;
    let config = world.config(&world.hook_receivers(), "{attempts: 2}", 2);
    let state_file = world
        .dir
        .path()
        .join("health/health_check.log.alert-state.json");
    world.set_up(false);
    for _ in 0..3 {
        world.once(&config).await;
    }
    assert_eq!(webhook_states(&world.received()), ["down"]);

    std::fs::write(&state_file, b"{\"version\": 1, \"targets\": {\"api\": [tor").unwrap();
    let out = world.once(&config).await;
    assert!(
        stderr(&out).contains("alert state rebuilt from the history"),
        "{}",
        stderr(&out)
    );
    world.once(&config).await;
    std::fs::remove_file(&state_file).unwrap();
    world.once(&config).await;
    world.once(&config).await;
    // Still the one incident: nothing new was sent for it.
    assert_eq!(webhook_states(&world.received()), ["down"]);

    world.set_up(true);
    world.once(&config).await;
    assert_eq!(webhook_states(&world.received()), ["down", "up"]);
}

async fn metrics_page(client: &reqwest::Client, hc: &ServiceProcess) -> String {
    client
        .get(hc.url("/metrics"))
        .header("accept", "text/plain;version=0.0.4")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

/// Polls `/metrics` until `series` reaches `value` (bounded: 400 polls of 50 ms).
async fn metric_until(
    client: &reqwest::Client,
    hc: &ServiceProcess,
    series: &str,
    value: f64,
) -> String {
    let mut page = String::new();
    for _ in 0..400 {
        page = metrics_page(client, hc).await;
        if metric(&page, series) == Some(value) {
            return page;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{series} never reached {value}:\n{page}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_receiver_that_is_down_is_retried_within_its_bound_and_counted() {
    let world = World::start().await;
    let receivers = format!(
        // Secrets in both paths: failures are where a client library quotes the URL.
        "    - {{name: refusing, type: webhook, url: '{}/sekrit-refused'}}\n    - {{name: failing, type: slack, url: '{}/failing/{SLACK_SECRET}'}}\n",
        refused_url(),
        world.base
    );
    let config = world.config(
        &receivers,
        "{attempts: 3, attempt_timeout: 1s, give_up_after: 20s}",
        1,
    );
    world.set_up(false);
    let mut hc = world.serve(&config);
    let client = reqwest::Client::new();
    metric_until(
        &client,
        &hc,
        r#"healthcheck_notifications_total{receiver="refusing",result="failed"}"#,
        1.0,
    )
    .await;
    let page = metric_until(
        &client,
        &hc,
        r#"healthcheck_notifications_total{receiver="failing",result="failed"}"#,
        1.0,
    )
    .await;
    // Exactly the configured tries, and no more after giving up.
    assert_eq!(
        metric(
            &page,
            r#"healthcheck_notification_retries_total{receiver="failing"}"#
        ),
        Some(2.0)
    );
    assert_eq!(
        metric(
            &page,
            r#"healthcheck_notification_retries_total{receiver="refusing"}"#
        ),
        Some(2.0)
    );
    assert_eq!(world.shared.failing_arrivals.load(Ordering::SeqCst), 3);
    assert_eq!(
        metric(
            &page,
            r#"healthcheck_notifications_total{receiver="failing",result="sent"}"#
        ),
        Some(0.0)
    );
    let failed = hc
        .wait_for_log(|l| {
            l["message"] == "notification not delivered" && l["receiver"] == "failing"
        })
        .expect("the failed delivery is logged");
    assert!(
        failed["error"]
            .as_str()
            .unwrap()
            .contains("HTTP 503 after 3 attempt(s)"),
        "{failed}"
    );
    assert_no_secret(&page);
    assert_no_secret(&hc.output());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_receiver_that_hangs_does_not_delay_probing() {
    let world = World::start().await;
    let config =
        world.hanging_receiver_config("{attempts: 1, attempt_timeout: 60s, give_up_after: 60s}");
    world.set_up(false);
    let hc = world.serve(&config);
    let client = reqwest::Client::new();
    for _ in 0..200 {
        if world.shared.hanging_arrivals.load(Ordering::SeqCst) > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        world.shared.hanging_arrivals.load(Ordering::SeqCst),
        1,
        "the delivery started"
    );
    let probes = |page: &str| {
        metric(
            page,
            r#"healthcheck_probes_total{target="api",result="failed"}"#,
        )
        .unwrap_or(0.0)
    };
    let at_hang = probes(&metrics_page(&client, &hc).await);
    // Five more runs while the delivery still waits for its answer (it may wait 60 s).
    metric_until(
        &client,
        &hc,
        r#"healthcheck_probes_total{target="api",result="failed"}"#,
        at_hang + 5.0,
    )
    .await;
    let page = metrics_page(&client, &hc).await;
    assert_eq!(
        metric(
            &page,
            r#"healthcheck_notifications_total{receiver="hanging",result="sent"}"#
        ),
        Some(0.0)
    );
    assert_eq!(
        metric(
            &page,
            r#"healthcheck_notifications_total{receiver="hanging",result="failed"}"#
        ),
        Some(0.0)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_once_run_gives_up_on_a_hanging_receiver_within_its_bound() {
    let world = World::start().await;
    let config =
        world.hanging_receiver_config("{attempts: 3, attempt_timeout: 1s, give_up_after: 2s}");
    world.set_up(false);
    // run_bin bounds the run at 60 s: the run must end by itself after give_up_after.
    let out = world.once(&config).await;
    assert_eq!(out.status.code(), Some(1));
    let log = stderr(&out);
    assert!(log.contains("notification not delivered"), "{log}");
    assert!(world.shared.hanging_arrivals.load(Ordering::SeqCst) >= 1);
}

#[tokio::test]
async fn bad_alerting_config_stops_the_start_naming_the_variable_not_the_url() {
    let world = World::start().await;
    for receivers in [
        "    - {name: x, type: webhook, url: 'ftp://sekrit.example/sekrit'}\n".to_string(),
        "    - {name: x, type: webhook, url: 'http://h/sekrit', secret: sekrit}\n".to_string(),
        format!(
            "    - {{name: x, type: slack, url_file: '{}/missing'}}\n",
            world.dir.path().display()
        ),
    ] {
        let config = world.config(&receivers, "{}", 2);
        let out = world.once(&config).await;
        assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
        let err = stderr(&out);
        assert!(err.contains("HEALTHCHECK_CONFIG"), "{err}");
        assert_eq!(err.trim().lines().count(), 1, "{err}");
        assert!(
            !err.contains("sekrit.example") && !err.contains("h/sekrit"),
            "{err}"
        );
    }
}
