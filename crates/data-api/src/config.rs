//! data-api configuration: environment variables first, each also a flag.

use std::ffi::CStr;
use std::path::PathBuf;

use clap::{CommandFactory, FromArgMatches, Parser};
use platform::config::{ConfigError, ServerArgs, Validate};

use crate::DEFAULT_ADDR;

/// Smallest segment size accepted.
const MIN_SEGMENT_BYTES: u64 = 4096;

/// data-api: durable log records on a volume, read back over HTTP.
#[derive(Parser, Debug, Clone)]
#[command(name = "data-api", version, about)]
pub struct Config {
    #[command(flatten)]
    pub server: ServerArgs,

    /// Folder (the volume) holding the records; each instance writes `LOG_DIR/<INSTANCE_ID>/`.
    #[arg(long, env = "LOG_DIR", default_value = "./var/logs")]
    pub log_dir: PathBuf,

    /// This writer's name, a folder under LOG_DIR (the pod name in Kubernetes). Default: the
    /// hostname.
    #[arg(long, env = "INSTANCE_ID")]
    pub instance_id: Option<String>,

    /// Simulated work of the legacy `GET /`, in milliseconds.
    #[arg(long, env = "SIMULATED_LATENCY_MS", default_value_t = 3000)]
    pub simulated_latency_ms: u64,

    /// A segment file is closed and a new one started beyond this size (bytes, or with a
    /// KiB/MiB/GiB suffix).
    #[arg(long, env = "LOG_SEGMENT_BYTES", default_value = "16MiB", value_parser = parse_bytes)]
    pub log_segment_bytes: u64,

    /// The oldest segments are deleted while this instance's total is above this (bytes, or with
    /// a KiB/MiB/GiB suffix). The default fits a 1 GiB volume.
    #[arg(long, env = "LOG_RETENTION_BYTES", default_value = "768MiB", value_parser = parse_bytes)]
    pub log_retention_bytes: u64,

    /// On a shared volume: the folder of an instance that is gone (no live process holds it) is
    /// deleted once its newest record is older than this. The imported `legacy` folder is kept.
    #[arg(long, env = "LOG_ORPHAN_RETENTION", default_value = "7d", value_parser = platform::config::parse_duration)]
    pub log_orphan_retention: std::time::Duration,

    /// On a shared volume: while everything under LOG_DIR exceeds this (bytes, or with a
    /// KiB/MiB/GiB suffix), the oldest segments of gone instances are deleted first. Default: no
    /// shared budget (each instance keeps to LOG_RETENTION_BYTES).
    #[arg(long, env = "LOG_SHARED_RETENTION_BYTES", value_parser = parse_bytes)]
    pub log_shared_retention_bytes: Option<u64>,

    /// How often orphan retention runs (one live instance at a time).
    #[arg(long, env = "LOG_ORPHAN_SWEEP_INTERVAL", default_value = "1m", value_parser = platform::config::parse_duration)]
    pub log_orphan_sweep_interval: std::time::Duration,

    /// Storage format of the segments this instance starts: 1 (0.1.0's, the default, so a
    /// rollback to 0.1.0 still reads every record) or 2 (the version in the file name). Both
    /// are read whatever this says.
    #[arg(long, env = "LOG_FORMAT_VERSION", default_value_t = crate::store::DEFAULT_WRITE_VERSION,
          value_parser = clap::value_parser!(u32).range(crate::store::OLDEST_VERSION as i64..=crate::store::NEWEST_VERSION as i64))]
    pub log_format_version: u32,
    /// Callers allowed on `GET /`, `POST /logs` and `GET /logs`: a file of `name:token` lines (a
    /// mounted Secret), reloaded live; unset: no caller authentication (the network is the
    /// fence). Never required on /healthz, /readyz, /metrics.
    #[arg(long, env = "API_TOKENS_FILE")]
    pub api_tokens_file: Option<PathBuf>,
}

impl Config {
    /// Defaults for in-process use (tests, the all-in-one runner), ignoring the environment;
    /// callers adjust fields (e.g. `simulated_latency_ms`) afterwards.
    pub fn local(log_dir: PathBuf) -> Self {
        let cmd = Config::command().mut_args(|a| a.env(None::<&str>));
        let matches = cmd.get_matches_from(["data-api"]);
        let mut config = Config::from_arg_matches(&matches).expect("declared defaults parse");
        config.server = ServerArgs::local(DEFAULT_ADDR);
        config.log_dir = log_dir;
        config
    }

    /// The instance name: `INSTANCE_ID`, or the hostname; checked to be one safe folder name.
    pub fn instance(&self) -> Result<String, ConfigError> {
        let (name, source) = match &self.instance_id {
            Some(id) => (id.clone(), "INSTANCE_ID"),
            None => (
                hostname().ok_or_else(|| {
                    ConfigError::new("INSTANCE_ID", "not set and the hostname is unavailable")
                })?,
                "INSTANCE_ID (defaulted to the hostname)",
            ),
        };
        validate_instance(&name).map_err(|problem| ConfigError::new(source, problem))?;
        Ok(name)
    }

