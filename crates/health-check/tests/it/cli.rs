//! The real binary against real local servers: exit codes, human lines, JSON history lines.

use crate::common::{history, record, refused_url, run_bin, stderr, stdout, TestServer, SLOW_MS};

const PASSED: &str = "is reachable - Health check passed";

fn human_line<'a>(out: &'a str, url: &str) -> &'a str {
    out.lines()
        .find(|l| l.contains(&format!(": API at {url} is")))
        .unwrap_or_else(|| panic!("no human line for {url} in:\n{out}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn healthy_targets_exit_0_with_passed_lines_and_ok_records() {
    let server = TestServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    // A missing directory is created for the history.
    let log = dir.path().join("nested/health/health_check.log");
    let targets = format!("api={},again={}", server.url("/ok"), server.url("/ok?x=1"));
    let out = run_bin(
        &["--once"],
        &[
            ("HEALTHCHECK_TARGETS", &targets),
            ("HEALTHCHECK_OUTPUT", log.to_str().unwrap()),
        ],
        dir.path(),
    )
    .await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = stdout(&out);
    assert_eq!(text.lines().count(), 2, "{text}");
    for url in [server.url("/ok"), server.url("/ok?x=1")] {
        let line = human_line(&text, &url);
        assert!(line.ends_with(PASSED), "{line}");
        // `date` format: "Thu Nov 26 02:11:42 UTC 2026: API at ..."
        assert!(
            line.split(": API at").next().unwrap().contains(" UTC "),
            "{line}"
        );
    }
    let records = history(&log);
    assert_eq!(records.len(), 2);
    for r in &records {
        assert!(r.ok, "{r:?}");
        assert_eq!(r.status, Some(200));
        assert_eq!(r.error, None);
    }
    assert_eq!(record(&records, "api").url, server.url("/ok"));
}

/// 200, 500, a hang past the timeout, a refused connection and an answer slower than its
/// latency condition, in one run: exit 1, and the right line and record for each.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_kind_of_failure_gets_its_line_and_record() {
    let server = TestServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("health_check.log");
    let refused = refused_url();
    let config = dir.path().join("targets.yaml");
    std::fs::write(
        &config,
        format!(
            "targets:\n  - name: slow\n    url: {}\n    max_latency: 100ms\n  - name: fast-enough\n    url: {}\n    max_latency: 30s\n    body_contains: healthy\n",
            server.url("/slow"),
            server.url("/ok"),
        ),
    )
    .unwrap();
    let ok = format!("ok={}", server.url("/ok"));
    let fail = format!("fail={}", server.url("/fail"));
    let hang = format!("hang={}", server.url("/hang"));
    let refused_arg = format!("refused={refused}");
    let out = run_bin(
        &[
            "--once",
            "--target",
            &ok,
            "--target",
            &fail,
            "--target",
            &hang,
            "--target",
            &refused_arg,
            "--config",
            config.to_str().unwrap(),
            "--timeout",
            "1s",
            "--output",
            log.to_str().unwrap(),
        ],
        &[],
        dir.path(),
    )
    .await;
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let text = stdout(&out);
    assert_eq!(text.lines().count(), 6, "{text}");
    let failed = |code: &str| format!("is unreachable - Health check failed (HTTP {code})");
    assert!(human_line(&text, &server.url("/ok")).ends_with(PASSED));
    assert!(human_line(&text, &server.url("/fail")).ends_with(&failed("500")));
    assert!(human_line(&text, &server.url("/hang")).ends_with(&failed("000")));
    assert!(human_line(&text, &refused).ends_with(&failed("000")));
    assert!(human_line(&text, &server.url("/slow")).ends_with(&failed("200")));

    let records = history(&log);
    assert_eq!(records.len(), 6);
    let ok = record(&records, "ok");
    assert!(
        ok.ok && ok.status == Some(200) && ok.error.is_none(),
        "{ok:?}"
    );
    let enough = record(&records, "fast-enough");
    assert!(enough.ok, "{enough:?}");

    let fail = record(&records, "fail");
    assert!(!fail.ok);
    assert_eq!(fail.status, Some(500));
    assert_eq!(fail.error.as_deref(), Some("HTTP 500, expected 200"));

    let hang = record(&records, "hang");
    assert!(!hang.ok);
    assert_eq!(hang.status, None);
    assert_eq!(hang.error.as_deref(), Some("timed out after 1s"));
    assert!(hang.latency_ms >= 1000, "{hang:?}");

    let refused = record(&records, "refused");
    assert!(!refused.ok);
    assert_eq!(refused.status, None);
    let error = refused.error.as_deref().unwrap();
    assert!(error.starts_with("connection failed:"), "{error}");
    assert!(error.to_lowercase().contains("refused"), "{error}");

    let slow = record(&records, "slow");
    assert!(!slow.ok);
    assert_eq!(slow.status, Some(200));
    assert!(slow.latency_ms >= SLOW_MS, "{slow:?}");
    let error = slow.error.as_deref().unwrap();
    assert!(
        error.starts_with("too slow: ") && error.ends_with(" over the 100ms limit"),
        "{error}"
    );

    // The reasons are on stderr too, for the Job log.
    let diagnostics = stderr(&out);
    assert!(
        diagnostics.contains("HTTP 500, expected 200"),
        "{diagnostics}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn body_condition_and_expected_status() {
    let server = TestServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("targets.yaml");
    std::fs::write(
        &config,
        format!(
            "targets:\n  - name: wrong-body\n    url: {ok}\n    body_contains: ready\n  - name: expected-500\n    url: {fail}\n    expect_status: 500\n",
            ok = server.url("/ok"),
            fail = server.url("/fail"),
        ),
    )
    .unwrap();
    let out = run_bin(
        &["--once", "--output", "-"],
        &[("HEALTHCHECK_CONFIG", config.to_str().unwrap())],
        dir.path(),
    )
    .await;
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let records: Vec<health_check::ProbeRecord> = stdout(&out)
        .lines()
        .filter(|l| l.starts_with('{'))
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let wrong = record(&records, "wrong-body");
    assert_eq!(
        wrong.error.as_deref(),
        Some("body does not contain \"ready\"")
    );
    assert_eq!(wrong.status, Some(200));
    assert!(record(&records, "expected-500").ok);
}

/// The exec-probe mode: `--output -` puts the JSON lines on stdout after the human lines and
/// writes no file, so it works on a read-only root filesystem.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn output_dash_writes_json_to_stdout_and_no_file() {
    let server = TestServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let target = format!("self={}", server.url("/ok"));
    let out = run_bin(
        &["--once", "--target", &target, "--output", "-"],
        &[],
        dir.path(),
    )
    .await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = stdout(&out);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 2, "{text}");
    assert!(lines[0].ends_with(PASSED));
    let r: health_check::ProbeRecord = serde_json::from_str(lines[1]).unwrap();
    assert!(r.ok && r.target == "self");
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
}

