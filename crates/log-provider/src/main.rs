//! `log-provider`: see the crate documentation and README.md.

#[tokio::main]
async fn main() -> std::process::ExitCode {
    platform::run(log_provider::DEFAULT_ADDR, log_provider::service).await
}
