//! Structured logs: JSON lines for machines (the default when the log stream is not a terminal),
//! a compact readable format on a terminal. `RUST_LOG` filters (default `info`). With an OTLP
//! endpoint configured ([`crate::otel`]) the same spans are also exported as traces.

use std::io::IsTerminal;

use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer, Registry};

use crate::config::LogFormat;
use crate::otel::OtelArgs;

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
    init_traced(format, stream, &OtelArgs::default(), "")
}

/// As [`init_on`], and exporting the spans as OpenTelemetry traces when `otel` names an
/// endpoint (`service_name` unless `OTEL_SERVICE_NAME` says otherwise).
pub fn init_traced(
    format: Option<LogFormat>,
    stream: LogStream,
    otel: &OtelArgs,
    service_name: &str,
) {
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
    let lines = tracing_subscriber::fmt::layer().with_writer(move || -> Box<dyn std::io::Write> {
        match stream {
            LogStream::Stdout => Box::new(std::io::stdout()),
            LogStream::Stderr => Box::new(std::io::stderr()),
        }
    });
    let lines: Box<dyn Layer<Registry> + Send + Sync> = match format {
        LogFormat::Json => lines
            .json()
            .flatten_event(true)
            // The request's span (its request_id) on every line logged while it is handled.
            .with_current_span(true)
            .with_span_list(false)
            .boxed(),
        LogFormat::Text => lines.compact().boxed(),
    };
    let traces = crate::otel::start(otel, service_name)
        .map(|tracer| tracing_opentelemetry::layer().with_tracer(tracer));
    let _ = tracing_subscriber::registry()
        .with(lines)
        .with(traces)
        .with(filter)
        .try_init();
}
