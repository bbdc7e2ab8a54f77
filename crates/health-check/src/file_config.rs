//! The YAML configuration file (`HEALTHCHECK_CONFIG`): targets with optional conditions.
//!
//! ```yaml
//! targets:
//!   - name: backend
//!     url: http://127.0.0.1:5000/health_check
//!     expect_status: 200        # default 200
//!     max_latency: 500ms        # optional
//!     body_contains: healthy    # optional
//! ```

use std::path::Path;

use serde::Deserialize;

use crate::target::Target;

/// Larger files are surely a mistake (a log passed instead of the config).
const MAX_CONFIG_BYTES: u64 = 1024 * 1024;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    targets: Vec<Target>,
}

/// Reads and validates the targets of a config file; the error says what is wrong and where.
pub fn load_targets(path: &Path) -> Result<Vec<Target>, String> {
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
    parse_targets(&text).map_err(|e| format!("{shown}: {e}"))
}

/// Parses the YAML text of a config file.
pub fn parse_targets(text: &str) -> Result<Vec<Target>, String> {
    let config: FileConfig = serde_yaml_ng::from_str(text).map_err(|e| one_line(&e.to_string()))?;
    for target in &config.targets {
        target.validate()?;
    }
    Ok(config.targets)
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
