//! `/download_external_logs`: streams the external provider's logs to the client.
//!
//! The provider is called with `Authorization: Bearer <key>`. Failed attempts (connection errors,
//! 5xx, 429) are retried with backoff, but only before any byte reaches the client, and all
//! attempts share one budget until the first byte, so a hung provider costs one budget, not a
//! multiple. The body is passed through chunk by chunk: memory stays flat whatever the size.

use std::collections::HashMap;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Query, RawQuery, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use backon::{ExponentialBuilder, Retryable};
use futures_util::{StreamExt, TryStreamExt};
use platform::callers::CallerName;
use platform::config::ConfigError;
use platform::secret_file::SecretFileError;
use platform::ApiError;
use platform::Reloadable;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use reqwest::Url;
use secrecy::ExposeSecret;
use tracing::Instrument;

use crate::config::{Config, Integration, KeySource};

/// How an upstream call ended, as a metric label.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabels {
    outcome: &'static str,
}

/// Why a download was cut after its first byte, as a metric label.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CutLabels {
    reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CallerLabels {
    caller: String,
    outcome: &'static str,
}

#[derive(Clone)]
pub struct UpstreamMetrics {
    requests: Family<OutcomeLabels, Counter>,
    bytes: Counter,
    callers: Family<CallerLabels, Counter>,
    truncated: Family<CutLabels, Counter>,
}

impl UpstreamMetrics {
    pub fn register(registry: &platform::metrics::MetricsRegistry) -> Self {
        let metrics = Self {
            requests: Family::default(),
            bytes: Counter::default(),
            callers: Family::default(),
            truncated: Family::default(),
        };
        registry.register(
            "backend_download_requests",
            "Download requests by caller (its token name, or anonymous) and outcome: allowed, unauthorized, rate_limited",
            metrics.callers.clone(),
        );
        registry.register(
            "backend_upstream_requests",
            "Downloads from the external log provider, by outcome",
            metrics.requests.clone(),
        );
        registry.register(
            "backend_upstream_bytes",
            "Bytes streamed from the external log provider to clients",
            metrics.bytes.clone(),
        );
        registry.register(
            "backend_upstream_truncated",
            "Downloads cut after their first byte, by reason: idle (EXTERNAL_LOGS_READ_IDLE_TIMEOUT), stream_timeout (EXTERNAL_LOGS_STREAM_TIMEOUT), broken (the provider's stream failed)",
            metrics.truncated.clone(),
        );
        metrics
    }

    fn count_caller(&self, caller: &str, outcome: &'static str) {
        self.callers
            .get_or_create(&CallerLabels {
                caller: caller.to_string(),
                outcome,
            })
            .inc();
    }

    fn count(&self, outcome: &'static str) {
        self.requests
            .get_or_create(&OutcomeLabels { outcome })
            .inc();
    }
}

/// Who may download, and how often.
#[derive(Clone)]
pub struct Access {
    pub callers: platform::callers::Callers,
    pub limit: crate::rate_limit::DownloadLimit,
}

/// The configured provider client; `None` inside when the integration is disabled.
#[derive(Clone)]
pub struct ExternalLogs {
    access: Access,
    upstream: Option<Upstream>,
    metrics: UpstreamMetrics,
    /// EXTERNAL_LOGS_MAX_LIMIT: the largest `limit` passed on.
    max_limit: u64,
}

/// One line of the provider's answer (JSON Lines), as the stand-in log-provider writes it.
/// Providers may add fields.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)] // only its schema is used: the body is streamed through unread
pub struct ProviderLogLine {
    /// Position of the line in this answer, from 0.
    seq: u64,
    /// RFC 3339 time of the line.
    #[schema(format = DateTime)]
    ts: String,
    level: String,
    source: String,
    message: String,
}

#[derive(Clone)]
struct Upstream {
    client: reqwest::Client,
    url: Url,
    /// Taken once per attempt: a reloaded key is used from the next attempt on.
    authorization: Reloadable<HeaderValue>,
    first_byte_budget: Duration,
    retries: u32,
    stream_timeout: Duration,
    read_idle_timeout: Duration,
}

