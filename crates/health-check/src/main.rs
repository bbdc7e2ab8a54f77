//! `health-check`: see the crate documentation and README.md.

#[tokio::main(flavor = "current_thread")]
async fn main() {
    // Its memory holds webhook URLs: no core file (platform::core_dumps).
    let core_dumps = platform::core_dumps::disable();
    let cli: health_check::cli::Cli = platform::config::parse_checked_or_exit();
    if let Err(err) = core_dumps {
        eprintln!("health-check: cannot disable core dumps (RLIMIT_CORE): {err}");
    }
    let code = health_check::cli::run(cli).await;
    std::process::exit(code);
}
