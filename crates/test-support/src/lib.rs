//! The one test harness of the workspace (a dev-dependency only):
//!
//! - [`TestApp`]: a service served in-process on `127.0.0.1:0`, with `url()`, `get_json`,
//!   `metrics_page`, `metric`, `wait_ready` and `stop()`.
//! - [`ServiceProcess`]: a service binary started as a child on `127.0.0.1:0` with JSON logs,
//!   its bound address read from its "listening" log line, its output kept for assertions, and
//!   signals to stop or kill it.
//! - [`eventually`]: the one bounded wait for conditions that become true later.
//! - [`metric`], [`metrics_page`] and [`wait_for_in_flight`]: reading `/metrics` pages.
//! - [`check_config`]: a binary's `--check-config` verdict on a given environment.
//! - [`http_abuse`]: the raw-TCP abuse checks every service runs against its own server.
//! - [`certs`]: a test CA and the certificates it signs (rcgen), for the TLS tests.
//! - [`contract`]: the bounds a served OpenAPI document declares, and strategies of the RFC 3339
//!   date-times it allows and of near misses, for property tests of the parsers against it.

mod app;
pub mod certs;
pub mod contract;
mod eventually;
pub mod http_abuse;
mod metrics;
pub mod otlp;
mod process;

use std::process::Command;

pub use app::{client, TestApp};
pub use eventually::{eventually, eventually_true, READY_WAIT};
pub use metrics::{metric, metrics_page, wait_for_in_flight};
pub use process::ServiceProcess;

/// GET `url` and decode its JSON body, failing the test on any error.
pub async fn get_json<T: serde::de::DeserializeOwned>(client: &reqwest::Client, url: &str) -> T {
    client
        .get(url)
        .send()
        .await
        .unwrap_or_else(|e| panic!("GET {url}: {e}"))
        .json()
        .await
        .unwrap_or_else(|e| panic!("GET {url}: body is not the expected JSON: {e}"))
}

/// Runs `bin --check-config` with `args` and exactly `envs` (nothing inherited from the test's
/// environment); returns the exit code and what it printed (stderr, then stdout).
pub fn check_config(bin: &str, args: &[&str], envs: &[(&str, &str)]) -> (i32, String) {
    let output = Command::new(bin)
        .args(args)
        .arg("--check-config")
        .env_clear()
        .envs(envs.iter().copied())
        .output()
        .expect("the binary starts");
    let text = String::from_utf8_lossy(&output.stderr).to_string()
        + &String::from_utf8_lossy(&output.stdout);
    (output.status.code().unwrap_or(-1), text)
}

/// Another workspace binary, in the same target folder as `own_binary` (a crate's
/// `CARGO_BIN_EXE_*`): for tests that need two services as two processes. A workspace build or
/// test (`cargo nextest run --workspace`) builds it; otherwise the panic says how.
pub fn binary_beside(own_binary: &str, name: &str) -> std::path::PathBuf {
    let path = std::path::Path::new(own_binary).with_file_name(name);
    assert!(
        path.is_file(),
        "{} is not built: run the tests with --workspace, or `cargo build -p {name}` first",
        path.display()
    );
    path
}