/// A history that cannot be written is reported on stderr and in the exit code, even when
/// every target is healthy; the human lines are still printed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_write_failure_is_reported_and_exits_1() {
    let server = TestServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let blocker = dir.path().join("not-a-dir");
    std::fs::write(&blocker, "a file where a directory should be").unwrap();
    let log = blocker.join("health_check.log");
    let target = format!("api={}", server.url("/ok"));
    let out = run_bin(
        &[
            "--once",
            "--target",
            &target,
            "--output",
            log.to_str().unwrap(),
        ],
        &[],
        dir.path(),
    )
    .await;
    assert_eq!(out.status.code(), Some(1));
    assert!(stdout(&out).contains(PASSED));
    let err = stderr(&out);
    assert!(
        err.contains(&format!(
            "cannot write the health history to {}",
            log.display()
        )),
        "{err}"
    );
}

/// Arguments, environment, and what the error line must name.
type Case<'a> = (Vec<&'a str>, Vec<(&'a str, &'a str)>, &'a str);

/// Usage and configuration errors: exit 2 and one line on stderr naming what is wrong.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn configuration_errors_exit_2_with_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let bad_yaml = dir.path().join("bad.yaml");
    std::fs::write(
        &bad_yaml,
        "targets:\n  - name: a\n    url: http://h/\n    max_latency: soon\n",
    )
    .unwrap();
    let dup_yaml = dir.path().join("dup.yaml");
    std::fs::write(&dup_yaml, "targets:\n  - name: a\n    url: http://h/\n").unwrap();
    let cases: Vec<Case> = vec![
        (
            vec!["--once", "--target", "no-url"],
            vec![],
            "HEALTHCHECK_TARGETS",
        ),
        (
            vec!["--once"],
            vec![("HEALTHCHECK_TARGETS", "a=ftp://h/")],
            "HEALTHCHECK_TARGETS",
        ),
        (vec!["--once"], vec![], "HEALTHCHECK_TARGETS"),
        (
            vec![
                "--once",
                "--target",
                "a=http://h/",
                "--target",
                "a=http://g/",
            ],
            vec![],
            "HEALTHCHECK_TARGETS",
        ),
        (
            vec!["--once", "--target", "a=http://h/"],
            vec![("HEALTHCHECK_TIMEOUT", "2 parsecs")],
            "HEALTHCHECK_TIMEOUT",
        ),
        (
            vec!["--target", "a=http://h/", "--interval", "0s"],
            vec![],
            "HEALTHCHECK_INTERVAL",
        ),
        (
            vec!["--once", "--config", bad_yaml.to_str().unwrap()],
            vec![],
            "HEALTHCHECK_CONFIG",
        ),
        (
            vec!["--once", "--config", "/nonexistent/targets.yaml"],
            vec![],
            "HEALTHCHECK_CONFIG",
        ),
        (
            vec![
                "--once",
                "--target",
                "a=http://x/",
                "--config",
                dup_yaml.to_str().unwrap(),
            ],
            vec![],
            "HEALTHCHECK_CONFIG",
        ),
        (
            vec!["--once", "--target", "a=http://h/"],
            vec![("HEALTHCHECK_OUTPUT_MAX_BYTES", "10")],
            "HEALTHCHECK_OUTPUT_MAX_BYTES",
        ),
        (vec!["--bogus"], vec![], "--bogus"),
        (
            vec!["report", "--input", "/nonexistent/history.log"],
            vec![],
            "--input",
        ),
        (
            vec!["report", "--input", "x", "--format", "pdf"],
            vec![],
            "--format",
        ),
        (
            vec!["report", "--input", "x", "--since", "yesterday"],
            vec![],
            "--since",
        ),
    ];
    for (args, envs, named) in cases {
        let out = run_bin(&args, &envs, dir.path()).await;
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{args:?} {envs:?}: {err}");
        assert_eq!(err.lines().count(), 1, "{args:?} {envs:?}: {err}");
        assert!(
            err.contains(named),
            "{args:?} {envs:?} should name {named}: {err}"
        );
        assert!(stdout(&out).is_empty(), "{args:?}");
    }
}

