//! `health-check report`: per target uptime, latency percentiles and the last failure, read
//! from the JSON history (the file and its rotated siblings).

pub(crate) mod html;
mod text;

use std::collections::BTreeMap;
use std::io::{self, BufRead, BufReader};
use std::path::Path;
use std::time::{Duration, SystemTime};

use serde::Serialize;

use crate::history::files_oldest_first;
use crate::record::{format_ts, ProbeRecord};

pub use html::{render_html, render_live_page};
pub use text::render_text;

/// What the report says about one target.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct TargetReport {
    pub target: String,
    /// The URL of its most recent probe.
    pub url: String,
    pub probes: usize,
    pub ok: usize,
    /// `ok / probes * 100`.
    pub uptime_percent: f64,
    /// Latency percentiles (nearest rank) over the probes that got an HTTP answer; none when
    /// no probe did (timeouts and refused connections have no answer latency to speak of).
    pub p50_ms: Option<u64>,
    pub p99_ms: Option<u64>,
    pub last_failure: Option<Failure>,
    pub first_ts: String,
    pub last_ts: String,
    /// Whether the most recent probe met every condition.
    pub up: bool,
    /// Uptime over the probes of the last 24 hours and 7 days before the report's time; none
    /// when no probe fell in that window.
    pub uptime_24h_percent: Option<f64>,
    pub uptime_7d_percent: Option<f64>,
    /// The last [`RECENT_PROBES`] probes, oldest first: the bar and the latency sparkline.
    pub recent: Vec<RecentProbe>,
    /// Runs of consecutive failed probes, newest first, at most [`INCIDENTS_KEPT`]; the first
    /// one is open (no `ended`) while the target is still failing.
    pub incidents: Vec<Incident>,
    /// Probe outcomes in time order.
    #[serde(skip)]
    pub outcomes: Vec<Outcome>,
}

