//! The real binary as a child process: killed with SIGKILL while at least 32 clients write,
//! several rounds; after each restart every acknowledged record is on disk exactly once and every
//! line of every segment parses. Also: a torn line written by hand is cut with a warning, and
//! bad settings stop the binary with exit code 2 and one line.

use std::collections::HashMap;
use std::path::Path;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::common::{binary, segment_names, segment_records, try_post, BIN};
use serde_json::Value;
use test_support::{client, ServiceProcess};

/// The data-api binary on a log folder, with small segments.
fn command(log_dir: &Path, instance: &str) -> Command {
    let mut cmd = binary(log_dir, instance);
    cmd.env("LOG_SEGMENT_BYTES", "64KiB")
        .env("LOG_RETENTION_BYTES", "64MiB");
    cmd
}

fn start(log_dir: &Path, instance: &str) -> ServiceProcess {
    ServiceProcess::start(command(log_dir, instance))
}

/// SIGTERM, and the stop must be graceful.
fn terminate(mut process: ServiceProcess) {
    process.signal(libc::SIGTERM);
    let status = process.wait();
    assert!(status.success(), "graceful stop: {status}");
}

/// Every acknowledged record is on disk exactly once; every line parses (checked by the reader).
fn verify(dir: &Path, acked: &HashMap<String, String>) -> usize {
    let records = segment_records(dir);
    let mut counts: HashMap<&str, usize> = HashMap::new();
    for record in &records {
        *counts.entry(record.id.as_str()).or_default() += 1;
    }
    assert!(counts.values().all(|n| *n == 1), "an id appears twice");
    let by_id: HashMap<&str, &str> = records
        .iter()
        .map(|r| (r.id.as_str(), r.message.as_str()))
        .collect();
    for (id, message) in acked {
        assert_eq!(
            by_id.get(id.as_str()),
            Some(&message.as_str()),
            "acknowledged record {id} lost"
        );
    }
    records.len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_mid_stream_loses_no_acknowledged_record() {
    const ROUNDS: usize = 4;
    const CLIENTS: usize = 40;
    const ACKS_BEFORE_KILL: usize = 400;
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("crash");
    let mut acked: HashMap<String, String> = HashMap::new();

    for round in 0..=ROUNDS {
        let process = start(root.path(), "crash");
        process.wait_ready(200).await;
        if round > 0 {
            let on_disk = verify(&dir, &acked);
            println!(
                "round {round}: {} acknowledged, {on_disk} on disk after restart",
                acked.len()
            );
        }
        if round == ROUNDS {
            terminate(process);
            break;
        }

        let this_round = Arc::new(Mutex::new(Vec::<(String, String)>::new()));
        let http = client();
        let mut clients = Vec::new();
        for c in 0..CLIENTS {
            let (http, url, this_round) = (http.clone(), process.url("/logs"), this_round.clone());
            clients.push(tokio::spawn(async move {
                // Bounded: stops at the first failure (the kill) or after 2000 records.
                for n in 0..2000 {
                    let message = format!(
                        "r{round} c{c} n{n} {}",
                        "k".repeat(200 + (n * 37 + c * 101) % 3000)
                    );
                    let Some(id) = try_post(&http, &url, &message).await else {
                        break;
                    };
                    this_round.lock().unwrap().push((id, message));
                }
            }));
        }
        for _ in 0..1000 {
            if this_round.lock().unwrap().len() >= ACKS_BEFORE_KILL {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        process.kill();
        for c in clients {
            c.await.unwrap();
        }
        let batch = std::mem::take(&mut *this_round.lock().unwrap());
        assert!(
            batch.len() >= ACKS_BEFORE_KILL,
            "round {round}: only {} acknowledged",
            batch.len()
        );
        acked.extend(batch);
    }
    assert!(
        segment_names(&dir).len() > 1,
        "rotation happened along the way"
    );
}

#[tokio::test]
async fn a_torn_line_written_by_hand_is_cut_with_a_warning() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("torn");
    let process = start(root.path(), "torn");
    let http = client();
    for n in 0..5 {
        let response = http
            .post(process.url("/logs"))
            .json(&serde_json::json!({ "message": format!("kept {n}") }))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 201);
    }
    process.kill();

    let segment = dir.join(&segment_names(&dir)[0]);
    let good_len = std::fs::metadata(&segment).unwrap().len();
    let partial = br#"{"id":"01920000-0000-7000-8000-000000000000","ts":"2026-01-01T00:00:00.000000Z","level":"in"#;
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .open(&segment)
        .unwrap();
    std::io::Write::write_all(&mut file, partial).unwrap();
    drop(file);

    let mut process = start(root.path(), "torn");
    let warning = process
        .wait_for_log(|v| v["level"] == "WARN" && v["dropped_bytes"].is_u64())
        .expect("a warning about the cut");
    assert_eq!(
        warning["dropped_bytes"].as_u64(),
        Some(partial.len() as u64)
    );
    assert!(
        warning["message"]
            .as_str()
            .unwrap()
            .contains("incomplete record"),
        "{warning}"
    );
    assert_eq!(std::fs::metadata(&segment).unwrap().len(), good_len);

    let list: Value = test_support::get_json(&http, &process.url("/logs")).await;
    assert_eq!(list["records"].as_array().unwrap().len(), 5);
    assert_eq!(list["records"][0]["message"], "kept 4");
    assert_eq!(segment_records(&dir).len(), 5);
    terminate(process);
}

#[test]
fn bad_settings_exit_2_with_one_line_naming_the_variable() {
    let root = tempfile::tempdir().unwrap();
    for (variable, value) in [
        ("LOG_SEGMENT_BYTES", "lots"),
        ("LOG_RETENTION_BYTES", "64KiB"),
        ("SIMULATED_LATENCY_MS", "-1"),
        ("INSTANCE_ID", "../escape"),
        ("INSTANCE_ID", "legacy"),
        ("LOG_ORPHAN_RETENTION", "soon"),
        ("LOG_ORPHAN_SWEEP_INTERVAL", "0s"),
        ("LOG_SHARED_RETENTION_BYTES", "lots"),
    ] {
        let output = command(root.path(), "cfg")
            .env(variable, value)
            .output()
            .unwrap();
        assert_eq!(output.status.code(), Some(2), "{variable}={value}");
        let stderr = String::from_utf8(output.stderr).unwrap();
        assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
        assert!(stderr.contains(variable), "{variable}: {stderr}");
    }
}

#[tokio::test]
async fn a_second_process_for_the_same_instance_is_refused() {
    let root = tempfile::tempdir().unwrap();
    let first = start(root.path(), "twin");
    let output = command(root.path(), "twin").output().unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(
        stderr.contains("INSTANCE_ID") && stderr.contains("another process"),
        "{stderr}"
    );
    terminate(first);
}

#[test]
fn check_config_touches_no_volume() {
    let dir = tempfile::tempdir().unwrap();
    let log_dir = dir.path().join("not-yet");
    let log_dir = log_dir.to_str().unwrap();
    let (code, out) = test_support::check_config(
        BIN,
        &[],
        &[("LOG_DIR", log_dir), ("INSTANCE_ID", "data-api-0")],
    );
    assert_eq!((code, out.trim()), (0, "configuration ok"));
    assert!(
        !Path::new(log_dir).exists(),
        "the check created the log folder"
    );

    let (code, out) = test_support::check_config(
        BIN,
        &[],
        &[("LOG_DIR", log_dir), ("INSTANCE_ID", "../escape")],
    );
    assert_eq!(code, 2, "{out}");
    assert_eq!(out.trim().lines().count(), 1, "one line: {out}");
    assert!(out.contains("INSTANCE_ID"), "{out}");

    let (code, out) = test_support::check_config(
        BIN,
        &[],
        &[
            ("LOG_SEGMENT_BYTES", "1MiB"),
            ("LOG_RETENTION_BYTES", "1MiB"),
        ],
    );
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("LOG_RETENTION_BYTES"), "{out}");
}
