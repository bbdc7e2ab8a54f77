//! `abn-stack`: the whole system in one process, for a first look and local development.
//!
//! `cargo run --release` starts log-provider, backend-api (wired to it with a key generated at
//! start and never printed), data-api (records under `./var/logs`) and `health-check serve` (its
//! history under `./var/health`, its status page on 127.0.0.1:5003), prints the URLs to try,
//! the status page's among them, and stops gracefully on Ctrl-C.

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;
use platform::config::{parse_duration, parse_or_exit, LogFormat, ServerArgs};
use platform::{telemetry, RunningService, Shutdown};
use rand::Rng;
use secrecy::SecretString;

/// Runs every abn-stack service in one process on embedded defaults.
#[derive(Parser, Debug)]
#[command(name = "abn-stack", version, about)]
struct Cli {
    /// Folder for data-api records (`<dir>/logs`) and the health history (`<dir>/health`).
    #[arg(long, env = "ABN_VAR_DIR", default_value = "./var")]
    var_dir: PathBuf,

    /// Address of backend-api.
    #[arg(long, env = "ABN_BACKEND_ADDR", default_value_t = backend_api::DEFAULT_ADDR)]
    backend_addr: SocketAddr,

    /// Address of data-api.
    #[arg(long, env = "ABN_DATA_ADDR", default_value_t = data_api::DEFAULT_ADDR)]
    data_addr: SocketAddr,

    /// Address of the stand-in log provider.
    #[arg(long, env = "ABN_PROVIDER_ADDR", default_value_t = log_provider::DEFAULT_ADDR)]
    provider_addr: SocketAddr,

    /// Simulated work of backend-api `/api_1`, in milliseconds.
    #[arg(long, env = "ABN_API_LATENCY_MS", default_value_t = 500)]
    api_latency_ms: u64,

    /// Simulated work of data-api `GET /`, in milliseconds (legacy containers: 3000).
    #[arg(long, env = "ABN_DATA_LATENCY_MS", default_value_t = 300)]
    data_latency_ms: u64,

    /// Address of the health-check status page (`health-check serve`).
    #[arg(long, env = "ABN_HEALTH_ADDR", default_value_t = health_check::serve::DEFAULT_ADDR)]
    health_addr: SocketAddr,

    /// How often the health-check loop probes every service.
    #[arg(long, env = "ABN_HEALTH_INTERVAL", default_value = "10s", value_parser = parse_duration)]
    health_interval: Duration,

    /// Print the health-check's legacy line per probe on stdout.
    #[arg(long, env = "ABN_PRINT_HEALTH")]
    print_health: bool,

    /// Log format: text on a terminal, json otherwise.
    #[arg(long, env = "LOG_FORMAT", value_enum)]
    log_format: Option<LogFormat>,
}

#[tokio::main]
async fn main() {
    let core_dumps = platform::core_dumps::disable();
    let cli: Cli = parse_or_exit();
    let _logs = telemetry::init(cli.log_format);
    if let Err(err) = core_dumps {
        tracing::warn!(error = %err, "cannot disable core dumps (RLIMIT_CORE)");
    }
    let shutdown = Shutdown::on_signals();
    match run(cli, shutdown).await {
        Ok(()) => tracing::info!("abn-stack stopped"),
        Err(err) => {
            tracing::error!(error = %err, "abn-stack failed");
            eprintln!("abn-stack: {err}");
            telemetry::flush();
            std::process::exit(1);
        }
    }
}

