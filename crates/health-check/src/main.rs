//! `health-check`: see the crate documentation and README.md.

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let cli: health_check::cli::Cli = platform::config::parse_checked_or_exit();
    let code = health_check::cli::run(cli).await;
    std::process::exit(code);
}
