//! The library's loop, as the all-in-one runner drives it: repeated runs until the shutdown
//! flag, whole runs in the history, and write failures counted rather than fatal.

use std::sync::atomic::Ordering;
use std::time::Duration;

use crate::common::{history, TestServer};
use health_check::{run_loop, HistoryOutput, RunConfig, Target};
use platform::Shutdown;

/// Waits (bounded) until `done` holds.
async fn wait_until(mut done: impl FnMut() -> bool) -> bool {
    for _ in 0..400 {
        if done() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    false
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn loops_until_shutdown_and_keeps_whole_runs() {
    let server = TestServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("health/health_check.log");
    let mut config = RunConfig::new(
        vec![
            Target::new("ok", server.url("/ok")),
            Target::new("fail", server.url("/fail")),
        ],
        HistoryOutput::file(&log),
    );
    config.print_human_lines = false;
    let shutdown = Shutdown::new();
    let task = tokio::spawn(run_loop(
        config,
        Duration::from_millis(50),
        shutdown.clone(),
    ));
    let lines = || std::fs::read_to_string(&log).map_or(0, |t| t.lines().count());
    assert!(
        wait_until(|| lines() >= 6).await,
        "fewer than 3 runs written"
    );
    shutdown.trigger();
    let summary = tokio::time::timeout(Duration::from_secs(30), task)
        .await
        .expect("the loop stopped after shutdown")
        .unwrap()
        .unwrap();
    let records = history(&log);
    assert_eq!(records.len() as u64, summary.runs * 2);
    assert_eq!(summary.unhealthy_runs, summary.runs);
    assert_eq!(summary.history_failures, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_failures_are_counted_and_the_loop_goes_on() {
    let server = TestServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let blocker = dir.path().join("file");
    std::fs::write(&blocker, "").unwrap();
    // A hanging target lets the test count runs at the server: one arrival per run.
    let mut config = RunConfig::new(
        vec![Target::new("hang", server.url("/hang"))],
        HistoryOutput::file(blocker.join("h.log")),
    )
    .with_timeout(Duration::from_millis(20));
    config.print_human_lines = false;
    let shutdown = Shutdown::new();
    let task = tokio::spawn(run_loop(
        config,
        Duration::from_millis(10),
        shutdown.clone(),
    ));
    let arrivals = || server.hang_arrivals.load(Ordering::SeqCst);
    assert!(wait_until(|| arrivals() >= 3).await, "fewer than 3 runs");
    shutdown.trigger();
    let summary = tokio::time::timeout(Duration::from_secs(30), task)
        .await
        .expect("the loop stopped after shutdown")
        .unwrap()
        .unwrap();
    assert!(summary.runs >= 3);
    assert_eq!(summary.history_failures, summary.runs);
    assert_eq!(summary.unhealthy_runs, summary.runs);
}