async fn run(cli: Cli, shutdown: Shutdown) -> Result<(), String> {
    let key = generated_key();

    let mut provider = log_provider::Config::local(key.clone());
    provider.server = ServerArgs::local(cli.provider_addr);
    let provider = log_provider::service(provider)
        .await
        .map_err(|e| e.to_string())?;
    let provider = bind(provider, cli.provider_addr, "log-provider").await?;

    let mut backend = backend_api::Config::local();
    backend.server = ServerArgs::local(cli.backend_addr);
    backend.simulated_latency_ms = cli.api_latency_ms;
    // The provider runs in this process: plain HTTP to it never leaves the machine. An
    // unspecified bind (0.0.0.0) is reached over loopback; any other address is this machine's
    // own, which backend-api cannot tell from a remote one, hence the flag.
    let provider_addr = match provider.local_addr() {
        addr if addr.ip().is_unspecified() => {
            std::net::SocketAddr::from((std::net::Ipv4Addr::LOCALHOST, addr.port()))
        }
        addr => addr,
    };
    backend.allow_plaintext = !provider_addr.ip().is_loopback();
    backend.external_logs_url = Some(
        format!("http://{provider_addr}/v1/logs")
            .parse()
            .expect("a socket address makes a valid URL"),
    );
    backend.external_integration_key = Some(key);
    let backend = backend_api::service(backend)
        .await
        .map_err(|e| e.to_string())?;
    let backend = bind(backend, cli.backend_addr, "backend-api").await?;

    let mut data = data_api::Config::local(cli.var_dir.join("logs"));
    data.server = ServerArgs::local(cli.data_addr);
    data.simulated_latency_ms = cli.data_latency_ms;
    let data = data_api::service(data).await.map_err(|e| e.to_string())?;
    let data = bind(data, cli.data_addr, "data-api").await?;

    let history = cli.var_dir.join("health").join("health_check.log");
    let targets = vec![
        health_check::Target::new(
            "backend-api",
            format!("http://{}/readyz", backend.local_addr()),
        ),
        health_check::Target::new("data-api", format!("http://{}/readyz", data.local_addr())),
        health_check::Target::new(
            "log-provider",
            format!("http://{}/readyz", provider.local_addr()),
        ),
    ];
    let mut health =
        health_check::RunConfig::new(targets, health_check::HistoryOutput::file(&history));
    health.print_human_lines = cli.print_health;

    let status = health_check::serve::status_service(
        health,
        cli.health_interval,
        ServerArgs::local(cli.health_addr),
        shutdown.clone(),
    )
    .await
    .map_err(|e| e.to_string())?;
    let status_page = bind(status.service, cli.health_addr, "health-check").await?;

    print_banner(&backend, &data, &provider, &status_page, &history);

    let (backend, data, provider, status_page, health) = tokio::join!(
        backend.serve(shutdown.clone()),
        data.serve(shutdown.clone()),
        provider.serve(shutdown.clone()),
        status_page.serve(shutdown.clone()),
        status.probes,
    );
    backend
        .and(data)
        .and(provider)
        .and(status_page)
        .map_err(|e| e.to_string())?;
    health.map(|_| ()).map_err(|e| e.to_string())
}

/// A fresh random key per run: the provider and the backend share it; nobody else sees it.
fn generated_key() -> SecretString {
    let mut bytes = [0u8; 24];
    rand::rng().fill_bytes(&mut bytes);
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    SecretString::from(hex)
}

async fn bind(
    service: platform::Service,
    addr: SocketAddr,
    name: &str,
) -> Result<RunningService, String> {
    service
        .bind(addr)
        .await
        .map_err(|e| format!("{name} cannot listen on {addr}: {e}"))
}

fn print_banner(
    backend: &RunningService,
    data: &RunningService,
    provider: &RunningService,
    status_page: &RunningService,
    history: &std::path::Path,
) {
    let (b, d, p, h) = (
        backend.local_addr(),
        data.local_addr(),
        provider.local_addr(),
        status_page.local_addr(),
    );
    let banner = format!(
        "\nabn-stack is running. Try:\n\
         \x20 backend-api   http://{b}   curl http://{b}/api_1\n\
         \x20                             curl 'http://{b}/download_external_logs?limit=5'\n\
         \x20 data-api      http://{d}   curl http://{d}/   (writes a record)\n\
         \x20                             curl 'http://{d}/logs?limit=10'\n\
         \x20 log-provider  http://{p}   (needs the per-run key; backend-api has it)\n\
         \x20 status page   http://{h}/   (health-check serve: /api/v1/status, /badge/<name>.svg)\n\
         \x20 every service: /healthz /readyz /metrics /version /openapi.json\n\
         \x20 health history: {}   (cargo run -p health-check -- report --input {})\n\
         Ctrl-C stops everything gracefully.\n",
        history.display(),
        history.display(),
    );
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(banner.as_bytes());
    let _ = out.flush();
}
