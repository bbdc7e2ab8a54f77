//! The command line: flags with environment variables, their validation, and what `main` runs.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use clap::{Args, Parser, Subcommand, ValueEnum};
use platform::config::{CheckConfig, ConfigError, LogFormat, ServerArgs, Validate, EXIT_CONFIG};
use platform::telemetry::{self, LogStream};
use platform::Shutdown;

use crate::target::{check_unique_names, parse_target_arg, Target};
use crate::{
    file_config, history, report, run_loop, run_once, serve, HistoryOutput, LoopSummary, RunConfig,
    RunError,
};

pub const EXIT_HEALTHY: i32 = 0;
/// A target failed, or the history could not be written.
pub const EXIT_UNHEALTHY: i32 = 1;
/// Invalid usage or configuration (platform's code for every binary).
pub const EXIT_USAGE: i32 = EXIT_CONFIG;

pub const DEFAULT_OUTPUT: &str = "/var/data/health/health_check.log";

/// Probes HTTP targets and keeps a JSON history; `report` summarizes that history.
///
/// Exit codes: 0 every target healthy, 1 a target unhealthy or the history not written,
/// 2 invalid usage or configuration.
#[derive(Parser, Debug)]
#[command(name = "health-check", version)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,

    #[command(flatten)]
    pub probe: ProbeArgs,

    #[command(flatten)]
    pub check: CheckConfig,
}

impl Validate for Cli {
    fn check_requested(&self) -> bool {
        let serve_check = match &self.command {
            Some(Command::Serve(args)) => args.server.check.check_config,
            _ => false,
        };
        self.check.check_config || serve_check
    }

    /// The probe command's targets, YAML file and history settings, as a run resolves them;
    /// `report` has nothing beyond what its parser checks (its input is data, read when it runs).
    fn validate(&self) -> Result<(), ConfigError> {
        match &self.command {
            Some(Command::Report(_)) => Ok(()),
            Some(Command::Serve(args)) => args.resolve().map(drop),
            None => self.probe.resolve().map(drop),
        }
    }
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Per target: probes, uptime %, p50/p99 latency and the last failure, from the history.
    Report(ReportArgs),
    /// Probe every interval and serve the status page (`/`), `/api/v1/status`,
    /// `/badge/<target>.svg` and per-target metrics on LISTEN_ADDR (127.0.0.1:5003).
    Serve(Box<ServeArgs>),
}

#[derive(Args, Debug)]
pub struct ServeArgs {
    /// How often every target is probed (the page refreshes as often).
    #[arg(long, env = "HEALTHCHECK_INTERVAL", default_value = "30s", value_parser = positive_duration)]
    pub interval: Duration,

    #[command(flatten)]
    pub run: RunArgs,

    #[command(flatten)]
    pub server: ServerArgs,
}

impl ServeArgs {
    /// The run configuration; the page is built from the history, so it must be a file.
    pub fn resolve(&self) -> Result<RunConfig, ConfigError> {
        let config = self.run.resolve()?;
        serve::require_history_file(&config)?;
        Ok(config)
    }
}

#[derive(Args, Debug)]
pub struct ProbeArgs {
    /// Probe once and exit: 0 when every target is healthy, 1 otherwise (the default when no
    /// interval is set; wins over HEALTHCHECK_INTERVAL).
    #[arg(long)]
    pub once: bool,

    /// Probe every interval (e.g. 5s) until SIGTERM, like the legacy `-s`.
    #[arg(long, env = "HEALTHCHECK_INTERVAL", value_parser = positive_duration)]
    pub interval: Option<Duration>,

    #[command(flatten)]
    pub run: RunArgs,

    /// Format of the diagnostic log on stderr: json (default when stderr is not a terminal) or text.
    #[arg(long, env = "LOG_FORMAT", value_enum)]
    pub log_format: Option<LogFormat>,

    /// OpenTelemetry traces of each run and probe (off unless an OTLP endpoint is set).
    #[command(flatten)]
    pub otel: platform::otel::OtelArgs,
}