/// Why a download failed before its first byte. Messages never contain the key.
#[derive(Debug, thiserror::Error)]
enum UpstreamError {
    #[error("the log provider rejected the integration key (HTTP {0})")]
    Rejected(u16),
    #[error("the log provider refused the request (HTTP {0})")]
    Refused(u16),
    #[error("the log provider is unavailable: {0}")]
    Unavailable(String),
    /// The provider's certificate failed verification: nothing was sent, the key included.
    #[error("the log provider's certificate was refused: {reason}")]
    Certificate {
        code: &'static str,
        reason: &'static str,
    },
    #[error("the log provider redirected (HTTP {0}) to another origin; not followed with the key")]
    Redirected(u16),
}

/// Why a stream was cut after its first byte: the client's download ends without its clean end
/// (HTTP/1: no last chunk; HTTP/2: a reset), so it cannot be taken for a complete one.
#[derive(Debug, thiserror::Error)]
enum StreamCut {
    #[error("the log provider sent nothing for {0:?} (EXTERNAL_LOGS_READ_IDLE_TIMEOUT)")]
    Idle(Duration),
    #[error("the log provider stream broke off: {0}")]
    Broken(String),
    #[error("the download exceeded EXTERNAL_LOGS_STREAM_TIMEOUT")]
    StreamTimeout,
}

impl StreamCut {
    fn reason(&self) -> &'static str {
        match self {
            StreamCut::Idle(_) => "idle",
            StreamCut::Broken(_) => "broken",
            StreamCut::StreamTimeout => "stream_timeout",
        }
    }
}

/// Redirects are followed only within the provider's own origin (scheme, host and port): every
/// attempt carries the key, and reqwest's default policy would follow one to `http://` or to
/// another host. Another origin's redirect is answered as such (502 `provider_redirect_refused`).
fn same_origin_redirects() -> reqwest::redirect::Policy {
    reqwest::redirect::Policy::custom(|attempt| {
        let same_origin = attempt
            .previous()
            .first()
            .is_some_and(|first| first.origin() == attempt.url().origin());
        if !same_origin {
            attempt.stop()
        } else if attempt.previous().len() > MAX_REDIRECTS {
            attempt.error("too many redirects")
        } else {
            attempt.follow()
        }
    })
}

/// Same-origin redirects followed before giving up.
const MAX_REDIRECTS: usize = 5;

impl UpstreamError {
    /// Only transient failures are worth another attempt.
    fn is_retryable(&self) -> bool {
        matches!(self, UpstreamError::Unavailable(_))
    }
}

impl ExternalLogs {
    /// `watch` turns a key file into the live header value (the service's secret watcher).
    pub fn new(
        integration: Option<Integration>,
        config: &Config,
        metrics: UpstreamMetrics,
        watch: impl FnOnce(&std::path::Path) -> Result<Reloadable<HeaderValue>, SecretFileError>,
        access: Access,
    ) -> Result<Self, ConfigError> {
        let upstream = match integration {
            None => None,
            Some(integration) => {
                let mut builder = platform::http_client::builder();
                for root in integration.tls.roots {
                    builder = builder.add_root_certificate(root);
                }
                if let Some(identity) = integration.tls.identity {
                    builder = builder.identity(identity);
                }
                let client = builder
                    .use_rustls_tls()
                    .connect_timeout(config.connect_timeout)
                    .redirect(same_origin_redirects())
                    .user_agent(concat!("abn-stack-backend-api/", env!("CARGO_PKG_VERSION")))
                    .build()
                    .map_err(|e| {
                        ConfigError::new(
                            "EXTERNAL_LOGS_URL",
                            format!("cannot build the HTTP client: {e}"),
                        )
                    })?;
                let authorization = match &integration.key {
                    KeySource::Value(key) => Reloadable::fixed(
                        crate::config::authorization(key.expose_secret())
                            .map_err(|e| ConfigError::new("EXTERNAL_INTEGRATION_KEY", e))?,
                    ),
                    KeySource::File(path) => watch(path).map_err(|e| {
                        ConfigError::new("EXTERNAL_INTEGRATION_KEY_FILE", e.to_string())
                    })?,
                };
                Some(Upstream {
                    client,
                    url: integration.url,
                    authorization,
                    first_byte_budget: config.first_byte_budget,
                    retries: config.retries,
                    stream_timeout: config.stream_timeout,
                    read_idle_timeout: config.read_idle_timeout,
                })
            }
        };
        Ok(Self {
            access,
            upstream,
            metrics,
            max_limit: config.max_limit,
        })
    }
}

