//! The whole `main` of a service binary, the same for every service.

use std::future::Future;
use std::net::SocketAddr;
use std::process::ExitCode;

use crate::config::{self, ConfigError, ServerArgs, Validate};
use crate::service::Service;
use crate::shutdown::Shutdown;
use crate::telemetry;

/// Disables core dumps ([`crate::core_dumps`]), parses the configuration (one line and exit 2 when invalid; with `--check-config`, validates,
/// prints one line and exits 0 or 2 without binding anything), starts the logs, installs the
/// signal handlers (before binding, so a signal that arrives once the address is logged is never
/// missed), builds the service (exit 2 on a configuration error), binds `LISTEN_ADDR` or
/// `default_addr`, and serves until a signal stops it.
pub async fn run<C, F, Fut>(default_addr: SocketAddr, service: F) -> ExitCode
where
    C: Validate + AsRef<ServerArgs>,
    F: FnOnce(C) -> Fut,
    Fut: Future<Output = Result<Service, ConfigError>>,
{
    let core_dumps = crate::core_dumps::disable();
    let config: C = config::parse_checked_or_exit();
    let server = config.as_ref();
    let name = C::command().get_name().to_string();
    // Held to the end of `run`: the last lines are written before the process exits.
    let _logs = telemetry::init_traced(
        server.log_format,
        telemetry::LogStream::Stdout,
        &server.otel,
        &name,
    );
    if let Err(err) = core_dumps {
        tracing::warn!(error = %err, "cannot disable core dumps (RLIMIT_CORE)");
    }
    let shutdown = Shutdown::on_signals();
    let service = service(config).await.unwrap_or_else(|err| err.exit());
    serve_until_signal(service, default_addr, shutdown).await
}

/// Binds `LISTEN_ADDR` or `default_addr` and serves until `shutdown`: the end of [`run`], for a
/// binary whose service is one of several subcommands (health-check's `serve`).
pub async fn serve_until_signal(
    service: Service,
    default_addr: SocketAddr,
    shutdown: Shutdown,
) -> ExitCode {
    let running = match service.bind(default_addr).await {
        Ok(running) => running,
        Err(err) => {
            tracing::error!(error = %err, "cannot bind the listen address");
            return ExitCode::FAILURE;
        }
    };
    let served = running.serve(shutdown).await;
    // The spans of the last requests, before the process ends (bounded).
    crate::otel::flush();
    match served {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            tracing::error!(error = %err, "server failed");
            ExitCode::FAILURE
        }
    }
}
