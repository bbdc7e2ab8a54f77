//! The all-in-one runner as a user starts it: every service answers, the backend is wired to the
//! provider, records land under the var folder, the health loop writes its history, the status
//! page the banner names shows every service up, one request's text log lines carry its request
//! id in both services, and Ctrl-C (SIGINT) stops everything with exit code 0.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use test_support::{eventually, eventually_true};

/// The bound of each wait for something the running stack does by itself.
const WAIT: Duration = Duration::from_secs(30);

fn url_after(banner: &str, name: &str) -> String {
    banner
        .lines()
        .find_map(|l| l.trim_start().strip_prefix(name))
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("{name} in banner:\n{banner}"))
        .to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_whole_stack_runs_in_one_process_and_stops_on_ctrl_c() {
    let var = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_abn-stack"))
        .env_clear()
        .env("ABN_VAR_DIR", var.path())
        .env("ABN_BACKEND_ADDR", "127.0.0.1:0")
        .env("ABN_DATA_ADDR", "127.0.0.1:0")
        .env("ABN_PROVIDER_ADDR", "127.0.0.1:0")
        .env("ABN_HEALTH_ADDR", "127.0.0.1:0")
        .env("ABN_API_LATENCY_MS", "0")
        .env("ABN_DATA_LATENCY_MS", "0")
        .env("ABN_HEALTH_INTERVAL", "100ms")
        // What a newcomer reads: the text format (here without colours: not a terminal).
        .env("LOG_FORMAT", "text")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let output = Arc::new(Mutex::new(String::new()));
    let (banner_tx, banner_rx) = std::sync::mpsc::channel();
    let stdout = child.stdout.take().unwrap();
    let stderr = child.stderr.take().unwrap();
    {
        let output = output.clone();
        std::thread::spawn(move || {
            let mut banner = String::new();
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                output.lock().unwrap().push_str(&format!("{line}\n"));
                if line.starts_with("abn-stack is running") || !banner.is_empty() {
                    banner.push_str(&format!("{line}\n"));
                }
                if line.starts_with("Ctrl-C stops") {
                    let _ = banner_tx.send(std::mem::take(&mut banner));
                }
            }
        });
    }
    {
        let output = output.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                output.lock().unwrap().push_str(&format!("{line}\n"));
            }
        });
    }
    let banner = banner_rx
        .recv_timeout(Duration::from_secs(60))
        .expect("banner printed");
    let backend = url_after(&banner, "backend-api");
    let data = url_after(&banner, "data-api");
    let provider = url_after(&banner, "log-provider");
    let status_page = url_after(&banner, "status page");

    let api = reqwest::get(format!("{backend}/api_1"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(api.starts_with("completed: "), "{api}");
    // Every address is the one asked for (port 0: any port), none a service's default.
    for url in [&backend, &data, &provider, &status_page] {
        let port: u16 = reqwest::Url::parse(url)
            .ok()
            .and_then(|u| u.port())
            .unwrap_or_else(|| panic!("{url} names a port"));
        assert!(
            !(5000..=5003).contains(&port),
            "{url} is where ABN_*_ADDR said: {banner}"
        );
    }
    const REQUEST_ID: &str = "runner-test-4711";
    let logs = reqwest::Client::new()
        .get(format!("{backend}/download_external_logs?limit=7"))
        .header("x-request-id", REQUEST_ID)
        .send()
        .await
        .unwrap();
    assert_eq!(
        logs.status(),
        200,
        "backend is wired to the provider with the shared key"
    );
    assert_eq!(logs.text().await.unwrap().lines().count(), 7);
    assert_eq!(
        reqwest::get(format!("{provider}/v1/logs"))
            .await
            .unwrap()
            .status(),
        401
    );

    let legacy = reqwest::get(format!("{data}/"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(legacy.starts_with("Log: "), "{legacy}");
    // The legacy route wrote one record: it is the newest one listed, and it is on disk, in a
    // segment file of the runner's data-api instance under the var folder.
    let message = legacy.strip_prefix("Log: ").unwrap();
    let records: serde_json::Value = reqwest::get(format!("{data}/logs?limit=5"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(records["records"][0]["message"], message, "{records}");
    assert!(data_api::LEGACY_MESSAGES.contains(&message), "{message}");
    let id = records["records"][0]["id"]
        .as_str()
        .expect("an id")
        .to_string();
    let segments: Vec<_> = std::fs::read_dir(var.path().join("logs"))
        .unwrap()
        .flat_map(|instance| std::fs::read_dir(instance.unwrap().path()).unwrap())
        .map(|entry| entry.unwrap())
        .filter(|entry| {
            data_api::store::parse_segment_name(&entry.file_name().to_string_lossy()).is_some()
        })
        .collect();
    assert!(
        !segments.is_empty(),
        "records live in segment files under the var folder"
    );
    let on_disk: String = segments
        .iter()
        .map(|segment| std::fs::read_to_string(segment.path()).unwrap())
        .collect();
    assert!(on_disk.contains(&id), "record {id} is in a segment file");

    let history = var.path().join("health").join("health_check.log");
    eventually_true(
        "the health loop recorded 3 healthy probes",
        WAIT,
        || async {
            let text = std::fs::read_to_string(&history).unwrap_or_default();
            text.lines().filter(|l| l.contains("\"ok\":true")).count() >= 3
        },
    )
    .await;

    // The status page the banner names shows every service up.
    let up = eventually("the status page shows every service up", WAIT, || async {
        let status: serde_json::Value = reqwest::get(format!("{status_page}api/v1/status"))
            .await
            .ok()?
            .json()
            .await
            .ok()?;
        let up: Vec<String> = status["targets"]
            .as_array()?
            .iter()
            .filter(|t| t["up"] == true)
            .map(|t| t["target"].as_str().unwrap().to_string())
            .collect();
        (up.len() == 3).then_some(up)
    })
    .await;
    assert_eq!(up, ["backend-api", "data-api", "log-provider"], "{banner}");
    let page = reqwest::get(&status_page).await.unwrap();
    assert_eq!(page.status(), 200);
    assert!(page.text().await.unwrap().contains("<h2>backend-api</h2>"));

    // SAFETY: kill(2) on our own child with a valid signal.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let status = tokio::time::timeout(WAIT, tokio::task::spawn_blocking(move || child.wait()))
        .await
        .expect("the runner exits after Ctrl-C")
        .unwrap()
        .unwrap();
    assert_eq!(status.code(), Some(0), "{}", output.lock().unwrap());
    let output = output.lock().unwrap();
    assert!(
        !output.contains("Bearer"),
        "the generated key is never printed"
    );
    // One request's lines, told apart by its id: backend-api's download line and access-log line,
    // and the provider's access-log line (backend-api sent it the id).
    let of_request: Vec<&str> = output.lines().filter(|l| l.contains(REQUEST_ID)).collect();
    for route in ["/download_external_logs", "/v1/logs"] {
        assert!(
            of_request
                .iter()
                .any(|l| l.contains(&format!("route=\"{route}\""))),
            "the access-log line of {route} carries the request id: {of_request:#?}"
        );
    }
    assert!(
        !output.contains('\u{1b}'),
        "no colour codes outside a terminal"
    );
}
