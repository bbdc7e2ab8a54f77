//! What the request pipeline keeps about one request from its arrival to its answer: the place
//! for per-request state. A request id or a trace span goes here: taken from the request in
//! [`RequestContext::begin`], put on the response in [`RequestContext::finish`].

use std::time::{Duration, Instant};

use axum::extract::Request;
use axum::http::Method;
use axum::response::Response;

pub(crate) struct RequestContext {
    pub(crate) method: Method,
    started: Instant,
}

impl RequestContext {
    /// Before anything else of the pipeline runs.
    pub(crate) fn begin(request: &Request) -> Self {
        Self {
            method: request.method().clone(),
            started: Instant::now(),
        }
    }

    /// Once the response head is ready (JSON errors included): returns the time it took.
    pub(crate) fn finish(&self, _response: &mut Response) -> Duration {
        self.started.elapsed()
    }
}
