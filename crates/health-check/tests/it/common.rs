//! Real local HTTP servers for the tests, and a runner for the real binary.

use std::net::SocketAddr;
use std::path::Path;
use std::process::Output;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use axum::Router;
use health_check::ProbeRecord;
use tokio::sync::Barrier;

/// Answers `/ok` 200 "healthy", `/fail` 500, `/slow` 200 after 400 ms, `/hang` never, and
/// `/barrier` 200 only once `barrier_size` requests are waiting there at the same time.
pub struct TestServer {
    pub addr: SocketAddr,
    /// Requests that reached `/hang` (each then waits forever).
    pub hang_arrivals: Arc<AtomicUsize>,
}

pub const SLOW_MS: u64 = 400;

#[derive(Clone)]
struct Shared {
    hang_arrivals: Arc<AtomicUsize>,
    barrier: Arc<Barrier>,
}

impl TestServer {
    pub async fn start() -> Self {
        Self::with_barrier(1).await
    }

    pub async fn with_barrier(barrier_size: usize) -> Self {
        let shared = Shared {
            hang_arrivals: Arc::new(AtomicUsize::new(0)),
            barrier: Arc::new(Barrier::new(barrier_size)),
        };
        let app = Router::new()
            .route("/ok", get(|| async { "healthy" }))
            .route(
                "/fail",
                get(|| async { (StatusCode::INTERNAL_SERVER_ERROR, "boom") }),
            )
            .route(
                "/slow",
                get(|| async {
                    tokio::time::sleep(Duration::from_millis(SLOW_MS)).await;
                    "healthy"
                }),
            )
            .route(
                "/hang",
                get(|State(s): State<Shared>| async move {
                    s.hang_arrivals.fetch_add(1, Ordering::SeqCst);
                    std::future::pending::<&'static str>().await
                }),
            )
            .route(
                "/barrier",
                get(|State(s): State<Shared>| async move {
                    s.barrier.wait().await;
                    "all here"
                }),
            )
            .with_state(shared.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Self {
            addr,
            hang_arrivals: shared.hang_arrivals,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }
}

/// A loopback URL nobody listens on: connections are refused.
pub fn refused_url() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    format!("http://{addr}/healthz")
}

/// Runs the real binary with a clean health-check environment plus `envs`, in `dir`.
pub async fn run_bin(args: &[&str], envs: &[(&str, &str)], dir: &Path) -> Output {
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_health-check"));
    cmd.args(args).current_dir(dir).kill_on_drop(true);
    for (key, _) in std::env::vars() {
        if key.starts_with("HEALTHCHECK_") || key == "LOG_FORMAT" || key == "RUST_LOG" {
            cmd.env_remove(key);
        }
    }
    cmd.envs(envs.iter().copied());
    // Bounded so a regression fails the test instead of hanging CI; not a timing assertion.
    tokio::time::timeout(Duration::from_secs(60), cmd.output())
        .await
        .expect("health-check finished within 60s")
        .expect("health-check started")
}

pub fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Every line of a history file, parsed (a line that is not a record fails the test).
pub fn history(path: &Path) -> Vec<ProbeRecord> {
    std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l:?}: {e}")))
        .collect()
}

pub fn record<'a>(records: &'a [ProbeRecord], target: &str) -> &'a ProbeRecord {
    records
        .iter()
        .find(|r| r.target == target)
        .unwrap_or_else(|| panic!("no record for {target} in {records:?}"))
}
