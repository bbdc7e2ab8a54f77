//! The log store as a library: rotation, retention, ids across restarts and instances, torn-tail
//! recovery, and injected volume faults.

use std::collections::HashSet;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use crate::common::{segment_names, segment_records};
use data_api::store::{
    Fault, FaultyIo, Level, LogStore, OpenError, OpenReport, RealIo, StoreConfig, StoreError,
    StoreIo, StoreMetrics,
};

fn config(log_dir: &Path, instance: &str, segment_bytes: u64, retention_bytes: u64) -> StoreConfig {
    StoreConfig {
        log_dir: log_dir.to_path_buf(),
        instance: instance.to_string(),
        segment_bytes,
        retention_bytes,
        format_version: data_api::store::DEFAULT_WRITE_VERSION,
    }
}

async fn open(config: StoreConfig) -> (LogStore, OpenReport) {
    open_with(config, Arc::new(RealIo)).await
}

async fn open_with(config: StoreConfig, io: Arc<dyn StoreIo>) -> (LogStore, OpenReport) {
    LogStore::open(config, io, StoreMetrics::new())
        .await
        .expect("store opens")
}

#[tokio::test]
async fn segments_rotate_by_size_and_retention_keeps_the_newest() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = open(config(dir.path(), "rot", 4096, 3 * 4096)).await;
    std::fs::write(store.dir().join("operator-notes.txt"), b"mine").unwrap();
    let mut acked = Vec::new();
    for n in 0..300 {
        let ack = store
            .append(Level::Info, format!("record {n:04} {}", "p".repeat(100)))
            .await
            .unwrap();
        acked.push(ack.id);
    }
    let instance_dir = store.dir().to_path_buf();
    let names = segment_names(&instance_dir);
    assert!(names.len() >= 2, "{names:?}");
    assert_ne!(
        names[0], "segment-00000000000000000001.jsonl",
        "the oldest were deleted"
    );
    let mut total = 0;
    for name in &names {
        let len = std::fs::metadata(instance_dir.join(name)).unwrap().len();
        assert!(len <= 4096, "{name} is {len} bytes");
        total += len;
    }
    assert!(total <= 3 * 4096, "{total} bytes kept");
    // What is kept is the newest records, in order, without gaps.
    let kept: Vec<String> = segment_records(&instance_dir)
        .into_iter()
        .map(|r| r.id)
        .collect();
    assert!(kept.len() > 30, "{} records kept", kept.len());
    assert_eq!(kept, acked[acked.len() - kept.len()..]);
    // GET /logs reads across segments.
    let recent = store.recent(1000, Default::default(), None).await.unwrap();
    let recent_ids: Vec<String> = recent.into_iter().rev().map(|r| r.id).collect();
    assert_eq!(recent_ids, kept);
    assert_eq!(
        std::fs::read(instance_dir.join("operator-notes.txt")).unwrap(),
        b"mine"
    );
    store.close().await;
}

#[tokio::test]
async fn a_record_larger_than_a_segment_gets_a_segment_of_its_own() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = open(config(dir.path(), "big", 4096, 1 << 20)).await;
    store.append(Level::Info, "small".into()).await.unwrap();
    store.append(Level::Warn, "L".repeat(8192)).await.unwrap();
    store.append(Level::Info, "after".into()).await.unwrap();
    let instance_dir = store.dir().to_path_buf();
    assert_eq!(segment_names(&instance_dir).len(), 3);
    let messages: Vec<String> = segment_records(&instance_dir)
        .into_iter()
        .map(|r| r.message)
        .collect();
    assert_eq!(
        messages,
        ["small".to_string(), "L".repeat(8192), "after".to_string()]
    );
    store.close().await;
}

#[tokio::test]
async fn ids_stay_unique_and_times_ordered_across_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), "restart", 1 << 20, 4 << 20);
    let mut ids = Vec::new();
    for _round in 0..2 {
        let (store, report) = open(cfg.clone()).await;
        assert!(report.torn_tail.is_none());
        for n in 0..50 {
            ids.push(store.append(Level::Info, format!("n{n}")).await.unwrap().id);
        }
        store.close().await;
    }
    let records = segment_records(&dir.path().join("restart"));
    assert_eq!(records.len(), 100);
    let unique: HashSet<_> = records.iter().map(|r| &r.id).collect();
    assert_eq!(unique.len(), 100);
    assert_eq!(
        records.iter().map(|r| r.id.clone()).collect::<Vec<_>>(),
        ids
    );
    let times: Vec<_> = records.iter().map(|r| r.time().unwrap()).collect();
    assert!(
        times.windows(2).all(|w| w[0] <= w[1]),
        "timestamps never go backwards"
    );
}

