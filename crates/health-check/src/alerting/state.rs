//! Which targets are down and what was last sent, per target: the state machine of the direct
//! path and its file next to the history, so a CronJob (a fresh process per run) notifies once
//! per incident. A missing or unreadable file is rebuilt by replaying the history, which knows
//! every probe: the rebuilt state counts as already notified, so a lost file never sends a storm.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::record::ProbeRecord;
use crate::{history, Target};

const VERSION: u32 = 1;

/// Thresholds of one target: failed probes in a row to go down, good ones to come back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Thresholds {
    pub down_after: u32,
    pub up_after: u32,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TargetState {
    pub down: bool,
    /// Failed probes in a row (0 after a good one).
    pub failures: u32,
    /// Good probes in a row (0 after a failed one).
    pub successes: u32,
    /// When the target last changed state (RFC 3339), if it ever did.
    pub since: Option<String>,
    /// The last change handed to the receivers: "down" or "up".
    pub last_sent: Option<String>,
}

/// A target crossed its threshold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub down: bool,
    /// Probes in a row that made the change.
    pub consecutive: u32,
    pub record: ProbeRecord,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlertState {
    version: u32,
    pub targets: BTreeMap<String, TargetState>,
}

/// Where the state lives: beside the history, `<history>.alert-state.json`.
pub fn path_beside(history: &Path) -> PathBuf {
    let mut name = history.as_os_str().to_owned();
    name.push(".alert-state.json");
    PathBuf::from(name)
}

impl AlertState {
    /// Applies one probe; returns the change when the target crossed a threshold.
    pub fn observe(&mut self, record: &ProbeRecord, limits: Thresholds) -> Option<Change> {
        let state = self.targets.entry(record.target.clone()).or_default();
        let crossed = if record.ok {
            state.failures = 0;
            state.successes = state.successes.saturating_add(1);
            state.down && state.successes >= limits.up_after
        } else {
            state.successes = 0;
            state.failures = state.failures.saturating_add(1);
            !state.down && state.failures >= limits.down_after
        };
        if !crossed {
            return None;
        }
        state.down = !state.down;
        state.since = Some(record.ts.clone());
        Some(Change {
            down: state.down,
            consecutive: if state.down {
                state.failures
            } else {
                state.successes
            },
            record: record.clone(),
        })
    }

    /// Notes that `change` was handed to the receivers.
    pub fn mark_sent(&mut self, target: &str, change: &Change) {
        if let Some(state) = self.targets.get_mut(target) {
            state.last_sent = Some(if change.down { "down" } else { "up" }.to_string());
        }
    }

    /// Reads the state file; when it is missing or unreadable, replays the history instead.
    /// Returns the state and why it was rebuilt (None when the file was read).
    pub fn load_or_rebuild(
        state_file: &Path,
        history_file: &Path,
        targets: &[Target],
        defaults: Thresholds,
    ) -> (Self, Option<String>) {
        let why = match std::fs::read(state_file) {
            Ok(bytes) => match serde_json::from_slice::<Self>(&bytes) {
                Ok(state) if state.version == VERSION => return (state, None),
                Ok(state) => format!("unknown version {}", state.version),
                Err(e) => format!("unreadable ({e})"),
            },
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => "missing".to_string(),
            Err(e) => format!("cannot be read ({e})"),
        };
        (Self::rebuild(history_file, targets, defaults), Some(why))
    }

    /// Replays every history file, oldest first; each state reached counts as sent, since the
    /// process that recorded it had the chance to send it.
    pub fn rebuild(history_file: &Path, targets: &[Target], defaults: Thresholds) -> Self {
        let mut state = Self {
            version: VERSION,
            ..Self::default()
        };
        for file in history::files_oldest_first(history_file) {
            let Ok(handle) = std::fs::File::open(&file) else {
                continue;
            };
            for line in BufReader::new(handle).lines() {
                let Ok(line) = line else { break };
                // A torn or foreign line is skipped, as `report` does.
                let Ok(record) = serde_json::from_str::<ProbeRecord>(&line) else {
                    continue;
                };
                if let Some(target) = targets.iter().find(|t| t.name == record.target) {
                    if let Some(change) = state.observe(&record, thresholds_of(target, defaults)) {
                        state.mark_sent(&target.name, &change);
                    }
                }
            }
        }
        state
    }

    /// Writes the file whole (a temporary file renamed over it: a crash leaves the old one).
    pub fn save(&self, path: &Path) -> std::io::Result<()> {
        let mut tmp = path.as_os_str().to_owned();
        tmp.push(".tmp");
        let tmp = PathBuf::from(tmp);
        let mut json = serde_json::to_vec_pretty(self).expect("the state serializes");
        json.push(b'\n');
        std::fs::write(&tmp, json)?;
        std::fs::rename(&tmp, path)
    }

    pub fn fresh() -> Self {
        Self {
            version: VERSION,
            ..Self::default()
        }
    }
}

/// The target's own thresholds where set, else the section's.
pub fn thresholds_of(target: &Target, defaults: Thresholds) -> Thresholds {
    Thresholds {
        down_after: target.down_after.unwrap_or(defaults.down_after),
        up_after: target.up_after.unwrap_or(defaults.up_after),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: Thresholds = Thresholds {
        down_after: 2,
        up_after: 1,
    };

    fn probe(ok: bool, n: u32) -> ProbeRecord {
        ProbeRecord {
            ts: format!("2026-12-01T10:00:{n:02}.000Z"),
            target: "a".into(),
            url: "http://h/".into(),
            ok,
            status: Some(if ok { 200 } else { 500 }),
            latency_ms: 1,
            error: (!ok).then(|| "HTTP 500, expected 200".into()),
        }
    }

    #[test]
    fn down_after_n_failures_up_after_m_successes_once_each() {
        let mut state = AlertState::fresh();
        let outcomes = [
            true, false, true, false, false, false, false, true, true, false,
        ];
        let changes: Vec<(usize, bool)> = outcomes
            .iter()
            .enumerate()
            .filter_map(|(i, ok)| {
                state
                    .observe(&probe(*ok, i as u32), LIMITS)
                    .map(|c| (i, c.down))
            })
            .collect();
        // One failure alone is noise; the second in a row is down; one success is up.
        assert_eq!(changes, vec![(4, true), (7, false)]);
    }

    #[test]
    fn rebuilt_from_history_matches_the_live_state_and_counts_as_sent() {
        let dir = tempfile::tempdir().unwrap();
        let history_file = dir.path().join("h.log");
        let records: Vec<_> = [true, false, false, false]
            .iter()
            .enumerate()
            .map(|(i, ok)| probe(*ok, i as u32))
            .collect();
        history::append(&history::HistoryOutput::file(&history_file), &records).unwrap();
        let mut lines = std::fs::read_to_string(&history_file).unwrap();
        lines.push_str("{torn\n");
        std::fs::write(&history_file, lines).unwrap();
        let state_file = path_beside(&history_file);
        std::fs::write(&state_file, "not json").unwrap();
        let targets = [Target::new("a", "http://h/")];
        let (state, why) =
            AlertState::load_or_rebuild(&state_file, &history_file, &targets, LIMITS);
        assert!(why.unwrap().starts_with("unreadable"));
        let a = &state.targets["a"];
        assert!(a.down);
        assert_eq!(a.failures, 3);
        assert_eq!(a.last_sent.as_deref(), Some("down"));
        state.save(&state_file).unwrap();
        let (read, why) = AlertState::load_or_rebuild(&state_file, &history_file, &targets, LIMITS);
        assert_eq!((read, why), (state, None));
    }
}
