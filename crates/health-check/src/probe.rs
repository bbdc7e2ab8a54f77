//! Probing: every target of a run at once, each under the same timeout.

use std::future::Future;
use std::time::{Duration, SystemTime};

use futures_util::future::join_all;
use tokio::time::Instant;
use tracing::Instrument;

use crate::record::{format_ts, ProbeRecord};
use crate::target::Target;

/// At most this much of a body is searched for `body_contains` (bounded memory per probe).
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

/// What came back from a target before the conditions are checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    pub status: u16,
    /// Whether the body contained the target's `body_contains` (None when not asked).
    pub body_matched: Option<bool>,
}

/// The HTTP client for probes: one fresh connection per probe (like the legacy curl), so a
/// listener that went away is seen at once; no redirects followed (a 301 is not a 200); no
/// proxy (targets are in-cluster or local services).
pub fn http_client() -> Result<reqwest::Client, reqwest::Error> {
    platform::http_client::builder()
        .user_agent(concat!(
            "abn-stack-health-check/",
            env!("CARGO_PKG_VERSION")
        ))
        .redirect(reqwest::redirect::Policy::none())
        .pool_max_idle_per_host(0)
        .no_proxy()
        .build()
}

/// Probes every target concurrently with the real HTTP client.
pub async fn probe_all(
    client: &reqwest::Client,
    targets: &[Target],
    timeout: Duration,
) -> Vec<ProbeRecord> {
    probe_all_with(targets, timeout, |target| fetch(client, target)).await
}

