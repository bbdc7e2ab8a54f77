//! health-check: the Rust replacement of the legacy `health_check.sh`.
//!
//! Probes HTTP targets concurrently (each bounded by one timeout), prints the legacy human line
//! per target on stdout, appends one JSON line per probe to a size-rotated history file, and
//! reports uptime and latency from that history. Runs once (a Kubernetes CronJob, an exec
//! probe) or in a loop until shutdown (the all-in-one runner, the legacy `-s` mode).
//!
//! ```no_run
//! # async fn demo() -> Result<(), health_check::RunError> {
//! use health_check::{run_once, HistoryOutput, RunConfig, Target};
//! let config = RunConfig::new(
//!     vec![Target::new("backend", "http://127.0.0.1:5000/healthz")],
//!     HistoryOutput::file("var/health/health_check.log"),
//! );
//! let summary = run_once(&config).await?;
//! assert!(summary.healthy());
//! # Ok(()) }
//! ```

pub mod alerting;
pub mod cli;
pub mod file_config;
pub mod history;
pub mod legacy_log;
pub mod probe;
pub mod record;
pub mod report;
pub mod serve;
pub mod target;

use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use platform::Shutdown;
use tokio::time::MissedTickBehavior;

pub use history::{HistoryError, HistoryOutput, Rotation};
pub use record::ProbeRecord;
pub use target::Target;

/// Everything one run needs; the loop repeats it.
#[derive(Debug, Clone)]
pub struct RunConfig {
    pub targets: Vec<Target>,
    /// Per probe, from start to outcome (2s).
    pub timeout: Duration,
    pub history: HistoryOutput,
    /// Print the legacy human line per target on stdout (true).
    pub print_human_lines: bool,
    /// Append the legacy human lines to this file as well (`--legacy-log`).
    pub legacy_log: Option<PathBuf>,
    /// Direct alerting (the config file's `alerting:` section); None: Prometheus alerts only.
    pub alerting: Option<alerting::Alerting>,
}

impl RunConfig {
    pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(2);

    pub fn new(targets: Vec<Target>, history: HistoryOutput) -> Self {
        Self {
            targets,
            timeout: Self::DEFAULT_TIMEOUT,
            history,
            print_human_lines: true,
            legacy_log: None,
            alerting: None,
        }
    }

    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }
}

/// The records of one run, in the order of the targets.
#[derive(Debug, Clone)]
pub struct RunSummary {
    pub records: Vec<ProbeRecord>,
}

impl RunSummary {
    /// Every target met its conditions.
    pub fn healthy(&self) -> bool {
        self.records.iter().all(|r| r.ok)
    }

    pub fn failed(&self) -> impl Iterator<Item = &ProbeRecord> {
        self.records.iter().filter(|r| !r.ok)
    }
}

/// What a loop did before it stopped.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LoopSummary {
    pub runs: u64,
    pub unhealthy_runs: u64,
    /// Runs whose history could not be written (each also logged as an error).
    pub history_failures: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("cannot build the HTTP client: {0}")]
    Client(#[from] reqwest::Error),
    #[error(transparent)]
    History(#[from] HistoryError),
}

/// Probes every target once, prints the human lines, appends the history.
/// A history write failure is an error (after the human lines were printed).
/// With alerting, a change is sent before it returns (each delivery within its bound) and the
/// state is saved beside the history, so the next `--once` run continues the incident.
pub async fn run_once(config: &RunConfig) -> Result<RunSummary, RunError> {
    let client = probe::http_client()?;
    let mut alerter = alerting::Alerter::start(config).await?;
    let (summary, written) = run_with(&client, config).await;
    if let Some(alerter) = &mut alerter {
        alerter.after_run(&summary.records).await;
        alerter.finish().await;
    }
    written?;
    Ok(summary)
}

/// Runs every `interval` until `shutdown` is triggered; a run in progress finishes first (it
/// takes at most about one timeout), so the history never ends with half a run. History write
/// failures are logged and counted, and the loop carries on (the disk may recover).
pub async fn run_loop(
    config: RunConfig,
    interval: Duration,
    shutdown: Shutdown,
) -> Result<LoopSummary, RunError> {
    run_loop_observed(config, interval, shutdown, |_| {}).await
}

/// [`run_loop`], calling `after_run` with each run's records once its history is written (or
/// failed to be): `health-check serve` updates its metrics and page from there.
pub async fn run_loop_observed(
    config: RunConfig,
    interval: Duration,
    shutdown: Shutdown,
    mut after_run: impl FnMut(&RunSummary),
) -> Result<LoopSummary, RunError> {
    let client = probe::http_client()?;
    let mut alerter = alerting::Alerter::start(&config).await?;
    // tokio's interval panics on zero; the CLI rejects it, a library caller gets 1 ms.
    let mut ticks = tokio::time::interval(interval.max(Duration::from_millis(1)));
    // A run longer than the interval delays the next one rather than bunching runs together.
    ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut summary = LoopSummary::default();
    tracing::info!(
        targets = config.targets.len(),
        interval = ?interval,
        timeout = ?config.timeout,
        "health-check loop started"
    );
    loop {
        tokio::select! {
            biased;
            _ = shutdown.requested() => break,
            _ = ticks.tick() => {}
        }
        summary.runs += 1;
        let (run, written) = run_with(&client, &config).await;
        summary.unhealthy_runs += u64::from(!run.healthy());
        if let Err(e) = written {
            summary.history_failures += 1;
            tracing::error!(error = %e, "health history not written");
        }
        if let Some(alerter) = &mut alerter {
            // Deliveries run in the background: a slow receiver never delays the next tick.
            alerter.after_run(&run.records).await;
        }
        after_run(&run);
    }
    if let Some(alerter) = &alerter {
        alerter.finish().await;
    }
    tracing::info!(
        runs = summary.runs,
        unhealthy_runs = summary.unhealthy_runs,
        history_failures = summary.history_failures,
        "health-check loop stopped"
    );
    Ok(summary)
}

/// One run: probe, print, log the failures, append the history (whose outcome is returned
/// beside the results, so that a write failure never hides them).
async fn run_with(
    client: &reqwest::Client,
    config: &RunConfig,
) -> (RunSummary, Result<(), HistoryError>) {
    let records = probe::probe_all(client, &config.targets, config.timeout).await;
    if config.print_human_lines {
        print_human_lines(&records);
    }
    for r in records.iter().filter(|r| !r.ok) {
        tracing::warn!(
            target_name = %r.target,
            url = %r.url,
            status = r.status,
            latency_ms = r.latency_ms,
            error = r.error.as_deref().unwrap_or(""),
            "health check failed"
        );
    }
    // File I/O off the async threads: a slow volume must not stall the services sharing the
    // runtime in the all-in-one runner.
    let output = config.history.clone();
    let legacy = config.legacy_log.clone();
    let lines = records.clone();
    let written = tokio::task::spawn_blocking(move || {
        let history = history::append(&output, &lines);
        let legacy = legacy.map_or(Ok(()), |path| legacy_log::append(&path, &lines));
        history.and(legacy)
    })
    .await
    .unwrap_or_else(|join| std::panic::resume_unwind(join.into_panic()));
    (RunSummary { records }, written)
}

fn print_human_lines(records: &[ProbeRecord]) {
    let mut text = String::new();
    for r in records {
        text.push_str(&r.human_line());
        text.push('\n');
    }
    let mut out = std::io::stdout().lock();
    // stdout gone (a closed pipe) must not stop the history: that is where results are kept.
    let _ = out.write_all(text.as_bytes()).and_then(|()| out.flush());
}
