//! `data-api`: see the crate documentation and README.md.

fn main() -> std::process::ExitCode {
    let mut args = std::env::args_os().skip(1);
    if args.next().is_some_and(|first| first == "import-legacy") {
        return data_api::import::main(args);
    }
    serve()
}

#[tokio::main]
async fn serve() -> std::process::ExitCode {
    platform::run(data_api::DEFAULT_ADDR, data_api::service).await
}
