//! `data-api import-legacy` (the real binary) over 10,000 legacy files written the way the Flask
//! service wrote them (`open(LOG_DIR/log_<time.time()>.txt, "a").write(message + "\n")`),
//! including a file with several appended lines, two names that collide to the microsecond, an
//! empty file and an unreadable one, while a data-api instance serves the same volume. Every
//! message is stored once under `legacy/` and readable through that instance's `GET /logs`; a
//! second run imports 0; the legacy files are untouched.

use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::path::Path;
use std::process::Command;

use crate::common::{binary, segment_records, BIN};
use data_api::import::legacy_id;
use data_api::store::Record;
use data_api::LEGACY_MESSAGES;
use serde_json::Value;
use test_support::client;
use test_support::ServiceProcess;

const FILES: usize = 10_000;

/// What the Flask handler did for one request.
fn flask_write(dir: &Path, name: &str, message: &str) {
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join(name))
        .unwrap();
    file.write_all(format!("{message}\n").as_bytes()).unwrap();
}

/// The legacy folder: file name -> the messages expected from it, line by line (with number).
fn write_legacy_folder(dir: &Path) -> BTreeMap<String, Vec<(usize, String)>> {
    let mut expected = BTreeMap::new();
    // Python prints time.time() as the shortest repr of the float; Rust's Display is the same.
    let names: Vec<String> = (0..FILES - 4)
        .map(|i| format!("log_{}.txt", 1_700_000_000.0 + i as f64 * 0.37))
        .collect();
    for (i, name) in names.iter().enumerate() {
        let message = LEGACY_MESSAGES[i % LEGACY_MESSAGES.len()];
        flask_write(dir, name, message);
        expected.insert(name.clone(), vec![(1, message.to_string())]);
    }
    // Several requests in one second-resolution clock tick appended to the same file.
    let appended = "log_1700004000.5.txt";
    for (n, message) in LEGACY_MESSAGES.iter().enumerate() {
        flask_write(dir, appended, message);
        expected
            .entry(appended.to_string())
            .or_insert_with(Vec::new)
            .push((n + 1, message.to_string()));
    }
    // Two names, one microsecond: both records kept, apart by id.
    for (name, message) in [
        ("log_1700004001.1234561.txt", "Executing task..."),
        ("log_1700004001.1234564.txt", "Preparing data..."),
    ] {
        flask_write(dir, name, message);
        expected.insert(name.to_string(), vec![(1, message.to_string())]);
    }
    // A file created but never written (the process died in between).
    std::fs::File::create(dir.join("log_1700004002.25.txt")).unwrap();
    expected.insert("log_1700004002.25.txt".to_string(), Vec::new());
    // Not the legacy service's: ignored.
    std::fs::write(dir.join("README"), "not a log\n").unwrap();
    expected
}

/// Names, contents and modification times of every file in `dir`.
fn snapshot(dir: &Path) -> BTreeMap<String, (Vec<u8>, std::time::SystemTime)> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            let meta = e.metadata().unwrap();
            (
                e.file_name().into_string().unwrap(),
                (std::fs::read(e.path()).unwrap(), meta.modified().unwrap()),
            )
        })
        .collect()
}

fn import(from: &Path, log_dir: &Path) -> (i32, String, String) {
    let output = Command::new(BIN)
        .env_clear()
        .env("LOG_DIR", log_dir)
        .env("LOG_FORMAT", "json")
        .args(["import-legacy", "--from"])
        .arg(from)
        .output()
        .unwrap();
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8(output.stdout).unwrap(),
        String::from_utf8(output.stderr).unwrap(),
    )
}

fn serve(log_dir: &Path) -> ServiceProcess {
    ServiceProcess::start(binary(log_dir, "data-api-0"))
}