/// Downloads logs from the external provider, streamed through; the query is passed on as given
/// once `since` and `limit` are checked.
#[utoipa::path(get, path = "/download_external_logs", tag = "logs",
    params(
        ("since" = Option<String>, Query, format = DateTime, description = "Passed to the provider: any RFC 3339 date-time, the time of the first line"),
        // Its range (EXTERNAL_LOGS_MAX_LIMIT) is set at start: `crate::api_doc`.
        ("limit" = Option<u64>, Query, description = "Passed to the provider: number of lines")
    ),
    responses(
        (status = 200, description = "The provider's body, streamed: JSON Lines, each line one ProviderLogLine (the array stands for the lines of the stream)", body = [ProviderLogLine], content_type = "application/x-ndjson"),
        (status = 401, description = "API_TOKENS_FILE is set and the request has no known bearer token", body = platform::error::ErrorBody),
        (status = 429, description = "The caller is over DOWNLOAD_RATE_LIMIT; Retry-After says when to come back", body = platform::error::ErrorBody),
        (status = 400, description = "since or limit is invalid (checked here), or the provider refused the query (HTTP 400 or 422 upstream)", body = platform::error::ErrorBody),
        (status = 502, description = "The provider rejected the key, refused the request or is down", body = platform::error::ErrorBody),
        (status = 503, description = "The integration is not configured", body = platform::error::ErrorBody),
        (status = 504, description = "The provider did not answer within the budget", body = platform::error::ErrorBody)
    ))]
pub async fn download(
    State(logs): State<ExternalLogs>,
    headers: HeaderMap,
    Query(params): Query<HashMap<String, String>>,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    let Some(caller) = logs.access.callers.identify(&headers) else {
        logs.metrics.count_caller("unknown", "unauthorized");
        tracing::info!(
            caller = "unknown",
            outcome = "unauthorized",
            "download refused"
        );
        return Ok(platform::callers::unauthorized());
    };
    let mut response = download_for(&logs, &caller, &headers, &params, query).await?;
    if logs.access.callers.required() {
        caller.tag(&mut response);
    }
    Ok(response)
}

