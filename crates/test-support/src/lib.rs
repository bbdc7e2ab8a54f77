//! Test helpers shared by the crates' integration tests (a dev-dependency only).
//!
//! - [`spawn`]: a service served in-process on `127.0.0.1:0`.
//! - [`ServiceProcess`]: a service binary started as a child on `127.0.0.1:0` with JSON logs,
//!   its bound address read from its "listening" log line, its output kept for assertions, and
//!   signals to stop or kill it.
//! - [`metric`] and [`wait_for_in_flight`]: reading `/metrics` pages.
//! - [`check_config`]: a binary's `--check-config` verdict on a given environment.
//! - [`contract`]: the bounds a served OpenAPI document declares, and strategies of the RFC 3339
//!   date-times it allows and of near misses, for property tests of the parsers against it.

pub mod certs;
pub mod contract;

use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::time::Duration;

use serde_json::Value;

/// How long a child may take to log its address or another awaited line.
const LOG_WAIT: Duration = Duration::from_secs(30);

/// A service binary running as a child process.
pub struct ServiceProcess {
    child: Child,
    pub addr: SocketAddr,
    lines: Receiver<String>,
    seen: Vec<String>,
}

impl ServiceProcess {
    /// Starts `command` on `127.0.0.1:0` with JSON logs (the command's own environment wins,
    /// apart from those two), and waits until it logs the address it bound.
    pub fn start(mut command: Command) -> Self {
        let mut child = command
            .env("LISTEN_ADDR", "127.0.0.1:0")
            .env("LOG_FORMAT", "json")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the binary starts");
        let (tx, lines) = mpsc::channel();
        let streams: [Box<dyn Read + Send>; 2] = [
            Box::new(child.stdout.take().expect("stdout is piped")),
            Box::new(child.stderr.take().expect("stderr is piped")),
        ];
        for stream in streams {
            let tx = tx.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines().map_while(Result::ok) {
                    if tx.send(line).is_err() {
                        break;
                    }
                }
            });
        }
        let mut process = Self {
            child,
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            lines,
            seen: Vec::new(),
        };
        let listening = process
            .wait_for_log(|v| v["message"] == "listening")
            .unwrap_or_else(|| panic!("no \"listening\" log line:\n{}", process.output()));
        process.addr = listening["local_addr"]
            .as_str()
            .and_then(|a| a.parse().ok())
            .expect("the listening line names local_addr");
        process
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The first JSON log line, already seen or arriving within 30 s, that matches `pred`.
    pub fn wait_for_log(&mut self, pred: impl Fn(&Value) -> bool) -> Option<Value> {
        let matches = |line: &String| {
            serde_json::from_str::<Value>(line)
                .ok()
                .filter(|value| pred(value))
        };
        if let Some(value) = self.seen.iter().find_map(matches) {
            return Some(value);
        }
        while let Ok(line) = self.lines.recv_timeout(LOG_WAIT) {
            self.seen.push(line);
            if let Some(value) = self.seen.last().and_then(matches) {
                return Some(value);
            }
        }
        None
    }

    /// Everything the process wrote so far, stdout and stderr, one line each.
    pub fn output(&mut self) -> String {
        self.seen.extend(self.lines.try_iter());
        self.seen.join("\n")
    }

    pub fn signal(&self, signal: i32) {
        // SAFETY: kill(2) on our own child's pid with a valid signal number.
        let rc = unsafe { libc::kill(self.child.id() as i32, signal) };
        assert_eq!(rc, 0, "signal {signal} delivered");
    }

    /// Waits for the process to exit (blocking) and gathers the rest of its output.
    pub fn wait(&mut self) -> ExitStatus {
        let status = self.child.wait().expect("wait for the child");
        // The reader threads end at EOF; collect what they still hold.
        while let Ok(line) = self.lines.recv_timeout(Duration::from_secs(5)) {
            self.seen.push(line);
        }
        status
    }

    /// SIGKILL, then reap.
    pub fn kill(mut self) {
        self.child.kill().expect("SIGKILL");
        self.child.wait().expect("reap");
    }

    /// Polls `/readyz` until it answers `status` (bounded: about 10 s).
    pub async fn wait_ready(&self, status: u16) {
        let client = reqwest::Client::new();
        for _ in 0..200 {
            if let Ok(response) = client.get(self.url("/readyz")).send().await {
                if response.status().as_u16() == status {
                    return;
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("/readyz never answered {status}");
    }
}

impl Drop for ServiceProcess {
    fn drop(&mut self) {
        // A failed assertion must not leave a server running.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The value of a series on a Prometheus text page: `name` with its labels exactly as printed,
/// e.g. `http_requests_total{route="/",method="GET",status="200"}`.
pub fn metric(page: &str, series: &str) -> Option<f64> {
    page.lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
        .and_then(|value| value.trim().parse().ok())
}

/// Polls `base/metrics` until `http_requests_in_flight` reaches `at_least` requests besides the
/// scrape itself.
pub async fn wait_for_in_flight(client: &reqwest::Client, base: &str, at_least: usize) {
    loop {
        let page = client
            .get(format!("{base}/metrics"))
            .send()
            .await
            .expect("/metrics answers")
            .text()
            .await
            .expect("/metrics body");
        // The scrape counts itself.
        if metric(&page, "http_requests_in_flight").unwrap_or(0.0) >= (at_least + 1) as f64 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Serves `service` in the background on `127.0.0.1:0` (whatever its `LISTEN_ADDR`); returns
/// its address and the task that resolves when it has stopped.
pub async fn spawn(
    service: platform::Service,
    shutdown: platform::Shutdown,
) -> std::io::Result<(SocketAddr, tokio::task::JoinHandle<std::io::Result<()>>)> {
    let running = service
        .bind_to(SocketAddr::from(([127, 0, 0, 1], 0)))
        .await?;
    let addr = running.local_addr();
    Ok((addr, tokio::spawn(running.serve(shutdown))))
}

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
