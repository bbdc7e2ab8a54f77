//! Three data-api binaries on one shared LOG_DIR (the ReadWriteMany mode): 48 concurrent
//! writers spread over them, one instance killed with SIGKILL mid-write and restarted. Every
//! reader returns every acknowledged record of every instance, newest first across instances,
//! with `since`/`limit` holding at the merge boundaries; the dead writer's unsynced and torn tail
//! is never returned; 0 lost, 0 duplicated. Also: a second process with an INSTANCE_ID already
//! live on the shared volume is refused.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::common::{binary, segment_names, try_post};
use data_api::store::Record;
use serde_json::Value;
use test_support::client;
use test_support::ServiceProcess;

const INSTANCES: [&str; 3] = ["data-api-0", "data-api-1", "data-api-2"];
const WRITERS: usize = 48;
/// Per writer; 48 x 20 stays under one `GET /logs?limit=1000`, so one read returns everything.
const RECORDS_PER_WRITER: usize = 20;
/// The victim (instance 2) is killed once this many records are acknowledged overall.
const ACKS_BEFORE_KILL: usize = 300;

fn command(log_dir: &Path, instance: &str) -> Command {
    let mut cmd = binary(log_dir, instance);
    // Small segments: every instance rotates a few times, so merges cross segment borders.
    cmd.env("LOG_SEGMENT_BYTES", "64KiB")
        .env("LOG_RETENTION_BYTES", "64MiB");
    cmd
}

#[derive(Debug, Clone)]
struct Acked {
    id: String,
    message: String,
    instance: &'static str,
}

async fn all_records(http: &reqwest::Client, base: &str, query: &str) -> Vec<Record> {
    let url = format!("{base}/logs?limit=1000{query}");
    let response = http.get(&url).send().await.expect("GET /logs answers");
    assert_eq!(response.status(), 200, "{url}");
    let list: Value = response.json().await.unwrap();
    serde_json::from_value(list["records"].clone()).unwrap()
}

/// Every acknowledged record is in `records` once, with its message and instance; no id twice.
fn assert_complete(records: &[Record], acked: &[Acked], reader: &str) {
    let mut seen = HashSet::new();
    for record in records {
        assert!(
            seen.insert(record.id.as_str()),
            "{reader}: {} twice",
            record.id
        );
    }
    let by_id: HashMap<&str, &Record> = records.iter().map(|r| (r.id.as_str(), r)).collect();
    for ack in acked {
        let record = by_id
            .get(ack.id.as_str())
            .unwrap_or_else(|| panic!("{reader}: acknowledged {ack:?} not returned"));
        assert_eq!(
            (record.message.as_str(), record.instance.as_str()),
            (ack.message.as_str(), ack.instance),
            "{reader}"
        );
    }
}

/// Records beyond the acknowledged ones may only be the victim's whose request the kill cut off
/// after their bytes were written (at most one per victim writer; after the restart, also the
/// whole unsynced record planted in its tail, which recovery keeps).
fn assert_extra_only_cut_off(records: &[Record], acked: &[Acked], reader: &str) {
    let acked_ids: HashSet<&str> = acked.iter().map(|a| a.id.as_str()).collect();
    let extra: Vec<&Record> = records
        .iter()
        .filter(|r| !acked_ids.contains(r.id.as_str()))
        .collect();
    assert!(
        extra.iter().all(|r| r.instance == INSTANCES[2])
            && extra.len() <= 1 + WRITERS / INSTANCES.len(),
        "{reader}: {extra:?}"
    );
}