/// The download once the caller is known: its rate limit, the query checks, the provider call.
async fn download_for(
    logs: &ExternalLogs,
    caller: &CallerName,
    headers: &HeaderMap,
    params: &HashMap<String, String>,
    query: Option<String>,
) -> Result<Response, ApiError> {
    let caller = caller.as_str();
    if let Err(wait) = logs.access.limit.check(caller) {
        logs.metrics.count_caller(caller, "rate_limited");
        tracing::info!(caller = %caller, outcome = "rate_limited", "download refused");
        let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
        let mut response = ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limited",
            format!("over DOWNLOAD_RATE_LIMIT; retry in {seconds} s"),
        )
        .into_response();
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(seconds.max(1)));
        return Ok(response);
    }
    logs.metrics.count_caller(caller, "allowed");
    tracing::info!(caller = %caller, "download");
    // Refused here, with the code the document declares, rather than after a round trip.
    if let Some(since) = params.get("since") {
        platform::query::since(since)?;
    }
    platform::query::limit(
        params.get("limit").map(String::as_str),
        1,
        1,
        logs.max_limit,
    )?;
    let Some(upstream) = logs.upstream.as_ref() else {
        logs.metrics.count("not_configured");
        return Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "integration_not_configured",
            "the external log integration is not configured (EXTERNAL_LOGS_URL is unset)",
        ));
    };
    let url = with_query(&upstream.url, query.as_deref());
    // The pipeline gave every request an id: the provider's log lines carry the same one.
    let request_id = headers.get(platform::request_id::X_REQUEST_ID);
    let last_failure = std::sync::Mutex::new(None::<String>);
    let attempts_made = std::sync::atomic::AtomicU32::new(0);
    let attempt = || {
        let number = attempts_made.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
        let retry_reason = last_failure.lock().expect("last failure lock").clone();
        let span = attempt_span(request_id, number, retry_reason.as_deref());
        upstream.send(url.clone(), request_id).instrument(span)
    };
    let attempts = attempt
        .retry(
            ExponentialBuilder::default()
                .with_min_delay(Duration::from_millis(100))
                .with_max_delay(Duration::from_secs(2))
                .with_max_times(upstream.retries as usize)
                .with_jitter(),
        )
        .sleep(tokio::time::sleep)
        .when(UpstreamError::is_retryable)
        .notify(|err, delay| {
            tracing::warn!(error = %err, retry_in = ?delay, "provider attempt failed");
            *last_failure.lock().expect("last failure lock") = Some(err.to_string());
        });

    let attempts = attempts.instrument(call_span(request_id));
    let response = match tokio::time::timeout(upstream.first_byte_budget, attempts).await {
        // The budget ran out while backing off from a failed attempt: the provider is down,
        // not slow.
        Err(_) if last_failure.lock().expect("last failure lock").is_some() => {
            logs.metrics.count("unavailable");
            let cause = last_failure
                .lock()
                .expect("last failure lock")
                .take()
                .unwrap_or_default();
            tracing::warn!(error = %cause, "provider kept failing until the budget ran out");
            return Err(ApiError::new(
                StatusCode::BAD_GATEWAY,
                "provider_unavailable",
                cause,
            ));
        }
        Err(_) => {
            logs.metrics.count("timeout");
            tracing::warn!(budget = ?upstream.first_byte_budget, "provider did not answer within the budget");
            return Err(ApiError::new(
                StatusCode::GATEWAY_TIMEOUT,
                "provider_timeout",
                format!(
                    "the log provider did not answer within {} s",
                    upstream.first_byte_budget.as_secs_f64()
                ),
            ));
        }
        Ok(Err(err)) => {
            let (outcome, code) = match err {
                UpstreamError::Rejected(_) => ("rejected", "provider_rejected_key"),
                UpstreamError::Refused(_) => ("refused", "provider_refused_request"),
                UpstreamError::Unavailable(_) => ("unavailable", "provider_unavailable"),
                UpstreamError::Redirected(_) => ("redirect_refused", "provider_redirect_refused"),
                UpstreamError::Certificate { code, .. } => ("certificate_refused", code),
            };
            logs.metrics.count(outcome);
            tracing::warn!(error = %err, "download failed");
            // The provider refusing the client's own query (400/422) is the client's error, not
            // a gateway failure: a 5xx there would page on-call for a typo in `limit`.
            let status = match err {
                UpstreamError::Refused(400 | 422) => StatusCode::BAD_REQUEST,
                _ => StatusCode::BAD_GATEWAY,
            };
            return Err(ApiError::new(status, code, err.to_string()));
        }
        Ok(Ok(response)) => response,
    };
    logs.metrics.count("ok");

    let content_type = response
        .headers()
        .get(header::CONTENT_TYPE)
        .cloned()
        .unwrap_or_else(|| HeaderValue::from_static("application/x-ndjson"));
    let bytes = logs.metrics.bytes.clone();
    let truncated = logs.metrics.truncated.clone();
    let body = idle_bounded(response.bytes_stream(), upstream.read_idle_timeout)
        .inspect_ok(move |chunk| {
            bytes.inc_by(chunk.len() as u64);
        })
        .inspect_err(move |cut| {
            truncated
                .get_or_create(&CutLabels {
                    reason: cut.reason(),
                })
                .inc();
            tracing::warn!(error = %cut, reason = cut.reason(), "provider stream cut mid-transfer");
        });
    let mut response = Body::from_stream(body).into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, content_type);
    Ok(response)
}

