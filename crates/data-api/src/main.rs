//! `data-api`: see the crate documentation and README.md.

fn main() -> std::process::ExitCode {
    let mut args = std::env::args_os().skip(1);
    let subcommand = args.next();
    match subcommand.as_ref().and_then(|s| s.to_str()) {
        Some("import-legacy") => data_api::import::main(args),
        Some("backup") => data_api::backup::backup_main(args),
        Some("verify") => data_api::backup::verify_main(args),
        Some("restore") => data_api::backup::restore_main(args),
        _ => serve(),
    }
}

#[tokio::main]
async fn serve() -> std::process::ExitCode {
    platform::run(data_api::DEFAULT_ADDR, data_api::service).await
}
