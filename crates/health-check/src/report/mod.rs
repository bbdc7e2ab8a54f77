//! `health-check report`: per target uptime, latency percentiles and the last failure, read
//! from the JSON history (the file and its rotated siblings).

mod html;
mod text;

use std::collections::BTreeMap;
use std::io::{self, BufRead, BufReader};
use std::path::Path;
use std::time::SystemTime;

use serde::Serialize;

use crate::history::files_oldest_first;
use crate::record::{format_ts, ProbeRecord};

pub use html::render_html;
pub use text::render_text;

/// What the report says about one target.
#[derive(Debug, Clone, PartialEq, Serialize)]
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
    /// Probe outcomes in time order, for the html uptime bar.
    #[serde(skip)]
    pub outcomes: Vec<(String, bool)>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Failure {
    pub ts: String,
    pub status: Option<u16>,
    pub error: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    pub generated_at: String,
    /// Only probes at or after this instant count (from `--since`); none: the whole history.
    pub since: Option<String>,
    pub targets: Vec<TargetReport>,
    /// History lines that are not probe records (a torn last line after a crash, say).
    pub skipped_lines: usize,
}

/// Reads `path` and its rotated files, oldest first. A missing `path` is an error; lines that
/// do not parse are counted, not fatal.
pub fn read_history(path: &Path) -> io::Result<(Vec<ProbeRecord>, usize)> {
    // Fail clearly on the file the operator named; rotated siblings are optional.
    std::fs::metadata(path)?;
    let mut records = Vec::new();
    let mut skipped = 0;
    for file in files_oldest_first(path) {
        let reader = match std::fs::File::open(&file) {
            Ok(f) => BufReader::new(f),
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        };
        for line in reader.split(b'\n') {
            let line = line?;
            if line.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            match serde_json::from_slice::<ProbeRecord>(&line) {
                Ok(r) if r.time().is_some() => records.push(r),
                _ => skipped += 1,
            }
        }
    }
    Ok((records, skipped))
}

/// Builds the report from records (any order), keeping those at or after `since`.
pub fn build(records: &[ProbeRecord], since: Option<SystemTime>, now: SystemTime) -> Report {
    let mut by_target: BTreeMap<&str, Vec<(SystemTime, &ProbeRecord)>> = BTreeMap::new();
    for record in records {
        let Some(t) = record.time() else { continue };
        if since.is_some_and(|s| t < s) {
            continue;
        }
        by_target
            .entry(&record.target)
            .or_default()
            .push((t, record));
    }
    let targets = by_target
        .into_iter()
        .map(|(name, mut probes)| {
            probes.sort_by_key(|(t, _)| *t);
            summarize(name, &probes)
        })
        .collect();
    Report {
        generated_at: format_ts(now),
        since: since.map(format_ts),
        targets,
        skipped_lines: 0,
    }
}

fn summarize(name: &str, probes: &[(SystemTime, &ProbeRecord)]) -> TargetReport {
    let ok = probes.iter().filter(|(_, r)| r.ok).count();
    let mut answered: Vec<u64> = probes
        .iter()
        .filter(|(_, r)| r.status.is_some())
        .map(|(_, r)| r.latency_ms)
        .collect();
    answered.sort_unstable();
    let last_failure = probes
        .iter()
        .rev()
        .find(|(_, r)| !r.ok)
        .map(|(_, r)| Failure {
            ts: r.ts.clone(),
            status: r.status,
            error: r.error.clone(),
        });
    let (first, last) = (probes[0].1, probes[probes.len() - 1].1);
    TargetReport {
        target: name.to_string(),
        url: last.url.clone(),
        probes: probes.len(),
        ok,
        uptime_percent: ok as f64 * 100.0 / probes.len() as f64,
        p50_ms: percentile(&answered, 50),
        p99_ms: percentile(&answered, 99),
        last_failure,
        first_ts: first.ts.clone(),
        last_ts: last.ts.clone(),
        outcomes: probes.iter().map(|(_, r)| (r.ts.clone(), r.ok)).collect(),
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
    let shown = format!("{:.2}", t.uptime_percent);
    if shown == "100.00" && t.ok < t.probes {
        "99.99%".to_string()
    } else {
        format!("{shown}%")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
