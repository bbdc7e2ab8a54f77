//! The real binary over HTTPS (TLS_CERT_FILE, TLS_KEY_FILE): it serves the certificate, and a
//! replaced certificate file is served to new connections without a restart. Certificates are
//! made with rcgen: two CAs, so a client that trusts only one tells which leaf is served.

use std::time::Duration;

use test_support::certs::Ca;
use test_support::ServiceProcess;

const BIN: &str = env!("CARGO_BIN_EXE_log-provider");
const KEY: &str = "provider-key-5d0c1e7a9b";

/// A leaf for 127.0.0.1 signed by `ca`: its PEM certificate and key.
fn leaf(ca: &Ca) -> (String, String) {
    let (cert, key) = ca.leaf("127.0.0.1", false);
    (cert.pem(), key.serialize_pem())
}

/// A client that trusts only `ca` (no system roots), on fresh connections each time.
fn client(ca: &Ca) -> reqwest::Client {
    reqwest::Client::builder()
        .tls_built_in_root_certs(false)
        .add_root_certificate(reqwest::Certificate::from_pem(ca.cert.pem().as_bytes()).unwrap())
        .pool_max_idle_per_host(0)
        .build()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn serves_https_and_a_replaced_certificate_without_restart() {
    let dir = tempfile::tempdir().unwrap();
    let (first, second) = (Ca::new(), Ca::new());
    let (cert, key) = leaf(&first);
    let cert_file = dir.path().join("tls.crt");
    let key_file = dir.path().join("tls.key");
    std::fs::write(&cert_file, cert).unwrap();
    std::fs::write(&key_file, key).unwrap();

    let mut command = std::process::Command::new(BIN);
    command
        .env_clear()
        .env("PROVIDER_KEY", KEY)
        .env("TLS_CERT_FILE", &cert_file)
        .env("TLS_KEY_FILE", &key_file);
    let provider = ServiceProcess::start(command);
    let url = format!("https://{}/v1/logs?limit=3", provider.addr);

    let response = client(&first)
        .get(&url)
        .bearer_auth(KEY)
        .send()
        .await
        .expect("HTTPS with the first CA");
    assert_eq!(response.status(), 200);
    assert_eq!(response.text().await.unwrap().lines().count(), 3);
    assert!(
        client(&second).get(&url).send().await.is_err(),
        "the second CA does not know the first leaf"
    );

    // Renewed the way cert-manager does for a mounted Secret: both files, then the swap shows.
    let (cert, key) = leaf(&second);
    std::fs::write(dir.path().join("tls.key.new"), key).unwrap();
    std::fs::rename(dir.path().join("tls.key.new"), &key_file).unwrap();
    std::fs::write(dir.path().join("tls.crt.new"), cert).unwrap();
    std::fs::rename(dir.path().join("tls.crt.new"), &cert_file).unwrap();
    // Bounded: the watcher sees the rename at once; the periodic check is 10 s.
    let mut served = None;
    for _ in 0..300 {
        if let Ok(response) = client(&second).get(&url).bearer_auth(KEY).send().await {
            served = Some(response.status());
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        served,
        Some(reqwest::StatusCode::OK),
        "the new certificate is served"
    );
    assert!(
        client(&first).get(&url).send().await.is_err(),
        "the old certificate is no longer served"
    );
}