fn assert_newest_first(records: &[Record], reader: &str) {
    for pair in records.windows(2) {
        let (newer, older) = (pair[0].time().unwrap(), pair[1].time().unwrap());
        assert!(
            newer >= older,
            "{reader}: {:?} before {:?}",
            pair[0],
            pair[1]
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_writers_on_one_volume_each_read_every_acknowledged_record() {
    let root = tempfile::tempdir().unwrap();
    let mut processes: Vec<Option<ServiceProcess>> = INSTANCES
        .iter()
        .map(|name| Some(ServiceProcess::start(command(root.path(), name))))
        .collect();
    for process in processes.iter().flatten() {
        process.wait_ready(200).await;
    }
    let bases: Vec<String> = processes.iter().flatten().map(|p| p.url("")).collect();
    let http = client();
    let acked = Arc::new(Mutex::new(Vec::<Acked>::new()));

    let mut writers = Vec::new();
    for w in 0..WRITERS {
        let target = w % INSTANCES.len();
        let (http, base, acked) = (http.clone(), bases[target].clone(), acked.clone());
        writers.push(tokio::spawn(async move {
            // Bounded: RECORDS_PER_WRITER records, or until the first failure (the kill).
            for n in 0..RECORDS_PER_WRITER {
                let message = format!("w{w} n{n} {}", "s".repeat(200 + (w * 131 + n * 37) % 800));
                let Some(id) = try_post(&http, &format!("{base}/logs"), &message).await else {
                    break;
                };
                acked.lock().unwrap().push(Acked {
                    id,
                    message,
                    instance: INSTANCES[target],
                });
            }
        }));
    }

    // Kill the victim mid-write, once enough is acknowledged (bounded wait: about 30 s).
    for _ in 0..3000 {
        if acked.lock().unwrap().len() >= ACKS_BEFORE_KILL {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    processes[2].take().unwrap().kill();

    // While the two survivors still take writes, each read through either of them returns every
    // record acknowledged before the read, the dead instance's included.
    for round in 0..10 {
        let reader = round % 2;
        let before: Vec<Acked> = acked.lock().unwrap().clone();
        let records = all_records(&http, &bases[reader], "").await;
        assert_complete(
            &records,
            &before,
            &format!("live read {round} via {reader}"),
        );
        assert_newest_first(&records, "live read");
    }
    for writer in writers {
        writer.await.unwrap();
    }
    let acked: Vec<Acked> = acked.lock().unwrap().clone();
    let victim_acked = acked.iter().filter(|a| a.instance == INSTANCES[2]).count();
    assert!(
        acked.len() >= ACKS_BEFORE_KILL && victim_acked > 0,
        "{} acknowledged, {victim_acked} by the victim",
        acked.len()
    );
    assert!(
        victim_acked < WRITERS / 3 * RECORDS_PER_WRITER,
        "the victim was killed mid-write"
    );

    // What a crash can leave behind the commit marker: a whole record that was written but never
    // synced, then a torn one. Neither may be read while the victim is down.
    let victim_dir = root.path().join(INSTANCES[2]);
    let active = victim_dir.join(segment_names(&victim_dir).last().unwrap());
    let unsynced = Record {
        id: "01920000-0000-7000-8000-00000000cafe".into(),
        ts: data_api::store::format_ts(std::time::SystemTime::now()),
        level: data_api::store::Level::Info,
        message: "written, never acknowledged".into(),
        instance: INSTANCES[2].into(),
    };
    let torn = br#"{"id":"01920000-0000-7000-8000-00000000beef","ts":"20"#;
    let mut tail = unsynced.to_line();
    tail.extend_from_slice(torn);
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .open(&active)
        .unwrap();
    std::io::Write::write_all(&mut file, &tail).unwrap();
    drop(file);
    for (reader, base) in bases.iter().take(2).enumerate() {
        let records = all_records(&http, base, "").await;
        assert_complete(&records, &acked, &format!("survivor {reader}"));
        assert!(
            records.iter().all(|r| r.id != unsynced.id),
            "survivor {reader} read past the dead writer's commit marker"
        );
        assert_extra_only_cut_off(&records, &acked, &format!("survivor {reader}"));
    }

    // The victim recovers its own tail (the torn record is cut) and serves again.
    let mut victim = ServiceProcess::start(command(root.path(), INSTANCES[2]));
    let warning = victim
        .wait_for_log(|v| v["level"] == "WARN" && v["dropped_bytes"].is_u64())
        .expect("the restarted victim cuts its torn tail");
    assert_eq!(
        warning["dropped_bytes"].as_u64(),
        Some(torn.len() as u64),
        "{warning}"
    );
    victim.wait_ready(200).await;
    let mut bases = bases;
    bases[2] = victim.url("");
    processes[2] = Some(victim);

    // Every reader, the restarted one included, returns the same complete, ordered list.
    // The whole unsynced record survives recovery (its bytes are intact): from now on it is data.
    let mut lists = Vec::new();
    for (reader, base) in bases.iter().enumerate() {
        let records = all_records(&http, base, "").await;
        let label = format!("reader {reader}");
        assert_complete(&records, &acked, &label);
        assert_newest_first(&records, &label);
        assert_extra_only_cut_off(&records, &acked, &label);
        // Recovery, the only place that cuts tails, keeps the whole record and cuts the torn one.
        assert!(records.iter().any(|r| r.id == unsynced.id), "{label}");
        lists.push(records);
    }
    let ids = |list: &[Record]| list.iter().map(|r| r.id.clone()).collect::<Vec<_>>();
    assert_eq!(ids(&lists[0]), ids(&lists[1]));
    assert_eq!(ids(&lists[0]), ids(&lists[2]));
    let full = &lists[0];

    // `limit` and `since` at the merge boundaries: wherever the next record comes from another
    // instance than the one before it.
    let boundaries: Vec<usize> = (1..full.len())
        .filter(|&k| full[k].instance != full[k - 1].instance)
        .collect();
    assert!(boundaries.len() > 10, "the instances' records interleave");
    for (n, &k) in boundaries.iter().step_by(boundaries.len() / 10).enumerate() {
        let base = &bases[n % bases.len()];
        let url = format!("{base}/logs?limit={k}");
        let list: Value = test_support::get_json(&http, &url).await;
        let page: Vec<Record> = serde_json::from_value(list["records"].clone()).unwrap();
        assert_eq!(ids(&page), ids(&full[..k]), "limit={k}");

        let since = full[k].ts.clone();
        let cut = full[k].time().unwrap();
        let expected: Vec<String> = full
            .iter()
            .filter(|r| r.time().unwrap() >= cut)
            .map(|r| r.id.clone())
            .collect();
        let page = all_records(&http, base, &format!("&since={since}")).await;
        assert_eq!(ids(&page), expected, "since={since}");
    }

    // `?instance=` keeps the single-folder read, for a live and for the restarted instance.
    for name in INSTANCES {
        let only = all_records(&http, &bases[0], &format!("&instance={name}")).await;
        let expected: Vec<String> = full
            .iter()
            .filter(|r| r.instance == name)
            .map(|r| r.id.clone())
            .collect();
        assert_eq!(ids(&only), expected, "instance={name}");
    }
    let none = all_records(&http, &bases[0], "&instance=never-ran").await;
    assert!(none.is_empty());
    let bad = http
        .get(format!("{}/logs?instance=..", bases[0]))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);
    let body: Value = bad.json().await.unwrap();
    assert_eq!(body["code"], "invalid_instance", "{body}");

    // `before` pages back across instances: strictly older than the boundary, in merge order.
    let k = boundaries[boundaries.len() / 2];
    let cut = full[k].time().unwrap();
    let expected: Vec<String> = full
        .iter()
        .filter(|r| r.time().unwrap() < cut)
        .map(|r| r.id.clone())
        .collect();
    let older = all_records(&http, &bases[1], &format!("&before={}", full[k].ts)).await;
    assert_eq!(ids(&older), expected, "before={}", full[k].ts);
    let bad = http
        .get(format!("{}/logs?before=yesterday", bases[0]))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);
    let body: Value = bad.json().await.unwrap();
    assert_eq!(body["code"], "invalid_before", "{body}");
    drop(processes);
}

#[tokio::test]
async fn a_second_live_process_with_the_same_instance_id_is_refused_on_the_shared_volume() {
    let root = tempfile::tempdir().unwrap();
    let first = ServiceProcess::start(command(root.path(), "data-api-0"));
    let other = ServiceProcess::start(command(root.path(), "data-api-1"));
    first.wait_ready(200).await;
    other.wait_ready(200).await;
    let output = command(root.path(), "data-api-0")
        .env("LISTEN_ADDR", "127.0.0.1:0")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains("INSTANCE_ID") && stderr.contains("another process"),
        "{stderr}"
    );
    // The refused start wrote nothing: both live instances still serve and read each other.
    let http = client();
    let response = http
        .post(first.url("/logs"))
        .json(&serde_json::json!({ "message": "still the only writer" }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    let records = all_records(&http, &other.url(""), "").await;
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].instance, "data-api-0");
}
