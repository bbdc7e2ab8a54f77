//! `log-provider dev-certs`, the real binary on real files in a temporary folder: the CA and the
//! server certificate it writes are served over HTTPS and verify, for every requested name,
//! against ca.pem alone; a second run keeps both byte for byte; a certificate close to expiry is
//! renewed under the same CA; bad arguments end with one line and exit 2; no key is printed.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output};

use test_support::ServiceProcess;

const BIN: &str = env!("CARGO_BIN_EXE_log-provider");
const KEY: &str = "provider-key-dev-certs-3f9a";

fn dev_certs(extra: &[&str]) -> Output {
    Command::new(BIN)
        .env_clear()
        .arg("dev-certs")
        .args(extra)
        .output()
        .expect("log-provider runs")
}

fn standard(dir: &Path, ca_dir: &Path, trust_dir: &Path) -> Output {
    let out = dev_certs(&[
        "--dir",
        dir.to_str().unwrap(),
        "--ca-dir",
        ca_dir.to_str().unwrap(),
        "--trust-dir",
        trust_dir.to_str().unwrap(),
        "--name",
        "log-provider",
        "--name",
        "localhost",
        "--ip",
        "127.0.0.1",
    ]);
    assert_no_key_printed(&out);
    out
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn assert_no_key_printed(out: &Output) {
    let all = text(out);
    assert!(
        !all.contains("PRIVATE KEY") && !all.contains("-----BEGIN"),
        "{all}"
    );
}

fn read(path: impl AsRef<Path>) -> Vec<u8> {
    std::fs::read(path).unwrap()
}

fn mode(path: impl AsRef<Path>) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

/// A client trusting only `ca_pem`, with `name` resolving to the provider's address.
fn client(ca_pem: &[u8], name: &str, addr: std::net::SocketAddr) -> reqwest::Client {
    reqwest::Client::builder()
        .tls_built_in_root_certs(false)
        .add_root_certificate(reqwest::Certificate::from_pem(ca_pem).unwrap())
        .resolve(name, addr)
        .pool_max_idle_per_host(0)
        .build()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn makes_a_ca_and_a_certificate_served_and_verified_for_every_name_then_keeps_them() {
    let root = tempfile::tempdir().unwrap();
    let (tls, ca, trust) = (
        root.path().join("tls"),
        root.path().join("ca"),
        root.path().join("trust"),
    );
    for dir in [&tls, &ca, &trust] {
        std::fs::create_dir(dir).unwrap();
    }
    let first = standard(&tls, &ca, &trust);
    assert!(first.status.success(), "{}", text(&first));
    let said = text(&first);
    assert!(
        said.contains("made a new CA") && said.contains("signed a new server certificate"),
        "{said}"
    );
    assert!(
        said.contains("log-provider, localhost, 127.0.0.1"),
        "{said}"
    );

    // The keys are for their owner only; the certificates for anyone.
    assert_eq!(mode(ca.join("ca.key")), 0o400);
    assert_eq!(mode(tls.join("tls.key")), 0o400);
    for cert in [
        ca.join("ca.pem"),
        tls.join("tls.crt"),
        tls.join("ca.pem"),
        trust.join("ca.pem"),
    ] {
        assert_eq!(mode(&cert), 0o444, "{}", cert.display());
    }
    let ca_pem = read(ca.join("ca.pem"));
    assert_eq!(read(tls.join("ca.pem")), ca_pem);
    assert_eq!(read(trust.join("ca.pem")), ca_pem);
    let names: Vec<_> = std::fs::read_dir(&trust)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, ["ca.pem"], "the clients' folder holds no key");
    assert!(
        !tls.join("ca.key").exists(),
        "the CA's key stays in --ca-dir"
    );

    // A second run (a restart) keeps everything, byte for byte.
    let cert = read(tls.join("tls.crt"));
    let key = read(tls.join("tls.key"));
    let ca_key = read(ca.join("ca.key"));
    let second = standard(&tls, &ca, &trust);
    assert!(second.status.success(), "{}", text(&second));
    assert!(
        text(&second).contains("kept the CA")
            && text(&second).contains("kept the server certificate")
    );
    assert_eq!(
        read(ca.join("ca.pem")),
        ca_pem,
        "the CA is kept byte for byte"
    );
    assert_eq!(read(ca.join("ca.key")), ca_key);
    assert_eq!(read(tls.join("tls.crt")), cert);
    assert_eq!(read(tls.join("tls.key")), key);

    // The files serve HTTPS that verifies against ca.pem alone, by every name.
    let mut command = Command::new(BIN);
    command
        .env_clear()
        .env("PROVIDER_KEY", KEY)
        .env("TLS_CERT_FILE", tls.join("tls.crt"))
        .env("TLS_KEY_FILE", tls.join("tls.key"));
    let provider = ServiceProcess::start(command);
    let port = provider.addr.port();
    for name in ["log-provider", "localhost", "127.0.0.1"] {
        let url = format!("https://{name}:{port}/v1/logs?limit=2");
        let response = client(&ca_pem, name, provider.addr)
            .get(&url)
            .bearer_auth(KEY)
            .send()
            .await
            .unwrap_or_else(|e| panic!("{url}: {e:?}"));
        assert_eq!(response.status(), 200, "{url}");
        assert_eq!(response.text().await.unwrap().lines().count(), 2);
    }
    let wrong = client(&ca_pem, "other-name", provider.addr)
        .get(format!("https://other-name:{port}/healthz"))
        .send()
        .await;
    assert!(wrong.is_err(), "a name not requested does not verify");
}

#[test]
fn a_certificate_close_to_expiry_is_renewed_under_the_same_ca() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_str().unwrap();
    let short = dev_certs(&["--dir", path, "--name", "log-provider", "--valid-days", "9"]);
    assert!(short.status.success(), "{}", text(&short));
    let (ca, cert) = (
        read(dir.path().join("ca.pem")),
        read(dir.path().join("tls.crt")),
    );
    assert!(
        dir.path().join("ca.key").exists(),
        "--ca-dir defaults to --dir"
    );

    // 9 days left is less than a third of 90: renewed, the CA kept.
    let renewed = dev_certs(&["--dir", path, "--name", "log-provider"]);
    assert!(renewed.status.success(), "{}", text(&renewed));
    assert!(text(&renewed).contains("kept the CA"), "{}", text(&renewed));
    assert!(
        text(&renewed).contains("close to expiry"),
        "{}",
        text(&renewed)
    );
    assert_eq!(read(dir.path().join("ca.pem")), ca);
    assert_ne!(read(dir.path().join("tls.crt")), cert);

    // A name added: a new certificate, the same CA.
    let cert = read(dir.path().join("tls.crt"));
    let more = dev_certs(&["--dir", path, "--name", "log-provider", "--ip", "::1"]);
    assert!(more.status.success(), "{}", text(&more));
    assert!(text(&more).contains("not valid for ::1"), "{}", text(&more));
    assert_eq!(read(dir.path().join("ca.pem")), ca);
    assert_ne!(read(dir.path().join("tls.crt")), cert);
    assert_no_key_printed(&more);
}

