use log_provider::{service, Config, DEFAULT_ADDR};
use platform::{config, telemetry, Shutdown};

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let config: Config = config::parse_or_exit();
    telemetry::init(config.server.log_format);
    let running = service(config).bind(DEFAULT_ADDR).await?;
    running.serve(Shutdown::on_signals()).await
}
