//! OpenTelemetry traces, off unless an OTLP endpoint is configured (the standard `OTEL_*`
//! variables, each also a flag). Spans are the `tracing` spans the services already open (the
//! request, the provider call and its attempts, data-api's group commit, health-check's run and
//! probes), turned into OpenTelemetry spans by `tracing-opentelemetry` and sent as OTLP over
//! HTTP/protobuf by `opentelemetry-otlp`, through the workspace's reqwest client.
//!
//! Export never blocks a request: a finished span is handed to a bounded queue with `try_send`;
//! one exporter thread (its own small runtime, so it outlives nothing and waits on nothing of
//! the service's) sends batches. A full queue (collector down, hung or slow) drops the span and
//! counts it, as does a batch the collector did not take: `trace_spans_dropped{reason}`. The
//! SDK's own batch processor does the same, but counts its drops only in a log line at shutdown.
//!
//! W3C `traceparent`/`tracestate` are taken from incoming requests by the pipeline
//! ([`request_root`]) and sent on outgoing calls ([`inject`]). The sampler decides at a trace's
//! root, before any span of it is built ([`crate::trace_sampling`]).

use std::fmt;
use std::sync::OnceLock;
use std::time::Duration;

use clap::{Args, ValueEnum};
use opentelemetry::propagation::TextMapPropagator;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry::{Context, KeyValue};
use opentelemetry_http::{HeaderExtractor, HeaderInjector};
use opentelemetry_otlp::{WithExportConfig, WithHttpConfig};
use opentelemetry_sdk::error::{OTelSdkError, OTelSdkResult};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::{
    Sampler, SdkTracerProvider, Span, SpanData, SpanExporter, SpanProcessor,
};
use opentelemetry_sdk::Resource;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use tokio::sync::mpsc;
use tracing_opentelemetry::OpenTelemetrySpanExt;

use crate::metrics::MetricsRegistry;
use crate::trace_sampling;
pub use crate::trace_sampling::Root;

/// The standard OpenTelemetry variables this stack reads. Every value is checked by its parser,
/// so a bad one stops the start (and `--check-config`) with one line naming it.
#[derive(Args, Debug, Clone, Default)]
pub struct OtelArgs {
    /// Base URL of an OTLP/HTTP collector (traces go to `<url>/v1/traces`); unset or empty: no
    /// traces.
    #[arg(long, env = "OTEL_EXPORTER_OTLP_ENDPOINT", value_parser = parse_endpoint)]
    pub otel_exporter_otlp_endpoint: Option<Endpoint>,

    /// Full URL traces are posted to; wins over OTEL_EXPORTER_OTLP_ENDPOINT.
    #[arg(long, env = "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", value_parser = parse_endpoint)]
    pub otel_exporter_otlp_traces_endpoint: Option<Endpoint>,

    /// `service.name` of the spans (default: the binary's name).
    #[arg(long, env = "OTEL_SERVICE_NAME", value_parser = parse_service_name)]
    pub otel_service_name: Option<String>,

    /// Which traces are kept: always_on, always_off, traceidratio, parentbased_always_on
    /// (the default: follow the caller's decision, sample every root),
    /// parentbased_always_off, parentbased_traceidratio.
    #[arg(long, env = "OTEL_TRACES_SAMPLER", value_enum, default_value_t = SamplerName::ParentbasedAlwaysOn)]
    pub otel_traces_sampler: SamplerName,

    /// The ratio of the *traceidratio samplers, 0 to 1 (default 1).
    #[arg(long, env = "OTEL_TRACES_SAMPLER_ARG", value_parser = parse_ratio)]
    pub otel_traces_sampler_arg: Option<f64>,

    /// More resource attributes: `key=value,key=value` (values percent-encoded where needed).
    #[arg(long, env = "OTEL_RESOURCE_ATTRIBUTES", value_parser = parse_resource_attributes)]
    pub otel_resource_attributes: Option<ResourceAttributes>,
}

#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq, Default)]
#[value(rename_all = "snake_case")]
pub enum SamplerName {
    AlwaysOn,
    AlwaysOff,
    Traceidratio,
    #[default]
    ParentbasedAlwaysOn,
    ParentbasedAlwaysOff,
    ParentbasedTraceidratio,
}

/// Parsed `OTEL_RESOURCE_ATTRIBUTES`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ResourceAttributes(pub Vec<(String, String)>);

