//! The stored record: one JSON object per line.

use std::time::SystemTime;

use serde::{Deserialize, Serialize};

/// Longest message accepted, in characters (Unicode scalar values: what JSON Schema's
/// `maxLength` counts, so the OpenAPI document states the rule exactly).
pub const MAX_MESSAGE_CHARS: usize = 8192;

/// Severity of a record.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    #[default]
    Info,
    Warn,
    Error,
}

impl Level {
    /// Parses the wire name (`info`, `warn`, `error`).
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "info" => Some(Self::Info),
            "warn" => Some(Self::Warn),
            "error" => Some(Self::Error),
            _ => None,
        }
    }
}

/// One durable record as stored and as returned by `GET /logs`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Record {
    /// UUIDv7: unique across restarts and instances, ordered by creation time.
    pub id: String,
    /// RFC 3339 UTC timestamp with microseconds, e.g. `2026-01-02T03:04:05.123456Z`.
    pub ts: String,
    pub level: Level,
    pub message: String,
    /// The writer's instance (`INSTANCE_ID`), also the folder the record lives in.
    pub instance: String,
}

impl Record {
    /// The record as one line, newline included. JSON escapes control characters, so a message
    /// can never split its record over two lines.
    pub fn to_line(&self) -> Vec<u8> {
        let mut line = serde_json::to_vec(self).expect("a record always serializes");
        line.push(b'\n');
        line
    }

    /// Parses one line (without its newline); `None` when it is not a complete record.
    pub fn from_line(line: &[u8]) -> Option<Self> {
        serde_json::from_slice(line).ok()
    }

    /// The timestamp as a point in time, when it parses.
    pub fn time(&self) -> Option<SystemTime> {
        parse_ts(&self.ts)
    }
}

/// Formats a timestamp the way records store it.
pub fn format_ts(time: SystemTime) -> String {
    humantime::format_rfc3339_micros(time).to_string()
}

/// Parses an RFC 3339 UTC timestamp (`...Z`, fractional seconds optional).
pub fn parse_ts(text: &str) -> Option<SystemTime> {
    humantime::parse_rfc3339(text).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_round_trips_and_stays_one_line() {
        let record = Record {
            id: "x".into(),
            ts: format_ts(SystemTime::now()),
            level: Level::Warn,
            message: "two\nlines \u{0} and \"quotes\"".into(),
            instance: "i".into(),
        };
        let line = record.to_line();
        assert_eq!(line.iter().filter(|b| **b == b'\n').count(), 1);
        assert_eq!(Record::from_line(&line[..line.len() - 1]), Some(record));
    }

    #[test]
    fn a_torn_line_does_not_parse() {
        let record = Record {
            id: "x".into(),
            ts: format_ts(SystemTime::now()),
            level: Level::Info,
            message: "m".into(),
            instance: "i".into(),
        };
        let line = record.to_line();
        for cut in 0..line.len() - 1 {
            assert!(Record::from_line(&line[..cut]).is_none(), "cut at {cut}");
        }
    }

    #[test]
    fn timestamps_round_trip() {
        let now = SystemTime::now();
        let parsed = parse_ts(&format_ts(now)).unwrap();
        let diff = now.duration_since(parsed).unwrap();
        assert!(diff.as_micros() < 1);
    }
}
