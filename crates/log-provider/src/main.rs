//! `log-provider`: see the crate documentation and README.md. `log-provider dev-certs ...`
//! makes the certificates to serve HTTPS with in dev (see `dev_certs`) and exits.

fn main() -> std::process::ExitCode {
    let mut args = std::env::args_os();
    if args.nth(1).is_some_and(|first| first == "dev-certs") {
        return log_provider::dev_certs::main(std::env::args_os().skip(1));
    }
    serve()
}

#[tokio::main]
async fn serve() -> std::process::ExitCode {
    platform::run(log_provider::DEFAULT_ADDR, log_provider::service).await
}
