//! The routes `serve` adds to the platform's: `/` (the live status page), `/api/v1/status` (the
//! same report as JSON) and `/badge/{target}.svg`, each answered from the [`Board`] in memory.

use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Json;
use platform::config::ServerArgs;
use platform::ApiError;
use utoipa::OpenApi;

use super::badge;
use super::board::Board;
use crate::report::{self, Failure, Incident, RecentProbe, Report, TargetReport};

#[derive(OpenApi)]
#[openapi(
    paths(status_page, status, target_badge),
    components(schemas(Report, TargetReport, Failure, RecentProbe, Incident))
)]
struct Api;

/// The service `serve` runs: these routes on the platform server, ready once a report exists.
pub fn service(args: ServerArgs, board: Board) -> platform::Service {
    let ready = board.clone();
    let service = platform::Service::new(platform::service_info!("health-check"), args)
        .instant_route("/", get(status_page).with_state(board.clone()))
        .instant_route("/api/v1/status", get(status).with_state(board.clone()))
        .instant_route("/badge/{file}", get(target_badge).with_state(board))
        .openapi(Api::openapi());
    service.readiness().add_check("history", move || {
        ready
            .latest()
            .map(drop)
            .ok_or_else(|| "no probe run written yet".to_string())
    });
    service
}

fn no_report_yet() -> ApiError {
    ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "no_probes_yet",
        "no probe run has been written yet",
    )
}

/// The status page: every target's state, uptime over 24 h and 7 d, the last 90 probes, latency,
/// the last failure and the incidents. Readable without JavaScript; with it, refreshed in place.
#[utoipa::path(get, path = "/", tag = "status",
    responses(
        (status = 200, description = "The status page", body = String, content_type = "text/html"),
        (status = 503, description = "No probe run written yet", body = platform::error::ErrorBody)
    ))]
async fn status_page(State(board): State<Board>) -> Response {
    match board.latest() {
        Some(report) => (
            [
                (header::CONTENT_TYPE, "text/html; charset=utf-8"),
                (header::CACHE_CONTROL, "no-store"),
            ],
            report::render_live_page(&report, board.interval()),
        )
            .into_response(),
        None => no_report_yet().into_response(),
    }
}

/// The data of the status page, over the last 7 days of the history.
#[utoipa::path(get, path = "/api/v1/status", tag = "status",
    responses(
        (status = 200, description = "Per target state, uptime, latency and incidents", body = Report),
        (status = 503, description = "No probe run written yet", body = platform::error::ErrorBody)
    ))]
async fn status(State(board): State<Board>) -> Response {
    match board.latest() {
        Some(report) => Json(report.as_ref().clone()).into_response(),
        None => no_report_yet().into_response(),
    }
}

/// A shields-style badge of one target's uptime over 24 h ("down" while it fails).
#[utoipa::path(get, path = "/badge/{file}", tag = "status",
    params(("file" = String, Path, description = "The target's name followed by .svg")),
    responses(
        (status = 200, description = "The badge", body = String, content_type = "image/svg+xml"),
        (status = 404, description = "No such target", body = platform::error::ErrorBody),
        (status = 503, description = "No probe run written yet", body = platform::error::ErrorBody)
    ))]
async fn target_badge(State(board): State<Board>, Path(file): Path<String>) -> Response {
    let Some(name) = file.strip_suffix(".svg") else {
        return ApiError::not_found().into_response();
    };
    let Some(report) = board.latest() else {
        return no_report_yet().into_response();
    };
    match report.targets.iter().find(|t| t.target == name) {
        Some(target) => (
            [
                (header::CONTENT_TYPE, "image/svg+xml"),
                (header::CACHE_CONTROL, "no-store"),
            ],
            badge::render(target),
        )
            .into_response(),
        None => ApiError::new(
            StatusCode::NOT_FOUND,
            "unknown_target",
            "no target of that name in the status",
        )
        .into_response(),
    }
}
