//! Helpers shared by the integration tests: real servers on port 0, real HTTP, and a reader of
//! the segment files that fails on any line that is not a whole record.

use std::ops::Deref;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use data_api::store::{parse_segment_name, Record, StoreIo};
use data_api::Config;
use test_support::{eventually, TestApp};

/// How long a restarted server may wait for its predecessor's writer to free the folder.
const LOCK_WAIT: Duration = Duration::from_secs(5);

/// data-api served in-process (a [`TestApp`]), with the record-writing shortcut the tests use.
pub struct TestServer {
    app: TestApp,
}

impl Deref for TestServer {
    type Target = TestApp;
    fn deref(&self) -> &TestApp {
        &self.app
    }
}

impl TestServer {
    pub async fn start(config: Config) -> Self {
        Self::start_with_io(config, Arc::new(data_api::store::RealIo)).await
    }

    pub async fn start_with_io(config: Config, io: Arc<dyn StoreIo>) -> Self {
        // A just-stopped server's writer may still hold the folder's lock for a moment.
        let service = eventually(
            "data-api starts (the folder's lock is free)",
            LOCK_WAIT,
            || {
                let (config, io) = (config.clone(), io.clone());
                async move {
                    match data_api::service_with_io(config, io).await {
                        Ok(service) => Some(service),
                        Err(err) if err.to_string().contains("another process") => None,
                        Err(err) => panic!("service does not start: {err}"),
                    }
                }
            },
        )
        .await;
        Self {
            app: TestApp::start(service).await,
        }
    }

    pub async fn post(&self, message: &str) -> reqwest::Response {
        self.client
            .post(self.url("/logs"))
            .json(&serde_json::json!({ "message": message }))
            .send()
            .await
            .expect("request completes")
    }

    /// Stops the server and waits until the store's writer has let go of its folder.
    pub async fn stop(self) {
        self.app.stop().await;
    }
}

/// A config for tests: no simulated latency, small segments unless changed.
pub fn test_config(log_dir: &Path, instance: &str) -> Config {
    let mut config = Config::local(log_dir.to_path_buf());
    config.server = platform::config::ServerArgs::local("127.0.0.1:0".parse().unwrap());
    config.instance_id = Some(instance.to_string());
    config.simulated_latency_ms = 0;
    config
}

/// Every record in every segment of `dir`, oldest first. Panics on any line that is not a whole
/// record (torn or interleaved bytes).
pub fn segment_records(dir: &Path) -> Vec<Record> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.map(|e| e.unwrap().file_name().into_string().unwrap())
                .filter(|n| parse_segment_name(n).is_some())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    let mut records = Vec::new();
    for name in names {
        let data = std::fs::read(dir.join(&name)).unwrap();
        if !data.is_empty() {
            assert_eq!(data.last(), Some(&b'\n'), "{name} ends mid-line");
        }
        for (n, line) in data.split(|b| *b == b'\n').enumerate() {
            if line.is_empty() {
                continue;
            }
            let record = Record::from_line(line).unwrap_or_else(|| {
                panic!(
                    "{name} line {}: not a record: {:?}",
                    n + 1,
                    String::from_utf8_lossy(line)
                )
            });
            records.push(record);
        }
    }
    records
}

/// Segment file names in `dir`, sorted.
pub fn segment_names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| parse_segment_name(n).is_some())
        .collect();
    names.sort();
    names
}

/// The data-api binary (for the tests that run it as a child process).
pub const BIN: &str = env!("CARGO_BIN_EXE_data-api");

/// The data-api binary on `log_dir` as `instance`, with nothing inherited from the test's
/// environment and no simulated latency (the tests add what they need).
pub fn binary(log_dir: &Path, instance: &str) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.env_clear()
        .env("LOG_DIR", log_dir)
        .env("INSTANCE_ID", instance)
        .env("SIMULATED_LATENCY_MS", "0")
        .env("RUST_LOG", "info");
    cmd
}

/// POSTs one record to `url` (`.../logs`): its id once acknowledged (201), `None` on anything
/// else (the writers of the kill tests stop at their first failure).
pub async fn try_post(http: &reqwest::Client, url: &str, message: &str) -> Option<String> {
    let response = http
        .post(url)
        .json(&serde_json::json!({ "message": message }))
        .send()
        .await
        .ok()?;
    if response.status() != 201 {
        return None;
    }
    let body: serde_json::Value = response.json().await.ok()?;
    Some(body["id"].as_str()?.to_string())
}
