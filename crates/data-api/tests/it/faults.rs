//! Volume faults over HTTP: full (507), read-only or vanished (503), `/readyz` 503 meanwhile, and
//! recovery without a restart. Real small tmpfs mounts where the machine allows mounting
//! (root); injected faults through the store's I/O seam everywhere.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use crate::common::{segment_records, test_config, TestServer};
use data_api::store::{Fault, FaultyIo};
use serde_json::Value;

async fn expect_error(response: reqwest::Response, status: u16, code: &str) {
    assert_eq!(response.status().as_u16(), status);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["code"], code, "{body}");
}

async fn log_store_check(server: &TestServer) -> String {
    let body: Value = test_support::get_json(&server.client, &server.url("/readyz")).await;
    body["checks"]["log_store"].as_str().unwrap().to_string()
}

async fn acked_id(response: reqwest::Response) -> String {
    assert_eq!(response.status(), 201);
    let body: Value = response.json().await.unwrap();
    body["id"].as_str().unwrap().to_string()
}

fn ids_on_disk(dir: &Path) -> Vec<String> {
    segment_records(dir).into_iter().map(|r| r.id).collect()
}

#[tokio::test]
async fn injected_full_volume_answers_507_then_recovers() {
    let dir = tempfile::tempdir().unwrap();
    let io = FaultyIo::new();
    let server =
        TestServer::start_with_io(test_config(dir.path(), "full"), Arc::new(io.clone())).await;
    let mut acked = vec![acked_id(server.post("before").await).await];

    io.set(Some(Fault::Full));
    expect_error(server.post("refused").await, 507, "storage_full").await;
    expect_error(
        server.client.get(server.url("/")).send().await.unwrap(),
        507,
        "storage_full",
    )
    .await;
    assert_eq!(server.readyz().await, 503);
    assert!(log_store_check(&server).await.contains("full"));
    assert_eq!(server.metric("data_api_store_writable").await, 0.0);
    assert_eq!(
        server
            .metric("data_api_write_errors_total{kind=\"full\"}")
            .await,
        2.0
    );
    // Reading still works while writes cannot.
    let list = server.client.get(server.url("/logs")).send().await.unwrap();
    assert_eq!(list.status(), 200);

    io.set(None);
    server.wait_ready(200).await;
    assert_eq!(server.metric("data_api_store_writable").await, 1.0);
    acked.push(acked_id(server.post("after").await).await);
    assert_eq!(ids_on_disk(&dir.path().join("full")), acked);
    server.stop().await;
}

#[tokio::test]
async fn injected_read_only_volume_answers_503_then_recovers() {
    let dir = tempfile::tempdir().unwrap();
    let io = FaultyIo::new();
    let server =
        TestServer::start_with_io(test_config(dir.path(), "ro"), Arc::new(io.clone())).await;
    let mut acked = vec![acked_id(server.post("before").await).await];

    io.set(Some(Fault::ReadOnly));
    expect_error(server.post("refused").await, 503, "storage_unavailable").await;
    assert_eq!(server.readyz().await, 503);
    assert!(log_store_check(&server).await.contains("unavailable"));
    assert_eq!(
        server
            .metric("data_api_write_errors_total{kind=\"unavailable\"}")
            .await,
        1.0
    );

    io.set(None);
    server.wait_ready(200).await;
    acked.push(acked_id(server.post("after").await).await);
    assert_eq!(ids_on_disk(&dir.path().join("ro")), acked);
    server.stop().await;
}

#[tokio::test]
async fn a_vanished_log_dir_answers_503_until_it_is_back() {
    let root = tempfile::tempdir().unwrap();
    let volume = root.path().join("volume");
    std::fs::create_dir(&volume).unwrap();
    let server = TestServer::start(test_config(&volume, "gone")).await;
    acked_id(server.post("before").await).await;

    std::fs::remove_dir_all(&volume).unwrap();
    // Noticed without any write: the idle writer checks its folder.
    server.wait_ready(503).await;
    // A write would land in an unlinked file: it must be refused, not acknowledged.
    expect_error(server.post("lost").await, 503, "storage_unavailable").await;
    assert_eq!(server.readyz().await, 503);
    // While LOG_DIR is missing the store does not create it (it would write beneath the mount).
    tokio::time::sleep(std::time::Duration::from_millis(700)).await;
    expect_error(server.post("still lost").await, 503, "storage_unavailable").await;
    assert!(!volume.exists());

    std::fs::create_dir(&volume).unwrap();
    server.wait_ready(200).await;
    let id = acked_id(server.post("after").await).await;
    assert_eq!(ids_on_disk(&volume.join("gone")), vec![id]);
    server.stop().await;
}