/// What a probe run needs, whether once, in a loop or serving.
#[derive(Args, Debug)]
pub struct RunArgs {
    /// A target as name=url; repeatable, or comma-separated in the variable.
    #[arg(long = "target", env = "HEALTHCHECK_TARGETS", value_name = "NAME=URL",
          value_delimiter = ',', value_parser = parse_target_arg)]
    pub targets: Vec<Target>,

    /// YAML file of targets with optional conditions (expect_status, max_latency,
    /// body_contains); its targets are probed as well as those given by --target.
    #[arg(long, env = "HEALTHCHECK_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// History file the JSON lines are appended to, or "-" for stdout.
    #[arg(long, env = "HEALTHCHECK_OUTPUT", value_name = "FILE|-", default_value = DEFAULT_OUTPUT)]
    pub output: PathBuf,

    /// The history file is rotated when it would grow past this many bytes.
    #[arg(long, env = "HEALTHCHECK_OUTPUT_MAX_BYTES", default_value_t = 10 * 1024 * 1024,
          value_parser = clap::value_parser!(u64).range(1024..))]
    pub output_max_bytes: u64,

    /// Rotated history files kept (<file>.1 is the newest).
    #[arg(long, env = "HEALTHCHECK_OUTPUT_KEEP_FILES", default_value_t = 5,
          value_parser = clap::value_parser!(u32).range(0..=1000))]
    pub output_keep_files: u32,

    /// Longest time one probe may take, connection included.
    #[arg(long, env = "HEALTHCHECK_TIMEOUT", default_value = "2s", value_parser = positive_duration)]
    pub timeout: Duration,

    /// Append the legacy human lines to this file as well (the legacy script wrote
    /// /var/log/health_check.log), dated in TZ like `date`.
    #[arg(long, env = "HEALTHCHECK_LEGACY_LOG", value_name = "FILE")]
    pub legacy_log: Option<PathBuf>,
}

#[derive(Args, Debug)]
pub struct ReportArgs {
    /// The history file (its rotated siblings <file>.N are read too).
    #[arg(long, env = "HEALTHCHECK_OUTPUT", value_name = "FILE", default_value = DEFAULT_OUTPUT)]
    pub input: PathBuf,

    /// Only probes from this long ago until now (e.g. 24h); the whole history by default.
    #[arg(long, value_parser = positive_duration)]
    pub since: Option<Duration>,

    #[arg(long, value_enum, default_value_t = ReportFormat::Text)]
    pub format: ReportFormat,
}

#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReportFormat {
    Text,
    Json,
    /// A self-contained status page.
    Html,
}

fn positive_duration(s: &str) -> Result<Duration, String> {
    let d = platform::config::parse_duration(s)?;
    if d.is_zero() {
        return Err("must be more than 0".to_string());
    }
    Ok(d)
}

/// How the probe command runs.
#[derive(Debug, Clone)]
pub enum Mode {
    Once,
    Loop(Duration),
}

impl ProbeArgs {
    /// The run configuration and mode, or the one configuration line that says what is wrong.
    pub fn resolve(&self) -> Result<(RunConfig, Mode), ConfigError> {
        let mode = match self.interval {
            Some(every) if !self.once => Mode::Loop(every),
            _ => Mode::Once,
        };
        Ok((self.run.resolve()?, mode))
    }
}

