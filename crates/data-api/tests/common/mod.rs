//! Helpers shared by the integration tests: real servers on port 0, real HTTP, and a reader of
//! the segment files that fails on any line that is not a whole record.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use data_api::store::{parse_segment_name, Record, StoreIo};
use data_api::Config;
use platform::Shutdown;

pub struct TestServer {
    pub addr: SocketAddr,
    pub client: reqwest::Client,
    shutdown: Shutdown,
    handle: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl TestServer {
    pub async fn start(config: Config) -> Self {
        Self::start_with_io(config, Arc::new(data_api::store::RealIo)).await
    }

    pub async fn start_with_io(config: Config, io: Arc<dyn StoreIo>) -> Self {
        // A just-stopped server's writer may still hold the folder's lock for a moment.
        let mut attempts = 0;
        let service = loop {
            match data_api::service_with_io(config.clone(), io.clone()).await {
                Ok(service) => break service,
                Err(err) if attempts < 100 && err.to_string().contains("another process") => {
                    attempts += 1;
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                Err(err) => panic!("service does not start: {err}"),
            }
        };
        let shutdown = Shutdown::new();
        let (addr, handle) = test_support::spawn(service, shutdown.clone())
            .await
            .expect("binds");
        Self {
            addr,
            client: client(),
            shutdown,
            handle,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    pub async fn post(&self, message: &str) -> reqwest::Response {
        self.client
            .post(self.url("/logs"))
            .json(&serde_json::json!({ "message": message }))
            .send()
            .await
            .expect("request completes")
    }

    pub async fn readyz(&self) -> u16 {
        self.client
            .get(self.url("/readyz"))
            .send()
            .await
            .expect("readyz answers")
            .status()
            .as_u16()
    }

    /// Polls /readyz until it answers `status` (bounded: about 10 s).
    pub async fn wait_ready(&self, status: u16) {
        for _ in 0..200 {
            if self.readyz().await == status {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("/readyz never answered {status}");
    }

    /// The /metrics page.
    pub async fn metrics_page(&self) -> String {
        self.client
            .get(self.url("/metrics"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }

    /// The value of an unlabelled metric on /metrics.
    pub async fn metric(&self, name: &str) -> f64 {
        let text = self.metrics_page().await;
        test_support::metric(&text, name)
            .unwrap_or_else(|| panic!("metric {name} not found in\n{text}"))
    }

    /// Stops the server and waits until the store's writer has let go of its folder.
    pub async fn stop(self) {
        self.shutdown.trigger();
        self.handle.await.unwrap().unwrap();
    }
}

pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap()
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
