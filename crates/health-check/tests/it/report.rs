//! `health-check report` on a history with known figures: exact uptime and percentiles, the
//! window of `--since`, and the html page's content.

use std::path::Path;
use std::time::{Duration, SystemTime};

use crate::common::{run_bin, stderr, stdout};
use health_check::record::format_ts;
use health_check::ProbeRecord;
use serde_json::Value;

fn probe(
    target: &str,
    ago: Duration,
    status: Option<u16>,
    ok: bool,
    latency_ms: u64,
) -> ProbeRecord {
    let error = match (ok, status) {
        (true, _) => None,
        (false, Some(s)) => Some(format!("HTTP {s}, expected 200")),
        (false, None) => Some("timed out after 2s".to_string()),
    };
    ProbeRecord {
        ts: format_ts(SystemTime::now() - ago),
        target: target.into(),
        url: format!("http://127.0.0.1:5000/{target}"),
        ok,
        status,
        latency_ms,
        error,
    }
}

/// Within the last 24 hours:
/// - `api`: 10 probes, 8 ok (80.00%); answered latencies 10,20,...,80 (ok) and 500 (a 500),
///   plus one timeout without an answer: p50 = 50 ms (rank 5 of 9), p99 = 500 ms (rank 9 of 9).
///   Its last failure is the timeout, 1 h ago.
/// - `db`: 4 probes, 3 ok (75.00%), latencies 1,2,3,4: p50 = 2 ms, p99 = 4 ms.
///
/// Older than 24 hours: one failed `api` probe and one `old` target, outside the window.
/// One torn line (a crash mid-write) is skipped and counted.
fn write_history(path: &Path) {
    let h = |n: u64| Duration::from_secs(n * 3600);
    let mut records = Vec::new();
    for (i, ms) in [10, 20, 30, 40, 50, 60, 70, 80].into_iter().enumerate() {
        records.push(probe(
            "api",
            h(10) - Duration::from_secs(i as u64 * 60),
            Some(200),
            true,
            ms,
        ));
    }
    records.push(probe("api", h(3), Some(500), false, 500));
    records.push(probe("api", h(1), None, false, 2000));
    for (i, ms) in [4, 1, 3].into_iter().enumerate() {
        records.push(probe(
            "db",
            h(5) + Duration::from_secs(i as u64),
            Some(200),
            true,
            ms,
        ));
    }
    records.push(probe("db", h(2), Some(503), false, 2));
    records.push(probe("api", h(30), Some(502), false, 9000));
    records.push(probe("old", h(48), Some(200), true, 1));
    let mut text = String::new();
    for r in &records {
        text.push_str(&serde_json::to_string(r).unwrap());
        text.push('\n');
    }
    text.push_str("{\"ts\":\"2026-01-01T00:00:00.000Z\",\"target\":\"api\",\"ur");
    std::fs::write(path, text).unwrap();
}

async fn report(path: &Path, extra: &[&str]) -> String {
    let mut args = vec!["report", "--input", path.to_str().unwrap()];
    args.extend_from_slice(extra);
    let out = run_bin(&args, &[], path.parent().unwrap()).await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    stdout(&out)
}

#[tokio::test]
async fn json_report_has_exact_figures() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("health_check.log");
    write_history(&path);
    let json: Value =
        serde_json::from_str(&report(&path, &["--since", "24h", "--format", "json"]).await)
            .unwrap();
    assert_eq!(json["skipped_lines"], 1);
    assert!(json["since"].is_string());
    let targets = json["targets"].as_array().unwrap();
    assert_eq!(targets.len(), 2, "{json:#}");

    let api = &targets[0];
    assert_eq!(api["target"], "api");
    assert_eq!(api["probes"], 10);
    assert_eq!(api["ok"], 8);
    assert_eq!(api["uptime_percent"], 80.0);
    assert_eq!(api["p50_ms"], 50);
    assert_eq!(api["p99_ms"], 500);
    assert_eq!(api["last_failure"]["status"], Value::Null);
    assert_eq!(api["last_failure"]["error"], "timed out after 2s");

    let db = &targets[1];
    assert_eq!(db["target"], "db");
    assert_eq!(db["probes"], 4);
    assert_eq!(db["uptime_percent"], 75.0);
    assert_eq!(db["p50_ms"], 2);
    assert_eq!(db["p99_ms"], 4);
    assert_eq!(db["last_failure"]["status"], 503);
    assert_eq!(db["last_failure"]["error"], "HTTP 503, expected 200");
}

