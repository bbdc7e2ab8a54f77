//! The direct alerting path, for teams without Alertmanager: a target is down after
//! `down_after` failed probes in a row and up again after `up_after` good ones; each change is
//! sent once to every receiver (a generic JSON webhook, a Slack-compatible hook).
//!
//! | file | its one job |
//! | --- | --- |
//! | `config.rs` | the `alerting:` section of the config file, checked; receiver URLs kept secret |
//! | `state.rs` | the per-target state machine and its file beside the history (rebuilt from it) |
//! | `deliver.rs` | background delivery with bounded retries, its log lines and metrics |

pub mod config;
pub mod deliver;
pub mod state;

use std::path::PathBuf;

pub use config::{Alerting, AlertingSection, Delivery, Receiver, ReceiverKind};
pub use deliver::{Notification, NotificationMetrics, Notifier};
pub use state::{AlertState, Change, Thresholds};

use crate::record::ProbeRecord;
use crate::{HistoryOutput, RunConfig, RunError, Target};

/// The state of one process's targets and the notifier their changes go to.
pub struct Alerter {
    targets: Vec<Target>,
    defaults: Thresholds,
    state: AlertState,
    state_file: PathBuf,
    notifier: Notifier,
}

impl Alerter {
    /// The alerter of `config`, None without an `alerting` section. Reads (or rebuilds) the
    /// state before the first probe, so this run's records are not already in the replay.
    pub async fn start(config: &RunConfig) -> Result<Option<Self>, RunError> {
        let Some(alerting) = &config.alerting else {
            return Ok(None);
        };
        let HistoryOutput::File { path, .. } = &config.history else {
            // RunArgs::resolve refuses this; a library caller gets no alerting rather than a panic.
            tracing::error!("alerting needs a history file for its state; alerts are off");
            return Ok(None);
        };
        let defaults = Thresholds {
            down_after: alerting.down_after,
            up_after: alerting.up_after,
        };
        let notifier = Notifier::new(alerting, alerting.metrics.clone())?;
        let (history_file, state_file) = (path.clone(), state::path_beside(path));
        let targets = config.targets.clone();
        let (file, known) = (state_file.clone(), targets.clone());
        let (state, rebuilt) = tokio::task::spawn_blocking(move || {
            AlertState::load_or_rebuild(&file, &history_file, &known, defaults)
        })
        .await
        .unwrap_or_else(|join| std::panic::resume_unwind(join.into_panic()));
        let mut state = state;
        // A target taken out of the config leaves no state behind.
        state
            .targets
            .retain(|name, _| targets.iter().any(|t| &t.name == name));
        if let Some(why) = rebuilt {
            let down: Vec<&str> = state
                .targets
                .iter()
                .filter(|(_, s)| s.down)
                .map(|(name, _)| name.as_str())
                .collect();
            tracing::info!(state_file = %state_file.display(), why, ?down, "alert state rebuilt from the history");
        }
        Ok(Some(Self {
            targets,
            defaults,
            state,
            state_file,
            notifier,
        }))
    }

    /// Applies a run: hands each change to the notifier (which does not wait for the
    /// receivers) and saves the state.
    pub async fn after_run(&mut self, records: &[ProbeRecord]) {
        for record in records {
            let Some(target) = self.targets.iter().find(|t| t.name == record.target) else {
                continue;
            };
            let limits = state::thresholds_of(target, self.defaults);
            if let Some(change) = self.state.observe(record, limits) {
                tracing::warn!(
                    target_name = %record.target,
                    state = if change.down { "down" } else { "up" },
                    consecutive = change.consecutive,
                    "target changed state; notifying"
                );
                self.notifier.dispatch(&change);
                self.state.mark_sent(&record.target, &change);
            }
        }
        let (state, file) = (self.state.clone(), self.state_file.clone());
        let saved = tokio::task::spawn_blocking(move || state.save(&file))
            .await
            .unwrap_or_else(|join| std::panic::resume_unwind(join.into_panic()));
        if let Err(e) = saved {
            // The next start rebuilds it from the history: no storm, at worst a missed change.
            tracing::error!(state_file = %self.state_file.display(), error = %e, "alert state not saved");
        }
    }

    /// Waits for the deliveries under way, within their bound (before a `--once` exit or after
    /// the loop stopped).
    pub async fn finish(&self) {
        self.notifier.drain().await;
    }
}
