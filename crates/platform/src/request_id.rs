//! `x-request-id`: the id that ties one request's log lines together, across services. A sane
//! id from the client (or from the service that called this one) is kept; anything else (too
//! long, empty, control or non-ASCII characters) is replaced by a new UUIDv7, never echoed.

use axum::http::header::HeaderName;
use axum::http::{HeaderMap, HeaderValue};

/// The header, in requests (taken, or set by the pipeline) and in every response.
pub const X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Longest id kept: a UUID is 36 characters; room for other schemes, not for a log-stuffing blob.
pub const MAX_REQUEST_ID_LEN: usize = 128;

/// The request's id: its own `x-request-id` when sane, otherwise a new one, written into
/// `headers` so the handler (and a call it makes to another service) sees the id in use.
pub(crate) fn take_or_generate(headers: &mut HeaderMap) -> HeaderValue {
    if let Some(id) = headers
        .get(&X_REQUEST_ID)
        .filter(|id| is_sane(id.as_bytes()))
    {
        return id.clone();
    }
    let id = generate();
    headers.insert(X_REQUEST_ID, id.clone());
    id
}

/// 1 to [`MAX_REQUEST_ID_LEN`] visible ASCII characters (no space, no control character).
pub fn is_sane(id: &[u8]) -> bool {
    !id.is_empty() && id.len() <= MAX_REQUEST_ID_LEN && id.iter().all(u8::is_ascii_graphic)
}

fn generate() -> HeaderValue {
    let mut buffer = uuid::Uuid::encode_buffer();
    let text = uuid::Uuid::now_v7().hyphenated().encode_lower(&mut buffer);
    HeaderValue::from_str(text).expect("a UUID is a valid header value")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sane_id_is_kept_and_a_hostile_one_replaced() {
        let mut headers = HeaderMap::new();
        headers.insert(X_REQUEST_ID, HeaderValue::from_static("abc-123_X.y"));
        assert_eq!(take_or_generate(&mut headers), "abc-123_X.y");

        for hostile in [
            "a".repeat(MAX_REQUEST_ID_LEN + 1),
            "with space".to_string(),
            "tab\there".to_string(),
            String::new(),
        ] {
            let mut headers = HeaderMap::new();
            headers.insert(X_REQUEST_ID, HeaderValue::from_str(&hostile).unwrap());
            let id = take_or_generate(&mut headers);
            assert_ne!(id, hostile.as_str());
            assert_eq!(headers[&X_REQUEST_ID], id);
            let parsed = uuid::Uuid::parse_str(id.to_str().unwrap()).unwrap();
            assert_eq!(parsed.get_version_num(), 7);
        }
        // Bytes over 0x7f (obs-text is a valid header value, not a sane id).
        assert!(!is_sane(b"caf\xc3\xa9"));
        assert!(is_sane(&[b'a'; MAX_REQUEST_ID_LEN]));

        let mut headers = HeaderMap::new();
        let generated = take_or_generate(&mut headers);
        assert_eq!(headers[&X_REQUEST_ID], generated);
    }
}
