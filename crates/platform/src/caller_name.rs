//! The name of the caller a response was answered for (a token's name from API_TOKENS_FILE, never
//! the token): made by [`crate::callers`], read by the access log from the response's extensions.
//! A file of its own so that the access log does not depend on the callers' check (which depends
//! on the service builder, which depends on the access log).

use std::sync::Arc;

use axum::response::Response;

/// A caller's token name (never the token). The pipeline's access log reads it from the
/// response's extensions when a route put it there ([`CallerName::tag`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CallerName(Arc<str>);

impl CallerName {
    pub(crate) fn new(name: &str) -> Self {
        Self(Arc::from(name))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Marks `response` as answered for this caller, for the access log.
    pub fn tag(&self, response: &mut Response) {
        response.extensions_mut().insert(self.clone());
    }
}