#[test]
fn bad_arguments_end_with_one_line_and_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_str().unwrap();
    let missing = dir.path().join("missing");
    let cases: [(Vec<&str>, &str); 6] = [
        (vec!["--name", "log-provider"], "--dir"),
        (vec!["--dir", path], "--name"),
        (
            vec!["--dir", missing.to_str().unwrap(), "--name", "x"],
            "is not a folder",
        ),
        (vec!["--dir", path, "--ip", "not-an-ip"], "--ip"),
        (vec!["--dir", path, "--name", "127.0.0.1"], "--ip"),
        (
            vec!["--dir", path, "--name", "x", "--valid-days", "1"],
            "--valid-days",
        ),
    ];
    for (args, expected) in cases {
        let out = dev_certs(&args);
        let said = text(&out);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {said}");
        assert_eq!(said.trim_end().lines().count(), 1, "{args:?}: {said}");
        assert!(said.contains(expected), "{args:?}: {said}");
    }
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        0,
        "nothing written"
    );
}

#[test]
fn a_file_it_cannot_write_is_one_line_and_exit_1() {
    // A folder where tls.crt should be: no rename replaces it (root or not).
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("tls.crt")).unwrap();
    std::fs::write(dir.path().join("tls.crt").join("keep"), "x").unwrap();
    let out = dev_certs(&[
        "--dir",
        dir.path().to_str().unwrap(),
        "--name",
        "log-provider",
    ]);
    let said = text(&out);
    assert_eq!(out.status.code(), Some(1), "{said}");
    assert_eq!(said.trim_end().lines().count(), 1, "{said}");
    assert!(
        said.contains("cannot write") && said.contains("tls.crt"),
        "{said}"
    );
    assert_no_key_printed(&out);
}
