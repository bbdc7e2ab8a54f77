use data_api::{Config, StartError, DEFAULT_ADDR};
use platform::Shutdown;

#[tokio::main]
async fn main() {
    let config: Config = platform::config::parse_checked_or_exit();
    platform::telemetry::init(config.server.log_format);
    let service = match data_api::service(config).await {
        Ok(service) => service,
        Err(StartError::Config(err)) => err.exit(),
    };
    let running = match service.bind(DEFAULT_ADDR).await {
        Ok(running) => running,
        Err(err) => {
            tracing::error!(error = %err, "cannot bind the listen address");
            std::process::exit(1);
        }
    };
    if let Err(err) = running.serve(Shutdown::on_signals()).await {
        tracing::error!(error = %err, "server failed");
        std::process::exit(1);
    }
}
