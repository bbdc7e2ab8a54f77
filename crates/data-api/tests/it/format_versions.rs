//! The storage format's version: 0.1.0's unversioned segments (format 1) are read and appended
//! to, format 2 carries its version in the file name, and a segment of an unknown newer format
//! is refused (at start: exit 2 naming the file and version; in another instance's folder: a
//! JSON error with a stable code), never misread.

use std::io::Read;
use std::path::Path;
use std::time::Duration;

use serde_json::Value;
use test_support::eventually;

use crate::common::{binary, segment_names, test_config, TestServer};

/// One record line exactly as 0.1.0 wrote it.
fn legacy_line(n: usize, instance: &str) -> String {
    let id = uuid::Uuid::now_v7();
    format!(
        "{{\"id\":\"{id}\",\"ts\":\"2026-11-20T10:00:{n:02}.000000Z\",\"level\":\"info\",\"message\":\"old {n}\",\"instance\":\"{instance}\"}}\n"
    )
}

/// 0.1.0's commit marker: `<seq> <len>` twice, 20 digits each.
fn marker(seq: u64, len: u64) -> String {
    let pair = format!("{seq:020} {len:020}");
    format!("{pair} {pair}\n")
}

/// A folder laid out as 0.1.0 leaves it: two unversioned segments and the marker at the end of
/// the second. Returns the messages, oldest first.
fn write_old_folder(log_dir: &Path, instance: &str) -> Vec<String> {
    let dir = log_dir.join(instance);
    std::fs::create_dir_all(&dir).unwrap();
    let first: String = (0..3).map(|n| legacy_line(n, instance)).collect();
    let second: String = (3..5).map(|n| legacy_line(n, instance)).collect();
    std::fs::write(dir.join("segment-00000000000000000001.jsonl"), &first).unwrap();
    std::fs::write(dir.join("segment-00000000000000000002.jsonl"), &second).unwrap();
    std::fs::write(dir.join(".commit"), marker(2, second.len() as u64)).unwrap();
    (0..5).map(|n| format!("old {n}")).collect()
}

async fn messages(server: &TestServer, query: &str) -> Vec<String> {
    let list: Value = server.get_json(&format!("/logs?limit=1000{query}")).await;
    let mut messages: Vec<String> = list["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["message"].as_str().unwrap().to_string())
        .collect();
    messages.reverse();
    messages
}

#[tokio::test]
async fn a_folder_of_old_format_segments_is_read_and_appended_to_in_either_format() {
    let root = tempfile::tempdir().unwrap();
    let mut expected = write_old_folder(root.path(), "data-api-0");

    // Format 2 asked for: the old segments are read as they are, new records go to a new,
    // versioned segment.
    let mut config = test_config(root.path(), "data-api-0");
    config.log_format_version = 2;
    let server = TestServer::start(config).await;
    assert_eq!(messages(&server, "").await, expected);
    assert_eq!(server.post("new in format 2").await.status(), 201);
    expected.push("new in format 2".into());
    assert_eq!(messages(&server, "").await, expected);
    server.stop().await;
    let dir = root.path().join("data-api-0");
    assert_eq!(
        segment_names(&dir),
        [
            "segment-00000000000000000001.jsonl",
            "segment-00000000000000000002.jsonl",
            "segment-00000000000000000003.v2.jsonl"
        ]
    );

    // Back on the default (format 1, what 0.1.0 reads): both formats are read, new records go
    // to an unversioned segment after the versioned one.
    let server = TestServer::start(test_config(root.path(), "data-api-0")).await;
    assert_eq!(server.post("new in format 1").await.status(), 201);
    expected.push("new in format 1".into());
    assert_eq!(messages(&server, "").await, expected);
    server.stop().await;
    assert_eq!(
        segment_names(&dir).last().unwrap(),
        "segment-00000000000000000004.jsonl"
    );

    // Another instance reads the mixed folder up to its marker too.
    let other = TestServer::start(test_config(root.path(), "data-api-1")).await;
    assert_eq!(
        messages(&other, "&instance=data-api-0").await,
        expected,
        "read through another instance"
    );
    other.stop().await;
}

/// A folder a newer release wrote: its marker and a segment in format 9.
fn write_future_folder(log_dir: &Path, instance: &str) -> String {
    let dir = log_dir.join(instance);
    std::fs::create_dir_all(&dir).unwrap();
    let name = "segment-00000000000000000001.v9.jsonl".to_string();
    let body = "format 9 may hold anything\n";
    std::fs::write(dir.join(&name), body).unwrap();
    std::fs::write(dir.join(".commit"), marker(1, body.len() as u64)).unwrap();
    name
}

/// Kills the child if the test fails while it runs.
struct Reaped(std::process::Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test]
async fn a_segment_in_a_future_format_stops_the_start_with_one_line_naming_it() {
    let root = tempfile::tempdir().unwrap();
    let name = write_future_folder(root.path(), "data-api-0");
    let mut child = Reaped(
        binary(root.path(), "data-api-0")
            .env("LISTEN_ADDR", "127.0.0.1:0")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let status = eventually(
        "data-api exits on a future format",
        Duration::from_secs(30),
        || {
            let exited = child.0.try_wait().unwrap();
            async move { exited }
        },
    )
    .await;
    let mut stderr = String::new();
    child
        .0
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    assert_eq!(status.code(), Some(2), "{stderr}");
    let line = stderr
        .lines()
        .find(|l| l.contains(&name))
        .unwrap_or_else(|| panic!("no line names {name}: {stderr}"));
    assert!(line.contains("storage format 9"), "{line}");
    assert!(line.contains("LOG_DIR"), "{line}");
    // Nothing written over: the folder holds exactly what the newer release left.
    let dir = root.path().join("data-api-0");
    assert_eq!(segment_names(&dir), [name]);
    assert_eq!(
        std::fs::read_to_string(dir.join(".commit")).unwrap(),
        marker(1, 27)
    );
}

#[test]
fn an_unknown_format_version_is_refused_as_a_setting() {
    let root = tempfile::tempdir().unwrap();
    let output = binary(root.path(), "data-api-0")
        .env("LOG_FORMAT_VERSION", "3")
        .arg("--check-config")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("LOG_FORMAT_VERSION"), "{stderr}");
}

#[tokio::test]
async fn another_instances_folder_in_a_future_format_is_a_json_error_not_a_misread() {
    let root = tempfile::tempdir().unwrap();
    write_future_folder(root.path(), "data-api-9");
    let server = TestServer::start(test_config(root.path(), "data-api-0")).await;
    assert_eq!(server.post("mine").await.status(), 201);

    let response = server.client.get(server.url("/logs")).send().await.unwrap();
    assert_eq!(response.status(), 500);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["code"], "unsupported_storage_format", "{body}");
    assert!(
        body["error"].as_str().unwrap().contains("newer release"),
        "{body}"
    );

    // The own folder alone still reads, and the server still takes writes.
    assert_eq!(messages(&server, "&instance=data-api-0").await, ["mine"]);
    assert_eq!(server.post("still writing").await.status(), 201);
    server.stop().await;
}
