use log_provider::{service, Config, DEFAULT_ADDR};
use platform::{config, telemetry, Shutdown};

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let config: Config = config::parse_checked_or_exit();
    telemetry::init(config.server.log_format);
    // Before binding, so a signal that arrives once the address is logged is never missed.
    let shutdown = Shutdown::on_signals();
    let running = service(config).bind(DEFAULT_ADDR).await?;
    running.serve(shutdown).await
}
