//! The YAML configuration file (`HEALTHCHECK_CONFIG`): targets with optional conditions.
//!
//! ```yaml
//! targets:
//!   - name: backend
//!     url: http://127.0.0.1:5000/health_check
//!     expect_status: 200        # default 200
//!     max_latency: 500ms        # optional
//!     body_contains: healthy    # optional
//!     down_after: 3             # optional, alerting.down_after by default
//!     up_after: 1               # optional, alerting.up_after by default
//! alerting:                     # optional: the direct path (webhooks, without Alertmanager)
//!   down_after: 2               # failed probes in a row before a target is down (2)
//!   up_after: 1                 # good probes in a row before it is up again (1)
//!   delivery:                   # optional
//!     attempts: 4               # tries per notification and receiver (4)
//!     attempt_timeout: 5s       # each try (5s)
//!     give_up_after: 30s        # the whole delivery, backoff included (30s)
//!   receivers:
//!     - name: ops               # in logs and metrics (the URL never is)
//!       type: webhook           # webhook (generic JSON) or slack
//!       url_file: /run/secrets/ops-webhook   # or url: https://... (a secret either way)
//! ```

use std::path::Path;

use serde::Deserialize;

use crate::alerting::{Alerting, AlertingSection};
use crate::target::Target;

/// Larger files are surely a mistake (a log passed instead of the config).
const MAX_CONFIG_BYTES: u64 = 1024 * 1024;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    targets: Vec<Target>,
    #[serde(default)]
    alerting: Option<AlertingSection>,
}

/// What a config file holds, checked.
#[derive(Debug)]
pub struct Loaded {
    pub targets: Vec<Target>,
    pub alerting: Option<Alerting>,
}

/// Reads and validates the targets of a config file; the error says what is wrong and where.
pub fn load_targets(path: &Path) -> Result<Vec<Target>, String> {
    load(path).map(|loaded| loaded.targets)
}

/// Reads and validates a config file (targets and alerting; URL files are read here).
pub fn load(path: &Path) -> Result<Loaded, String> {
    let shown = path.display();
    let size = std::fs::metadata(path)
        .map_err(|e| format!("cannot read {shown}: {e}"))?
        .len();
    if size > MAX_CONFIG_BYTES {
        return Err(format!(
            "{shown} is {size} bytes, more than a config file should be"
        ));
    }
    let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read {shown}: {e}"))?;
    parse(&text).map_err(|e| format!("{shown}: {e}"))
}

/// Parses the YAML text of a config file's targets.
pub fn parse_targets(text: &str) -> Result<Vec<Target>, String> {
    parse(text).map(|loaded| loaded.targets)
}

/// Parses the YAML text of a config file.
pub fn parse(text: &str) -> Result<Loaded, String> {
    let config: FileConfig = serde_yaml_ng::from_str(text).map_err(|e| one_line(&e.to_string()))?;
    for target in &config.targets {
        target.validate()?;
    }
    let alerting = config.alerting.map(AlertingSection::resolve).transpose()?;
    Ok(Loaded {
        targets: config.targets,
        alerting,
    })
}

fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn reads_targets_with_conditions_and_defaults() {
        let targets = parse_targets(
            "targets:\n  - name: a\n    url: http://h/a\n    expect_status: 204\n    max_latency: 250ms\n    body_contains: ok\n  - name: b\n    url: https://h/b\n",
        )
        .unwrap();
        assert_eq!(
            targets,
            vec![
                Target::new("a", "http://h/a")
                    .expect_status(204)
                    .max_latency(Duration::from_millis(250))
                    .body_contains("ok"),
                Target::new("b", "https://h/b"),
            ]
        );
    }

    #[test]
    fn typos_and_bad_values_are_errors_on_one_line() {
        for bad in [
            "targets:\n  - name: a\n    url: http://h/\n    max_latenc: 1s\n",
            "targets:\n  - name: a\n    url: http://h/\n    max_latency: soon\n",
            "targets:\n  - name: a\n    url: nope\n",
            "targets: [",
            "",
        ] {
            let err = parse_targets(bad).unwrap_err();
            assert_eq!(err.lines().count(), 1, "{err}");
        }
    }
}
