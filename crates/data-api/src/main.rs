//! `data-api`: see the crate documentation and README.md.

#[tokio::main]
async fn main() -> std::process::ExitCode {
    platform::run(data_api::DEFAULT_ADDR, data_api::service).await
}
