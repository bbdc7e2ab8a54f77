//! The real probe binary against real loopback listeners: 2xx, 503, a listener that never
//! answers, a refused port and bad arguments; and `--ca-file` with `https://`: a loopback HTTPS
//! listener whose certificate a test CA signed, healthy when the probe trusts that CA, exit 1
//! when it trusts another one or the certificate names another address.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::process::{Command, Output};
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use test_support::certs::Ca;

/// Serves `answer` (raw bytes, none: read the request and stay silent) to every connection.
fn listener(answer: Option<&'static str>) -> String {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    std::thread::spawn(move || {
        for stream in l.incoming() {
            let mut stream = stream.unwrap();
            std::thread::spawn(move || {
                let mut buf = [0u8; 1024];
                let _ = stream.read(&mut buf);
                match answer {
                    Some(a) => {
                        let _ = stream.write_all(a.as_bytes());
                    }
                    None => std::thread::sleep(Duration::from_secs(30)),
                }
            });
        }
    });
    format!("http://{addr}/readyz")
}

fn probe(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_probe"))
        .args(args)
        .output()
        .expect("probe runs")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn two_hundred_is_healthy() {
    let url = listener(Some("HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok"));
    let out = probe(&[&url]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert_eq!(stdout(&out), format!("probe: {url} answered 200\n"));
}

#[test]
fn not_ready_is_unhealthy() {
    let url = listener(Some(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-length: 0\r\n\r\n",
    ));
    let out = probe(&[&url]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(stdout(&out).ends_with("answered 503\n"), "{out:?}");
}

#[test]
fn silence_past_the_timeout_is_unhealthy() {
    let url = listener(None);
    let out = probe(&[&url, "0.3"]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(stdout(&out).contains("no answer within"), "{out:?}");
}

#[test]
fn a_refused_connection_is_unhealthy() {
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let out = probe(&[&format!("http://127.0.0.1:{port}/readyz")]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(stdout(&out).contains("refused"), "{out:?}");
}

#[test]
fn bad_arguments_exit_2() {
    for args in [
        &[][..],
        &["https://127.0.0.1/"],
        &["--ca-file", "ca.pem", "https://log-provider:5002/"],
        &["--ca-file", "ca.pem", "http://127.0.0.1/"],
        &["http://127.0.0.1/", "soon"],
    ] {
        let out = probe(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {out:?}");
    }
}

#[test]
fn a_post_with_headers_prints_the_answers_body() {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    let seen = std::thread::spawn(move || {
        let (mut stream, _) = l.accept().unwrap();
        let mut request = Vec::new();
        let mut buf = [0u8; 1024];
        // Headers, then the 13-byte body.
        while !String::from_utf8_lossy(&request).contains("{\"message\":1}") {
            let n = stream.read(&mut buf).unwrap();
            assert!(
                n > 0,
                "the request ended early: {:?}",
                String::from_utf8_lossy(&request)
            );
            request.extend_from_slice(&buf[..n]);
        }
        let body = r#"{"id":"r1"}"#;
        write!(
            stream,
            "HTTP/1.1 201 Created\r\ncontent-length: {}\r\n\r\n{body}",
            body.len()
        )
        .unwrap();
        String::from_utf8(request).unwrap().to_ascii_lowercase()
    });
    let url = format!("http://{addr}/logs");
    let out = probe(&[
        "--post-json",
        r#"{"message":1}"#,
        "--header",
        "X-Request-Id: read-7",
        "--body",
        &url,
    ]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert_eq!(
        stdout(&out),
        format!("probe: {url} answered 201\n{{\"id\":\"r1\"}}\n")
    );
    let request = seen.join().unwrap();
    assert!(request.starts_with("post /logs http/1.1\r\n"), "{request}");
    assert!(
        request.contains("content-type: application/json\r\n"),
        "{request}"
    );
    assert!(request.contains("x-request-id: read-7\r\n"), "{request}");
}

/// An HTTPS listener on 127.0.0.1 with a leaf for `name` signed by `ca`; answers 200.
fn https_listener(ca: &Ca, name: &str) -> String {
    let (cert, key) = ca.leaf(name, false);
    let key = PrivateKeyDer::try_from(key.serialize_der()).unwrap();
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(vec![CertificateDer::from(cert.der().to_vec())], key)
    .unwrap();
    let config = Arc::new(config);
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    std::thread::spawn(move || {
        for stream in l.incoming() {
            let config = config.clone();
            std::thread::spawn(move || {
                let conn = rustls::ServerConnection::new(config).unwrap();
                let mut tls = rustls::StreamOwned::new(conn, stream.unwrap());
                let mut buf = [0u8; 1024];
                if tls.read(&mut buf).is_ok() {
                    let _ = tls.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok");
                    let _ = tls.flush();
                }
            });
        }
    });
    format!("https://{addr}/readyz")
}

fn ca_file(dir: &tempfile::TempDir, name: &str, ca: &Ca) -> String {
    let path = dir.path().join(name);
    std::fs::write(&path, ca.cert.pem()).unwrap();
    path.to_str().unwrap().to_string()
}

#[test]
fn https_to_an_address_verified_against_the_given_ca() {
    let dir = tempfile::tempdir().unwrap();
    let (ca, other) = (Ca::new(), Ca::new());
    let trusted = ca_file(&dir, "ca.pem", &ca);
    let url = https_listener(&ca, "127.0.0.1");

    let out = probe(&["--ca-file", &trusted, &url]);
    let said = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{said}");
    assert!(said.contains("answered 200"), "{said}");

    let untrusted = ca_file(&dir, "other.pem", &other);
    let out = probe(&["--ca-file", &untrusted, &url]);
    assert_eq!(out.status.code(), Some(1), "another CA does not verify it");

    let wrong_name = https_listener(&ca, "10.9.8.7");
    let out = probe(&["--ca-file", &trusted, &wrong_name]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "a certificate for another address"
    );

    let out = probe(&[
        "--ca-file",
        dir.path().join("none.pem").to_str().unwrap(),
        &url,
    ]);
    assert_eq!(out.status.code(), Some(1), "a CA file that is not there");
    assert!(String::from_utf8_lossy(&out.stdout).contains("--ca-file"));
}
