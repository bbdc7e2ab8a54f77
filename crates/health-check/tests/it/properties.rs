//! Properties of what is parsed or computed from outside input.

use std::time::{Duration, SystemTime};

use health_check::record::format_ts;
use health_check::report::{build, percentile, read_history, ReportBuilder};
use health_check::target::parse_target_arg;
use health_check::ProbeRecord;
use proptest::prelude::*;

proptest! {
    /// Any `--target` text is either rejected with a message or gives a valid target.
    #[test]
    fn target_args_never_panic(text in ".{0,80}") {
        if let Ok(target) = parse_target_arg(&text) {
            prop_assert!(target.validate().is_ok());
            prop_assert!(!target.name.is_empty());
        }
    }

    #[test]
    fn well_formed_target_args_are_accepted(
        name in "[a-z][a-z0-9_.-]{0,15}",
        host in "[a-z][a-z0-9]{0,10}",
        port in 1u16..,
        path in "(/[a-z0-9]{0,8}){0,3}",
    ) {
        let url = format!("http://{host}:{port}{path}");
        let target = parse_target_arg(&format!("{name}={url}")).unwrap();
        prop_assert_eq!(target.name, name);
        prop_assert_eq!(target.url, url);
    }

    /// Nearest rank: the result is a measured value, at least p% of the values are at or below
    /// it, and fewer than p% are strictly below it.
    #[test]
    fn percentile_is_the_nearest_rank(mut values in prop::collection::vec(0u64..10_000, 1..200), p in 1u32..=100) {
        values.sort_unstable();
        let v = percentile(&values, p).unwrap();
        let n = values.len() as u64;
        let at_or_below = values.iter().filter(|&&x| x <= v).count() as u64;
        let below = values.iter().filter(|&&x| x < v).count() as u64;
        prop_assert!(values.contains(&v));
        prop_assert!(at_or_below * 100 >= u64::from(p) * n);
        prop_assert!(below * 100 < u64::from(p) * n);
    }

    /// Every record is counted once, under its target, and uptime is ok / probes.
    #[test]
    fn report_counts_every_record(outcomes in prop::collection::vec((0usize..4, any::<bool>(), 0u64..5000), 1..100)) {
        let now = SystemTime::now();
        let records: Vec<ProbeRecord> = outcomes
            .iter()
            .enumerate()
            .map(|(i, &(t, ok, ms))| ProbeRecord {
                ts: format_ts(now - Duration::from_secs(1000 - i as u64)),
                target: format!("t{t}"),
                url: "http://h/".into(),
                ok,
                status: ok.then_some(200),
                latency_ms: ms,
                error: (!ok).then(|| "down".to_string()),
            })
            .collect();
        let report = build(&records, None, now);
        let total: usize = report.targets.iter().map(|t| t.probes).sum();
        prop_assert_eq!(total, records.len());
        for t in &report.targets {
            let ok = records.iter().filter(|r| r.target == t.target && r.ok).count();
            prop_assert_eq!(t.ok, ok);
            prop_assert_eq!(t.uptime_percent, ok as f64 * 100.0 / t.probes as f64);
            prop_assert_eq!(t.last_failure.is_some(), ok < t.probes);
        }
    }

    /// Whatever bytes the history holds (a torn write, another program's file), reading it
    /// never panics and every non-blank line is either a record or counted as skipped.
    #[test]
    fn any_history_file_reads_without_panicking(
        lines in prop::collection::vec(prop_oneof![
            "[ -~]{0,40}",
            Just(r#"{"ts":"2026-01-01T00:00:00.000Z","target":"a","url":"u","ok":true,"status":200,"latency_ms":1,"error":null}"#.to_string()),
            Just(r#"{"ts":"yesterday","target":"a","url":"u","ok":true,"status":200,"latency_ms":1,"error":null}"#.to_string()),
        ], 0..30),
        tail in prop::collection::vec(any::<u8>(), 0..64),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("h.log");
        let mut bytes = lines.join("\n").into_bytes();
        bytes.push(b'\n');
        bytes.extend_from_slice(&tail);
        std::fs::write(&path, &bytes).unwrap();
        let (records, skipped) = read_history(&path).unwrap();
        let non_blank = bytes
            .split(|&b| b == b'\n')
            .filter(|l| !l.iter().all(u8::is_ascii_whitespace))
            .count();
        prop_assert_eq!(records.len() + skipped, non_blank);
        let mut builder = ReportBuilder::new(None);
        builder.read_history(&path).unwrap();
        let report = builder.finish(SystemTime::now());
        prop_assert_eq!(report.skipped_lines, skipped);
        prop_assert_eq!(report.targets.iter().map(|t| t.probes).sum::<usize>(), records.len());
    }
}