impl OtelArgs {
    /// Where traces go, when tracing is on.
    pub fn traces_endpoint(&self) -> Option<reqwest::Url> {
        let set = |endpoint: &Option<Endpoint>| endpoint.as_ref().and_then(|e| e.0.clone());
        if let Some(full) = set(&self.otel_exporter_otlp_traces_endpoint) {
            return Some(full);
        }
        let base = &set(&self.otel_exporter_otlp_endpoint)?;
        let mut url = base.clone();
        let path = format!("{}/v1/traces", base.path().trim_end_matches('/'));
        url.set_path(&path);
        Some(url)
    }

    fn sampler(&self) -> Sampler {
        let ratio = self.otel_traces_sampler_arg.unwrap_or(1.0);
        match self.otel_traces_sampler {
            SamplerName::AlwaysOn => Sampler::AlwaysOn,
            SamplerName::AlwaysOff => Sampler::AlwaysOff,
            SamplerName::Traceidratio => Sampler::TraceIdRatioBased(ratio),
            SamplerName::ParentbasedAlwaysOn => Sampler::ParentBased(Box::new(Sampler::AlwaysOn)),
            SamplerName::ParentbasedAlwaysOff => Sampler::ParentBased(Box::new(Sampler::AlwaysOff)),
            SamplerName::ParentbasedTraceidratio => {
                Sampler::ParentBased(Box::new(Sampler::TraceIdRatioBased(ratio)))
            }
        }
    }
}

/// An OTLP endpoint variable's value: a URL, or none when the variable is empty (the
/// OpenTelemetry specification: an empty value is as if unset).
#[derive(Debug, Clone, PartialEq)]
pub struct Endpoint(pub Option<reqwest::Url>);

fn parse_endpoint(value: &str) -> Result<Endpoint, String> {
    if value.trim().is_empty() {
        return Ok(Endpoint(None));
    }
    parse_url(value).map(|url| Endpoint(Some(url)))
}

fn parse_url(value: &str) -> Result<reqwest::Url, String> {
    let url = reqwest::Url::parse(value.trim()).map_err(|e| format!("not a URL ({e})"))?;
    match url.scheme() {
        "http" | "https" if url.host().is_some() => Ok(url),
        "http" | "https" => Err("the URL has no host".to_string()),
        other => Err(format!(
            "OTLP over HTTP needs an http:// or https:// URL, not {other}://"
        )),
    }
}

fn parse_service_name(value: &str) -> Result<String, String> {
    let name = value.trim();
    if name.is_empty() {
        return Err("empty; leave it unset for the binary's name".to_string());
    }
    Ok(name.to_string())
}

fn parse_ratio(value: &str) -> Result<f64, String> {
    let ratio: f64 = value
        .trim()
        .parse()
        .map_err(|_| "not a number between 0 and 1".to_string())?;
    if !(0.0..=1.0).contains(&ratio) {
        return Err("a ratio between 0 and 1 (0.01 keeps 1 % of traces)".to_string());
    }
    Ok(ratio)
}

fn parse_resource_attributes(value: &str) -> Result<ResourceAttributes, String> {
    let mut attributes = Vec::new();
    for pair in value.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let Some((key, val)) = pair.split_once('=') else {
            return Err(format!("{pair:?} is not key=value"));
        };
        let key = key.trim();
        if key.is_empty() {
            return Err(format!("{pair:?} has an empty key"));
        }
        let val =
            percent_decode(val.trim()).ok_or_else(|| format!("{pair:?}: bad percent-encoding"))?;
        attributes.push((key.to_string(), val));
    }
    Ok(ResourceAttributes(attributes))
}

