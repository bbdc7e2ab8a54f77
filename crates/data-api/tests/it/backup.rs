//! `data-api backup`, `verify` and `restore`, as binaries on real folders: a backup taken while
//! writers post over HTTP to two live instances holds every record acknowledged before it
//! started; restored into an empty folder, verified and served by a restarted data-api, it
//! answers them all and takes new writes; one flipped byte is caught by `verify`, naming the
//! file; a `.tar` copy makes the same round trip.

use std::collections::HashSet;
use std::path::Path;
use std::process::{Command, Output};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;
use test_support::{client, eventually_true, ServiceProcess};

use crate::common::{binary, test_config, try_post, TestServer, BIN};

const INSTANCES: [&str; 2] = ["data-api-0", "data-api-1"];
const WRITERS: usize = 8;
/// The writers stop here, so every record fits one `GET /logs` page (1000).
const MOST_RECORDS: usize = 700;

/// A subcommand of the binary, nothing inherited from the test's environment.
fn run(args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .env_clear()
        .output()
        .expect("the binary starts")
}

fn text(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).to_string() + &String::from_utf8_lossy(&output.stdout)
}

/// Every id the restored volume serves (one page: the load stays under 1000 records).
async fn served_ids(server: &TestServer) -> HashSet<String> {
    let list: Value = server.get_json("/logs?limit=1000").await;
    let records = list["records"].as_array().unwrap();
    assert!(records.len() < 1000, "the test's load fits one page");
    records
        .iter()
        .map(|r| r["id"].as_str().unwrap().to_string())
        .collect()
}

/// Runs a backup on the blocking pool, so the writers keep posting on the runtime meanwhile;
/// returns the ids acknowledged before it started.
async fn backup_under_load(
    acked: &Arc<Mutex<Vec<String>>>,
    log_dir: &Path,
    to: &Path,
) -> Vec<String> {
    let before = acked.lock().unwrap().clone();
    let args = [
        "backup".to_string(),
        "--to".to_string(),
        to.display().to_string(),
        "--log-dir".to_string(),
        log_dir.display().to_string(),
    ];
    let output = tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        run(&args)
    })
    .await
    .unwrap();
    assert!(output.status.success(), "backup: {}", text(&output));
    assert!(
        String::from_utf8_lossy(&output.stdout).starts_with("backup: 2 folders"),
        "{}",
        text(&output)
    );
    before
}

