//! `probe URL [TIMEOUT_SECONDS]`: the exec probe of the service images (Docker HEALTHCHECK,
//! compose healthcheck). One `GET` over plain HTTP, usually to `http://127.0.0.1:<port>/readyz`;
//! exit 0 when the answer is 2xx, 1 when it is not or none came within the timeout (2 s by
//! default), 2 for invalid arguments. Prints one line saying which.

use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::process::ExitCode;
use std::time::{Duration, Instant};

const USAGE: &str = "usage: probe http://HOST:PORT/PATH [TIMEOUT_SECONDS]";
/// The status line and headers of any sane answer fit; the body is never needed.
const MAX_HEAD_BYTES: usize = 16 * 1024;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (url, timeout) = match parse_args(&args) {
        Ok(parsed) => parsed,
        Err(problem) => {
            eprintln!("probe: {problem}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    match get_status(&url, timeout) {
        Ok(status) if (200..300).contains(&status) => {
            println!("probe: {} answered {status}", url.original);
            ExitCode::SUCCESS
        }
        Ok(status) => {
            println!("probe: {} answered {status}", url.original);
            ExitCode::FAILURE
        }
        Err(e) => {
            println!("probe: {}: {e}", url.original);
            ExitCode::FAILURE
        }
    }
}

struct Url {
    original: String,
    /// `host:port`, for the connection and the Host header.
    authority: String,
    path: String,
}

fn parse_args(args: &[String]) -> Result<(Url, Duration), String> {
    let (url, timeout) = match args {
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
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| format!("{url:?}: only http:// URLs (a probe talks to its own loopback)"))?;
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    if authority.is_empty() || authority.contains('@') {
        return Err(format!("{url:?}: no host"));
    }
    let authority = if authority
        .rsplit_once(':')
        .is_some_and(|(_, p)| !p.contains(']'))
    {
        authority.to_string()
    } else {
        format!("{authority}:80")
    };
    Ok((
        Url {
            original: url.clone(),
            authority,
            path: path.to_string(),
        },
        timeout,
    ))
}

/// The status code of `GET url`, everything (connect, write, read) within `timeout`.
fn get_status(url: &Url, timeout: Duration) -> Result<u16, String> {
    let deadline = Instant::now() + timeout;
    let left = || {
        deadline
            .checked_duration_since(Instant::now())
            .filter(|d| !d.is_zero())
            .ok_or_else(|| format!("no answer within {timeout:?}"))
    };
    let addr = url
        .authority
        .to_socket_addrs()
        .map_err(|e| format!("cannot resolve {}: {e}", url.authority))?
        .next()
        .ok_or_else(|| format!("{} resolves to no address", url.authority))?;
    let mut stream =
        TcpStream::connect_timeout(&addr, left()?).map_err(|e| format!("connect: {e}"))?;
    stream
        .set_write_timeout(Some(left()?))
        .map_err(|e| e.to_string())?;
    let request = format!(
        "GET {} HTTP/1.1\r\nHost: {}\r\nUser-Agent: abn-stack-probe\r\nConnection: close\r\n\r\n",
        url.path, url.authority
    );
    stream
        .write_all(request.as_bytes())
        .map_err(|e| format!("send: {e}"))?;
    let mut head = Vec::new();
    let mut chunk = [0u8; 1024];
    while !head.windows(2).any(|w| w == b"\r\n") {
        stream
            .set_read_timeout(Some(left()?))
            .map_err(|e| e.to_string())?;
        let n = stream.read(&mut chunk).map_err(|e| match e.kind() {
            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut => {
                format!("no answer within {timeout:?}")
            }
            _ => format!("read: {e}"),
        })?;
        if n == 0 || head.len() > MAX_HEAD_BYTES {
            return Err("the connection closed before a status line".to_string());
        }
        head.extend_from_slice(&chunk[..n]);
    }
    parse_status_line(&head).ok_or_else(|| "not an HTTP answer".to_string())
}

/// `HTTP/1.x 200 OK` → 200.
fn parse_status_line(head: &[u8]) -> Option<u16> {
    let line = head.split(|&b| b == b'\r').next()?;
    let line = std::str::from_utf8(line).ok()?;
    let mut parts = line.split(' ');
    parts.next().filter(|v| v.starts_with("HTTP/1."))?;
    parts
        .next()?
        .parse()
        .ok()
        .filter(|s| (100..600).contains(s))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn urls_and_timeouts() {
        let (u, t) = parse_args(&args(&["http://127.0.0.1:5000/readyz"])).unwrap();
        assert_eq!(
            (u.authority.as_str(), u.path.as_str()),
            ("127.0.0.1:5000", "/readyz")
        );
        assert_eq!(t, Duration::from_secs(2));
        let (u, t) = parse_args(&args(&["http://localhost", "0.5"])).unwrap();
        assert_eq!(
            (u.authority.as_str(), u.path.as_str()),
            ("localhost:80", "/")
        );
        assert_eq!(t, Duration::from_millis(500));
        assert!(parse_args(&args(&["https://x/"])).is_err());
        assert!(parse_args(&args(&["http://x/", "0"])).is_err());
        assert!(parse_args(&args(&[])).is_err());
    }

    #[test]
    fn status_lines() {
        assert_eq!(
            parse_status_line(b"HTTP/1.1 503 Service Unavailable\r\n"),
            Some(503)
        );
        assert_eq!(parse_status_line(b"HTTP/1.0 200\r\n"), Some(200));
        assert_eq!(parse_status_line(b"SSH-2.0-OpenSSH\r\n"), None);
    }
}
