//! `probe URL [TIMEOUT_SECONDS]`: the exec probe of the service images (Docker HEALTHCHECK,
//! compose healthcheck). One `GET` over plain HTTP, usually to `http://127.0.0.1:<port>/readyz`;
//! exit 0 when the answer is 2xx, 1 when it is not or none came within the timeout (2 s by
//! default), 2 for invalid arguments. Prints one line saying which.

use std::process::ExitCode;
use std::time::Duration;

const USAGE: &str = "usage: probe http://HOST:PORT/PATH [TIMEOUT_SECONDS]";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (url, timeout) = match parse_args(&args) {
        Ok(parsed) => parsed,
        Err(problem) => {
            eprintln!("probe: {problem}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    match get_status(url, timeout) {
        Ok(status) => {
            println!("probe: {url} answered {status}");
            if (200..300).contains(&status) {
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

fn parse_args(args: &[String]) -> Result<(&str, Duration), String> {
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
    // The probe talks to its own container's loopback; there is no TLS in this binary.
    if !url.starts_with("http://") {
        return Err(format!("{url:?}: only http:// URLs"));
    }
    url.parse::<ureq::http::Uri>()
        .map_err(|e| format!("{url:?}: {e}"))?;
    Ok((url, timeout))
}

/// The status code of `GET url`, everything (resolve, connect, send, receive) within `timeout`.
fn get_status(url: &str, timeout: Duration) -> Result<u16, String> {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(timeout))
        // A 503 from /readyz is an answer to report, not an error.
        .http_status_as_error(false)
        .user_agent("abn-stack-probe")
        .build()
        .into();
    let response = agent.get(url).call().map_err(|e| match e {
        ureq::Error::Timeout(_) => format!("no answer within {timeout:?}"),
        other => other.to_string(),
    })?;
    Ok(response.status().as_u16())
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
        assert_eq!(
            parse_args(&a).unwrap(),
            ("http://127.0.0.1:5000/readyz", Duration::from_secs(2))
        );
        let a = args(&["http://localhost", "0.5"]);
        assert_eq!(parse_args(&a).unwrap().1, Duration::from_millis(500));
        assert!(parse_args(&args(&["https://x/"])).is_err());
        assert!(parse_args(&args(&["http://x/", "0"])).is_err());
        assert!(parse_args(&args(&["http://"])).is_err());
        assert!(parse_args(&args(&[])).is_err());
    }
}