async fn restore_and_serve(from: &Path, into: &Path, acked_before: &[String]) {
    let output = run(&[
        "restore",
        "--from",
        from.to_str().unwrap(),
        "--log-dir",
        into.to_str().unwrap(),
    ]);
    assert!(output.status.success(), "restore: {}", text(&output));
    assert!(text(&output).contains(", ok"), "{}", text(&output));
    assert!(
        !into.join("MANIFEST.json").exists(),
        "the manifest stays with the copy"
    );

    // A restarted data-api on the restored volume serves every record acknowledged before the
    // backup started (its own folder and the other instance's), and takes new ones.
    let server = TestServer::start(test_config(into, INSTANCES[0])).await;
    let served = served_ids(&server).await;
    let missing: Vec<&String> = acked_before
        .iter()
        .filter(|id| !served.contains(*id))
        .collect();
    assert!(
        missing.is_empty(),
        "restored from {from:?}: missing {missing:?}"
    );
    assert_eq!(server.post("after the restore").await.status(), 201);
    server.stop().await;
    let output = run(&["verify", into.to_str().unwrap()]);
    assert!(
        output.status.success(),
        "verify of the restored volume: {}",
        text(&output)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_under_write_load_restores_verifies_and_serves_every_acknowledged_record() {
    let root = tempfile::tempdir().unwrap();
    let live = root.path().join("live");
    std::fs::create_dir(&live).unwrap();
    let processes: Vec<ServiceProcess> = INSTANCES
        .iter()
        .enumerate()
        .map(|(n, name)| {
            let mut cmd = binary(&live, name);
            // Small segments, so the copy crosses sealed and active ones; one instance writes
            // format 2, the other format 1.
            cmd.env("LOG_SEGMENT_BYTES", "16KiB")
                .env("LOG_RETENTION_BYTES", "64MiB")
                .env("LOG_FORMAT_VERSION", if n == 0 { "2" } else { "1" });
            ServiceProcess::start(cmd)
        })
        .collect();
    for process in &processes {
        process.wait_ready(200).await;
    }
    let http = client();
    let acked = Arc::new(Mutex::new(Vec::<String>::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let mut writers = Vec::new();
    for w in 0..WRITERS {
        let url = processes[w % INSTANCES.len()].url("/logs");
        let (http, acked, stop) = (http.clone(), acked.clone(), stop.clone());
        writers.push(tokio::spawn(async move {
            // Bounded: until told to stop, or MOST_RECORDS in all.
            for n in 0.. {
                if stop.load(Ordering::SeqCst) || acked.lock().unwrap().len() >= MOST_RECORDS {
                    break;
                }
                let message = format!("w{w} n{n} {}", "b".repeat(100 + (w * 97 + n * 31) % 400));
                let id = try_post(&http, &url, &message)
                    .await
                    .expect("the live instances take every write");
                acked.lock().unwrap().push(id);
            }
        }));
    }

    let copy = root.path().join("copy");
    let tar = root.path().join("copy.tar");
    eventually_true(
        "the writers have stored 150 records",
        Duration::from_secs(30),
        || {
            let acked = acked.clone();
            async move { acked.lock().unwrap().len() >= 150 }
        },
    )
    .await;
    let before_dir = backup_under_load(&acked, &live, &copy).await;
    let before_tar = backup_under_load(&acked, &live, &tar).await;
    let after_both = acked.lock().unwrap().len();
    stop.store(true, Ordering::SeqCst);
    for writer in writers {
        writer.await.unwrap();
    }
    let total = acked.lock().unwrap().len();
    // Printed for the record: how much the load moved while the copies were taken.
    println!(
        "acknowledged: {} before the folder copy, {} before the tar copy, {after_both} after both, {total} in all",
        before_dir.len(),
        before_tar.len()
    );

    let output = run(&["verify", copy.to_str().unwrap()]);
    assert!(output.status.success(), "verify: {}", text(&output));
    // The live volume verifies too, its writers still running.
    let output = run(&["verify", live.to_str().unwrap()]);
    assert!(
        output.status.success(),
        "verify of the live volume: {}",
        text(&output)
    );
    for process in processes {
        process.kill();
    }

    restore_and_serve(&copy, &root.path().join("restored"), &before_dir).await;
    restore_and_serve(&tar, &root.path().join("restored-tar"), &before_tar).await;

    // restore fills an empty volume only.
    let output = run(&[
        "restore",
        "--from",
        copy.to_str().unwrap(),
        "--log-dir",
        root.path().join("restored").to_str().unwrap(),
    ]);
    assert!(!output.status.success());
    assert!(text(&output).contains("is not empty"), "{}", text(&output));

    // One byte flipped in a copied segment: verify names the file and fails.
    let folder = copy.join(INSTANCES[1]);
    let segment = crate::common::segment_names(&folder)[0].clone();
    let path = folder.join(&segment);
    let mut data = std::fs::read(&path).unwrap();
    let middle = data.len() / 2;
    data[middle] ^= 0x01;
    std::fs::write(&path, &data).unwrap();
    let output = run(&["verify", copy.to_str().unwrap()]);
    assert!(!output.status.success(), "a flipped byte passed verify");
    let named = format!("{}/{segment}: SHA-256 differs", INSTANCES[1]);
    assert!(text(&output).contains(&named), "{}", text(&output));
}

#[tokio::test]
async fn scheduled_backups_into_one_folder_keep_the_newest_copies() {
    let root = tempfile::tempdir().unwrap();
    let live = root.path().join("live");
    let copies = root.path().join("copies");
    let server = TestServer::start(test_config(&live, INSTANCES[0])).await;
    let mut made = Vec::new();
    for n in 0..3 {
        assert_eq!(server.post(&format!("record {n}")).await.status(), 201);
        let output = run(&[
            "backup",
            "--into",
            copies.to_str().unwrap(),
            "--keep",
            "2",
            "--log-dir",
            live.to_str().unwrap(),
        ]);
        assert!(output.status.success(), "backup --into: {}", text(&output));
        let stdout = String::from_utf8_lossy(&output.stdout).to_string();
        made.push(stdout.rsplit('/').next().unwrap().trim().to_string());
    }
    server.stop().await;
    let mut kept: Vec<String> = std::fs::read_dir(&copies)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    kept.sort();
    assert_eq!(kept, made[1..], "the two newest copies, nothing partial");
    assert!(kept
        .iter()
        .all(|n| n.starts_with("backup-") && n.ends_with(".tar")));

    // The newest holds all three records.
    let restored = root.path().join("restored");
    let output = run(&[
        "restore",
        "--from",
        copies.join(&kept[1]).to_str().unwrap(),
        "--log-dir",
        restored.to_str().unwrap(),
    ]);
    assert!(output.status.success(), "restore: {}", text(&output));
    assert!(text(&output).contains("3 records, ok"), "{}", text(&output));

    // --keep needs --into, and one of --to / --into is required.
    for args in [
        &["backup", "--to", "never-made.tar", "--keep", "2"][..],
        &["backup"][..],
    ] {
        let output = run(args);
        assert_eq!(output.status.code(), Some(2), "{args:?}: {}", text(&output));
    }
}
