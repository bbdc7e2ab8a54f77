//! Query parameters every service parses the same way, with the errors their OpenAPI documents
//! declare: `limit` (a whole number in a range) and `since` (any RFC 3339 date-time).

use std::time::{Duration, SystemTime};

use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use crate::ApiError;

/// 9999-12-31T23:59:59Z, the last whole second an RFC 3339 date-time can show.
pub const LAST_RFC3339_SECOND: i64 = 253_402_300_799;

/// The last whole second an RFC 3339 date-time can show, as a point in time.
pub fn last_rfc3339_second() -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(LAST_RFC3339_SECOND as u64)
}

/// `limit`: absent gives `default`; otherwise a whole number from `min` to `max`, or 400
/// `invalid_limit` naming the range.
pub fn limit(raw: Option<&str>, default: u64, min: u64, max: u64) -> Result<u64, ApiError> {
    match raw {
        None => Ok(default),
        Some(text) => text
            .parse::<u64>()
            .ok()
            .filter(|n| (min..=max).contains(n))
            .ok_or_else(|| {
                ApiError::bad_request(
                    "invalid_limit",
                    format!("limit must be a whole number from {min} to {max}"),
                )
            }),
    }
}

/// `since`: any RFC 3339 date-time (what OpenAPI's `format: date-time` allows: any offset, any
/// number of fraction digits, years 0000 to 9999), or 400 `invalid_since`.
pub fn since(text: &str) -> Result<SystemTime, ApiError> {
    parse_rfc3339(text).ok_or_else(|| {
        ApiError::bad_request(
            "invalid_since",
            "since must be an RFC 3339 date-time such as 2026-01-02T03:04:05Z or 2026-01-02T05:04:05.5+02:00",
        )
    })
}

/// Parses an RFC 3339 date-time; `None` when it is not one.
pub fn parse_rfc3339(text: &str) -> Option<SystemTime> {
    // The `time` crate also takes a space between date and time (RFC 3339 allows it to
    // applications, its grammar and `format: date-time` do not): only `T` or `t` here.
    if !matches!(text.as_bytes().get(10), Some(b'T' | b't')) {
        return None;
    }
    OffsetDateTime::parse(text, &Rfc3339)
        .ok()
        .map(SystemTime::from)
}

/// A time as an RFC 3339 UTC date-time in whole seconds (`0769-01-05T05:16:41Z`); `None` outside
/// the years 0000 to 9999.
pub fn format_rfc3339_seconds(time: SystemTime) -> Option<String> {
    // Checked first: `time` cannot even hold a date past the year 9999.
    if time >= last_rfc3339_second() + Duration::from_secs(1) {
        return None;
    }
    let utc = OffsetDateTime::from(time).replace_nanosecond(0).ok()?;
    utc.format(&Rfc3339).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limit_is_a_whole_number_in_range() {
        assert_eq!(limit(None, 7, 1, 10).unwrap(), 7);
        assert_eq!(limit(Some("10"), 7, 1, 10).unwrap(), 10);
        for bad in ["0", "11", "-1", "ten", "", "1.0", "+1 "] {
            let err = limit(Some(bad), 7, 1, 10).unwrap_err();
            assert_eq!(err.code, "invalid_limit", "{bad}");
            assert!(err.message.contains("from 1 to 10"), "{}", err.message);
        }
    }

    #[test]
    fn since_takes_every_rfc3339_shape() {
        let epoch = |secs: i64| {
            if secs >= 0 {
                SystemTime::UNIX_EPOCH + Duration::from_secs(secs as u64)
            } else {
                SystemTime::UNIX_EPOCH - Duration::from_secs(secs.unsigned_abs())
            }
        };
        assert_eq!(since("1970-01-01T00:00:00Z").unwrap(), epoch(0));
        assert_eq!(since("1970-01-01t01:00:00+01:00").unwrap(), epoch(0));
        assert_eq!(since("1969-12-31T23:59:59z").unwrap(), epoch(-1));
        assert_eq!(
            since("0001-01-01T00:00:00Z").unwrap(),
            epoch(-62_135_596_800)
        );
        assert_eq!(
            since("9999-12-31T23:59:59Z").unwrap(),
            last_rfc3339_second()
        );
        // Any number of fraction digits; nanoseconds are kept.
        assert_eq!(
            since("0769-01-05T05:16:41.68216Z").unwrap(),
            epoch(-37_899_513_799) + Duration::from_nanos(682_160_000)
        );
        assert!(since("2000-01-01T00:00:00.1234567891234Z").is_ok());
        for bad in [
            "",
            "yesterday",
            "2024-01-01T12:99:00Z",
            "2024-13-01T00:00:00Z",
            "2024-01-01T00:00:00",
            "2024-01-01 00:00:00Z",
            "10000-01-01T00:00:00Z",
        ] {
            assert_eq!(
                since(bad).map_err(|e| e.code),
                Err("invalid_since"),
                "{bad}"
            );
        }
    }

    #[test]
    fn formats_whole_seconds_in_utc() {
        let t = since("0769-01-05T06:16:41.9+01:00").unwrap();
        assert_eq!(format_rfc3339_seconds(t).unwrap(), "0769-01-05T05:16:41Z");
        assert_eq!(
            format_rfc3339_seconds(last_rfc3339_second()).unwrap(),
            "9999-12-31T23:59:59Z"
        );
        assert_eq!(
            format_rfc3339_seconds(last_rfc3339_second() + Duration::from_secs(1)),
            None
        );
    }
}
