//! Bearer-key check in constant time, so response timing does not reveal how much of a guess
//! matched, nor which of the accepted keys it was compared with: every key is compared, always.

use axum::http::{header, HeaderMap};
use platform::Reloadable;
use secrecy::{ExposeSecret, SecretString};
use subtle::{Choice, ConstantTimeEq};

/// The accepted keys: several during a rotation. Reloaded live from PROVIDER_KEY_FILE.
pub struct ProviderKeys(Reloadable<Vec<SecretString>>);

impl ProviderKeys {
    pub fn new(keys: Reloadable<Vec<SecretString>>) -> Self {
        Self(keys)
    }

    /// True when the request carries `Authorization: Bearer <key>` with one of the keys.
    pub fn accepts(&self, headers: &HeaderMap) -> bool {
        let Some(presented) = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.as_bytes().strip_prefix(b"Bearer "))
        else {
            return false;
        };
        let keys = self.0.current();
        let mut matched = Choice::from(0);
        for key in keys.iter() {
            matched |= key.expose_secret().as_bytes().ct_eq(presented);
        }
        matched.into()
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
        let key = ProviderKeys::new(Reloadable::fixed(vec![SecretString::from(
            "s3cret".to_string(),
        )]));
        assert!(key.accepts(&headers("Bearer s3cret")));
        assert!(!key.accepts(&headers("Bearer s3cre")));
        assert!(!key.accepts(&headers("Bearer s3cret2")));
        assert!(!key.accepts(&headers("Basic s3cret")));
        assert!(!key.accepts(&HeaderMap::new()));
    }

    #[test]
    fn every_key_of_the_set_is_accepted() {
        let keys = ProviderKeys::new(Reloadable::fixed(vec![
            SecretString::from("old".to_string()),
            SecretString::from("new".to_string()),
        ]));
        assert!(keys.accepts(&headers("Bearer old")));
        assert!(keys.accepts(&headers("Bearer new")));
        assert!(!keys.accepts(&headers("Bearer older")));
    }
}