/// Loop mode probes every interval and stops cleanly on SIGTERM, exit 0, with whole runs in
/// the history.
#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn loop_mode_stops_cleanly_on_sigterm() {
    use std::process::Stdio;
    use std::time::Duration;

    let server = TestServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("health_check.log");
    let targets = format!("a={},b={}", server.url("/ok"), server.url("/fail"));
    let child = tokio::process::Command::new(env!("CARGO_BIN_EXE_health-check"))
        .args(["--interval", "100ms", "--output", log.to_str().unwrap()])
        .env("HEALTHCHECK_TARGETS", &targets)
        .env_remove("HEALTHCHECK_CONFIG")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    // Wait (bounded) until at least three runs are in the history.
    let mut runs = 0;
    for _ in 0..300 {
        runs = std::fs::read_to_string(&log).map_or(0, |t| t.lines().count() / 2);
        if runs >= 3 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(runs >= 3, "only {runs} runs were written");
    let pid = child.id().unwrap().to_string();
    let killed = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    assert!(killed.success());
    let out = tokio::time::timeout(Duration::from_secs(30), child.wait_with_output())
        .await
        .expect("stopped after SIGTERM")
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let records = history(&log);
    assert_eq!(records.len() % 2, 0, "a run was cut in half: {records:?}");
    let text = stdout(&out);
    assert_eq!(text.lines().count(), records.len(), "{text}");
    assert!(records.iter().filter(|r| r.target == "a").all(|r| r.ok));
    assert!(records.iter().filter(|r| r.target == "b").all(|r| !r.ok));
}

/// An image may set HEALTHCHECK_INTERVAL for its loop; the exec probe's `--once` still runs once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn once_wins_over_an_interval_from_the_environment() {
    let server = TestServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let target = format!("self={}", server.url("/ok"));
    let out = run_bin(
        &["--once", "--target", &target, "--output", "-"],
        &[("HEALTHCHECK_INTERVAL", "1s")],
        dir.path(),
    )
    .await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(stdout(&out).lines().count(), 2);
}

#[tokio::test]
async fn help_names_the_variables_and_exits_0() {
    let dir = tempfile::tempdir().unwrap();
    let out = run_bin(&["--help"], &[], dir.path()).await;
    assert_eq!(out.status.code(), Some(0));
    let help = stdout(&out);
    for variable in [
        "HEALTHCHECK_TARGETS",
        "HEALTHCHECK_CONFIG",
        "HEALTHCHECK_OUTPUT",
        "HEALTHCHECK_TIMEOUT",
        "HEALTHCHECK_INTERVAL",
    ] {
        assert!(help.contains(variable), "{variable} missing from --help");
    }
    let out = run_bin(&["report", "--help"], &[], dir.path()).await;
    assert_eq!(out.status.code(), Some(0));
    assert!(stdout(&out).contains("--since"));
}

#[test]
fn check_config_resolves_targets_and_writes_no_history() {
    let bin = env!("CARGO_BIN_EXE_health-check");
    let dir = tempfile::tempdir().unwrap();
    let history = dir.path().join("health/health_check.log");
    let history = history.to_str().unwrap();
    let (code, out) = test_support::check_config(
        bin,
        &["--once", "--target", "api=http://127.0.0.1:9/readyz"],
        &[("HEALTHCHECK_OUTPUT", history)],
    );
    assert_eq!((code, out.trim()), (0, "configuration ok"));
    assert!(!std::path::Path::new(history).exists(), "history written");

    let missing = dir.path().join("missing.yaml");
    let (code, out) = test_support::check_config(
        bin,
        &["--once"],
        &[("HEALTHCHECK_CONFIG", missing.to_str().unwrap())],
    );
    assert_eq!(code, 2, "{out}");
    assert_eq!(out.trim().lines().count(), 1, "one line: {out}");
    assert!(out.contains("HEALTHCHECK_CONFIG"), "{out}");

    let (code, out) = test_support::check_config(bin, &["--once"], &[]);
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("HEALTHCHECK_TARGETS"), "{out}");
}
