//! `backend-api`: see the crate documentation and README.md.

#[tokio::main]
async fn main() -> std::process::ExitCode {
    platform::run(backend_api::DEFAULT_ADDR, backend_api::service).await
}