/// One probe as the report keeps it: a few bytes, plus the reason when it failed.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    pub at: SystemTime,
    pub ok: bool,
    /// Latency of an HTTP answer; none when no answer came.
    pub answered_ms: Option<u64>,
    pub reason: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct RecentProbe {
    pub ts: String,
    pub ok: bool,
    pub latency_ms: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Incident {
    /// The first failed probe.
    pub started: String,
    /// The first probe that passed again; none while the incident is open.
    pub ended: Option<String>,
    pub failed_probes: usize,
    /// Why the first probe of the incident failed.
    pub reason: String,
}

/// Probes shown per target in the bar and the sparkline.
pub const RECENT_PROBES: usize = 90;
/// Incidents listed per target.
pub const INCIDENTS_KEPT: usize = 5;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Failure {
    pub ts: String,
    pub status: Option<u16>,
    pub error: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Report {
    pub generated_at: String,
    /// Only probes at or after this instant count (from `--since`); none: the whole history.
    pub since: Option<String>,
    pub targets: Vec<TargetReport>,
    /// History lines that are not probe records (a torn last line after a crash, say).
    pub skipped_lines: usize,
}

/// Longest history line read; longer ones (a corrupt file) are skipped without being held.
const MAX_LINE_BYTES: usize = 64 * 1024;

/// Aggregates records one at a time: memory grows by a few bytes per probe (its time, outcome
/// and latency), not by whole records, so a report over a long history stays small.
#[derive(Debug)]
pub struct ReportBuilder {
    since: Option<SystemTime>,
    targets: BTreeMap<String, Tally>,
    skipped_lines: usize,
}

#[derive(Debug, Default)]
struct Tally {
    /// The URL of the most recent probe and its time.
    url: Option<(SystemTime, String)>,
    outcomes: Vec<Outcome>,
    answered_latencies: Vec<u64>,
    last_failure: Option<(SystemTime, Failure)>,
}

impl ReportBuilder {
    /// Counts records at or after `since` (all when none).
    pub fn new(since: Option<SystemTime>) -> Self {
        Self {
            since,
            targets: BTreeMap::new(),
            skipped_lines: 0,
        }
    }

    pub fn add(&mut self, record: &ProbeRecord) {
        let Some(t) = record.time() else {
            self.skipped_lines += 1;
            return;
        };
        if self.since.is_some_and(|s| t < s) {
            return;
        }
        let tally = self.targets.entry(record.target.clone()).or_default();
        tally.outcomes.push(Outcome {
            at: t,
            ok: record.ok,
            answered_ms: record.status.map(|_| record.latency_ms),
            reason: (!record.ok).then(|| failure_reason(record.status, record.error.as_deref())),
        });
        if record.status.is_some() {
            tally.answered_latencies.push(record.latency_ms);
        }
        if tally.url.as_ref().is_none_or(|(at, _)| *at <= t) {
            tally.url = Some((t, record.url.clone()));
        }
        if !record.ok && tally.last_failure.as_ref().is_none_or(|(at, _)| *at <= t) {
            let failure = Failure {
                ts: record.ts.clone(),
                status: record.status,
                error: record.error.clone(),
            };
            tally.last_failure = Some((t, failure));
        }
    }

    /// A history line that is not a probe record.
    pub fn skip_line(&mut self) {
        self.skipped_lines += 1;
    }

    /// Adds every record of `path` and its rotated files, oldest first. A missing `path` is an
    /// error (rotated siblings are optional); lines that are not records are counted.
    pub fn read_history(&mut self, path: &Path) -> io::Result<()> {
        for_each_line(path, |line| match line {
            Some(record) => self.add(&record),
            None => self.skip_line(),
        })
    }

    pub fn finish(self, now: SystemTime) -> Report {
        let targets = self
            .targets
            .into_iter()
            .map(|(name, tally)| tally.summarize(name, now))
            .collect();
        Report {
            generated_at: format_ts(now),
            since: self.since.map(format_ts),
            targets,
            skipped_lines: self.skipped_lines,
        }
    }
}

impl Tally {
    fn summarize(mut self, target: String, now: SystemTime) -> TargetReport {
        // Stable: probes of one run keep their order.
        self.outcomes.sort_by_key(|o| o.at);
        self.answered_latencies.sort_unstable();
        let probes = self.outcomes.len();
        let ok = self.outcomes.iter().filter(|o| o.ok).count();
        let recent = self.outcomes[probes.saturating_sub(RECENT_PROBES)..]
            .iter()
            .map(|o| RecentProbe {
                ts: format_ts(o.at),
                ok: o.ok,
                latency_ms: o.answered_ms,
            })
            .collect();
        TargetReport {
            target,
            url: self.url.map(|(_, url)| url).unwrap_or_default(),
            probes,
            ok,
            uptime_percent: ok as f64 * 100.0 / probes as f64,
            p50_ms: percentile(&self.answered_latencies, 50),
            p99_ms: percentile(&self.answered_latencies, 99),
            last_failure: self.last_failure.map(|(_, f)| f),
            first_ts: format_ts(self.outcomes[0].at),
            last_ts: format_ts(self.outcomes[probes - 1].at),
            up: self.outcomes[probes - 1].ok,
            uptime_24h_percent: uptime_within(&self.outcomes, now, DAY),
            uptime_7d_percent: uptime_within(&self.outcomes, now, 7 * DAY),
            recent,
            incidents: incidents(&self.outcomes),
            outcomes: self.outcomes,
        }
    }
}

const DAY: Duration = Duration::from_secs(86_400);

/// What a failed probe's reason reads like: its error, else its status.
fn failure_reason(status: Option<u16>, error: Option<&str>) -> String {
    match (error, status) {
        (Some(e), _) if !e.is_empty() => e.to_string(),
        (_, Some(s)) => format!("HTTP {s}"),
        _ => "no answer".to_string(),
    }
}

/// Uptime % of the sorted outcomes in `(now - window, now]`.
fn uptime_within(sorted: &[Outcome], now: SystemTime, window: Duration) -> Option<f64> {
    let from = now.checked_sub(window).unwrap_or(SystemTime::UNIX_EPOCH);
    let inside = &sorted[sorted.partition_point(|o| o.at <= from)..];
    let inside = &inside[..inside.partition_point(|o| o.at <= now)];
    let ok = inside.iter().filter(|o| o.ok).count();
    (!inside.is_empty()).then(|| ok as f64 * 100.0 / inside.len() as f64)
}

/// Runs of consecutive failures in the sorted outcomes, newest first, at most [`INCIDENTS_KEPT`].
fn incidents(sorted: &[Outcome]) -> Vec<Incident> {
    let mut found: Vec<Incident> = Vec::new();
    let mut open: Option<Incident> = None;
    for o in sorted {
        match (&mut open, o.ok) {
            (None, false) => {
                open = Some(Incident {
                    started: format_ts(o.at),
                    ended: None,
                    failed_probes: 1,
                    reason: o.reason.clone().unwrap_or_default(),
                })
            }
            (Some(incident), false) => incident.failed_probes += 1,
            (Some(_), true) => {
                let mut closed = open.take().expect("an open incident");
                closed.ended = Some(format_ts(o.at));
                found.push(closed);
            }
            (None, true) => {}
        }
    }
    found.extend(open);
    found.into_iter().rev().take(INCIDENTS_KEPT).collect()
}

/// Builds the report from records in memory (any order), keeping those at or after `since`.
pub fn build(records: &[ProbeRecord], since: Option<SystemTime>, now: SystemTime) -> Report {
    let mut builder = ReportBuilder::new(since);
    for record in records {
        builder.add(record);
    }
    builder.finish(now)
}

/// Every record of `path` and its rotated files, oldest first, and the number of lines that
/// were not records.
pub fn read_history(path: &Path) -> io::Result<(Vec<ProbeRecord>, usize)> {
    let mut records = Vec::new();
    let mut skipped = 0;
    for_each_line(path, |line| match line {
        Some(record) => records.push(record),
        None => skipped += 1,
    })?;
    Ok((records, skipped))
}

/// Calls `each` with every non-blank line of the history, parsed (None: not a record).
fn for_each_line(path: &Path, mut each: impl FnMut(Option<ProbeRecord>)) -> io::Result<()> {
    // Fail clearly on the file the operator named.
    std::fs::metadata(path)?;
    let mut line = Vec::new();
    for file in files_oldest_first(path) {
        let mut reader = match std::fs::File::open(&file) {
            Ok(f) => BufReader::new(f),
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        };
        while let Some(complete) = read_line_bounded(&mut reader, &mut line, MAX_LINE_BYTES)? {
            if complete && line.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            let record = complete
                .then(|| serde_json::from_slice::<ProbeRecord>(&line).ok())
                .flatten()
                .filter(|r| r.time().is_some());
            each(record);
        }
    }
    Ok(())
}

/// Reads one line (without its newline) into `line`. Returns None at the end, else whether the
/// line fit in `max` bytes; the rest of a longer line is consumed but not kept.
fn read_line_bounded(
    reader: &mut impl BufRead,
    line: &mut Vec<u8>,
    max: usize,
) -> io::Result<Option<bool>> {
    line.clear();
    let mut fits = true;
    let mut read_any = false;
    loop {
        let available = reader.fill_buf()?;
        if available.is_empty() {
            return Ok(read_any.then_some(fits));
        }
        read_any = true;
        let newline = available.iter().position(|&b| b == b'\n');
        let part = &available[..newline.unwrap_or(available.len())];
        if fits && line.len() + part.len() <= max {
            line.extend_from_slice(part);
        } else {
            fits = false;
            line.clear();
        }
        let used = newline.map_or(available.len(), |i| i + 1);
        reader.consume(used);
        if newline.is_some() {
            return Ok(Some(fits));
        }
    }
}

/// Nearest-rank percentile of sorted values: the smallest value with at least `p`% of the
/// values at or below it (always one of the measured values).
pub fn percentile(sorted: &[u64], p: u32) -> Option<u64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = (p as usize * sorted.len()).div_ceil(100).max(1);
    Some(sorted[rank - 1])
}

/// `75.00%`; never rounds a failure up to a perfect 100.00%.
pub fn show_uptime(t: &TargetReport) -> String {
    show_percent(t.uptime_percent)
}

/// An uptime percentage with two decimals; below 100 it never shows as 100.00%.
pub fn show_percent(percent: f64) -> String {
    let shown = format!("{percent:.2}");
    if shown == "100.00" && percent < 100.0 {
        "99.99%".to_string()
    } else {
        format!("{shown}%")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_lines_are_skipped_without_being_kept() {
        let text = format!("short\n{}\nlast", "x".repeat(100));
        let mut reader = io::BufReader::with_capacity(8, text.as_bytes());
        let mut line = Vec::new();
        assert_eq!(
            read_line_bounded(&mut reader, &mut line, 10).unwrap(),
            Some(true)
        );
        assert_eq!(line, b"short");
        assert_eq!(
            read_line_bounded(&mut reader, &mut line, 10).unwrap(),
            Some(false)
        );
        assert!(line.is_empty());
        assert_eq!(
            read_line_bounded(&mut reader, &mut line, 10).unwrap(),
            Some(true)
        );
        assert_eq!(line, b"last");
        assert_eq!(read_line_bounded(&mut reader, &mut line, 10).unwrap(), None);
    }

    #[test]
    fn nearest_rank_percentiles() {
        let v: Vec<u64> = (1..=100).collect();
        assert_eq!(percentile(&v, 50), Some(50));
        assert_eq!(percentile(&v, 99), Some(99));
        assert_eq!(percentile(&[7], 99), Some(7));
        assert_eq!(percentile(&[1, 2, 3, 4], 50), Some(2));
        assert_eq!(percentile(&[1, 2, 3, 4], 99), Some(4));
        assert_eq!(percentile(&[], 50), None);
    }
}