async fn get_records(http: &reqwest::Client, url: &str) -> Vec<Record> {
    let list: Value = test_support::get_json(http, url).await;
    serde_json::from_value(list["records"].clone()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_legacy_files_are_imported_once_and_readable() {
    let root = tempfile::tempdir().unwrap();
    let legacy = root.path().join("flask-logs");
    let log_dir = root.path().join("volume");
    std::fs::create_dir_all(&legacy).unwrap();
    let expected = write_legacy_folder(&legacy);
    // A file the legacy service could not have written: reported, not imported.
    std::fs::write(legacy.join("log_1700004003.5.txt"), [0xff, 0xfe, b'\n']).unwrap();
    let before = snapshot(&legacy);
    let expected_records: usize = expected.values().map(Vec::len).sum();
    assert_eq!(expected_records, FILES - 4 + 4 + 2);

    // data-api serves the volume while the import runs.
    let server = serve(&log_dir);
    server.wait_ready(200).await;
    let http = client();
    let response = http
        .post(server.url("/logs"))
        .json(&serde_json::json!({ "message": "written while importing" }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);

    let (code, stdout, stderr) = import(&legacy, &log_dir);
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    assert_eq!(
        stdout.trim(),
        format!(
            "import-legacy: {} files, imported {expected_records} records, skipped 0 already imported, 1 files unreadable",
            FILES + 1
        )
    );
    assert!(stderr.contains("import-legacy progress"), "{stderr}");
    let unreadable: Vec<Value> = stderr
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v["fields"]["message"] == "not imported" || v["message"] == "not imported")
        .collect();
    assert_eq!(unreadable.len(), 1, "{stderr}");
    assert!(unreadable[0].to_string().contains("log_1700004003.5.txt"));
    assert!(unreadable[0].to_string().contains("UTF-8"));

    // Every message is stored once, with the file's time, in time order.
    let stored = segment_records(&log_dir.join("legacy"));
    assert_eq!(stored.len(), expected_records);
    let by_id: HashMap<&str, &Record> = stored.iter().map(|r| (r.id.as_str(), r)).collect();
    assert_eq!(by_id.len(), stored.len(), "ids are unique");
    for (name, lines) in &expected {
        let time = data_api::import::legacy_time(name).unwrap();
        for (number, message) in lines {
            let record = by_id
                .get(legacy_id(name, *number).as_str())
                .unwrap_or_else(|| panic!("{name} line {number} not imported"));
            assert_eq!(&record.message, message);
            assert_eq!(record.ts, data_api::store::format_ts(time));
            assert_eq!(
                (record.instance.as_str(), record.level),
                ("legacy", data_api::store::Level::Info)
            );
        }
    }
    for pair in stored.windows(2) {
        assert!(pair[0].time() <= pair[1].time(), "time order");
    }
    let collided: Vec<&Record> = stored
        .iter()
        .filter(|r| r.ts == "2023-11-14T23:20:01.123456Z")
        .collect();
    assert_eq!(collided.len(), 2, "both files of one microsecond are kept");

    // Readable through the serving instance: the newest page across instances, then the whole
    // legacy history page by page with `since` windows narrow enough to fit one page.
    let all = get_records(&http, &server.url("/logs?limit=1000")).await;
    assert_eq!(all[0].message, "written while importing");
    let mut newest_first: Vec<&Record> = stored.iter().rev().collect();
    assert_eq!(
        all[1..].iter().map(|r| &r.id).collect::<Vec<_>>(),
        newest_first
            .iter()
            .take(999)
            .map(|r| &r.id)
            .collect::<Vec<_>>()
    );
    let legacy_only = get_records(&http, &server.url("/logs?instance=legacy&limit=1000")).await;
    assert_eq!(legacy_only.len(), 1000);
    assert!(legacy_only.iter().all(|r| r.instance == "legacy"));
    newest_first.truncate(1000);
    assert_eq!(
        legacy_only.iter().map(|r| &r.id).collect::<Vec<_>>(),
        newest_first.iter().map(|r| &r.id).collect::<Vec<_>>()
    );

    // Every message, page by page back in time with `before`; each page's oldest time is read
    // whole with `since=T&before=T+1µs`, so records sharing it are never cut by a boundary.
    let mut paged: HashMap<String, Record> = HashMap::new();
    let mut cursor: Option<String> = None;
    for _ in 0..(expected_records / 500 + 2) {
        let query = cursor
            .as_ref()
            .map(|b| format!("&before={b}"))
            .unwrap_or_default();
        let page = get_records(
            &http,
            &server.url(&format!("/logs?instance=legacy&limit=1000{query}")),
        )
        .await;
        let Some(oldest) = page.last().cloned() else {
            break;
        };
        let time = oldest.time().unwrap();
        let next = data_api::store::format_ts(time + std::time::Duration::from_micros(1));
        let ties = get_records(
            &http,
            &server.url(&format!(
                "/logs?instance=legacy&limit=1000&since={}&before={next}",
                oldest.ts
            )),
        )
        .await;
        assert!(ties.iter().all(|r| r.ts == oldest.ts));
        for record in page.into_iter().chain(ties) {
            paged.insert(record.id.clone(), record);
        }
        cursor = Some(oldest.ts);
    }
    assert_eq!(
        paged.len(),
        expected_records,
        "every imported record is readable through GET /logs"
    );
    for record in &stored {
        assert_eq!(paged.get(&record.id), Some(record));
    }

    // A second run adds nothing.
    let (code, stdout, stderr) = import(&legacy, &log_dir);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(
        stdout.trim(),
        format!(
            "import-legacy: {} files, imported 0 records, skipped {expected_records} already imported, 1 files unreadable",
            FILES + 1
        )
    );
    assert_eq!(
        segment_records(&log_dir.join("legacy")).len(),
        expected_records
    );

    // The legacy files were only read.
    assert_eq!(snapshot(&legacy), before);
    drop(server);
}

#[test]
fn import_legacy_refuses_a_missing_folder_with_one_line() {
    let root = tempfile::tempdir().unwrap();
    let (code, stdout, stderr) = import(&root.path().join("missing"), root.path());
    assert_eq!(code, 2, "{stdout}{stderr}");
    assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
    assert!(stderr.contains("--from"), "{stderr}");
    assert!(!root.path().join("legacy").exists());
}

/// `imported N records` of a run's summary line.
fn imported(stdout: &str) -> usize {
    let after = stdout
        .split("imported ")
        .nth(1)
        .unwrap_or_else(|| panic!("no summary: {stdout}"));
    after.split(' ').next().unwrap().parse().unwrap()
}

/// Two imports started at once on one volume (two data-api pods whose init containers meet, in
/// the chart's legacyImport.mode initContainer): `legacy/.lock` lets one write; the other either
/// meets the lock and exits 2 with one line naming LOG_DIR, having written nothing, or starts
/// after the first finished and imports 0. Whichever happens, every line is stored once, and a
/// later run (the restarted init container) imports 0.
#[test]
fn two_imports_at_once_never_interleave_and_import_each_record_once() {
    let root = tempfile::tempdir().unwrap();
    let (legacy, log_dir) = (root.path().join("flask"), root.path().join("logs"));
    std::fs::create_dir_all(&legacy).unwrap();
    std::fs::create_dir_all(&log_dir).unwrap();
    const LINES: usize = 3000;
    for i in 0..LINES {
        flask_write(
            &legacy,
            &format!("log_{}.txt", 1_700_000_000.0 + i as f64 * 0.5),
            "Executing task...",
        );
    }
    let runs: Vec<(i32, String, String)> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..2)
            .map(|_| s.spawn(|| import(&legacy, &log_dir)))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    println!(
        "exit codes of the two imports at once: {:?}",
        runs.iter().map(|r| r.0).collect::<Vec<_>>()
    );
    let mut total = 0;
    for (code, stdout, stderr) in &runs {
        match code {
            0 => total += imported(stdout),
            2 => {
                assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
                assert!(
                    stderr.contains("LOG_DIR") && stderr.contains("another import-legacy holds"),
                    "{stderr}"
                );
                assert!(stdout.is_empty(), "{stdout}");
            }
            other => panic!("exit {other}: {stdout}{stderr}"),
        }
    }
    assert!(runs.iter().any(|r| r.0 == 0), "{runs:?}");
    assert_eq!(total, LINES, "{runs:?}");
    let again = import(&legacy, &log_dir);
    assert_eq!((again.0, imported(&again.1)), (0, 0), "{again:?}");
    let stored = segment_records(&log_dir.join("legacy"));
    let ids: std::collections::HashSet<_> = stored.iter().map(|r| r.id.clone()).collect();
    assert_eq!((stored.len(), ids.len()), (LINES, LINES));
}
