//! Who may call `/download_external_logs`: bearer tokens from API_TOKENS_FILE, one `name:token`
//! per line, reloaded live. The presented token is compared with every token in constant time;
//! only the caller's name ever reaches a log line or a metric label.

use axum::http::{header, HeaderMap};
use platform::Reloadable;
use secrecy::{ExposeSecret, SecretString};
use subtle::{Choice, ConditionallySelectable, ConstantTimeEq};

/// The callers allowed, or nobody checked (API_TOKENS_FILE unset).
#[derive(Clone)]
pub struct Callers(Option<Reloadable<Vec<Caller>>>);

pub struct Caller {
    name: String,
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

    /// The caller's name; `None` when tokens are required and the request has no valid one.
    pub fn identify(&self, headers: &HeaderMap) -> Option<String> {
        let Some(tokens) = &self.0 else {
            return Some(ANONYMOUS.to_string());
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
        if callers.iter().any(|c| c.name == name) {
            return Err(format!("line {at}: the name {name} appears twice"));
        }
        callers.push(Caller {
            name: name.to_string(),
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
    use axum::http::HeaderValue;

    fn bearer(token: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(
            header::AUTHORIZATION,
            HeaderValue::from_str(&format!("Bearer {token}")).unwrap(),
        );
        h
    }

    #[test]
    fn the_matching_token_gives_its_name() {
        let callers = Callers::tokens(Reloadable::fixed(
            parse_tokens("ci-reader:aaa111\n\nops:bbb222\n").unwrap(),
        ));
        assert_eq!(
            callers.identify(&bearer("aaa111")).as_deref(),
            Some("ci-reader")
        );
        assert_eq!(callers.identify(&bearer("bbb222")).as_deref(), Some("ops"));
        assert_eq!(callers.identify(&bearer("bbb22")), None);
        assert_eq!(callers.identify(&HeaderMap::new()), None);
        assert_eq!(
            Callers::open().identify(&HeaderMap::new()).as_deref(),
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
