//! DOWNLOAD_RATE_LIMIT: requests per minute per caller on the download route (GCRA through
//! `governor`, keyed by the caller's name; a burst of up to the whole minute's allowance).

use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

#[derive(Clone)]
pub struct DownloadLimit(Option<Arc<DefaultKeyedRateLimiter<String>>>);

impl DownloadLimit {
    pub fn new(per_minute: Option<NonZeroU32>) -> Self {
        Self(per_minute.map(|n| Arc::new(RateLimiter::keyed(Quota::per_minute(n)))))
    }

    /// `Err(wait)` when the caller is over the limit: how long until a request is allowed.
    pub fn check(&self, caller: &str) -> Result<(), Duration> {
        let Some(limiter) = &self.0 else {
            return Ok(());
        };
        limiter
            .check_key(&caller.to_string())
            .map_err(|not_until| not_until.wait_time_from(DefaultClock::default().now()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_caller_has_its_own_allowance() {
        let limit = DownloadLimit::new(NonZeroU32::new(2));
        assert!(limit.check("a").is_ok() && limit.check("a").is_ok());
        let wait = limit.check("a").unwrap_err();
        assert!(
            wait > Duration::ZERO && wait <= Duration::from_secs(30),
            "{wait:?}"
        );
        assert!(limit.check("b").is_ok());
        assert!(DownloadLimit::new(None).check("a").is_ok());
    }
}
