//! Bearer-key check in constant time, so response timing does not reveal how much of a guess
//! matched.

use axum::http::{header, HeaderMap};
use secrecy::{ExposeSecret, SecretString};
use subtle::ConstantTimeEq;

pub struct ProviderKey(SecretString);

impl ProviderKey {
    pub fn new(key: SecretString) -> Self {
        Self(key)
    }

    /// True when the request carries `Authorization: Bearer <key>`.
    pub fn accepts(&self, headers: &HeaderMap) -> bool {
        let Some(presented) = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.as_bytes().strip_prefix(b"Bearer "))
        else {
            return false;
        };
        self.0.expose_secret().as_bytes().ct_eq(presented).into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(value: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::AUTHORIZATION, HeaderValue::from_str(value).unwrap());
        h
    }

    #[test]
    fn accepts_only_the_exact_bearer_key() {
        let key = ProviderKey::new(SecretString::from("s3cret".to_string()));
        assert!(key.accepts(&headers("Bearer s3cret")));
        assert!(!key.accepts(&headers("Bearer s3cre")));
        assert!(!key.accepts(&headers("Bearer s3cret2")));
        assert!(!key.accepts(&headers("Basic s3cret")));
        assert!(!key.accepts(&HeaderMap::new()));
    }
}
