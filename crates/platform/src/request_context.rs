//! What the request pipeline keeps about one request from its arrival to its answer: its
//! method, start time and request id, taken from the request in [`RequestContext::begin`] and
//! put on the response in [`RequestContext::finish`].

use std::time::{Duration, Instant};

use axum::extract::Request;
use axum::http::{HeaderValue, Method};
use axum::response::Response;

use crate::request_id::{self, X_REQUEST_ID};

pub(crate) struct RequestContext {
    pub(crate) method: Method,
    started: Instant,
    request_id: HeaderValue,
}

impl RequestContext {
    /// Before anything else of the pipeline runs: the request carries its id from here on.
    pub(crate) fn begin(request: &mut Request) -> Self {
        Self {
            method: request.method().clone(),
            started: Instant::now(),
            request_id: request_id::take_or_generate(request.headers_mut()),
        }
    }

    /// The request's span: every line logged while it is handled carries `request_id`.
    pub(crate) fn span(&self) -> tracing::Span {
        // A sane id is visible ASCII, so always text.
        let id = self.request_id.to_str().unwrap_or_default();
        tracing::info_span!("request", request_id = id)
    }

    /// Once the response head is ready (JSON errors included): the id goes on the response;
    /// returns the time it took.
    pub(crate) fn finish(&self, response: &mut Response) -> Duration {
        response
            .headers_mut()
            .insert(X_REQUEST_ID, self.request_id.clone());
        self.started.elapsed()
    }
}
