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

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use platform::telemetry;
use platform::Shutdown;

use crate::cli::{ServeArgs, EXIT_HEALTHY, EXIT_UNHEALTHY};
use crate::{run_loop_observed, HistoryOutput};

pub use board::Board;
pub use target_metrics::TargetMetrics;

/// Local default address (127.0.0.1:5003, next to the other services); containers set LISTEN_ADDR.
pub const DEFAULT_ADDR: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 5003);

/// Runs `serve` until a signal: exit 0 after a clean stop, 1 when the server or the loop failed
/// (or a run could not write the history), 2 for invalid configuration.
pub async fn run(args: &ServeArgs) -> i32 {
    let mut config = args.resolve().unwrap_or_else(|e| e.exit());
    // The page and the legacy log carry the human lines; stdout carries the JSON logs.
    config.print_human_lines = false;
    let HistoryOutput::File { path, .. } = &config.history else {
        unreachable!("ServeArgs::resolve accepts only a history file")
    };
    telemetry::init(args.server.log_format);
    let shutdown = Shutdown::on_signals();
    let board = Board::load(path.clone(), args.interval).await;
    let service = routes::service(args.server.clone(), board.clone());
    let metrics = TargetMetrics::register(service.metrics(), &config.targets);
    let rebuild = tokio::spawn(board.clone().rebuild_after_runs());
    let probes = run_loop_observed(config, args.interval, shutdown.clone(), {
        let board = board.clone();
        move |run| {
            metrics.observe(&run.records);
            board.history_changed();
        }
    });
    let probes = async {
        let outcome = probes.await;
        // However the loop ended, the server stops with it.
        shutdown.trigger();
        outcome
    };
    let (served, probed) = tokio::join!(
        platform::serve_until_signal(service, DEFAULT_ADDR, shutdown.clone()),
        probes
    );
    rebuild.abort();
    match probed {
        Ok(summary)
            if summary.history_failures == 0 && served == std::process::ExitCode::SUCCESS =>
        {
            EXIT_HEALTHY
        }
        Ok(summary) => {
            if summary.history_failures > 0 {
                eprintln!(
                    "health-check: {} of {} runs could not write the health history",
                    summary.history_failures, summary.runs
                );
            }
            EXIT_UNHEALTHY
        }
        Err(e) => {
            eprintln!("health-check: {e}");
            EXIT_UNHEALTHY
        }
    }
}