/// `%XX` escapes (the W3C baggage encoding the variable uses), as UTF-8.
fn percent_decode(value: &str) -> Option<String> {
    let bytes = value.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = value.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// Most spans waiting for export; beyond it spans are dropped (and counted), never queued.
pub const MAX_QUEUE: usize = 2048;
/// Most spans in one export request.
const MAX_BATCH: usize = 512;
/// How long the first span of a batch waits for others.
const BATCH_DELAY: Duration = Duration::from_millis(500);
/// Longest one export may take (a hung collector costs this, then the batch is dropped).
const EXPORT_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest the final flush may hold up a process that is exiting.
const FLUSH_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DropLabels {
    reason: &'static str,
}

/// The exporter's counters: one set per process, shown on every service's `/metrics` of it.
#[derive(Clone, Default)]
struct TraceMetrics {
    exported: Counter,
    dropped: Family<DropLabels, Counter>,
}

impl TraceMetrics {
    fn dropped(&self, reason: &'static str, spans: usize) {
        self.dropped
            .get_or_create(&DropLabels { reason })
            .inc_by(spans as u64);
    }
}

struct Tracing {
    provider: SdkTracerProvider,
    /// The configured sampler, asked once per trace at its root ([`Root::decide`]).
    sampler: Sampler,
    metrics: TraceMetrics,
    flush: mpsc::UnboundedSender<FlushDone>,
}

/// Answered by the exporter thread once a flush has been sent (or failed).
type FlushDone = std::sync::mpsc::Sender<()>;

static TRACING: OnceLock<Tracing> = OnceLock::new();
static PROPAGATOR: OnceLock<TraceContextPropagator> = OnceLock::new();

/// Whether this process exports traces.
pub fn enabled() -> bool {
    TRACING.get().is_some()
}

/// Starts the exporter when an endpoint is configured and returns the tracer the subscriber's
/// OpenTelemetry layer uses; `None` (and nothing started) otherwise. Once per process.
pub(crate) fn start(
    args: &OtelArgs,
    default_service_name: &str,
) -> Option<opentelemetry_sdk::trace::Tracer> {
    let endpoint = args.traces_endpoint()?;
    if let Some(running) = TRACING.get() {
        return Some(running.provider.tracer("abn-stack"));
    }
    let service_name = args
        .otel_service_name
        .clone()
        .unwrap_or_else(|| default_service_name.to_string());
    let mut attributes: Vec<KeyValue> = args
        .otel_resource_attributes
        .iter()
        .flat_map(|a| a.0.iter())
        .map(|(k, v)| KeyValue::new(k.clone(), v.clone()))
        .collect();
    attributes.push(KeyValue::new("service.version", env!("CARGO_PKG_VERSION")));
    let resource = Resource::builder_empty()
        .with_attributes(attributes)
        .with_service_name(service_name)
        .build();
    let client = crate::http_client::builder()
        .timeout(EXPORT_TIMEOUT)
        .build()
        .ok()?;
    let mut exporter = match opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_http_client(ReqwestClient(client))
        .with_protocol(opentelemetry_otlp::Protocol::HttpBinary)
        .with_endpoint(endpoint.as_str())
        .with_timeout(EXPORT_TIMEOUT)
        .build()
    {
        Ok(exporter) => exporter,
        Err(err) => {
            eprintln!("tracing off: cannot build the OTLP exporter: {err}");
            return None;
        }
    };
    exporter.set_resource(&resource);
    let metrics = TraceMetrics::default();
    let (spans, queue) = mpsc::channel(MAX_QUEUE);
    let (flush, flushes) = mpsc::unbounded_channel();
    let worker_metrics = metrics.clone();
    let spawned = std::thread::Builder::new()
        .name("otlp-export".to_string())
        .spawn(move || export_loop(exporter, queue, flushes, worker_metrics));
    if let Err(err) = spawned {
        eprintln!("tracing off: cannot start the export thread: {err}");
        return None;
    }
    // Only spans of kept traces reach the SDK (trace_sampling.rs), so it keeps every one.
    let provider = SdkTracerProvider::builder()
        .with_resource(resource)
        .with_sampler(Sampler::AlwaysOn)
        .with_span_processor(QueueProcessor {
            spans,
            metrics: metrics.clone(),
            flush: flush.clone(),
        })
        .build();
    let tracer = provider.tracer("abn-stack");
    let _ = TRACING.set(Tracing {
        provider,
        sampler: args.sampler(),
        metrics,
        flush,
    });
    Some(tracer)
}

/// Shows the exporter's counters on a service's `/metrics` (when tracing is on).
pub(crate) fn register_metrics(registry: &MetricsRegistry) {
    if let Some(tracing) = TRACING.get() {
        registry.register(
            "trace_spans_exported",
            "Spans the OTLP collector accepted",
            tracing.metrics.exported.clone(),
        );
        registry.register(
            "trace_spans_dropped",
            "Spans not exported, by reason: queue_full (the export queue was full: collector slow or down), export_failed (the collector refused the batch or did not answer)",
            tracing.metrics.dropped.clone(),
        );
    }
}

/// Sends what is queued and waits for it, at most [`FLUSH_TIMEOUT`]: at the end of a process.
/// Blocks the calling thread; a no-op when tracing is off.
pub fn flush() {
    let Some(tracing) = TRACING.get() else {
        return;
    };
    let _ = flush_through(&tracing.flush);
}

/// The sampler's decision for a request's trace: the caller's, named by the request's
/// `traceparent`/`tracestate` (the parent-based samplers follow its sampled flag), or a new one.
/// [`Root::open`] then opens the request's span under it.
pub(crate) fn request_root(headers: &http::HeaderMap) -> Root {
    let Some(tracing) = TRACING.get() else {
        return Root::kept(false);
    };
    let parent = headers
        .contains_key("traceparent")
        .then(|| propagator().extract(&HeaderExtractor(headers)));
    Root::decide(&tracing.sampler, parent, "request")
}

/// The sampler's decision for a new trace started here (health-check's run).
pub fn new_root(name: &str) -> Root {
    match TRACING.get() {
        Some(tracing) => Root::decide(&tracing.sampler, None, name),
        None => Root::kept(false),
    }
}

/// A root kept when any of the spans it is linked to is in a kept trace (data-api's group commit,
/// linked to the requests it acknowledges).
pub fn linked_root<'a>(links: impl IntoIterator<Item = &'a tracing::Span>) -> Root {
    Root::kept(enabled() && links.into_iter().any(traced))
}

