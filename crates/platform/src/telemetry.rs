//! Structured logs: JSON lines for machines (the default when the log stream is not a terminal),
//! a compact readable format on a terminal. `RUST_LOG` filters (default `info`).

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

use crate::config::LogFormat;

/// Where log lines go. Services log to stdout (12-factor); a CLI whose stdout is its output
/// (health-check's legacy lines) logs to stderr.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogStream {
    Stdout,
    Stderr,
}

/// Installs the global subscriber on stdout once; later calls (tests, the all-in-one runner)
/// are no-ops.
pub fn init(format: Option<LogFormat>) {
    init_on(format, LogStream::Stdout)
}

/// As [`init`], on the given stream.
pub fn init_on(format: Option<LogFormat>, stream: LogStream) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let on_terminal = match stream {
        LogStream::Stdout => std::io::stdout().is_terminal(),
        LogStream::Stderr => std::io::stderr().is_terminal(),
    };
    let format = format.unwrap_or(if on_terminal {
        LogFormat::Text
    } else {
        LogFormat::Json
    });
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(move || -> Box<dyn std::io::Write> {
            match stream {
                LogStream::Stdout => Box::new(std::io::stdout()),
                LogStream::Stderr => Box::new(std::io::stderr()),
            }
        });
    let _ = match format {
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            // The request's span (its request_id) on every line logged while it is handled.
            .with_current_span(true)
            .with_span_list(false)
            .try_init(),
        LogFormat::Text => builder.compact().try_init(),
    };
}
