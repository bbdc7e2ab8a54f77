//! One probe's result: the JSON history line and the legacy human line.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

/// One line of the JSON history (`ts, target, url, ok, status, latency_ms, error`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProbeRecord {
    /// When the probe started, RFC 3339 in UTC with milliseconds.
    pub ts: String,
    pub target: String,
    pub url: String,
    /// Whether every condition of the target held.
    pub ok: bool,
    /// The HTTP status, absent when no answer came (refused, timeout, TLS error ...).
    pub status: Option<u16>,
    /// Time from the start of the probe to its outcome (a timeout counts as the timeout).
    pub latency_ms: u64,
    /// Why the probe failed; absent when `ok`.
    pub error: Option<String>,
}

impl ProbeRecord {
    /// The legacy `health_check.sh` line, dated as `date` would in the process's `TZ`; a missing
    /// status shows as curl's `000`.
    pub fn human_line(&self) -> String {
        self.human_line_dated(local_date)
    }

    /// The legacy line with its date written by `date_of`.
    pub fn human_line_dated(&self, date_of: fn(SystemTime) -> String) -> String {
        let date = parse_ts(&self.ts)
            .map(date_of)
            .unwrap_or_else(|| self.ts.clone());
        if self.ok {
            format!(
                "{date}: API at {} is reachable - Health check passed",
                self.url
            )
        } else {
            let code = self.status.map_or("000".to_string(), |s| s.to_string());
            format!(
                "{date}: API at {} is unreachable - Health check failed (HTTP {code})",
                self.url
            )
        }
    }

    pub fn time(&self) -> Option<SystemTime> {
        parse_ts(&self.ts)
    }
}

/// RFC 3339 in UTC with milliseconds, e.g. `2026-11-26T02:11:42.123Z`.
pub fn format_ts(t: SystemTime) -> String {
    humantime::format_rfc3339_millis(t).to_string()
}

pub fn parse_ts(ts: &str) -> Option<SystemTime> {
    humantime::parse_rfc3339(ts).ok()
}

/// What `date` prints in the C locale and UTC: `Thu Nov 26 02:11:42 UTC 2026`.
pub fn legacy_date(t: SystemTime) -> String {
    const DAYS: [&str; 7] = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let secs = t
        .duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO)
        .as_secs();
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let (year, month, day) = civil_from_days(days);
    // 1970-01-01 was a Thursday.
    let weekday = DAYS[((days + 4) % 7) as usize];
    format!(
        "{weekday} {} {day:>2} {:02}:{:02}:{:02} UTC {year}",
        MONTHS[(month - 1) as usize],
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// What `date` prints in the C locale and the process's time zone (`TZ`, else `/etc/localtime`,
/// else UTC): `Thu Nov 26 03:11:42 CET 2026`. Falls back to [`legacy_date`] (UTC) if the C
/// library cannot convert the instant.
pub fn local_date(t: SystemTime) -> String {
    let secs = t
        .duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO)
        .as_secs();
    let Ok(secs) = libc::time_t::try_from(secs) else {
        return legacy_date(t);
    };
    let mut buf = [0u8; 128];
    // SAFETY: `tm` is plain data that localtime_r fills; strftime writes at most `buf.len()`
    // bytes into `buf` and returns how many (0 when it did not fit). tzset reads TZ, which
    // nothing in this process changes. No locale is ever set, so names are the C locale's, like
    // the legacy script's `date`.
    let written = unsafe {
        let mut tm: libc::tm = std::mem::zeroed();
        tzset();
        if libc::localtime_r(&secs, &mut tm).is_null() {
            0
        } else {
            libc::strftime(
                buf.as_mut_ptr().cast(),
                buf.len(),
                c"%a %b %e %H:%M:%S %Z %Y".as_ptr(),
                &tm,
            )
        }
    };
    if written == 0 {
        return legacy_date(t);
    }
    String::from_utf8_lossy(&buf[..written]).into_owned()
}

extern "C" {
    /// POSIX (glibc and musl); the libc crate does not declare it.
    fn tzset();
}

/// Days since 1970-01-01 to (year, month 1..=12, day 1..=31); Howard Hinnant's algorithm.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(rfc3339: &str) -> SystemTime {
        humantime::parse_rfc3339(rfc3339).unwrap()
    }

    #[test]
    fn legacy_date_matches_gnu_date_output() {
        // `TZ=UTC LC_ALL=C date -d @...` for these instants.
        assert_eq!(
            legacy_date(at("2026-11-26T02:11:42Z")),
            "Thu Nov 26 02:11:42 UTC 2026"
        );
        assert_eq!(
            legacy_date(at("2024-02-29T23:59:59Z")),
            "Thu Feb 29 23:59:59 UTC 2024"
        );
        assert_eq!(
            legacy_date(at("2025-01-05T07:08:09Z")),
            "Sun Jan  5 07:08:09 UTC 2025"
        );
        assert_eq!(legacy_date(UNIX_EPOCH), "Thu Jan  1 00:00:00 UTC 1970");
    }

    #[test]
    fn timestamps_round_trip_with_milliseconds() {
        let t = at("2026-11-26T02:11:42.123Z");
        assert_eq!(format_ts(t), "2026-11-26T02:11:42.123Z");
        assert_eq!(parse_ts("2026-11-26T02:11:42.123Z"), Some(t));
    }

    #[test]
    fn human_lines_follow_the_legacy_script() {
        let mut r = ProbeRecord {
            ts: "2026-11-26T02:11:42.123Z".into(),
            target: "api".into(),
            url: "http://127.0.0.1:5000/health_check".into(),
            ok: true,
            status: Some(200),
            latency_ms: 3,
            error: None,
        };
        assert_eq!(
            r.human_line_dated(legacy_date),
            "Thu Nov 26 02:11:42 UTC 2026: API at http://127.0.0.1:5000/health_check is reachable - Health check passed"
        );
        r.ok = false;
        r.status = Some(500);
        assert!(r
            .human_line_dated(legacy_date)
            .ends_with("is unreachable - Health check failed (HTTP 500)"));
        r.status = None;
        assert!(r
            .human_line_dated(legacy_date)
            .ends_with("Health check failed (HTTP 000)"));
    }
}
