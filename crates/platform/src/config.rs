//! Configuration helpers: environment variables first (what Kubernetes passes), each also a flag.
//!
//! Every binary parses its configuration with [`parse_or_exit`], so a bad value stops the process
//! at start with exit code 2 and exactly one line that names the variable and the problem. Values
//! of arguments marked `hide_env_values` (secrets) are never echoed.

use std::fmt;
use std::net::SocketAddr;
use std::time::Duration;

use clap::error::{ContextKind, ContextValue, ErrorKind};
use clap::{Args, CommandFactory, FromArgMatches, Parser, ValueEnum};

/// `LOG_FORMAT`'s values; telemetry owns them (config reads them, never the other way round).
pub use crate::telemetry::LogFormat;

/// Exit code for usage and configuration errors (the contract for every binary).
pub const EXIT_CONFIG: i32 = 2;

/// Server settings shared by every HTTP service. Flatten into a service's own `Parser`.
#[derive(Args, Debug, Clone)]
pub struct ServerArgs {
    /// Socket address to bind; port 0 picks a free port (the bound address is logged).
    /// Default: the service's local address (127.0.0.1 and its port).
    #[arg(long, env = "LISTEN_ADDR")]
    pub listen_addr: Option<SocketAddr>,

    /// After SIGTERM: how long to keep serving with /readyz at 503, so load balancers stop
    /// sending traffic before the listener closes (e.g. "5s" in containers).
    #[arg(long, env = "DRAIN_PERIOD", default_value = "0s", value_parser = parse_duration)]
    pub drain_period: Duration,

    /// After the drain: how long in-flight requests may take to finish before the process exits.
    #[arg(long, env = "SHUTDOWN_TIMEOUT", default_value = "10s", value_parser = parse_duration)]
    pub shutdown_timeout: Duration,

    /// Longest time a request may take until its response starts (408/504 afterwards).
    /// Longer than backend-api's upstream budget (30 s) so that budget answers first.
    #[arg(long, env = "REQUEST_TIMEOUT", default_value = "60s", value_parser = parse_duration)]
    pub request_timeout: Duration,

    /// Longest time a client may take to send its request headers (slow clients are closed).
    #[arg(long, env = "HEADER_READ_TIMEOUT", default_value = "10s", value_parser = parse_duration)]
    pub header_read_timeout: Duration,

    /// Largest request body accepted, in bytes (413 beyond it).
    #[arg(long, env = "MAX_BODY_BYTES", default_value_t = 64 * 1024)]
    pub max_body_bytes: usize,

    /// Largest request head (request line and headers) accepted, in bytes (431 beyond it).
    #[arg(long, env = "MAX_HEADER_BYTES", default_value_t = 16 * 1024, value_parser = clap::value_parser!(u32).range(8192..=1_048_576))]
    pub max_header_bytes: u32,

    /// Most connections served at once; further connections wait in the listen backlog.
    #[arg(long, env = "MAX_CONNECTIONS", default_value_t = 10_000, value_parser = clap::value_parser!(u32).range(1..))]
    pub max_connections: u32,

    /// Log format: json (default when stdout is not a terminal) or text.
    #[arg(long, env = "LOG_FORMAT", value_enum)]
    pub log_format: Option<LogFormat>,

    /// One structured line per finished request at info (`/healthz`, `/readyz`, `/metrics` at
    /// debug, so probes do not flood the log), or none: `off` for operators who rely on a mesh's
    /// access logs.
    #[arg(long, env = "ACCESS_LOG", value_enum, default_value_t = Switch::On)]
    pub access_log: Switch,

    /// OpenTelemetry traces (off unless an OTLP endpoint is set).
    #[command(flatten)]
    pub otel: crate::otel::OtelArgs,

    #[command(flatten)]
    pub check: CheckConfig,
}

#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum Switch {
    On,
    Off,
}

/// `--check-config`, flattened into every binary's command line (services get it through
/// [`ServerArgs`]).
#[derive(Args, Debug, Clone, Copy, Default)]
pub struct CheckConfig {
    /// Parse and cross-check the whole configuration as a start would, print one line
    /// ("configuration ok" or the error) and exit 0 or 2. Binds nothing, touches no volume.
    #[arg(long, global = true)]
    pub check_config: bool,
}

/// A binary's configuration: parsed by clap, then cross-checked by [`Validate::validate`], the
/// same function the start runs, so `--check-config` and a start can never disagree.
pub trait Validate: Parser {
    /// Whether `--check-config` was given.
    fn check_requested(&self) -> bool;
    /// Every check a start makes before it binds or opens anything; never echoes a secret.
    fn validate(&self) -> Result<(), ConfigError>;
}

