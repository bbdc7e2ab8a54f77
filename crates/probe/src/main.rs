//! `probe [--post-json BODY] [--header NAME:VALUE]... [--body] [--ca-file PEM] URL [TIMEOUT_SECONDS]`: the exec
//! probe of the service images (Docker HEALTHCHECK, compose healthcheck), usually one `GET
//! http://127.0.0.1:<port>/readyz`; exit 0 when the answer is 2xx, 1 when it is not or none came
//! within the timeout (2 s by default), 2 for invalid arguments. Prints one line saying which.
//!
//! It is also the client a check runs inside a cluster network (the deploy rehearsal's
//! read-your-write through a Service name): a host name is looked up in DNS (`resolve`, fresh
//! every run) and the line names the address that answered; `--post-json` sends a JSON body,
//! `--header` adds a request header, `--body` prints the answer's body after the line.
//!
//! `https://` is for a service that serves only HTTPS (the compose log-provider): with
//! `--ca-file`, trusting that CA and nothing else, to an IP address the certificate names
//! (`https://127.0.0.1:5002/readyz`); names are looked up by this binary, not by the TLS client,
//! so a name over HTTPS is refused rather than verified against the wrong host.

mod resolve;

use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::{Duration, Instant};

const USAGE: &str =
    "usage: probe [--post-json BODY] [--header NAME:VALUE]... [--body] [--ca-file PEM] http://HOST:PORT/PATH|https://IP:PORT/PATH [TIMEOUT_SECONDS]";
/// The most of a body `--body` prints.
const MAX_BODY_BYTES: u64 = 1024 * 1024;