#[tokio::test]
async fn a_removed_instance_folder_refuses_the_write_then_is_recreated() {
    let volume = tempfile::tempdir().unwrap();
    let server = TestServer::start(test_config(volume.path(), "wiped")).await;
    acked_id(server.post("before").await).await;

    let folder = volume.path().join("wiped");
    std::fs::remove_dir_all(&folder).unwrap();
    // Right away, before the idle check: the record goes to the unlinked segment, is synced,
    // and must still be refused because nobody can ever read it.
    expect_error(server.post("lost").await, 503, "storage_unavailable").await;
    // LOG_DIR itself is there, so the store makes its folder again by itself.
    server.wait_ready(200).await;
    let id = acked_id(server.post("after").await).await;
    assert_eq!(ids_on_disk(&folder), vec![id]);
    server.stop().await;
}

/// A small tmpfs mounted for one test, unmounted when dropped.
struct Tmpfs {
    path: PathBuf,
}

impl Tmpfs {
    /// Mounts, or says why it cannot (not root, no mount permission in this container).
    fn mount(path: &Path, size: &str) -> Result<Self, String> {
        std::fs::create_dir_all(path).map_err(|e| e.to_string())?;
        run_mount(
            &[
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size},mode=0755"),
                "tmpfs",
            ],
            path,
        )?;
        Ok(Self {
            path: path.to_path_buf(),
        })
    }

    fn remount(&self, options: &str) {
        run_mount(&["-o", &format!("remount,{options}")], &self.path).expect("remount");
    }
}

fn run_mount(args: &[&str], path: &Path) -> Result<(), String> {
    let output = Command::new("mount")
        .args(args)
        .arg(path)
        .output()
        .map_err(|e| format!("cannot run mount: {e}"))?;
    if output.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&output.stderr).trim().to_string())
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        // Lazy: the test's server may still hold files open while it shuts down.
        let _ = Command::new("umount").arg("-l").arg(&self.path).status();
    }
}

#[tokio::test]
#[ignore = "mounts a tmpfs (root with CAP_SYS_ADMIN): scripts/check-rust.sh runs it where mount(8) works"]
async fn a_full_tmpfs_answers_507_and_recovers_when_space_is_freed() {
    let root = tempfile::tempdir().unwrap();
    let volume = root.path().join("volume");
    let tmpfs = Tmpfs::mount(&volume, "256k")
        .unwrap_or_else(|reason| panic!("cannot mount a tmpfs: {reason}"));
    // Someone else's file fills most of the volume; the store must leave it alone.
    let filler = volume.join("other-data.bin");
    std::fs::write(&filler, vec![7u8; 160 * 1024]).unwrap();
    let mut config = test_config(&volume, "tmpfs-full");
    config.log_segment_bytes = 32 * 1024;
    config.log_retention_bytes = 1 << 20; // more than the volume: it fills up first
    let server = TestServer::start(config).await;

    let message = "f".repeat(4000);
    let mut acked = Vec::new();
    let mut refused = false;
    for _ in 0..100 {
        let response = server.post(&message).await;
        if response.status() == 507 {
            let body: Value = response.json().await.unwrap();
            assert_eq!(body["code"], "storage_full");
            refused = true;
            break;
        }
        acked.push(acked_id(response).await);
    }
    assert!(refused, "the volume never filled up");
    assert!(!acked.is_empty());
    assert_eq!(server.readyz().await, 503);
    assert_eq!(
        ids_on_disk(&volume.join("tmpfs-full")),
        acked,
        "no refused bytes left behind"
    );

    std::fs::remove_file(&filler).unwrap();
    server.wait_ready(200).await;
    acked.push(acked_id(server.post(&message).await).await);
    assert_eq!(ids_on_disk(&volume.join("tmpfs-full")), acked);
    server.stop().await;
    drop(tmpfs);
}

#[tokio::test]
#[ignore = "mounts a tmpfs (root with CAP_SYS_ADMIN): scripts/check-rust.sh runs it where mount(8) works"]
async fn a_read_only_tmpfs_is_not_ready_until_it_is_writable_again() {
    let root = tempfile::tempdir().unwrap();
    let volume = root.path().join("volume");
    let tmpfs = Tmpfs::mount(&volume, "1m")
        .unwrap_or_else(|reason| panic!("cannot mount a tmpfs: {reason}"));
    // Records from an earlier run stay readable while the volume is read-only.
    let server = TestServer::start(test_config(&volume, "tmpfs-ro")).await;
    let first = acked_id(server.post("from before").await).await;
    server.stop().await;

    // Linux refuses a read-only remount while a file is open for writing, so the volume goes
    // read-only between runs (a running store gets the same treatment from the injected fault).
    tmpfs.remount("ro");
    let server = TestServer::start(test_config(&volume, "tmpfs-ro")).await;
    assert_eq!(server.readyz().await, 503);
    expect_error(server.post("refused").await, 503, "storage_unavailable").await;
    let list: Value = test_support::get_json(&server.client, &server.url("/logs")).await;
    assert_eq!(list["records"][0]["id"], first.as_str());

    tmpfs.remount("rw");
    server.wait_ready(200).await;
    let second = acked_id(server.post("after").await).await;
    assert_eq!(ids_on_disk(&volume.join("tmpfs-ro")), vec![first, second]);
    server.stop().await;
    drop(tmpfs);
}