#[tokio::test]
async fn without_since_the_whole_history_counts() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("health_check.log");
    write_history(&path);
    let json: Value = serde_json::from_str(&report(&path, &["--format", "json"]).await).unwrap();
    let targets = json["targets"].as_array().unwrap();
    let names: Vec<&str> = targets
        .iter()
        .map(|t| t["target"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["api", "db", "old"]);
    // api: 8 of 11; answered latencies 10..80, 500, 9000: p50 rank 5 of 10 = 50, p99 rank 10 = 9000.
    assert_eq!(targets[0]["probes"], 11);
    assert_eq!(targets[0]["uptime_percent"], 800.0 / 11.0);
    assert_eq!(targets[0]["p50_ms"], 50);
    assert_eq!(targets[0]["p99_ms"], 9000);
}

#[tokio::test]
async fn text_report_is_a_table_with_the_figures() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("health_check.log");
    write_history(&path);
    let text = report(&path, &["--since", "24h"]).await;
    let row = |name: &str| {
        text.lines()
            .find(|l| l.starts_with(&format!("{name} ")))
            .unwrap_or_else(|| panic!("no row for {name}:\n{text}"))
            .split_whitespace()
            .collect::<Vec<_>>()
    };
    assert_eq!(row("api")[..5], ["api", "10", "80.00%", "50ms", "500ms"]);
    assert!(
        row("api")
            .join(" ")
            .ends_with("no answer: timed out after 2s"),
        "{text}"
    );
    assert_eq!(row("db")[..5], ["db", "4", "75.00%", "2ms", "4ms"]);
    assert!(!text.contains("\nold "), "{text}");
    assert!(
        text.contains("1 history line(s) were not probe records"),
        "{text}"
    );
}

#[tokio::test]
async fn html_report_is_one_self_contained_page_with_every_target() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("health_check.log");
    write_history(&path);
    let page = report(&path, &["--since", "24h", "--format", "html"]).await;
    assert!(page.starts_with("<!DOCTYPE html>"));
    assert!(page.trim_end().ends_with("</html>"));
    // Self-contained: no scripts, stylesheets, images or fonts fetched from anywhere.
    for external in ["<script", "<link", "<img", "src=", "@import", "url("] {
        assert!(!page.contains(external), "found {external}");
    }
    assert!(page.contains("<style>"));

    let section = |name: &str| {
        let start = page
            .find(&format!("<section class=\"target\" id=\"target-{name}\""))
            .unwrap_or_else(|| panic!("no section for {name}"));
        let end = start + page[start..].find("</section>").unwrap();
        page[start..end].to_string()
    };
    let api = section("api");
    assert!(api.contains("<h2>api</h2>"));
    assert!(api.contains("http://127.0.0.1:5000/api"));
    assert!(api.contains("uptime <strong>80.00%</strong>"), "{api}");
    assert!(api.contains("8 of 10 probes ok"));
    assert!(api.contains("p50 50 ms") && api.contains("p99 500 ms"));
    assert!(api.contains("Last failure:") && api.contains("timed out after 2s"));
    // One bar segment per probe (fewer than 60 probes): 8 up, 2 down.
    assert_eq!(api.matches("<span class=\"up\"").count(), 8);
    assert_eq!(api.matches("<span class=\"down\"").count(), 2);

    let db = section("db");
    assert!(db.contains("uptime <strong>75.00%</strong>"));
    assert_eq!(db.matches("<span class=\"up\"").count(), 3);
    assert!(!page.contains("id=\"target-old\""));
}

#[tokio::test]
async fn html_escapes_what_the_history_contains() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("health_check.log");
    let mut r = probe(
        "x<script>alert(1)</script>",
        Duration::from_secs(60),
        Some(500),
        false,
        3,
    );
    r.error = Some("<img src=x onerror=alert(1)>".into());
    std::fs::write(&path, serde_json::to_string(&r).unwrap() + "\n").unwrap();
    let page = report(&path, &["--format", "html"]).await;
    assert!(!page.contains("<script>alert"), "{page}");
    assert!(!page.contains("<img"), "{page}");
    assert!(page.contains("x&lt;script&gt;alert(1)&lt;/script&gt;"));
}
