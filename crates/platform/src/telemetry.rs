//! Structured logs: JSON lines for machines (the default when the log stream is not a terminal),
//! a compact readable format on a terminal. `RUST_LOG` filters (default `info`). With an OTLP
//! endpoint configured ([`crate::otel`]) the same spans are also exported as traces.
//!
//! Lines are written by a thread of their own ([`crate::log_writer`]): a request's handler only
//! buffers its line, so a stdout that a slow log collector stopped reading never holds up a
//! request. When the buffer is full, lines are dropped and counted (`log_lines_dropped_total` on
//! every service's `/metrics`) rather than waited for. [`flush`] writes what is buffered before
//! the process ends; the guard [`init_traced`] returns does it when `main` returns.

use std::io::IsTerminal;
use std::sync::OnceLock;

use prometheus_client::encoding::{EncodeMetric, MetricEncoder, NoLabelSet};
use prometheus_client::metrics::{MetricType, TypedMetric};

use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer, Registry};

/// Where log lines go. Services log to stdout (12-factor); a CLI whose stdout is its output
/// (health-check's legacy lines) logs to stderr.
pub use crate::log_writer::LogStream;
use crate::log_writer::LogWriter;
use crate::otel::OtelArgs;

/// How lines are written: JSON (the default off a terminal) or a compact text (on one).
#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Json,
    Text,
}

/// The writer of this process's subscriber.
static WRITER: OnceLock<LogWriter> = OnceLock::new();

/// Held by `main`: when it is dropped, the queued lines are written ([`flush`]).
#[must_use = "the queued log lines are written when this guard is dropped"]
pub struct LogGuard(());

impl Drop for LogGuard {
    fn drop(&mut self) {
        flush();
    }
}

/// Installs the global subscriber on stdout once; later calls (tests, the all-in-one runner)
/// are no-ops.
pub fn init(format: Option<LogFormat>) -> LogGuard {
    init_on(format, LogStream::Stdout)
}

/// As [`init`], on the given stream.
pub fn init_on(format: Option<LogFormat>, stream: LogStream) -> LogGuard {
    init_traced(format, stream, &OtelArgs::default(), "")
}

/// Writes every queued log line and exported span, then returns: before a process exits (the
/// [`LogGuard`] does it when `main` returns; call it before `std::process::exit`). Bounded: the
/// writer thread gets a second, the exporter [`crate::otel::flush`]'s timeout. The writer thread
/// ends with it; lines logged after it are written straight to the stream.
pub fn flush() {
    crate::otel::flush();
    if let Some(writer) = WRITER.get() {
        writer.close();
    }
}

/// Shows the writer's drop counter on a service's `/metrics`.
pub(crate) fn register_metrics(registry: &crate::metrics::MetricsRegistry) {
    if let Some(writer) = WRITER.get() {
        registry.register(
            "log_lines_dropped",
            "Log lines not written because the writer's queue was full (the log stream is read too slowly)",
            DroppedLines(writer.clone()),
        );
    }
}

/// The writer's own count, read at each scrape (a counter: it only grows).
#[derive(Debug)]
struct DroppedLines(LogWriter);

impl TypedMetric for DroppedLines {
    const TYPE: MetricType = MetricType::Counter;
}

impl EncodeMetric for DroppedLines {
    fn encode(&self, mut encoder: MetricEncoder) -> Result<(), std::fmt::Error> {
        encoder.encode_counter::<NoLabelSet, _, u64>(&self.0.dropped(), None)
    }

    fn metric_type(&self) -> MetricType {
        Self::TYPE
    }
}

/// As [`init_on`], and exporting the spans as OpenTelemetry traces when `otel` names an
/// endpoint (`service_name` unless `OTEL_SERVICE_NAME` says otherwise).
pub fn init_traced(
    format: Option<LogFormat>,
    stream: LogStream,
    otel: &OtelArgs,
    service_name: &str,
) -> LogGuard {
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
    let writer = LogWriter::start(stream);
    // Colours only for a terminal: in a file or a pipe they are escape codes in every line.
    let lines = tracing_subscriber::fmt::layer()
        .with_ansi(on_terminal)
        .with_writer(writer.clone());
    let lines: Box<dyn Layer<Registry> + Send + Sync> = match format {
        // The request's span (its request_id) on every line logged while it is handled.
        LogFormat::Json => lines
            .fmt_fields(crate::json_lines::JsonMembers)
            .event_format(crate::json_lines::JsonLines)
            .boxed(),
        LogFormat::Text => lines.compact().boxed(),
    };
    let traces = crate::otel::start(otel, service_name).map(|tracer| {
        crate::trace_sampling::SampledOnly::new(tracing_opentelemetry::layer().with_tracer(tracer))
    });
    let installed = tracing_subscriber::registry()
        .with(lines)
        .with(traces)
        .with(filter)
        .try_init();
    match installed {
        Ok(()) => {
            let _ = WRITER.set(writer);
        }
        // A subscriber was there already (tests, the all-in-one runner): this writer is unused.
        Err(_) => writer.close(),
    }
    LogGuard(())
}
