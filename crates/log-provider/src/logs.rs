//! `GET /v1/logs`: generated log lines as JSON Lines, streamed chunk by chunk.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use axum::body::Body;
use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::{BufMut, Bytes, BytesMut};
use platform::ApiError;
use serde::Serialize;

use crate::auth::ProviderKey;

/// Lines per streamed chunk: big enough for throughput, small enough to keep memory flat.
const LINES_PER_CHUNK: u64 = 512;
const DEFAULT_LIMIT: u64 = 100;
/// Default window when `since` is absent.
const DEFAULT_SINCE_AGO: Duration = Duration::from_secs(3600);
/// 9999-12-31T23:59:59Z, the last second RFC 3339 can show, since the Unix epoch.
const LAST_RFC3339_SECOND: Duration = Duration::from_secs(253_402_300_799);

const LEVELS: [&str; 4] = ["info", "info", "warn", "error"];
const SOURCES: [&str; 3] = ["payments", "checkout", "inventory"];
const MESSAGES: [&str; 5] = [
    "request processed",
    "cache miss, fetched from origin",
    "retrying upstream call",
    "slow query detected",
    "connection reset by peer",
];

#[derive(Clone)]
pub struct LogsState {
    pub key: Arc<ProviderKey>,
    pub max_limit: u64,
    pub first_byte_delay: Duration,
}

/// One generated log line.
#[derive(Serialize, utoipa::ToSchema)]
pub struct LogLine {
    /// Position of the line in this answer, from 0.
    pub seq: u64,
    /// RFC 3339 timestamp, one second apart from `since` on.
    pub ts: String,
    pub level: &'static str,
    pub source: &'static str,
    pub message: &'static str,
}

/// Logs since a time, as JSON Lines (`application/x-ndjson`), streamed.
#[utoipa::path(get, path = "/v1/logs", tag = "logs",
    params(
        ("since" = Option<String>, Query, format = DateTime, description = "RFC 3339 time of the first line, from 1970 on (default: an hour ago); since plus limit seconds must stay before the year 10000"),
        ("limit" = Option<u64>, Query, minimum = 1, description = "Number of lines (default 100, at most PROVIDER_MAX_LIMIT)")
    ),
    responses(
        (status = 200, description = "JSON Lines, one LogLine per line", body = LogLine, content_type = "application/x-ndjson"),
        (status = 400, description = "Invalid query parameter", body = platform::error::ErrorBody),
        (status = 401, description = "Missing or wrong bearer key", body = platform::error::ErrorBody)
    ),
    security(("bearer" = [])))]
pub async fn download(
    State(state): State<LogsState>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    if !state.key.accepts(&headers) {
        let mut response = ApiError::new(
            StatusCode::UNAUTHORIZED,
            "invalid_key",
            "missing or wrong bearer key",
        )
        .into_response();
        response
            .headers_mut()
            .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        return Ok(response);
    }
    let request = LogsRequest::parse(&query, state.max_limit)?;
    if !state.first_byte_delay.is_zero() {
        tokio::time::sleep(state.first_byte_delay).await;
    }
    let mut response = Response::new(Body::from_stream(request.into_chunks()));
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/x-ndjson"),
    );
    Ok(response)
}

/// A validated query.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogsRequest {
    pub since: SystemTime,
    pub limit: u64,
}

impl LogsRequest {
    pub fn parse(query: &HashMap<String, String>, max_limit: u64) -> Result<Self, ApiError> {
        let since = match query.get("since") {
            None => SystemTime::now() - DEFAULT_SINCE_AGO,
            Some(raw) => humantime::parse_rfc3339_weak(raw).map_err(|_| {
                ApiError::bad_request(
                    "invalid_since",
                    "since must be an RFC 3339 time such as 2026-01-02T03:04:05Z",
                )
            })?,
        };
        let limit = match query.get("limit") {
            None => DEFAULT_LIMIT.min(max_limit),
            Some(raw) => raw
                .parse::<u64>()
                .ok()
                .filter(|n| (1..=max_limit).contains(n))
                .ok_or_else(|| {
                    ApiError::bad_request(
                        "invalid_limit",
                        format!("limit must be a whole number from 1 to {max_limit}"),
                    )
                })?,
        };
        // Every line's time must be printable as RFC 3339 (years up to 9999), or the stream
        // would break off mid-answer.
        let last_line = since.checked_add(Duration::from_secs(limit - 1));
        if last_line.is_none_or(|t| t > SystemTime::UNIX_EPOCH + LAST_RFC3339_SECOND) {
            return Err(ApiError::bad_request(
                "invalid_since",
                "since plus limit seconds must stay before the year 10000",
            ));
        }
        Ok(Self { since, limit })
    }

    /// The answer as a stream of chunks of whole lines; nothing is held beyond one chunk.
    fn into_chunks(self) -> impl futures_util::Stream<Item = Result<Bytes, Infallible>> {
        futures_util::stream::unfold(0u64, move |next| async move {
            if next >= self.limit {
                return None;
            }
            let end = (next + LINES_PER_CHUNK).min(self.limit);
            let mut chunk = BytesMut::with_capacity(((end - next) * 160) as usize);
            for seq in next..end {
                self.write_line(seq, &mut chunk);
            }
            Some((Ok(chunk.freeze()), end))
        })
    }

    fn write_line(&self, seq: u64, out: &mut BytesMut) {
        let i = seq as usize;
        let line = LogLine {
            seq,
            ts: humantime::format_rfc3339_seconds(self.since + Duration::from_secs(seq))
                .to_string(),
            level: LEVELS[i % LEVELS.len()],
            source: SOURCES[i % SOURCES.len()],
            message: MESSAGES[i % MESSAGES.len()],
        };
        let mut writer = out.writer();
        serde_json::to_writer(&mut writer, &line).expect("a LogLine serializes");
        writer.into_inner().put_u8(b'\n');
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn limit_is_bounded_and_numeric() {
        assert_eq!(LogsRequest::parse(&query(&[]), 10).unwrap().limit, 10);
        for bad in ["0", "11", "-1", "ten", ""] {
            let err = LogsRequest::parse(&query(&[("limit", bad)]), 10).unwrap_err();
            assert_eq!(err.code, "invalid_limit", "{bad}");
        }
        assert_eq!(
            LogsRequest::parse(&query(&[("limit", "10")]), 10)
                .unwrap()
                .limit,
            10
        );
    }

    #[test]
    fn since_must_be_rfc3339() {
        let ok = LogsRequest::parse(&query(&[("since", "2026-01-02T03:04:05Z")]), 10).unwrap();
        assert_eq!(
            humantime::format_rfc3339_seconds(ok.since).to_string(),
            "2026-01-02T03:04:05Z"
        );
        let err = LogsRequest::parse(&query(&[("since", "yesterday")]), 10).unwrap_err();
        assert_eq!(err.code, "invalid_since");
    }

    #[test]
    fn every_line_is_json_with_increasing_seq() {
        let request = LogsRequest {
            since: SystemTime::UNIX_EPOCH,
            limit: 3,
        };
        let mut out = BytesMut::new();
        for seq in 0..3 {
            request.write_line(seq, &mut out);
        }
        let text = String::from_utf8(out.to_vec()).unwrap();
        let lines: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 3);
        assert_eq!(lines[2]["seq"], 2);
        assert_eq!(lines[1]["ts"], "1970-01-01T00:00:01Z");
    }
}