/// The provider's body, ended with [`StreamCut::Idle`] when no chunk comes within `idle`; after
/// a cut nothing more is read.
fn idle_bounded(
    body: impl futures_util::Stream<Item = reqwest::Result<bytes::Bytes>> + Send + 'static,
    idle: Duration,
) -> impl futures_util::Stream<Item = Result<bytes::Bytes, StreamCut>> + Send + 'static {
    let body = Box::pin(body);
    futures_util::stream::unfold(Some(body), move |state| async move {
        let mut body = state?;
        match tokio::time::timeout(idle, body.next()).await {
            Ok(Some(Ok(chunk))) => Some((Ok(chunk), Some(body))),
            Ok(Some(Err(err))) if err.is_timeout() => Some((Err(StreamCut::StreamTimeout), None)),
            Ok(Some(Err(err))) => Some((Err(StreamCut::Broken(describe(err))), None)),
            Ok(None) => None,
            Err(_) => Some((Err(StreamCut::Idle(idle)), None)),
        }
    })
}

/// The trace's span of the whole provider call (every attempt, inside the first-byte budget);
/// only when the request's trace is exported, so log lines keep the request's span otherwise.
fn call_span(request_id: Option<&HeaderValue>) -> tracing::Span {
    if !platform::otel::traced(&tracing::Span::current()) {
        return tracing::Span::none();
    }
    let request_id = request_id.and_then(|id| id.to_str().ok());
    tracing::info_span!("provider call", request_id)
}

/// One attempt's client span: its number, why it was retried (the previous attempt's failure),
/// the provider's status.
fn attempt_span(
    request_id: Option<&HeaderValue>,
    number: u32,
    retry_reason: Option<&str>,
) -> tracing::Span {
    if !platform::otel::traced(&tracing::Span::current()) {
        return tracing::Span::none();
    }
    let request_id = request_id.and_then(|id| id.to_str().ok());
    tracing::info_span!(
        "provider attempt",
        otel.kind = "client",
        request_id,
        attempt = i64::from(number),
        retry.reason = retry_reason,
        http.response.status_code = tracing::field::Empty,
        error = tracing::field::Empty,
        otel.status_code = tracing::field::Empty,
    )
}

impl Upstream {
    /// One attempt: resolves when the provider's response head has arrived.
    async fn send(
        &self,
        url: Url,
        request_id: Option<&HeaderValue>,
    ) -> Result<reqwest::Response, UpstreamError> {
        let mut request = self.client.get(url);
        if let Some(id) = request_id {
            request = request.header(platform::request_id::X_REQUEST_ID, id.clone());
        }
        let span = tracing::Span::current();
        if platform::otel::enabled() {
            let mut trace_context = HeaderMap::new();
            platform::otel::inject(&span, &mut trace_context);
            request = request.headers(trace_context);
        }
        let response = request
            .header(
                header::AUTHORIZATION,
                (*self.authorization.current()).clone(),
            )
            .timeout(self.stream_timeout)
            .send()
            .await
            .map_err(|err| match certificate_failure(&err) {
                Some((code, reason)) => UpstreamError::Certificate { code, reason },
                None => UpstreamError::Unavailable(describe(err)),
            })
            .inspect_err(|err| {
                span.record("error", tracing::field::display(err));
                span.record("otel.status_code", "ERROR");
            })?;
        let status = response.status();
        span.record("http.response.status_code", i64::from(status.as_u16()));
        if !status.is_success() {
            span.record("otel.status_code", "ERROR");
        }
        match status.as_u16() {
            200..=299 => Ok(response),
            // Only another origin's redirect gets here: see `same_origin_redirects`.
            300..=399 => Err(UpstreamError::Redirected(status.as_u16())),
            401 | 403 => Err(UpstreamError::Rejected(status.as_u16())),
            429 | 500..=599 => Err(UpstreamError::Unavailable(format!(
                "HTTP {}",
                status.as_u16()
            ))),
            other => Err(UpstreamError::Refused(other)),
        }
    }
}

