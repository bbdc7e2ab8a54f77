//! The one bounded wait of the tests: a condition that becomes true later is polled until it
//! holds or its bound passes, and then the test fails saying what did not happen. No test waits
//! without a bound, and none asserts on how long something took.

use std::future::Future;
use std::time::Duration;

/// The bound of a readiness wait (a service answering `/readyz` as expected).
pub const READY_WAIT: Duration = Duration::from_secs(10);
/// How often a condition is polled.
const POLL: Duration = Duration::from_millis(20);

/// Polls `check` until it gives `Some`, and returns that; fails the test with `what` once
/// `within` has passed without it.
pub async fn eventually<T, F, Fut>(what: &str, within: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + within;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        if tokio::time::Instant::now() >= deadline {
            panic!("{what}: not within {within:?}");
        }
        tokio::time::sleep(POLL).await;
    }
}

/// [`eventually`] for a yes/no condition.
pub async fn eventually_true<F, Fut>(what: &str, within: Duration, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    eventually(what, within, || {
        let fut = check();
        async move { fut.await.then_some(()) }
    })
    .await
}
