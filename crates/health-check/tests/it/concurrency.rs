//! Probes of one run are all in flight at once, against real sockets: a hung target cannot
//! stall the others, and many hung targets cost one timeout, not one each. (The virtual-clock
//! proof of the same schedule is in src/probe.rs.)

use std::sync::atomic::Ordering;
use std::time::Duration;

use crate::common::TestServer;
use health_check::{run_once, HistoryOutput, RunConfig, Target};

fn config(targets: Vec<Target>, timeout: Duration, dir: &std::path::Path) -> RunConfig {
    let mut config = RunConfig::new(targets, HistoryOutput::file(dir.join("h.log")));
    config.timeout = timeout;
    config.print_human_lines = false;
    config
}

/// `/barrier` answers only when all N requests are waiting at the same time. Probed one after
/// another, the first would wait out its timeout and every probe would fail; all succeed only
/// if the N probes were started before any of them finished.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn all_probes_of_a_run_are_in_flight_together() {
    const N: usize = 12;
    let server = TestServer::with_barrier(N).await;
    let dir = tempfile::tempdir().unwrap();
    let targets = (0..N)
        .map(|i| Target::new(format!("t{i}"), server.url(&format!("/barrier?i={i}"))))
        .collect();
    let summary = run_once(&config(targets, Duration::from_secs(20), dir.path()))
        .await
        .unwrap();
    assert!(summary.healthy(), "{:?}", summary.records);
    assert_eq!(summary.records.len(), N);
}

/// Twenty targets that never answer and one that does: the healthy one still passes, and every
/// hanging request reached the server, i.e. all were started, none waited for another.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hanging_targets_do_not_stall_the_others() {
    const HUNG: usize = 20;
    let server = TestServer::with_barrier(1).await;
    let dir = tempfile::tempdir().unwrap();
    let mut targets: Vec<Target> = (0..HUNG)
        .map(|i| Target::new(format!("hang{i}"), server.url(&format!("/hang?i={i}"))))
        .collect();
    targets.push(Target::new("ok", server.url("/ok")));
    let summary = run_once(&config(targets, Duration::from_millis(500), dir.path()))
        .await
        .unwrap();
    assert_eq!(server.hang_arrivals.load(Ordering::SeqCst), HUNG);
    let (ok, hung): (Vec<_>, Vec<_>) = summary.records.iter().partition(|r| r.target == "ok");
    assert!(ok[0].ok, "{:?}", ok[0]);
    assert_eq!(hung.len(), HUNG);
    for r in hung {
        assert_eq!(r.error.as_deref(), Some("timed out after 500ms"), "{r:?}");
    }
}