/// The code and reason of a certificate the TLS handshake refused, found in the error's chain
/// (an `io::Error` hides its inner error from `source()`: it is unwrapped with `get_ref`).
fn certificate_failure(err: &reqwest::Error) -> Option<(&'static str, &'static str)> {
    use rustls::CertificateError as C;
    let mut link: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(current) = link {
        let tls = current.downcast_ref::<rustls::Error>();
        if let Some(rustls::Error::InvalidCertificate(cert)) = tls {
            return Some(match cert {
                C::NotValidForName | C::NotValidForNameContext { .. } => (
                    "provider_certificate_wrong_name",
                    "it is not valid for the provider's host name",
                ),
                C::Expired
                | C::ExpiredContext { .. }
                | C::NotValidYet
                | C::NotValidYetContext { .. } => (
                    "provider_certificate_expired",
                    "it is expired or not valid yet",
                ),
                C::UnknownIssuer => (
                    "provider_certificate_unknown_ca",
                    "it is not signed by a trusted CA (system bundle, EXTERNAL_LOGS_CA_FILE)",
                ),
                _ => ("provider_certificate_invalid", "it failed verification"),
            });
        }
        link = match current.downcast_ref::<std::io::Error>() {
            Some(io) => io
                .get_ref()
                .map(|inner| inner as &(dyn std::error::Error + 'static)),
            None => current.source(),
        };
    }
    None
}

/// A short cause without the URL's query (which is the client's, and may be long). A failed
/// connection names its innermost cause (the name did not resolve, refused, timed out,
/// unreachable): "connection failed" alone does not say which fault an operator is looking at.
fn describe(err: reqwest::Error) -> String {
    if err.is_connect() {
        let mut cause = format!(
            "connection failed: {}",
            platform::http_client::root_cause(&err)
        );
        cause.truncate(200);
        cause
    } else if err.is_timeout() {
        "timed out".to_string()
    } else {
        let mut cause = err.without_url().to_string();
        cause.truncate(200);
        cause
    }
}

/// The provider URL with the client's query appended to any query it already has.
fn with_query(base: &Url, query: Option<&str>) -> Url {
    let mut url = base.clone();
    let extra = query.filter(|q| !q.is_empty());
    let combined = match (base.query().filter(|q| !q.is_empty()), extra) {
        (Some(own), Some(extra)) => Some(format!("{own}&{extra}")),
        (Some(own), None) => Some(own.to_string()),
        (None, Some(extra)) => Some(extra.to_string()),
        (None, None) => None,
    };
    url.set_query(combined.as_deref());
    url
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_is_passed_through_and_merged() {
        let base = Url::parse("http://p/v1/logs").unwrap();
        assert_eq!(with_query(&base, None).as_str(), "http://p/v1/logs");
        assert_eq!(
            with_query(&base, Some("since=2026-01-01T00:00:00Z&limit=5")).as_str(),
            "http://p/v1/logs?since=2026-01-01T00:00:00Z&limit=5"
        );
        let with_own = Url::parse("http://p/v1/logs?tenant=a").unwrap();
        assert_eq!(
            with_query(&with_own, Some("limit=5")).as_str(),
            "http://p/v1/logs?tenant=a&limit=5"
        );
    }

    #[tokio::test]
    async fn a_failed_connection_names_its_cause() {
        // A port nothing listens on: bound, then released.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let err = platform::http_client::builder()
            .build()
            .unwrap()
            .get(format!("http://127.0.0.1:{port}/v1/logs"))
            .send()
            .await
            .expect_err("nothing listens there");
        let described = describe(err);
        assert!(
            described.starts_with("connection failed: ")
                && described.to_lowercase().contains("refused"),
            "{described}"
        );
    }

    #[test]
    fn only_unavailability_is_retried() {
        assert!(UpstreamError::Unavailable("x".into()).is_retryable());
        assert!(!UpstreamError::Rejected(401).is_retryable());
        assert!(!UpstreamError::Refused(400).is_retryable());
    }
}