#[tokio::test]
async fn two_instances_share_one_log_dir_without_sharing_files_or_ids() {
    let dir = tempfile::tempdir().unwrap();
    let (a, _) = open(config(dir.path(), "pod-a", 1 << 20, 4 << 20)).await;
    let (b, _) = open(config(dir.path(), "pod-b", 1 << 20, 4 << 20)).await;
    let mut tasks = Vec::new();
    for store in [a.clone(), b.clone()] {
        for w in 0..8 {
            let store = store.clone();
            tasks.push(tokio::spawn(async move {
                let mut ids = Vec::new();
                for n in 0..25 {
                    ids.push(
                        store
                            .append(Level::Info, format!("w{w} n{n}"))
                            .await
                            .unwrap()
                            .id,
                    );
                }
                ids
            }));
        }
    }
    let mut all = Vec::new();
    for task in tasks {
        all.extend(task.await.unwrap());
    }
    let unique: HashSet<_> = all.iter().collect();
    assert_eq!(unique.len(), 400);
    for instance in ["pod-a", "pod-b"] {
        let records = segment_records(&dir.path().join(instance));
        assert_eq!(records.len(), 200);
        assert!(records.iter().all(|r| r.instance == instance));
    }

    // A second writer for the same instance is refused while the first holds the folder.
    let again = LogStore::open(
        config(dir.path(), "pod-a", 1 << 20, 4 << 20),
        Arc::new(RealIo),
        StoreMetrics::new(),
    )
    .await;
    assert!(matches!(again, Err(OpenError::Locked { .. })));
    a.close().await;
    b.close().await;
}

#[tokio::test]
async fn a_torn_final_line_is_cut_on_open_and_everything_before_it_kept() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), "torn", 1 << 20, 4 << 20);
    let (store, _) = open(cfg.clone()).await;
    for n in 0..10 {
        store
            .append(Level::Info, format!("kept {n}"))
            .await
            .unwrap();
    }
    let instance_dir = store.dir().to_path_buf();
    store.close().await;
    let segment = instance_dir.join(&segment_names(&instance_dir)[0]);
    let good_len = std::fs::metadata(&segment).unwrap().len();
    let partial = br#"{"id":"0192","ts":"2026-01-01T00:00:00Z","level":"info","mess"#;
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .open(&segment)
        .unwrap();
    std::io::Write::write_all(&mut file, partial).unwrap();
    drop(file);

    let (store, report) = open(cfg).await;
    let torn = report.torn_tail.expect("the torn tail is reported");
    assert_eq!(torn.dropped_bytes, partial.len() as u64);
    assert_eq!(std::fs::metadata(&segment).unwrap().len(), good_len);
    store
        .append(Level::Info, "after recovery".into())
        .await
        .unwrap();
    let records = segment_records(&instance_dir);
    assert_eq!(records.len(), 11);
    assert_eq!(records[10].message, "after recovery");
    store.close().await;
}

/// Appends until one succeeds again (bounded), as a client retrying would.
async fn append_until_ok(store: &LogStore, message: &str) -> String {
    for _ in 0..100 {
        match store.append(Level::Info, message.into()).await {
            Ok(ack) => return ack.id,
            Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
    panic!("the store never recovered");
}

#[tokio::test]
async fn injected_faults_refuse_writes_then_the_store_recovers_by_itself() {
    let dir = tempfile::tempdir().unwrap();
    let io = FaultyIo::new();
    let (store, _) = open_with(
        config(dir.path(), "faulty", 1 << 20, 4 << 20),
        Arc::new(io.clone()),
    )
    .await;
    let mut acked = vec![store.append(Level::Info, "before".into()).await.unwrap().id];

    for (fault, expect_full) in [(Fault::Full, true), (Fault::ReadOnly, false)] {
        io.set(Some(fault));
        let err = store
            .append(Level::Info, "refused".into())
            .await
            .unwrap_err();
        assert_eq!(matches!(err, StoreError::Full { .. }), expect_full, "{err}");
        assert!(store.health().check().is_err());
        // Still refused while the fault lasts, and the refusal leaves no bytes behind.
        tokio::time::sleep(Duration::from_millis(600)).await;
        assert!(store.append(Level::Info, "refused".into()).await.is_err());
        io.set(None);
        acked.push(append_until_ok(&store, "after").await);
        assert!(store.health().check().is_ok());
    }
    let records = segment_records(store.dir());
    let ids: Vec<String> = records.iter().map(|r| r.id.clone()).collect();
    assert_eq!(
        ids, acked,
        "exactly the acknowledged records, nothing refused"
    );
    store.close().await;
}
