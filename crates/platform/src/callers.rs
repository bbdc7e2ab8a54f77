//! Who may call a service's protected routes: bearer tokens from API_TOKENS_FILE, one
//! `name:token` per line, reloaded live. The presented token is compared with every token in
//! constant time; only the caller's name ever reaches a log line, a metric label or the access
//! log. backend-api checks it in its download handler (its rate limit and metric need the name);
//! other services put [`Callers::layer`] on the routes it protects.

use std::path::Path;
use std::sync::LazyLock;

use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::MethodRouter;
use secrecy::{ExposeSecret, SecretString};
use subtle::{Choice, ConditionallySelectable, ConstantTimeEq};

pub use crate::caller_name::CallerName;
use crate::config::ConfigError;
use crate::error::ApiError;
use crate::reloadable::Reloadable;
use crate::service::Service;

/// The variable naming the tokens file, in every service that takes one.
pub const API_TOKENS_FILE: &str = "API_TOKENS_FILE";

/// The callers allowed, or nobody checked (API_TOKENS_FILE unset).
#[derive(Clone)]
pub struct Callers(Option<Reloadable<Vec<Caller>>>);

pub struct Caller {
    name: CallerName,
    token: SecretString,
}

/// The name a request is counted and limited under when no tokens are configured.
pub const ANONYMOUS: &str = "anonymous";

impl Callers {
    pub fn open() -> Self {
        Self(None)
    }

    pub fn tokens(tokens: Reloadable<Vec<Caller>>) -> Self {
        Self(Some(tokens))
    }

    /// API_TOKENS_FILE's callers, read now (an error is a start error naming the variable) and
    /// reloaded live as the service's `api_tokens` secret; open when `file` is `None`.
    pub fn from_file(service: &Service, file: Option<&Path>) -> Result<Self, ConfigError> {
        match file {
            None => Ok(Self::open()),
            Some(path) => service
                .watch_secret("api_tokens", path, parse_tokens)
                .map(Self::tokens)
                .map_err(|err| ConfigError::new(API_TOKENS_FILE, err.to_string())),
        }
    }

    /// The start's check of API_TOKENS_FILE, for a configuration's `Validate` (`--check-config`):
    /// the file read and parsed, an error naming the variable and never a token.
    pub fn check_file(file: Option<&Path>) -> Result<(), ConfigError> {
        match file {
            None => Ok(()),
            Some(path) => crate::secret_file::load(path, parse_tokens)
                .map(drop)
                .map_err(|err| ConfigError::new(API_TOKENS_FILE, err.to_string())),
        }
    }

    /// Whether requests must present a token.
    pub fn required(&self) -> bool {
        self.0.is_some()
    }

    /// The caller's name; `None` when tokens are required and the request has no valid one.
    pub fn identify(&self, headers: &HeaderMap) -> Option<CallerName> {
        let Some(tokens) = &self.0 else {
            // One shared name: no allocation per request.
            static ANONYMOUS_NAME: LazyLock<CallerName> =
                LazyLock::new(|| CallerName::new(ANONYMOUS));
            return Some(ANONYMOUS_NAME.clone());
        };
        let presented = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.as_bytes().strip_prefix(b"Bearer "))?;
        let tokens = tokens.current();
        // Every token is compared, whatever matched first: the time says nothing about which.
        let mut found = Choice::from(0);
        let mut index = 0u64;
        for (i, caller) in tokens.iter().enumerate() {
            let matched = caller.token.expose_secret().as_bytes().ct_eq(presented);
            index = u64::conditional_select(&index, &(i as u64), matched);
            found |= matched;
        }
        bool::from(found).then(|| tokens[index as usize].name.clone())
    }

    /// `handler` behind the token check when tokens are required (401 otherwise, the caller's
    /// name on the response for the access log); `handler` as it is when they are not.
    pub fn protect(&self, handler: MethodRouter) -> MethodRouter {
        if self.required() {
            handler.layer(axum::middleware::from_fn_with_state(self.clone(), require))
        } else {
            handler
        }
    }
}

/// The answer to a request without a known token: 401, a JSON error and `WWW-Authenticate`.
pub fn unauthorized() -> Response {
    let mut response = ApiError::new(
        StatusCode::UNAUTHORIZED,
        "invalid_token",
        "missing or unknown bearer token",
    )
    .into_response();
    response
        .headers_mut()
        .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    response
}

async fn require(State(callers): State<Callers>, request: Request, next: Next) -> Response {
    match callers.identify(request.headers()) {
        None => {
            tracing::info!(
                caller = "unknown",
                outcome = "unauthorized",
                "request refused"
            );
            unauthorized()
        }
        Some(caller) => {
            let mut response = next.run(request).await;
            caller.tag(&mut response);
            response
        }
    }
}

/// API_TOKENS_FILE's content: `name:token` per line, blank lines skipped. Errors name a line by
/// its number, never by its content.
pub fn parse_tokens(text: &str) -> Result<Vec<Caller>, String> {
    let mut callers: Vec<Caller> = Vec::new();
    for (number, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let at = number + 1;
        let (name, token) = line
            .split_once(':')
            .ok_or_else(|| format!("line {at}: expected name:token"))?;
        let name_ok = !name.is_empty()
            && name.len() <= 64
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b));
        if !name_ok {
            return Err(format!(
                "line {at}: the name must be 1-64 letters, digits, '-', '_' or '.'"
            ));
        }
        if token.is_empty() || !token.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(format!(
                "line {at}: the token must be visible ASCII characters"
            ));
        }
        if callers.iter().any(|c| c.name.as_str() == name) {
            return Err(format!("line {at}: the name {name} appears twice"));
        }
        callers.push(Caller {
            name: CallerName::new(name),
            token: SecretString::from(token.to_string()),
        });
    }
    if callers.is_empty() {
        return Err("holds no token".to_string());
    }
    Ok(callers)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bearer(token: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(
            header::AUTHORIZATION,
            HeaderValue::from_str(&format!("Bearer {token}")).unwrap(),
        );
        h
    }

    fn name(callers: &Callers, headers: &HeaderMap) -> Option<String> {
        callers
            .identify(headers)
            .map(|name| name.as_str().to_string())
    }

    #[test]
    fn the_matching_token_gives_its_name() {
        let callers = Callers::tokens(Reloadable::fixed(
            parse_tokens("ci-reader:aaa111\n\nops:bbb222\n").unwrap(),
        ));
        assert_eq!(
            name(&callers, &bearer("aaa111")).as_deref(),
            Some("ci-reader")
        );
        assert_eq!(name(&callers, &bearer("bbb222")).as_deref(), Some("ops"));
        assert_eq!(name(&callers, &bearer("bbb22")), None);
        assert_eq!(name(&callers, &HeaderMap::new()), None);
        assert_eq!(
            name(&Callers::open(), &HeaderMap::new()).as_deref(),
            Some(ANONYMOUS)
        );
    }

    #[test]
    fn bad_lines_are_named_by_number_only() {
        for (text, start) in [
            ("ci:tok\nnocolon-secret", "line 2"),
            ("bad name:secret", "line 1"),
            ("ci:sec ret", "line 1"),
            ("ci:a\nci:b", "line 2"),
        ] {
            let err = parse_tokens(text).map(drop).unwrap_err();
            assert!(
                err.starts_with(start) && !err.contains("secret") && !err.contains("sec ret"),
                "{err}"
            );
        }
        assert_eq!(parse_tokens("\n").map(drop).unwrap_err(), "holds no token");
    }
}
