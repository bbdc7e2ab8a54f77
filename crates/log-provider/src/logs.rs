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

use crate::auth::ProviderKeys;

/// Lines per streamed chunk: big enough for throughput, small enough to keep memory flat.
const LINES_PER_CHUNK: u64 = 512;
/// Lines answered when `limit` is absent (or PROVIDER_MAX_LIMIT when that is lower).
pub const DEFAULT_LIMIT: u64 = 100;
/// Default window when `since` is absent.
const DEFAULT_SINCE_AGO: Duration = Duration::from_secs(3600);

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
    pub keys: Arc<ProviderKeys>,
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
        ("since" = Option<String>, Query, format = DateTime, description = "Any RFC 3339 date-time, the time of the first line (default: an hour ago). Lines are one second apart; the answer ends at 9999-12-31T23:59:59Z, the last second RFC 3339 can show"),
        // Its bounds (PROVIDER_MAX_LIMIT) are set at start: `crate::api_doc`.
        ("limit" = Option<u64>, Query, description = "Number of lines")
    ),
    responses(
        (status = 200, description = "JSON Lines: each line one LogLine (the array stands for the lines of the stream)", body = [LogLine], content_type = "application/x-ndjson"),
        (status = 400, description = "Invalid query parameter", body = platform::error::ErrorBody),
        (status = 401, description = "Missing or wrong bearer key", body = platform::error::ErrorBody)
    ),
    security(("bearer" = [])))]
pub async fn download(
    State(state): State<LogsState>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    if !state.keys.accepts(&headers) {
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

/// A validated query: `limit` is the number of lines the answer holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogsRequest {
    pub since: SystemTime,
    pub limit: u64,
}

impl LogsRequest {
    pub fn parse(query: &HashMap<String, String>, max_limit: u64) -> Result<Self, ApiError> {
        let since = match query.get("since") {
            None => SystemTime::now() - DEFAULT_SINCE_AGO,
            Some(raw) => platform::query::since(raw)?,
        };
        let limit = platform::query::limit(
            query.get("limit").map(String::as_str),
            DEFAULT_LIMIT.min(max_limit),
            1,
            max_limit,
        )?;
        // Every line's time must be printable as RFC 3339 (years up to 9999): the stream stops
        // at the last such second rather than refusing a valid `since` and `limit`.
        let printable = match platform::query::last_rfc3339_second().duration_since(since) {
            Ok(left) => left.as_secs().saturating_add(1),
            Err(_) => 0,
        };
        Ok(Self {
            since,
            limit: limit.min(printable),
        })
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
            ts: platform::query::format_rfc3339_seconds(self.since + Duration::from_secs(seq))
                .expect("parse keeps every line before the year 10000"),
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
    fn the_stream_ends_at_the_last_rfc3339_second() {
        let near_end = LogsRequest::parse(
            &query(&[("since", "9999-12-31T23:59:58Z"), ("limit", "10")]),
            10,
        )
        .unwrap();
        assert_eq!(near_end.limit, 2);
        let past_end = LogsRequest::parse(
            &query(&[("since", "9999-12-31T23:59:59-01:00"), ("limit", "10")]),
            10,
        )
        .unwrap();
        assert_eq!(past_end.limit, 0);
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
            platform::query::format_rfc3339_seconds(ok.since).unwrap(),
            "2026-01-02T03:04:05Z"
        );
        let before_1970 =
            LogsRequest::parse(&query(&[("since", "0769-01-05T05:16:41.68216Z")]), 10).unwrap();
        let mut out = BytesMut::new();
        before_1970.write_line(1, &mut out);
        assert!(String::from_utf8(out.to_vec())
            .unwrap()
            .contains("\"ts\":\"0769-01-05T05:16:42Z\""));
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
