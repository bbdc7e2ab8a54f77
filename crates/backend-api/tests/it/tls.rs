//! The provider over HTTPS: a private CA from EXTERNAL_LOGS_CA_FILE, a client certificate for
//! mutual TLS, and certificates that must be refused (wrong name, expired, unknown CA) before
//! any request, so the key is never sent. The provider here is a TLS server on port 0 that
//! counts the HTTP requests that reach it; certificates are made with rcgen.

use std::convert::Infallible;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use crate::common::*;
use axum::body::Body;
use test_support::certs::rcgen::{Certificate, KeyPair};
use test_support::certs::Ca;
use tokio_rustls::rustls;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

/// An HTTPS provider with `cert`; with `client_ca`, it demands a client certificate it signed.
/// Returns its port and the count of HTTP requests that reached it.
async fn tls_provider(
    cert: &Certificate,
    key: &KeyPair,
    client_ca: Option<&Ca>,
) -> (u16, Arc<AtomicUsize>) {
    let chain = vec![CertificateDer::from(cert.der().to_vec())];
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
    let builder = rustls::ServerConfig::builder();
    let config = match client_ca {
        None => builder.with_no_client_auth(),
        Some(ca) => {
            let mut roots = rustls::RootCertStore::empty();
            roots
                .add(CertificateDer::from(ca.cert.der().to_vec()))
                .unwrap();
            let verifier = rustls::server::WebPkiClientVerifier::builder(Arc::new(roots))
                .build()
                .unwrap();
            builder.with_client_cert_verifier(verifier)
        }
    }
    .with_single_cert(chain, key)
    .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let reached = Arc::new(AtomicUsize::new(0));
    let counter = reached.clone();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            let counter = counter.clone();
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let service = hyper::service::service_fn(move |_request| {
                    counter.fetch_add(1, Ordering::SeqCst);
                    async { Ok::<_, Infallible>(hyper::Response::new(Body::from("{\"seq\":0}\n"))) }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(tls), service)
                    .await;
            });
        }
    });
    (port, reached)
}

fn write(dir: &Path, name: &str, pem: &str) -> std::path::PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, pem).unwrap();
    path
}

/// One download through a backend with `ca_file` trusted; its status and JSON `code` (if any).
async fn download(port: u16, configure: impl FnOnce(&mut backend_api::Config)) -> (u16, String) {
    let mut config = config(Some(format!("https://localhost:{port}/v1/logs")), Some(KEY));
    configure(&mut config);
    let backend = start_backend(config).await;
    let response = reqwest::get(format!("{}/download_external_logs", backend.base))
        .await
        .unwrap();
    let status = response.status().as_u16();
    let text = response.text().await.unwrap();
    let code = serde_json::from_str::<serde_json::Value>(&text)
        .ok()
        .and_then(|v| v["code"].as_str().map(str::to_string))
        .unwrap_or(text);
    (status, code)
}

#[tokio::test]
async fn a_private_ca_is_trusted_and_bad_certificates_are_refused_before_any_request() {
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::new();
    let ca_file = write(dir.path(), "ca.pem", &ca.cert.pem());
    let trust = |config: &mut backend_api::Config| {
        config.external_logs_ca_file = Some(ca_file.clone());
    };

    let (cert, key) = ca.leaf("localhost", false);
    let (port, reached) = tls_provider(&cert, &key, None).await;
    assert_eq!(
        download(port, trust).await,
        (200, "{\"seq\":0}\n".to_string())
    );
    assert_eq!(reached.load(Ordering::SeqCst), 1);

    // Without the CA file, the same certificate is from an unknown CA.
    assert_eq!(
        download(port, |_| {}).await,
        (502, "provider_certificate_unknown_ca".to_string())
    );
    assert_eq!(
        reached.load(Ordering::SeqCst),
        1,
        "no request with an unknown CA"
    );

    let (cert, key) = ca.leaf("other.example", false);
    let (port, reached) = tls_provider(&cert, &key, None).await;
    assert_eq!(
        download(port, trust).await,
        (502, "provider_certificate_wrong_name".to_string())
    );
    assert_eq!(
        reached.load(Ordering::SeqCst),
        0,
        "no request to a wrong name"
    );

    let (cert, key) = ca.leaf("localhost", true);
    let (port, reached) = tls_provider(&cert, &key, None).await;
    assert_eq!(
        download(port, trust).await,
        (502, "provider_certificate_expired".to_string())
    );
    assert_eq!(
        reached.load(Ordering::SeqCst),
        0,
        "no request to an expired certificate"
    );
}

/// The whole path: backend-api downloads from the real log-provider serving HTTPS.
#[tokio::test]
async fn downloads_from_the_real_provider_over_https() {
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::new();
    let (cert, key) = ca.leaf("localhost", false);
    let mut provider = log_provider::Config::local(secrecy::SecretString::from(KEY.to_string()));
    provider.tls_cert_file = Some(write(dir.path(), "tls.crt", &cert.pem()));
    provider.tls_key_file = Some(write(dir.path(), "tls.key", &key.serialize_pem()));
    let provider =
        test_support::TestApp::start(log_provider::service(provider).await.expect("valid config"))
            .await;
    let addr = provider.addr;
    let ca_file = write(dir.path(), "ca.pem", &ca.cert.pem());
    let mut config = config(
        Some(format!("https://localhost:{}/v1/logs", addr.port())),
        Some(KEY),
    );
    config.external_logs_ca_file = Some(ca_file);
    let backend = start_backend(config).await;
    let response = reqwest::get(format!("{}/download_external_logs?limit=20", backend.base))
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.text().await.unwrap().lines().count(), 20);
    provider.stop().await;
}

#[tokio::test]
async fn a_client_certificate_is_presented_for_mutual_tls() {
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::new();
    let ca_file = write(dir.path(), "ca.pem", &ca.cert.pem());
    let (cert, key) = ca.leaf("localhost", false);
    let (port, reached) = tls_provider(&cert, &key, Some(&ca)).await;
    let (client, client_key) = ca.leaf("backend-api", false);
    let cert_file = write(dir.path(), "client.pem", &client.pem());
    let key_file = write(dir.path(), "client.key", &client_key.serialize_pem());

    let (status, _) = download(port, |config| {
        config.external_logs_ca_file = Some(ca_file.clone());
    })
    .await;
    assert_eq!(
        status, 502,
        "a provider that wants a client certificate refuses one without"
    );
    assert_eq!(reached.load(Ordering::SeqCst), 0);

    let answer = download(port, |config| {
        config.external_logs_ca_file = Some(ca_file.clone());
        config.external_logs_client_cert_file = Some(cert_file.clone());
        config.external_logs_client_key_file = Some(key_file.clone());
    })
    .await;
    assert_eq!(answer, (200, "{\"seq\":0}\n".to_string()));
    assert_eq!(reached.load(Ordering::SeqCst), 1);
}