/// The line `--check-config` prints for a valid configuration.
pub const CONFIG_OK: &str = "configuration ok";

/// Parses the process arguments and environment like [`parse_or_exit`]. With `--check-config` it
/// then validates, prints one line ([`CONFIG_OK`] or the error) and exits 0 or 2; otherwise it
/// returns the parsed configuration for the start (which validates again, the same way).
pub fn parse_checked_or_exit<T: Validate>() -> T {
    let config: T = parse_or_exit();
    if config.check_requested() {
        match config.validate() {
            Ok(()) => {
                println!("{CONFIG_OK}");
                std::process::exit(0)
            }
            Err(err) => err.exit(),
        }
    }
    config
}

impl ServerArgs {
    /// Defaults for in-process use (tests, the all-in-one runner): port 0, no drain.
    pub fn local(listen_addr: SocketAddr) -> Self {
        let mut args = ServerArgs::try_parse_from_empty();
        args.listen_addr = Some(listen_addr);
        args
    }

    fn try_parse_from_empty() -> Self {
        #[derive(Parser)]
        struct Only {
            #[command(flatten)]
            server: ServerArgs,
        }
        // Parse from no arguments and no environment: the declared defaults, in one place.
        let cmd = Only::command();
        let cmd = cmd.mut_args(|a| a.env(None::<&str>));
        let matches = cmd.get_matches_from(["only"]);
        Only::from_arg_matches(&matches)
            .expect("defaults parse")
            .server
    }

    /// The address to bind, or the service's default.
    pub fn listen_addr_or(&self, default: SocketAddr) -> SocketAddr {
        self.listen_addr.unwrap_or(default)
    }
}

/// Parses a human duration such as `500ms`, `5s` or `1m`.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    humantime::parse_duration(s.trim())
        .map_err(|e| format!("not a duration like 500ms or 5s ({e})"))
}

/// A configuration problem found after parsing (for example two settings that contradict).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// The environment variable at fault, as an operator would set it.
    pub variable: String,
    /// What is wrong, never including a secret's value.
    pub problem: String,
}

impl ConfigError {
    pub fn new(variable: impl Into<String>, problem: impl Into<String>) -> Self {
        Self {
            variable: variable.into(),
            problem: problem.into(),
        }
    }

    /// Prints the one-line error and exits with [`EXIT_CONFIG`].
    pub fn exit(&self) -> ! {
        // What was logged before the error (the log writer's queue), then the one line.
        crate::telemetry::flush();
        eprintln!("{self}");
        std::process::exit(EXIT_CONFIG)
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "configuration error: {}: {}",
            self.variable, self.problem
        )
    }
}

impl std::error::Error for ConfigError {}

/// Parses the process arguments and environment; on error prints one line and exits 2.
/// `--help` and `--version` print as usual and exit 0.
pub fn parse_or_exit<T: Parser>() -> T {
    parse_from_or_exit(std::env::args_os())
}

/// As [`parse_or_exit`], from the given arguments (the first is the program name).
pub fn parse_from_or_exit<T, I, A>(args: I) -> T
where
    T: Parser,
    I: IntoIterator<Item = A>,
    A: Into<std::ffi::OsString> + Clone,
{
    match try_parse_from::<T, _, _>(args) {
        Ok(parsed) => parsed,
        Err(ParseOutcome::Exit(err)) => err.exit(),
        Err(ParseOutcome::Invalid(err)) => err.exit(),
    }
}

/// Why parsing did not give a configuration.
#[derive(Debug)]
pub enum ParseOutcome {
    /// Help or version was asked for: clap prints it and exits 0.
    Exit(clap::Error),
    /// The configuration is invalid.
    Invalid(ConfigError),
}

/// Parses without exiting, turning clap's multi-line error into one [`ConfigError`].
pub fn try_parse_from<T, I, A>(args: I) -> Result<T, ParseOutcome>
where
    T: Parser,
    I: IntoIterator<Item = A>,
    A: Into<std::ffi::OsString> + Clone,
{
    let mut cmd = T::command();
    let matches = match cmd.try_get_matches_from_mut(args) {
        Ok(m) => m,
        Err(err) => return Err(classify(&cmd, err)),
    };
    let mut matches = matches;
    T::from_arg_matches_mut(&mut matches).map_err(|err| classify(&cmd, err))
}

fn classify(cmd: &clap::Command, err: clap::Error) -> ParseOutcome {
    match err.kind() {
        ErrorKind::DisplayHelp
        | ErrorKind::DisplayVersion
        | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => ParseOutcome::Exit(err),
        _ => ParseOutcome::Invalid(one_line(cmd, &err)),
    }
}

