//! The outgoing HTTP client every binary builds on (backend-api's provider calls, health-check's
//! probes): reqwest with rustls, resolving names with hickory-resolver.
//!
//! Why not glibc's resolver: the images hold static binaries on `scratch`, where glibc's
//! getaddrinfo would need NSS modules that are not there. hickory reads `/etc/resolv.conf` and
//! `/etc/hosts` itself (the container runtime provides both), so a compose service name or a
//! Kubernetes service name resolves the same way inside an image and on a laptop.

use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};

use hickory_resolver::TokioResolver;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};

/// A `reqwest::ClientBuilder` with the pure-Rust resolver installed; add timeouts and build.
pub fn builder() -> reqwest::ClientBuilder {
    reqwest::Client::builder().dns_resolver(Arc::new(HickoryResolver::default()))
}

/// Reads the system configuration on first use, so building a client never touches the disk.
#[derive(Default)]
struct HickoryResolver {
    resolver: OnceLock<Result<TokioResolver, String>>,
}

impl HickoryResolver {
    fn resolver(&self) -> Result<TokioResolver, String> {
        self.resolver
            .get_or_init(|| {
                TokioResolver::builder_tokio()
                    .and_then(|builder| builder.build())
                    .map_err(|e| format!("cannot read the system DNS configuration: {e}"))
            })
            .clone()
    }
}

impl Resolve for HickoryResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let resolver = self.resolver();
        Box::pin(async move {
            let lookup = resolver?.lookup_ip(name.as_str()).await?;
            // reqwest fills in the port of the URL.
            let addrs: Vec<SocketAddr> = lookup.iter().map(|ip| SocketAddr::new(ip, 0)).collect();
            Ok(Box::new(addrs.into_iter()) as Addrs)
        })
    }
}

/// The innermost error of a failed request's chain, where "Connection refused", a name that
/// does not resolve or a TLS problem is named (through `io::Error`s, whose `source()` skips the
/// error they wrap). For the one-line causes backend-api logs and health-check records.
pub fn root_cause(err: &(dyn std::error::Error + 'static)) -> String {
    let mut current = err;
    loop {
        let next = match current.downcast_ref::<std::io::Error>() {
            Some(io) => io
                .get_ref()
                .map(|inner| inner as &(dyn std::error::Error + 'static)),
            None => current.source(),
        };
        match next {
            Some(inner) => current = inner,
            None => return current.to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn resolves_names_from_the_hosts_file() {
        let resolver = HickoryResolver::default();
        let addrs: Vec<SocketAddr> = resolver
            .resolve("localhost".parse().unwrap())
            .await
            .expect("localhost resolves")
            .collect();
        assert!(
            addrs.iter().any(|a| a.ip().is_loopback()),
            "localhost is a loopback address: {addrs:?}"
        );
    }

    #[tokio::test]
    async fn a_client_reaches_a_server_by_name() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let app = axum::Router::new().route("/", axum::routing::get(|| async { "hi" }));
        tokio::spawn(async move { axum::serve(listener, app).await });
        let client = builder().build().unwrap();
        let body = client
            .get(format!("http://localhost:{port}/"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert_eq!(body, "hi");
    }
}
