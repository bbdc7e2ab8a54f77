//! Orphan retention on a shared volume: the folder of an instance that is gone is removed once
//! its newest record is older than LOG_ORPHAN_RETENTION, by one sweeper at a time, never a live
//! instance's folder nor the imported `legacy` one; over LOG_SHARED_RETENTION_BYTES the orphans'
//! globally oldest segments go first. Library sweeps with a chosen "now", then two real binaries
//! racing for one orphan.

use std::path::Path;
use std::process::Command;
use std::sync::{Arc, Barrier};
use std::time::{Duration, SystemTime};

use crate::common::{binary, segment_names, segment_records};
use data_api::store::{
    sweep_orphans, Level, LogStore, OrphanPolicy, RealIo, StoreConfig, StoreMetrics,
};
use test_support::ServiceProcess;

const DAY: Duration = Duration::from_secs(24 * 3600);
const EXEMPT: &[&str] = &["legacy"];

fn policy(shared_budget: Option<u64>) -> OrphanPolicy {
    OrphanPolicy {
        max_age: 7 * DAY,
        shared_budget,
        interval: Duration::from_secs(60),
    }
}

/// Writes `records` records of about 1 KiB into `instance`'s folder, then closes it (an instance
/// that is gone), or returns the store still open (a live one).
async fn write(log_dir: &Path, instance: &str, records: usize) -> LogStore {
    let config = StoreConfig {
        log_dir: log_dir.to_path_buf(),
        instance: instance.to_string(),
        segment_bytes: 16 * 1024,
        retention_bytes: 1 << 30,
        format_version: data_api::store::DEFAULT_WRITE_VERSION,
    };
    let (store, _) = LogStore::open(config, Arc::new(RealIo), StoreMetrics::new())
        .await
        .unwrap();
    for n in 0..records {
        store
            .append(Level::Info, format!("{instance} {n} {}", "o".repeat(1000)))
            .await
            .unwrap();
    }
    store
}