    /// Checks settings that depend on each other (the instance name is checked by
    /// [`Config::instance`]).
    fn check_sizes_and_dir(&self) -> Result<(), ConfigError> {
        if self.log_segment_bytes < MIN_SEGMENT_BYTES {
            return Err(ConfigError::new(
                "LOG_SEGMENT_BYTES",
                format!("must be at least {MIN_SEGMENT_BYTES} bytes"),
            ));
        }
        if self.log_retention_bytes < 2 * self.log_segment_bytes {
            return Err(ConfigError::new(
                "LOG_RETENTION_BYTES",
                format!(
                    "must be at least twice LOG_SEGMENT_BYTES ({} bytes) so that whole segments can be deleted",
                    self.log_segment_bytes
                ),
            ));
        }
        if self.log_orphan_sweep_interval.is_zero() {
            return Err(ConfigError::new(
                "LOG_ORPHAN_SWEEP_INTERVAL",
                "must be longer than 0",
            ));
        }
        if self.log_dir.as_os_str().is_empty() {
            return Err(ConfigError::new("LOG_DIR", "must not be empty"));
        }
        Ok(())
    }
}

impl Validate for Config {
    fn check_requested(&self) -> bool {
        self.server.check.check_config
    }

    /// Everything a start checks before it opens the store (the store's own lock is a run-time
    /// matter: it needs the volume).
    fn validate(&self) -> Result<(), ConfigError> {
        self.check_sizes_and_dir()?;
        platform::callers::Callers::check_file(self.api_tokens_file.as_deref())?;
        self.instance().map(drop)
    }
}

/// A folder name ([`crate::store::is_instance_name`]), with the rule stated when it is not.
fn validate_instance(name: &str) -> Result<(), String> {
    if name == crate::import::LEGACY_INSTANCE {
        return Err(format!(
            "{name:?} is the folder of imported legacy records (data-api import-legacy)"
        ));
    }
    if crate::store::is_instance_name(name) {
        return Ok(());
    }
    Err(format!(
        "{name:?} must be 1 to 128 ASCII letters, digits, '.', '_' and '-', not starting with '.'"
    ))
}

fn hostname() -> Option<String> {
    let mut buf = [0u8; 256];
    // SAFETY: the buffer is valid for its length; gethostname writes at most that many bytes.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    if rc != 0 {
        return None;
    }
    let name = CStr::from_bytes_until_nul(&buf).ok()?.to_str().ok()?.trim();
    (!name.is_empty()).then(|| name.to_string())
}

/// Parses a size: `1048576`, `64KiB`, `16MiB`, `1GiB` (binary units; `B` allowed).
pub fn parse_bytes(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let digits_end = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(digits_end);
    let number: u64 = number
        .parse()
        .map_err(|_| "not a size like 16777216, 64KiB, 16MiB or 1GiB".to_string())?;
    let factor: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "kib" => 1 << 10,
        "mib" => 1 << 20,
        "gib" => 1 << 30,
        _ => return Err("unknown unit; use B, KiB, MiB or GiB".to_string()),
    };
    number
        .checked_mul(factor)
        .ok_or_else(|| "too large".to_string())
}

/// The server settings, for [`platform::run`].
impl AsRef<ServerArgs> for Config {
    fn as_ref(&self) -> &ServerArgs {
        &self.server
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use platform::config::{try_parse_from, ParseOutcome};

    #[test]
    fn sizes_parse_with_binary_units() {
        assert_eq!(parse_bytes("4096"), Ok(4096));
        assert_eq!(parse_bytes("64KiB"), Ok(65536));
        assert_eq!(parse_bytes("16 MiB"), Ok(16 << 20));
        assert_eq!(parse_bytes("1gib"), Ok(1 << 30));
        assert!(parse_bytes("12MB").is_err());
        assert!(parse_bytes("lots").is_err());
        assert!(parse_bytes("99999999999999999999GiB").is_err());
    }

    #[test]
    fn local_defaults_match_the_contract() {
        let config = Config::local("/tmp/x".into());
        assert_eq!(config.simulated_latency_ms, 3000);
        assert_eq!(config.log_segment_bytes, 16 << 20);
        assert_eq!(config.log_retention_bytes, 768 << 20);
        assert_eq!(config.server.listen_addr, Some(DEFAULT_ADDR));
        assert!(config.validate().is_ok());
    }

    #[test]
    fn bad_sizes_name_their_variable() {
        match try_parse_from::<Config, _, _>(["data-api", "--log-segment-bytes", "big"]) {
            Err(ParseOutcome::Invalid(e)) => {
                assert!(e.variable.starts_with("LOG_SEGMENT_BYTES"), "{e}")
            }
            other => panic!("expected invalid, got {other:?}"),
        }
        let mut config = Config::local("/tmp/x".into());
        config.log_retention_bytes = config.log_segment_bytes;
        assert_eq!(
            config.validate().unwrap_err().variable,
            "LOG_RETENTION_BYTES"
        );
        config.log_segment_bytes = 100;
        assert_eq!(config.validate().unwrap_err().variable, "LOG_SEGMENT_BYTES");
    }

    #[test]
    fn instance_names_must_be_one_safe_folder() {
        for bad in ["", "..", ".hidden", "a/b", "a b", &"x".repeat(129)] {
            assert!(validate_instance(bad).is_err(), "{bad:?}");
        }
        for good in ["data-api-0", "host.example", "pod_1"] {
            assert!(validate_instance(good).is_ok(), "{good:?}");
        }
        let mut config = Config::local("/tmp/x".into());
        config.instance_id = Some("../escape".into());
        assert_eq!(config.instance().unwrap_err().variable, "INSTANCE_ID");
        // The imported history's folder is no live instance's.
        config.instance_id = Some("legacy".into());
        assert_eq!(config.instance().unwrap_err().variable, "INSTANCE_ID");
        config.instance_id = None;
        assert!(
            config.instance().is_ok(),
            "the hostname is a valid default here"
        );
    }
}