#[derive(Debug, PartialEq)]
struct Request<'a> {
    url: &'a str,
    timeout: Duration,
    post_json: Option<&'a str>,
    headers: Vec<(&'a str, &'a str)>,
    show_body: bool,
    /// The only CA an `https://` URL is verified against.
    ca_file: Option<&'a str>,
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let request = match parse_args(&args) {
        Ok(parsed) => parsed,
        Err(problem) => {
            eprintln!("probe: {problem}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let url = request.url;
    match send(&request) {
        Ok(answer) => {
            let via = answer.via.map(|a| format!(" ({a})")).unwrap_or_default();
            println!("probe: {url}{via} answered {}", answer.status);
            if let Some(body) = answer.body {
                println!("{body}");
            }
            if (200..300).contains(&answer.status) {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        Err(e) => {
            println!("probe: {url}: {e}");
            ExitCode::FAILURE
        }
    }
}

fn parse_args(args: &[String]) -> Result<Request<'_>, String> {
    let mut post_json = None;
    let mut headers = Vec::new();
    let mut show_body = false;
    let mut ca_file = None;
    let mut rest = args;
    while let Some(flag) = rest.first().filter(|a| a.starts_with("--")) {
        let value = rest.get(1).map(String::as_str);
        match (flag.as_str(), value) {
            ("--body", _) => {
                show_body = true;
                rest = &rest[1..];
                continue;
            }
            ("--post-json", Some(body)) => post_json = Some(body),
            ("--ca-file", Some(path)) => ca_file = Some(path),
            ("--header", Some(header)) => match header.split_once(':') {
                Some((name, value)) if !name.trim().is_empty() => {
                    headers.push((name.trim(), value.trim()))
                }
                _ => return Err(format!("--header {header:?}: NAME:VALUE")),
            },
            (other, _) => return Err(format!("{other}: unknown, or without its value")),
        }
        rest = &rest[2..];
    }
    let (url, timeout) = match rest {
        [url] => (url, None),
        [url, timeout] => (url, Some(timeout)),
        _ => return Err("one URL and an optional timeout".to_string()),
    };
    let timeout = match timeout {
        None => Duration::from_secs(2),
        Some(t) => match t.parse::<f64>() {
            Ok(secs) if secs > 0.0 && secs <= 3600.0 => Duration::from_secs_f64(secs),
            _ => return Err(format!("timeout {t:?}: seconds, more than 0")),
        },
    };
    // A probe talks to its own container or to a Service inside the network: plain HTTP, or
    // HTTPS to an address, verified against the one CA given.
    let https = url.starts_with("https://");
    if !url.starts_with("http://") && !https {
        return Err(format!("{url:?}: only http:// and https:// URLs"));
    }
    let uri = url
        .parse::<ureq::http::Uri>()
        .map_err(|e| format!("{url:?}: {e}"))?;
    if uri.host().is_none_or(str::is_empty) {
        return Err(format!("{url:?}: no host"));
    }
    match (https, ca_file) {
        (true, None) => return Err(format!("{url:?}: https:// needs --ca-file")),
        (false, Some(_)) => return Err("--ca-file: only with an https:// URL".to_string()),
        (true, Some(_)) if !is_ip(uri.host().unwrap_or_default()) => {
            return Err(format!("{url:?}: https:// to an IP address only"))
        }
        _ => {}
    }
    Ok(Request {
        url,
        timeout,
        post_json,
        headers,
        show_body,
        ca_file,
    })
}

fn is_ip(host: &str) -> bool {
    host.trim_start_matches('[')
        .trim_end_matches(']')
        .parse::<std::net::IpAddr>()
        .is_ok()
}

/// Trust the certificates of `path` and nothing else (ring, as everywhere in the workspace).
fn tls_config(path: &str) -> Result<ureq::tls::TlsConfig, String> {
    use ureq::tls::{PemItem, RootCerts, TlsConfig, TlsProvider};
    let pem = std::fs::read(path).map_err(|e| format!("--ca-file {path}: {e}"))?;
    let mut certs = Vec::new();
    for item in ureq::tls::parse_pem(&pem) {
        if let Ok(PemItem::Certificate(cert)) = item {
            certs.push(cert);
        }
    }
    if certs.is_empty() {
        return Err(format!("--ca-file {path}: holds no PEM certificate"));
    }
    Ok(TlsConfig::builder()
        .provider(TlsProvider::Rustls)
        .unversioned_rustls_crypto_provider(std::sync::Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .root_certs(RootCerts::new_with_certs(&certs))
        .build())
}

struct Answer {
    status: u16,
    /// The address a looked-up name led to (none for an IP literal).
    via: Option<SocketAddr>,
    body: Option<String>,
}

/// The request, everything (look-up, connect, send, receive) within the timeout.
fn send(request: &Request) -> Result<Answer, String> {
    let started = Instant::now();
    let uri: ureq::http::Uri = request.url.parse().map_err(|e| format!("{e}"))?;
    let host = uri.host().unwrap_or_default();
    let port = uri.port_u16().unwrap_or(80);
    let (target, via) = if is_ip(host) {
        (request.url.to_string(), None)
    } else {
        let conf = std::fs::read_to_string(resolve::RESOLV_CONF).unwrap_or_default();
        let addrs = resolve::lookup(host, &resolve::ResolvConf::parse(&conf), request.timeout)?;
        // The first address, as getaddrinfo's callers take it: the server's rotation picks it.
        let addr = SocketAddr::new(addrs[0], port);
        let path = uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
        (format!("http://{addr}{path}"), Some(addr))
    };
    let left = request.timeout.saturating_sub(started.elapsed());
    if left.is_zero() {
        return Err(format!("no answer within {:?}", request.timeout));
    }
    let mut config = ureq::Agent::config_builder();
    if let Some(path) = request.ca_file {
        config = config.tls_config(tls_config(path)?);
    }
    let agent: ureq::Agent = config
        .timeout_global(Some(left))
        // A 503 from /readyz is an answer to report, not an error.
        .http_status_as_error(false)
        .user_agent("abn-stack-probe")
        .build()
        .into();
    let authority = uri.authority().map(|a| a.as_str()).unwrap_or(host);
    let mut builder = ureq::http::Request::builder()
        .method(if request.post_json.is_some() {
            "POST"
        } else {
            "GET"
        })
        .uri(&target);
    if via.is_some() {
        // The name the caller asked for, not the address it led to.
        builder = builder.header("host", authority);
    }
    if request.post_json.is_some() {
        builder = builder.header("content-type", "application/json");
    }
    for (name, value) in &request.headers {
        builder = builder.header(*name, *value);
    }
    let sent = match request.post_json {
        Some(body) => agent.run(builder.body(body.to_string()).map_err(|e| format!("{e}"))?),
        None => agent.run(builder.body(()).map_err(|e| format!("{e}"))?),
    };
    let mut response = sent.map_err(|e| match e {
        ureq::Error::Timeout(_) => format!("no answer within {:?}", request.timeout),
        other => other.to_string(),
    })?;
    let status = response.status().as_u16();
    let body = if request.show_body {
        let text = response
            .body_mut()
            .with_config()
            .limit(MAX_BODY_BYTES)
            .read_to_string()
            .map_err(|e| format!("answered {status}, then the body failed: {e}"))?;
        Some(text)
    } else {
        None
    };
    Ok(Answer { status, via, body })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn urls_and_timeouts() {
        let a = args(&["http://127.0.0.1:5000/readyz"]);
        let parsed = parse_args(&a).unwrap();
        assert_eq!(
            (
                parsed.url,
                parsed.timeout,
                parsed.post_json,
                parsed.show_body
            ),
            (
                "http://127.0.0.1:5000/readyz",
                Duration::from_secs(2),
                None,
                false
            )
        );
        let a = args(&["http://localhost", "0.5"]);
        assert_eq!(parse_args(&a).unwrap().timeout, Duration::from_millis(500));
        assert!(parse_args(&args(&["https://x/"])).is_err());
        assert!(parse_args(&args(&["ftp://x/"])).is_err());
        assert!(parse_args(&args(&["http://x/", "0"])).is_err());
        assert!(parse_args(&args(&["http://"])).is_err());
        assert!(parse_args(&args(&[])).is_err());
    }

    #[test]
    fn https_needs_a_ca_and_an_address() {
        let a = args(&["--ca-file", "/tls/ca.pem", "https://127.0.0.1:5002/readyz"]);
        assert_eq!(parse_args(&a).unwrap().ca_file, Some("/tls/ca.pem"));
        let a = args(&["--ca-file", "/tls/ca.pem", "https://[::1]:5002/readyz"]);
        assert!(parse_args(&a).is_ok());
        for bad in [
            &["https://127.0.0.1:5002/readyz"][..],
            &[
                "--ca-file",
                "/tls/ca.pem",
                "https://log-provider:5002/readyz",
            ],
            &["--ca-file", "/tls/ca.pem", "http://127.0.0.1:5002/readyz"],
        ] {
            assert!(parse_args(&args(bad)).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn flags_before_the_url() {
        let a = args(&[
            "--post-json",
            r#"{"message":"m"}"#,
            "--header",
            "x-request-id: r-1",
            "--body",
            "http://data-api:5001/logs",
            "3",
        ]);
        let parsed = parse_args(&a).unwrap();
        assert_eq!(parsed.post_json, Some(r#"{"message":"m"}"#));
        assert_eq!(parsed.headers, vec![("x-request-id", "r-1")]);
        assert!(parsed.show_body);
        assert_eq!(
            (parsed.url, parsed.timeout),
            ("http://data-api:5001/logs", Duration::from_secs(3))
        );
        for bad in [
            &["--header", "no-colon", "http://x/"][..],
            &["--post-json"],
            &["--later", "http://x/"],
        ] {
            assert!(parse_args(&args(bad)).is_err(), "{bad:?}");
        }
    }
}