/// Renders a clap error as one line naming the environment variable (and flag) at fault.
fn one_line(cmd: &clap::Command, err: &clap::Error) -> ConfigError {
    let invalid_arg = match err.get(ContextKind::InvalidArg) {
        Some(ContextValue::String(s)) => Some(s.clone()),
        Some(ContextValue::Strings(v)) => v.first().cloned(),
        _ => None,
    };
    let arg = invalid_arg
        .as_deref()
        .and_then(|display| find_arg(cmd, display));
    let variable = match arg {
        Some(a) => {
            let flag = a
                .get_long()
                .map(|l| format!("--{l}"))
                .unwrap_or_else(|| a.get_id().to_string());
            match a.get_env() {
                Some(env) => format!("{} ({flag})", env.to_string_lossy()),
                None => flag,
            }
        }
        None => invalid_arg.unwrap_or_else(|| "arguments".to_string()),
    };
    let secret = arg.is_some_and(|a| a.is_hide_env_values_set());
    let problem = match (err.kind(), err.get(ContextKind::InvalidValue)) {
        (ErrorKind::InvalidValue | ErrorKind::ValueValidation, Some(ContextValue::String(v)))
            if !secret =>
        {
            let reason = source_reason(err);
            format!("invalid value {v:?}{reason}")
        }
        (ErrorKind::InvalidValue | ErrorKind::ValueValidation, _) => {
            format!("invalid value{}", source_reason(err))
        }
        (ErrorKind::MissingRequiredArgument, _) => "required but not set".to_string(),
        _ => first_line_of(err),
    };
    ConfigError { variable, problem }
}

fn source_reason(err: &clap::Error) -> String {
    use std::error::Error as _;
    if let Some(src) = err.source() {
        return format!(": {src}");
    }
    match err.get(ContextKind::ValidValue) {
        Some(ContextValue::Strings(valid)) => format!(": expected one of {}", valid.join(", ")),
        _ => String::new(),
    }
}

fn first_line_of(err: &clap::Error) -> String {
    let text = err.render().to_string();
    text.lines()
        .next()
        .unwrap_or("invalid arguments")
        .trim_start_matches("error: ")
        .to_string()
}

fn find_arg<'a>(cmd: &'a clap::Command, display: &str) -> Option<&'a clap::Arg> {
    // clap shows an argument as "--long <VALUE>", "<NAME>" or "--long"; match on the long name.
    let long = display
        .split_whitespace()
        .next()
        .unwrap_or(display)
        .trim_start_matches("--");
    cmd.get_arguments()
        .find(|a| a.get_long() == Some(long) || a.get_id().as_str() == long)
        .or_else(|| cmd.get_subcommands().find_map(|sub| find_arg(sub, display)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Parser, Debug)]
    struct Demo {
        #[command(flatten)]
        server: ServerArgs,
        #[arg(long, env = "DEMO_SECRET", hide_env_values = true, value_parser = clap::value_parser!(u8))]
        secret: Option<u8>,
    }

    fn invalid(args: &[&str]) -> ConfigError {
        match try_parse_from::<Demo, _, _>(args.iter().copied()) {
            Err(ParseOutcome::Invalid(e)) => e,
            other => panic!("expected an invalid configuration, got {other:?}"),
        }
    }

    #[test]
    fn bad_listen_addr_names_variable_and_value_on_one_line() {
        let e = invalid(&["demo", "--listen-addr", "nonsense"]);
        assert!(e.variable.starts_with("LISTEN_ADDR"), "{e}");
        assert!(e.problem.contains("\"nonsense\""), "{e}");
        assert_eq!(e.to_string().lines().count(), 1);
    }

    #[test]
    fn bad_duration_is_explained() {
        let e = invalid(&["demo", "--drain-period", "soon"]);
        assert!(e.variable.starts_with("DRAIN_PERIOD"), "{e}");
        assert!(e.problem.contains("duration"), "{e}");
    }

    #[test]
    fn secret_values_are_never_echoed() {
        let e = invalid(&["demo", "--secret", "hunter2"]);
        assert!(e.variable.starts_with("DEMO_SECRET"), "{e}");
        assert!(!e.to_string().contains("hunter2"), "{e}");
    }

    #[test]
    fn local_defaults_come_from_declarations() {
        let args = ServerArgs::local("127.0.0.1:0".parse().unwrap());
        assert_eq!(args.drain_period, Duration::ZERO);
        assert_eq!(args.max_body_bytes, 64 * 1024);
    }
}