/// Whether `span` is in a kept trace: its spans are exported. Children are worth opening only
/// then.
pub fn traced(span: &tracing::Span) -> bool {
    enabled() && trace_sampling::is_traced(span)
}

/// Writes `span`'s trace context as `traceparent`/`tracestate` into an outgoing request's
/// headers when tracing is on: the span's own in a kept trace, an unsampled one otherwise (so the
/// service called drops the trace too, under a parent-based sampler).
pub fn inject(span: &tracing::Span, headers: &mut http::HeaderMap) {
    if !enabled() {
        return;
    }
    let context: Context = if trace_sampling::is_traced(span) {
        span.context()
    } else {
        trace_sampling::unsampled_context(span)
    };
    propagator().inject_context(&context, &mut HeaderInjector(headers));
}

/// The trace id of `span` (32 hex digits) when tracing is on and the span is sampled.
pub fn trace_id(span: &tracing::Span) -> Option<String> {
    use opentelemetry::trace::TraceContextExt;
    if !traced(span) {
        return None;
    }
    let context = span.context();
    let span_context = context.span().span_context().clone();
    (span_context.is_valid() && span_context.is_sampled())
        .then(|| span_context.trace_id().to_string())
}

fn propagator() -> &'static TraceContextPropagator {
    PROPAGATOR.get_or_init(TraceContextPropagator::new)
}

/// Hands finished spans to the export queue without ever waiting.
struct QueueProcessor {
    spans: mpsc::Sender<SpanData>,
    metrics: TraceMetrics,
    flush: mpsc::UnboundedSender<FlushDone>,
}

impl fmt::Debug for QueueProcessor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("QueueProcessor")
    }
}

impl SpanProcessor for QueueProcessor {
    fn on_start(&self, _span: &mut Span, _cx: &Context) {}

    fn on_end(&self, span: SpanData) {
        if !span.span_context.is_sampled() {
            return;
        }
        if self.spans.try_send(span).is_err() {
            self.metrics.dropped("queue_full", 1);
        }
    }

    fn force_flush(&self) -> OTelSdkResult {
        flush_through(&self.flush)
    }

    fn shutdown_with_timeout(&self, _timeout: Duration) -> OTelSdkResult {
        Ok(())
    }
}

/// Asks the exporter thread to send what is queued; waits at most [`FLUSH_TIMEOUT`].
fn flush_through(flush: &mpsc::UnboundedSender<FlushDone>) -> OTelSdkResult {
    let (done, finished) = std::sync::mpsc::channel();
    flush
        .send(done)
        .map_err(|_| OTelSdkError::AlreadyShutdown)?;
    finished
        .recv_timeout(FLUSH_TIMEOUT)
        .map_err(|_| OTelSdkError::Timeout(FLUSH_TIMEOUT))
}

/// The exporter thread: batches of up to [`MAX_BATCH`] spans, each sent within
/// [`EXPORT_TIMEOUT`]; a flush sends everything queued and then answers.
fn export_loop(
    exporter: opentelemetry_otlp::SpanExporter,
    mut queue: mpsc::Receiver<SpanData>,
    mut flushes: mpsc::UnboundedReceiver<FlushDone>,
    metrics: TraceMetrics,
) {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("tracing off: cannot start the export runtime: {err}");
            return;
        }
    };
    runtime.block_on(async move {
        let mut batch = Vec::with_capacity(MAX_BATCH);
        loop {
            tokio::select! {
                biased;
                flush = flushes.recv() => {
                    let Some(done) = flush else { break };
                    while queue.recv_many(&mut batch, MAX_BATCH).now_or_never_nonzero() {
                        send(&exporter, &mut batch, &metrics).await;
                    }
                    let _ = done.send(());
                }
                received = queue.recv_many(&mut batch, MAX_BATCH) => {
                    if received == 0 {
                        break;
                    }
                    let deadline = tokio::time::Instant::now() + BATCH_DELAY;
                    while batch.len() < MAX_BATCH {
                        let room = MAX_BATCH - batch.len();
                        match tokio::time::timeout_at(deadline, queue.recv_many(&mut batch, room)).await {
                            Ok(0) | Err(_) => break,
                            Ok(_) => {}
                        }
                    }
                    send(&exporter, &mut batch, &metrics).await;
                }
            }
        }
    });
}

