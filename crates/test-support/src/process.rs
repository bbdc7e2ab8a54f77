//! A service binary started as a child process on `127.0.0.1:0`: its bound address read from its
//! "listening" log line, its output kept for assertions, signals to stop or kill it.

use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::eventually::{eventually, READY_WAIT};

/// How long a child may take to log its address or another awaited line.
const LOG_WAIT: Duration = Duration::from_secs(30);
/// How long a child that was told to stop may take to exit.
const EXIT_WAIT: Duration = Duration::from_secs(60);

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

    /// Waits (blocking, bounded: 60 s) for the process to exit and gathers the rest of its
    /// output; fails the test, with that output, when it does not exit.
    pub fn wait(&mut self) -> ExitStatus {
        let deadline = Instant::now() + EXIT_WAIT;
        let status = loop {
            if let Some(status) = self.child.try_wait().expect("wait for the child") {
                break status;
            }
            if Instant::now() >= deadline {
                panic!(
                    "the process did not exit within {EXIT_WAIT:?}:\n{}",
                    self.output()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        };
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

    /// Waits (bounded) until `/readyz` answers `status`.
    pub async fn wait_ready(&self, status: u16) {
        let client = crate::client();
        let url = self.url("/readyz");
        eventually(&format!("{url} answers {status}"), READY_WAIT, || async {
            let answered = client.get(&url).send().await.ok()?.status().as_u16();
            (answered == status).then_some(())
        })
        .await;
    }
}

impl Drop for ServiceProcess {
    fn drop(&mut self) {
        // A failed assertion must not leave a server running.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
