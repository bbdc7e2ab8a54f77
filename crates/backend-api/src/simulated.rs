//! The legacy endpoints, kept byte-for-byte for clients: `/api_1` and `/health_check`.

use std::time::Duration;

use axum::extract::State;
use rand::seq::IndexedRandom;

const OUTCOMES: [&str; 3] = ["Success", "Created", "Failed"];

#[derive(Clone, Copy)]
pub struct SimulatedWork {
    pub latency: Duration,
}

/// Runs the simulated operation and answers `completed: <word>`.
#[utoipa::path(get, path = "/api_1", tag = "legacy",
    responses((status = 200, description = "`completed: Success`, `completed: Created` or `completed: Failed`",
        body = String, content_type = "text/plain")))]
pub async fn api_1(State(work): State<SimulatedWork>) -> String {
    let outcome = *OUTCOMES
        .choose(&mut rand::rng())
        .expect("OUTCOMES is not empty");
    tracing::info!(outcome, "Operation log: {outcome}");
    tokio::time::sleep(work.latency).await;
    format!("completed: {outcome}")
}

/// The legacy health check: `healthy`.
#[utoipa::path(get, path = "/health_check", tag = "legacy",
    responses((status = 200, description = "`healthy`", body = String, content_type = "text/plain")))]
pub async fn health_check() -> &'static str {
    "healthy"
}