/// `recv_many` without waiting: whether it took at least one span.
trait NowOrNeverNonzero {
    fn now_or_never_nonzero(self) -> bool;
}

impl<F: std::future::Future<Output = usize>> NowOrNeverNonzero for F {
    fn now_or_never_nonzero(self) -> bool {
        use futures_util::FutureExt;
        self.now_or_never().is_some_and(|n| n > 0)
    }
}

async fn send(
    exporter: &opentelemetry_otlp::SpanExporter,
    batch: &mut Vec<SpanData>,
    metrics: &TraceMetrics,
) {
    let spans = batch.len();
    if spans == 0 {
        return;
    }
    let export = exporter.export(std::mem::take(batch));
    match tokio::time::timeout(EXPORT_TIMEOUT, export).await {
        Ok(Ok(())) => {
            metrics.exported.inc_by(spans as u64);
        }
        _ => metrics.dropped("export_failed", spans),
    }
}

/// opentelemetry-http's client interface on the workspace's reqwest client (hickory DNS,
/// rustls), so the exporter needs no second HTTP stack.
#[derive(Debug)]
struct ReqwestClient(reqwest::Client);

#[async_trait::async_trait]
impl opentelemetry_http::HttpClient for ReqwestClient {
    async fn send_bytes(
        &self,
        request: http::Request<bytes::Bytes>,
    ) -> Result<http::Response<bytes::Bytes>, opentelemetry_http::HttpError> {
        let request = reqwest::Request::try_from(request.map(reqwest::Body::from))?;
        let response = self.0.execute(request).await?;
        let status = response.status();
        let headers = response.headers().clone();
        let body = response.bytes().await?;
        let mut answer = http::Response::new(body);
        *answer.status_mut() = status;
        *answer.headers_mut() = headers;
        Ok(answer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_traces_endpoint_follows_the_standard() {
        let mut args = OtelArgs {
            otel_exporter_otlp_endpoint: Some(parse_endpoint("http://collector:4318").unwrap()),
            ..OtelArgs::default()
        };
        assert_eq!(
            args.traces_endpoint().unwrap().as_str(),
            "http://collector:4318/v1/traces"
        );
        args.otel_exporter_otlp_endpoint = Some(parse_endpoint("http://c:4318/otlp/").unwrap());
        assert_eq!(
            args.traces_endpoint().unwrap().as_str(),
            "http://c:4318/otlp/v1/traces"
        );
        args.otel_exporter_otlp_traces_endpoint =
            Some(parse_endpoint("https://t.example/custom").unwrap());
        assert_eq!(
            args.traces_endpoint().unwrap().as_str(),
            "https://t.example/custom"
        );
        assert!(OtelArgs::default().traces_endpoint().is_none());
        let empty = OtelArgs {
            otel_exporter_otlp_endpoint: Some(parse_endpoint("").unwrap()),
            otel_exporter_otlp_traces_endpoint: Some(parse_endpoint(" ").unwrap()),
            ..OtelArgs::default()
        };
        assert!(empty.traces_endpoint().is_none(), "empty is unset");
    }

    #[test]
    fn bad_values_are_refused() {
        assert!(parse_endpoint("grpc://c:4317").is_err());
        assert!(parse_endpoint("collector:4318").is_err());
        assert!(parse_ratio("1.5").is_err());
        assert!(parse_ratio("-0.1").is_err());
        assert!(parse_ratio("a lot").is_err());
        assert_eq!(parse_ratio("0.01"), Ok(0.01));
        assert!(parse_service_name(" ").is_err());
        assert!(parse_resource_attributes("novalue").is_err());
        assert!(parse_resource_attributes("=x").is_err());
        assert!(parse_resource_attributes("a=%zz").is_err());
        assert_eq!(
            parse_resource_attributes("deployment.environment=dev, team=a%20b").unwrap(),
            ResourceAttributes(vec![
                ("deployment.environment".into(), "dev".into()),
                ("team".into(), "a b".into())
            ])
        );
    }
}