fn folder_bytes(dir: &Path) -> u64 {
    segment_names(dir)
        .iter()
        .map(|n| std::fs::metadata(dir.join(n)).unwrap().len())
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_old_orphan_is_removed_by_exactly_one_of_two_racing_sweepers() {
    let root = tempfile::tempdir().unwrap();
    let log_dir = root.path();
    write(log_dir, "gone", 20).await.close().await;
    write(log_dir, "legacy", 5).await.close().await;
    let live = write(log_dir, "alive", 5).await;
    let sweeper_a = write(log_dir, "sweeper-a", 1).await;
    let sweeper_b = write(log_dir, "sweeper-b", 1).await;

    // Younger than the limit: kept.
    let report = sweep_orphans(
        log_dir,
        "sweeper-a",
        EXEMPT,
        &policy(None),
        SystemTime::now(),
    )
    .unwrap();
    assert!(
        report.swept && report.folders_removed.is_empty(),
        "{report:?}"
    );

    // Eight days on, two instances sweep at the same moment.
    let later = SystemTime::now() + 8 * DAY;
    let start = Arc::new(Barrier::new(2));
    let racers: Vec<_> = ["sweeper-a", "sweeper-b"]
        .into_iter()
        .map(|own| {
            let (start, log_dir) = (start.clone(), log_dir.to_path_buf());
            std::thread::spawn(move || {
                start.wait();
                sweep_orphans(&log_dir, own, EXEMPT, &policy(None), later).unwrap()
            })
        })
        .collect();
    let reports: Vec<_> = racers.into_iter().map(|r| r.join().unwrap()).collect();
    let removed: Vec<&String> = reports.iter().flat_map(|r| &r.folders_removed).collect();
    assert_eq!(removed, ["gone"], "{reports:?}");
    assert!(!log_dir.join("gone").exists());
    // The live instances (the sweepers' own folders included) and the imported history stay.
    for kept in ["alive", "legacy", "sweeper-a", "sweeper-b"] {
        assert!(!segment_records(&log_dir.join(kept)).is_empty(), "{kept}");
    }
    assert_eq!(
        live.recent(1000, Default::default(), None)
            .await
            .unwrap()
            .len(),
        5 + 5 + 1 + 1,
        "every remaining folder still reads"
    );

    // While another process holds the volume's retention lock, a sweep does nothing.
    write(log_dir, "gone-too", 3).await.close().await;
    let held = std::fs::File::create(log_dir.join(".retention.lock")).unwrap();
    // SAFETY: flock on a descriptor this test owns.
    assert_eq!(
        unsafe { libc::flock(std::os::fd::AsRawFd::as_raw_fd(&held), libc::LOCK_EX) },
        0
    );
    let report = sweep_orphans(log_dir, "sweeper-a", EXEMPT, &policy(None), later).unwrap();
    assert!(!report.swept, "{report:?}");
    assert!(log_dir.join("gone-too").exists());
    drop(held);
    let report = sweep_orphans(log_dir, "sweeper-a", EXEMPT, &policy(None), later).unwrap();
    assert_eq!(report.folders_removed, ["gone-too"]);
    for store in [live, sweeper_a, sweeper_b] {
        store.close().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_the_shared_budget_the_orphans_oldest_segments_go_first() {
    let root = tempfile::tempdir().unwrap();
    let log_dir = root.path();
    // Two orphans, the older written first, then a live instance; ~16 KiB segments.
    write(log_dir, "old-orphan", 60).await.close().await;
    write(log_dir, "new-orphan", 60).await.close().await;
    let live = write(log_dir, "alive", 60).await;
    let live_before = segment_names(&log_dir.join("alive"));
    let sizes = |name: &str| folder_bytes(&log_dir.join(name));
    let total = sizes("old-orphan") + sizes("new-orphan") + sizes("alive");
    let old_segments = segment_names(&log_dir.join("old-orphan")).len();
    assert!(old_segments >= 3, "{old_segments} segments");

    // Within budget: nothing goes. (The records are young, so age removes nothing either.)
    let now = SystemTime::now();
    let report = sweep_orphans(log_dir, "alive", EXEMPT, &policy(Some(total)), now).unwrap();
    assert_eq!(report.segments_removed, 0);

    // A budget that needs the old orphan gone and one segment more: the old orphan's segments go
    // first (all of them, and the folder with them), then the new orphan's oldest.
    let budget = total - sizes("old-orphan") - 1;
    let new_before = segment_names(&log_dir.join("new-orphan"));
    let report = sweep_orphans(log_dir, "alive", EXEMPT, &policy(Some(budget)), now).unwrap();
    assert_eq!(report.segments_removed, old_segments + 1, "{report:?}");
    assert!(!log_dir.join("old-orphan").exists());
    let new_after = segment_names(&log_dir.join("new-orphan"));
    assert_eq!(
        new_after,
        new_before[1..],
        "the new orphan lost only its oldest segment"
    );
    assert_eq!(
        segment_names(&log_dir.join("alive")),
        live_before,
        "live folders are never cut"
    );
    assert!(sizes("new-orphan") + sizes("alive") <= budget);
    live.close().await;
}

fn command(log_dir: &Path, instance: &str) -> Command {
    let mut cmd = binary(log_dir, instance);
    cmd.env("LOG_ORPHAN_RETENTION", "1s")
        .env("LOG_ORPHAN_SWEEP_INTERVAL", "100ms");
    cmd
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_live_binaries_racing_for_an_orphan_remove_it_once() {
    let root = tempfile::tempdir().unwrap();
    write(root.path(), "scaled-down", 10).await.close().await;
    let mut processes = [
        ServiceProcess::start(command(root.path(), "data-api-0")),
        ServiceProcess::start(command(root.path(), "data-api-1")),
    ];
    // Bounded: the orphan is older than 1 s after about 1 s; allow 30 s.
    let orphan = root.path().join("scaled-down");
    for _ in 0..300 {
        if !orphan.exists() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(!orphan.exists(), "the orphan was never removed");
    // The line is logged right after the removal (bounded wait for it); a second removal is
    // impossible once the folder is gone, so exactly one process logged one.
    let mut found = 0;
    for _ in 0..50 {
        found = processes
            .iter_mut()
            .map(|p| {
                p.output()
                    .matches("orphan retention removed the folder")
                    .count()
            })
            .sum();
        if found > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(found, 1, "removed exactly once");
    for p in &processes {
        p.wait_ready(200).await;
    }
    assert!(root.path().join("data-api-0").exists() && root.path().join("data-api-1").exists());
}