/// Starts one probe per target at once and waits for all, each bounded by `timeout`, so a run
/// takes at most about one timeout however many targets hang. Results keep the targets' order.
/// `fetch` is a parameter so that the scheduling can be tested on a virtual clock.
pub async fn probe_all_with<'a, F, Fut>(
    targets: &'a [Target],
    timeout: Duration,
    fetch: F,
) -> Vec<ProbeRecord>
where
    F: Fn(&'a Target) -> Fut,
    Fut: Future<Output = Result<Answer, String>>,
{
    // The probes' spans are made here, outside the run's future: their parent is named.
    let run = run_span(targets.len());
    join_all(targets.iter().map(|target| {
        let span = probe_span(&run, target);
        let attempt = fetch(target);
        async move {
            let ts = SystemTime::now();
            let started = Instant::now();
            let outcome = tokio::time::timeout(timeout, attempt).await;
            let latency = started.elapsed();
            let outcome =
                outcome.unwrap_or_else(|_| Err(format!("timed out after {}", show(timeout))));
            let record = judge(target, ts, latency, outcome);
            let span = tracing::Span::current();
            span.record("ok", record.ok);
            if let Some(status) = record.status {
                span.record("http.response.status_code", i64::from(status));
            }
            if let Some(error) = &record.error {
                span.record("error", error.as_str());
                span.record("otel.status_code", "ERROR");
            }
            record
        }
        .instrument(span)
    }))
    .instrument(run)
    .await
}

/// The trace's root span of one run (every probe its child); none when traces are off or the
/// sampler drops this run's trace.
fn run_span(targets: usize) -> tracing::Span {
    let root = platform::otel::new_root("health check run");
    if !root.is_kept() {
        return tracing::Span::none();
    }
    root.open(|| tracing::info_span!(parent: None, "health check run", targets = targets as i64))
}

/// One probe's client span: its target, URL, status and verdict. Its context goes to the
/// target as `traceparent`, so the target's own span joins the trace.
fn probe_span(run: &tracing::Span, target: &Target) -> tracing::Span {
    if !platform::otel::traced(run) {
        return tracing::Span::none();
    }
    tracing::info_span!(
        parent: run,
        "probe",
        otel.kind = "client",
        target = target.name.as_str(),
        url = target.display_url(),
        ok = tracing::field::Empty,
        http.response.status_code = tracing::field::Empty,
        error = tracing::field::Empty,
        otel.status_code = tracing::field::Empty,
    )
}

/// Checks an answer against the target's conditions.
fn judge(
    target: &Target,
    ts: SystemTime,
    latency: Duration,
    outcome: Result<Answer, String>,
) -> ProbeRecord {
    let status = outcome.as_ref().ok().map(|a| a.status);
    let error = match outcome {
        Err(e) => Some(e),
        Ok(a) if a.status != target.expect_status => Some(format!(
            "HTTP {}, expected {}",
            a.status, target.expect_status
        )),
        Ok(Answer {
            body_matched: Some(false),
            ..
        }) => Some(format!(
            "body does not contain {:?}",
            target.body_contains.as_deref().unwrap_or_default()
        )),
        Ok(_) => match target.max_latency {
            Some(limit) if latency > limit => Some(format!(
                "too slow: {} over the {} limit",
                show(latency),
                show(limit)
            )),
            _ => None,
        },
    };
    ProbeRecord {
        ts: format_ts(ts),
        target: target.name.clone(),
        url: target.display_url(),
        ok: error.is_none(),
        status,
        latency_ms: latency.as_millis().try_into().unwrap_or(u64::MAX),
        error,
    }
}

/// One GET; the body is read only when a condition needs it, and only its first bytes.
async fn fetch(client: &reqwest::Client, target: &Target) -> Result<Answer, String> {
    let mut trace_context = reqwest::header::HeaderMap::new();
    platform::otel::inject(&tracing::Span::current(), &mut trace_context);
    let mut response = client
        .get(&target.url)
        .headers(trace_context)
        .send()
        .await
        .map_err(|e| describe(&e))?;
    let status = response.status().as_u16();
    let Some(needle) = target.body_contains.as_deref() else {
        return Ok(Answer {
            status,
            body_matched: None,
        });
    };
    let mut body = Vec::new();
    while body.len() < MAX_BODY_BYTES {
        match response.chunk().await.map_err(|e| describe(&e))? {
            Some(chunk) => body.extend_from_slice(&chunk),
            None => break,
        }
        if contains(&body, needle.as_bytes()) {
            break;
        }
    }
    Ok(Answer {
        status,
        body_matched: Some(contains(&body, needle.as_bytes())),
    })
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    needle.is_empty() || haystack.windows(needle.len()).any(|w| w == needle)
}

/// A short cause for the history: reqwest's own message plus the innermost source, which is
/// where "Connection refused" or a TLS problem is named.
fn describe(e: &reqwest::Error) -> String {
    let kind = if e.is_connect() {
        "connection failed"
    } else if e.is_timeout() {
        "timed out"
    } else if e.is_body() || e.is_decode() {
        "reading the body failed"
    } else {
        "request failed"
    };
    format!("{kind}: {}", platform::http_client::root_cause(e))
}

fn show(d: Duration) -> String {
    if d.as_millis() < 1000 || d.subsec_millis() != 0 {
        format!("{}ms", d.as_millis())
    } else {
        format!("{}s", d.as_secs())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    fn targets(n: usize) -> Vec<Target> {
        (0..n)
            .map(|i| Target::new(format!("t{i}"), format!("http://hang-{i}.invalid/")))
            .collect()
    }

    /// On tokio's virtual clock a run of many targets that never answer ends after exactly one
    /// timeout: every probe was started before the first timer fired.
    #[tokio::test(start_paused = true)]
    async fn many_hanging_targets_cost_one_timeout() {
        let targets = targets(50);
        let started = AtomicUsize::new(0);
        let begin = Instant::now();
        let records = probe_all_with(&targets, Duration::from_secs(2), |_| {
            started.fetch_add(1, Ordering::SeqCst);
            std::future::pending::<Result<Answer, String>>()
        })
        .await;
        assert_eq!(begin.elapsed(), Duration::from_secs(2));
        assert_eq!(started.load(Ordering::SeqCst), 50);
        assert_eq!(records.len(), 50);
        for (record, target) in records.iter().zip(&targets) {
            assert_eq!(record.target, target.name);
            assert!(!record.ok);
            assert_eq!(record.status, None);
            assert_eq!(record.latency_ms, 2000);
            assert_eq!(record.error.as_deref(), Some("timed out after 2s"));
        }
    }

    /// A mix on the virtual clock: the run lasts as long as its slowest probe, capped by the
    /// timeout, never the sum.
    #[tokio::test(start_paused = true)]
    async fn a_run_lasts_as_long_as_its_slowest_probe() {
        let targets = targets(3);
        let begin = Instant::now();
        let records = probe_all_with(&targets, Duration::from_secs(2), |t| async move {
            let wait = match t.name.as_str() {
                "t0" => 300,
                "t1" => 1500,
                _ => 10_000,
            };
            tokio::time::sleep(Duration::from_millis(wait)).await;
            Ok(Answer {
                status: 200,
                body_matched: None,
            })
        })
        .await;
        assert_eq!(begin.elapsed(), Duration::from_secs(2));
        let latencies: Vec<_> = records.iter().map(|r| r.latency_ms).collect();
        assert_eq!(latencies, [300, 1500, 2000]);
        let ok: Vec<_> = records.iter().map(|r| r.ok).collect();
        assert_eq!(ok, [true, true, false]);
    }

    #[test]
    fn conditions_are_checked_in_order() {
        let t = Target::new("a", "http://h/")
            .max_latency(Duration::from_millis(100))
            .body_contains("healthy");
        let now = SystemTime::now();
        let fast = Duration::from_millis(5);
        let answer = |status, matched| {
            Ok(Answer {
                status,
                body_matched: Some(matched),
            })
        };
        let r = judge(&t, now, fast, answer(200, true));
        assert!(r.ok && r.error.is_none() && r.status == Some(200));
        let r = judge(&t, now, fast, answer(503, true));
        assert_eq!(r.error.as_deref(), Some("HTTP 503, expected 200"));
        let r = judge(&t, now, fast, answer(200, false));
        assert_eq!(
            r.error.as_deref(),
            Some("body does not contain \"healthy\"")
        );
        let r = judge(&t, now, Duration::from_millis(250), answer(200, true));
        assert_eq!(
            r.error.as_deref(),
            Some("too slow: 250ms over the 100ms limit")
        );
        assert_eq!(r.status, Some(200));
    }
}
