//! Reading `/metrics` pages.

use std::time::Duration;

use crate::eventually::eventually_true;

/// The `/metrics` page of the service at `base` (`http://host:port`).
pub async fn metrics_page(client: &reqwest::Client, base: &str) -> String {
    client
        .get(format!("{base}/metrics"))
        .send()
        .await
        .expect("/metrics answers")
        .text()
        .await
        .expect("/metrics body")
}

/// The value of a series on a Prometheus text page: `name` with its labels exactly as printed,
/// e.g. `http_requests_total{route="/",method="GET",status="200"}`.
pub fn metric(page: &str, series: &str) -> Option<f64> {
    page.lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
        .and_then(|value| value.trim().parse().ok())
}

/// Waits (bounded: 30 s) until `http_requests_in_flight` at `base` reaches `at_least` requests
/// besides the scrape itself.
pub async fn wait_for_in_flight(client: &reqwest::Client, base: &str, at_least: usize) {
    eventually_true(
        &format!("{at_least} requests in flight at {base}"),
        Duration::from_secs(30),
        || async {
            let page = metrics_page(client, base).await;
            // The scrape counts itself.
            metric(&page, "http_requests_in_flight").unwrap_or(0.0) >= (at_least + 1) as f64
        },
    )
    .await;
}
