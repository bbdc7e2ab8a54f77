//! The history file is rotated by size and keeps a bounded number of files; the report reads
//! across the rotated files.

use std::path::Path;

use health_check::history::{append, rotated_path, HistoryOutput, Rotation};
use health_check::report::read_history;
use health_check::ProbeRecord;

fn record(i: usize) -> ProbeRecord {
    ProbeRecord {
        ts: format!("2026-01-01T00:{:02}:{:02}.000Z", i / 60, i % 60),
        target: "api".into(),
        url: "http://127.0.0.1:5000/healthz".into(),
        ok: true,
        status: Some(200),
        latency_ms: i as u64,
        error: None,
    }
}

fn line_len() -> u64 {
    serde_json::to_string(&record(10)).unwrap().len() as u64 + 1
}

fn latencies(path: &Path) -> Vec<u64> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<ProbeRecord>(l).unwrap().latency_ms)
        .collect()
}

#[test]
fn rotates_by_size_and_keeps_a_bounded_number_of_files() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("logs/health_check.log");
    // Room for exactly three lines per file (all lines have the same length).
    let rotation = Rotation {
        max_bytes: 3 * line_len(),
        keep_files: 2,
    };
    let output = HistoryOutput::File {
        path: path.clone(),
        rotation,
    };
    for i in 10..25 {
        append(&output, &[record(i)]).unwrap();
    }
    // 15 records, three per file: 10..=21 were rotated out, of which the newest two files are kept.
    assert_eq!(latencies(&path), vec![22, 23, 24]);
    assert_eq!(latencies(&rotated_path(&path, 1)), vec![19, 20, 21]);
    assert_eq!(latencies(&rotated_path(&path, 2)), vec![16, 17, 18]);
    assert!(!rotated_path(&path, 3).exists());
    for file in [path.clone(), rotated_path(&path, 1), rotated_path(&path, 2)] {
        assert!(std::fs::metadata(&file).unwrap().len() <= rotation.max_bytes);
    }
    // The report reads the rotated files too, oldest first.
    let (records, skipped) = read_history(&path).unwrap();
    assert_eq!(skipped, 0);
    let all: Vec<u64> = records.iter().map(|r| r.latency_ms).collect();
    assert_eq!(all, (16..25).collect::<Vec<u64>>());
}

#[test]
fn a_run_is_never_split_across_files() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("h.log");
    let output = HistoryOutput::File {
        path: path.clone(),
        rotation: Rotation {
            max_bytes: 3 * line_len(),
            keep_files: 1,
        },
    };
    append(&output, &[record(10), record(11)]).unwrap();
    append(&output, &[record(12), record(13)]).unwrap();
    assert_eq!(latencies(&rotated_path(&path, 1)), vec![10, 11]);
    assert_eq!(latencies(&path), vec![12, 13]);
}

#[test]
fn keep_zero_files_truncates() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("h.log");
    let output = HistoryOutput::File {
        path: path.clone(),
        rotation: Rotation {
            max_bytes: line_len(),
            keep_files: 0,
        },
    };
    append(&output, &[record(10)]).unwrap();
    append(&output, &[record(11)]).unwrap();
    assert_eq!(latencies(&path), vec![11]);
    assert!(!rotated_path(&path, 1).exists());
}