impl RunArgs {
    /// The run configuration, or the one configuration line that says what is wrong.
    pub fn resolve(&self) -> Result<RunConfig, ConfigError> {
        const TARGETS: &str = "HEALTHCHECK_TARGETS (--target)";
        const CONFIG: &str = "HEALTHCHECK_CONFIG (--config)";
        check_unique_names(&self.targets).map_err(|e| ConfigError::new(TARGETS, e))?;
        let mut targets = self.targets.clone();
        let mut alerting = None;
        if let Some(path) = &self.config {
            let loaded = file_config::load(path).map_err(|e| ConfigError::new(CONFIG, e))?;
            alerting = loaded.alerting;
            let from_file = loaded.targets;
            check_unique_names(&from_file).map_err(|e| ConfigError::new(CONFIG, e))?;
            targets.extend(from_file);
            check_unique_names(&targets).map_err(|e| {
                ConfigError::new(CONFIG, format!("{e}: in the file and in {TARGETS}"))
            })?;
        }
        if targets.is_empty() {
            return Err(ConfigError::new(
                TARGETS,
                "no targets: set HEALTHCHECK_TARGETS=name=url,..., --target name=url or HEALTHCHECK_CONFIG",
            ));
        }
        let history = if self.output == Path::new("-") {
            HistoryOutput::Stdout
        } else {
            HistoryOutput::File {
                path: self.output.clone(),
                rotation: history::Rotation {
                    max_bytes: self.output_max_bytes,
                    keep_files: self.output_keep_files,
                },
            }
        };
        if alerting.is_some() && history == HistoryOutput::Stdout {
            return Err(ConfigError::new(
                "HEALTHCHECK_OUTPUT (--output)",
                "alerting keeps its state beside the history: name a file, not \"-\"",
            ));
        }
        let mut config = RunConfig::new(targets, history).with_timeout(self.timeout);
        config.legacy_log = self.legacy_log.clone();
        config.alerting = alerting;
        Ok(config)
    }
}

/// Runs the parsed command line; returns the process exit code.
pub async fn run(cli: Cli) -> i32 {
    match cli.command {
        Some(Command::Report(args)) => run_report(&args),
        Some(Command::Serve(args)) => serve::run(&args).await,
        None => run_probes(&cli.probe).await,
    }
}

async fn run_probes(args: &ProbeArgs) -> i32 {
    let (config, mode) = match args.resolve() {
        Ok(resolved) => resolved,
        Err(e) => e.exit(),
    };
    // Diagnostics go to stderr: stdout carries the legacy human lines (and `--output -`).
    let _logs = telemetry::init_traced(
        args.log_format,
        LogStream::Stderr,
        &args.otel,
        "health-check",
    );
    let code = match mode {
        Mode::Once => match run_once(&config).await {
            Ok(summary) if summary.healthy() => EXIT_HEALTHY,
            Ok(_) => EXIT_UNHEALTHY,
            Err(e) => fail(&e),
        },
        Mode::Loop(every) => loop_exit_code(run_loop(config, every, Shutdown::on_signals()).await),
    };
    // The runs' spans, before the process ends (bounded).
    platform::otel::flush();
    code
}

/// A loop's exit code (the loop mode's and `serve`'s): 0 when every run wrote its history.
pub(crate) fn loop_exit_code(outcome: Result<LoopSummary, RunError>) -> i32 {
    match outcome {
        Ok(summary) if summary.history_failures == 0 => EXIT_HEALTHY,
        Ok(summary) => {
            eprintln!(
                "health-check: {} of {} runs could not write the health history",
                summary.history_failures, summary.runs
            );
            EXIT_UNHEALTHY
        }
        Err(e) => fail(&e),
    }
}

fn fail(e: &RunError) -> i32 {
    eprintln!("health-check: {e}");
    EXIT_UNHEALTHY
}

fn run_report(args: &ReportArgs) -> i32 {
    const INPUT: &str = "HEALTHCHECK_OUTPUT (--input)";
    let now = SystemTime::now();
    let since = args
        .since
        .map(|d| now.checked_sub(d).unwrap_or(SystemTime::UNIX_EPOCH));
    let mut builder = report::ReportBuilder::new(since);
    if let Err(e) = builder.read_history(&args.input) {
        ConfigError::new(INPUT, format!("cannot read {}: {e}", args.input.display())).exit()
    }
    let built = builder.finish(now);
    let text = match args.format {
        ReportFormat::Text => report::render_text(&built),
        ReportFormat::Json => {
            let mut json = serde_json::to_string_pretty(&built).expect("a report serializes");
            json.push('\n');
            json
        }
        ReportFormat::Html => report::render_html(&built),
    };
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Ok(()) => EXIT_HEALTHY,
        Err(e) => {
            eprintln!("health-check: cannot write the report: {e}");
            EXIT_UNHEALTHY
        }
    }
}
