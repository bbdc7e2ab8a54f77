//! `health-check serve`: the probe loop plus the platform server, answering the status page,
//! `/api/v1/status`, badges and per-target metrics from what the loop records.
//!
//! | file | its one job |
//! | --- | --- |
//! | `board.rs` | the latest report, rebuilt from the history after every run |
//! | `routes.rs` | the page, status and badge handlers and their OpenAPI description |
//! | `badge.rs` | the shields-style uptime badge |
//! | `target_metrics.rs` | `healthcheck_*` series per target |

mod badge;
mod board;
mod routes;
mod target_metrics;

use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::pin::Pin;
use std::process::ExitCode;
use std::time::Duration;

use platform::config::{ConfigError, ServerArgs};
use platform::telemetry;
use platform::Shutdown;

use crate::cli::{loop_exit_code, ServeArgs, EXIT_HEALTHY, EXIT_UNHEALTHY};
use crate::{run_loop_observed, HistoryOutput, LoopSummary, RunConfig, RunError};

pub use board::Board;
pub use target_metrics::TargetMetrics;

/// Local default address (127.0.0.1:5003, next to the other services); containers set LISTEN_ADDR.
pub const DEFAULT_ADDR: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 5003);

/// The status service assembled: the platform service to bind, and the probe loop that feeds it
/// (it ends when `shutdown` is requested). The binary's `serve` and the all-in-one runner both
/// start it this way.
pub struct StatusService {
    pub service: platform::Service,
    pub probes: Pin<Box<dyn Future<Output = Result<LoopSummary, RunError>> + Send>>,
}

/// Assembles the status service over `config`, whose history must be a file (the page is built
/// from it); the page starts with whatever that file already holds.
pub async fn status_service(
    config: RunConfig,
    interval: Duration,
    server: ServerArgs,
    shutdown: Shutdown,
) -> Result<StatusService, ConfigError> {
    let path = require_history_file(&config)?;
    let board = Board::load(path.to_path_buf(), interval).await;
    let service = routes::service(server, board.clone());
    let metrics = TargetMetrics::register(service.metrics(), &config.targets);
    if let Some(alerting) = &config.alerting {
        alerting.metrics.register(service.metrics(), alerting);
    }
    let probes = async move {
        let rebuild = tokio::spawn(board.clone().rebuild_after_runs());
        let summary = run_loop_observed(config, interval, shutdown, move |run| {
            metrics.observe(&run.records);
            board.history_changed();
        })
        .await;
        rebuild.abort();
        summary
    };
    Ok(StatusService {
        service,
        probes: Box::pin(probes),
    })
}

/// The history file the page is built from; `--output -` has none.
pub fn require_history_file(config: &RunConfig) -> Result<&std::path::Path, ConfigError> {
    match &config.history {
        HistoryOutput::File { path, .. } => Ok(path),
        HistoryOutput::Stdout => Err(ConfigError::new(
            "HEALTHCHECK_OUTPUT (--output)",
            "serve reads its page from the history: name a file, not \"-\"",
        )),
    }
}

/// Runs `serve` until a signal: exit 0 after a clean stop, 1 when the server or the loop failed
/// (or a run could not write the history), 2 for invalid configuration.
pub async fn run(args: &ServeArgs) -> i32 {
    let mut config = args.resolve().unwrap_or_else(|e| e.exit());
    // The page and the legacy log carry the human lines; stdout carries the JSON logs.
    config.print_human_lines = false;
    let _logs = telemetry::init_traced(
        args.server.log_format,
        telemetry::LogStream::Stdout,
        &args.server.otel,
        "health-check",
    );
    let shutdown = Shutdown::on_signals();
    let status = status_service(config, args.interval, args.server.clone(), shutdown.clone())
        .await
        .unwrap_or_else(|e| e.exit());
    let probes = async {
        let outcome = status.probes.await;
        // However the loop ended, the server stops with it.
        shutdown.trigger();
        outcome
    };
    let (served, probed) = tokio::join!(
        platform::serve_until_signal(status.service, DEFAULT_ADDR, shutdown.clone()),
        probes
    );
    // The last runs' spans (the server's own flush may have come before the loop's end).
    platform::otel::flush();
    match loop_exit_code(probed) {
        EXIT_HEALTHY if served != ExitCode::SUCCESS => EXIT_UNHEALTHY,
        code => code,
    }
}
