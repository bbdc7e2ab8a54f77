//! A [`platform::Service`] served in-process on `127.0.0.1:0`, with a client for it: the one way
//! the tests start a service without a child process.

use std::net::SocketAddr;
use std::time::Duration;

use platform::Shutdown;

use crate::eventually::{eventually_true, READY_WAIT};

/// A client with a bound on every request, so a hung server fails the test instead of hanging it.
pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(20))
        .build()
        .expect("a reqwest client")
}

/// A running service. Dropping it stops the service (without waiting); [`TestApp::stop`] stops
/// it and waits until it has let go of everything.
pub struct TestApp {
    pub addr: SocketAddr,
    pub client: reqwest::Client,
    shutdown: Shutdown,
    handle: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
}

impl TestApp {
    /// Serves `service` on `127.0.0.1:0`, whatever its `LISTEN_ADDR`.
    pub async fn start(service: platform::Service) -> Self {
        let running = service
            .bind_to(SocketAddr::from(([127, 0, 0, 1], 0)))
            .await
            .expect("binds 127.0.0.1:0");
        let addr = running.local_addr();
        let shutdown = Shutdown::new();
        let handle = tokio::spawn(running.serve(shutdown.clone()));
        Self {
            addr,
            client: client(),
            shutdown,
            handle: Some(handle),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// The stop switch, for tests that stop the service from elsewhere.
    pub fn shutdown(&self) -> Shutdown {
        self.shutdown.clone()
    }

    /// GET `path` and decode its JSON body, failing the test on any error.
    pub async fn get_json<T: serde::de::DeserializeOwned>(&self, path: &str) -> T {
        crate::get_json(&self.client, &self.url(path)).await
    }

    /// The `/metrics` page.
    pub async fn metrics_page(&self) -> String {
        crate::metrics::metrics_page(&self.client, &self.url("")).await
    }

    /// The value of a series on `/metrics`, exactly as printed (see [`crate::metric`]).
    pub async fn metric(&self, series: &str) -> f64 {
        let page = self.metrics_page().await;
        crate::metric(&page, series)
            .unwrap_or_else(|| panic!("metric {series} not found in\n{page}"))
    }

    /// The status `/readyz` answers.
    pub async fn readyz(&self) -> u16 {
        self.client
            .get(self.url("/readyz"))
            .send()
            .await
            .expect("/readyz answers")
            .status()
            .as_u16()
    }

    /// Waits (bounded) until `/readyz` answers `status`.
    pub async fn wait_ready(&self, status: u16) {
        eventually_true(&format!("/readyz answers {status}"), READY_WAIT, || async {
            self.readyz().await == status
        })
        .await;
    }

    /// Stops the service and waits (bounded) until it has stopped.
    pub async fn stop(mut self) {
        self.shutdown.trigger();
        let handle = self.handle.take().expect("stopped once");
        tokio::time::timeout(Duration::from_secs(60), handle)
            .await
            .expect("the service stopped within 60 s")
            .expect("the serve task did not panic")
            .expect("the service stopped cleanly");
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        // A failed assertion must not leave a server running.
        self.shutdown.trigger();
    }
}
