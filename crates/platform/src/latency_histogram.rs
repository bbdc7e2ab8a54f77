//! A Prometheus histogram of durations whose `observe` is three atomic additions: no lock on the
//! request path (prometheus-client's own histogram takes a write lock per observation).
//!
//! When tracing is on, a sampled request's observation also keeps its trace id as the
//! OpenMetrics exemplar of its bucket (the last one wins), so a latency spike on a dashboard links
//! to a trace. prometheus-client (0.23, and 0.24 alike) builds `Exemplar`s only inside its own
//! `HistogramWithExemplars`, which takes a write lock per observation: its `Exemplar` has no
//! public constructor, so `encode_histogram`'s exemplar argument cannot be filled from here.
//! [`encode_page`] therefore writes the page itself, and each histogram adds its exemplars to its
//! bucket lines right after prometheus-client has written them. The classic text format drops
//! them again (`exposition.rs`).

use std::cell::RefCell;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use prometheus_client::encoding::{EncodeMetric, MetricEncoder, NoLabelSet};
use prometheus_client::metrics::{MetricType, TypedMetric};
use prometheus_client::registry::Registry;

/// Latency buckets in seconds, from sub-millisecond handlers to slow upstream calls.
pub const LATENCY_BUCKETS: [f64; 16] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
    60.0,
];

/// Upper bounds in nanoseconds, compared without floating point on every observation.
const BOUNDS_NANOS: [u64; 16] = {
    let mut bounds = [0u64; 16];
    let mut i = 0;
    while i < bounds.len() {
        bounds[i] = (LATENCY_BUCKETS[i] * 1e9) as u64;
        i += 1;
    }
    bounds
};

/// Buckets, the last one `+Inf`.
const BUCKETS: usize = LATENCY_BUCKETS.len() + 1;

/// Cheap to clone: clones share the counts.
#[derive(Clone, Debug, Default)]
pub struct LatencyHistogram {
    inner: Arc<Counts>,
}

#[derive(Debug, Default)]
struct Counts {
    /// Per bucket, not cumulative; the last one is `+Inf`.
    buckets: [AtomicU64; BUCKETS],
    count: AtomicU64,
    sum_nanos: AtomicU64,
    /// The last traced observation of each bucket. One small mutex rather than a lock-free swap
    /// (an `ArcSwapOption` per bucket would be a new dependency and an allocation per exemplar
    /// all the same): only sampled requests take it, a few per second at a 1 % sampler, each for
    /// the copy of 40 bytes, and the scrape for a snapshot. Untraced requests never touch it.
    exemplars: Mutex<[Option<Exemplar>; BUCKETS]>,
}

/// A bucket's exemplar: `{trace_id="…"} <seconds> <unix time>` on the OpenMetrics page.
#[derive(Clone, Debug, PartialEq)]
struct Exemplar {
    trace_id: String,
    seconds: f64,
    at: SystemTime,
}

impl LatencyHistogram {
    pub fn observe(&self, elapsed: Duration) {
        self.count(elapsed);
    }

    /// Observes `elapsed` and keeps `trace_id` (the sampled request's 32 hex digits) as its
    /// bucket's exemplar, replacing the one before.
    pub fn observe_traced(&self, elapsed: Duration, trace_id: String) {
        let bucket = self.count(elapsed);
        let exemplar = Exemplar {
            trace_id,
            seconds: elapsed.as_secs_f64(),
            at: SystemTime::now(),
        };
        let mut exemplars = self
            .inner
            .exemplars
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        exemplars[bucket] = Some(exemplar);
    }

    /// Counts one observation; returns its bucket.
    fn count(&self, elapsed: Duration) -> usize {
        let nanos = u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX);
        let bucket = BOUNDS_NANOS.partition_point(|&bound| bound < nanos);
        let counts = &self.inner;
        counts.buckets[bucket].fetch_add(1, Ordering::Relaxed);
        counts.count.fetch_add(1, Ordering::Relaxed);
        counts.sum_nanos.fetch_add(nanos, Ordering::Relaxed);
        bucket
    }

    fn exemplars(&self) -> [Option<Exemplar>; BUCKETS] {
        self.inner
            .exemplars
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }
}

impl TypedMetric for LatencyHistogram {
    const TYPE: MetricType = MetricType::Histogram;
}

impl EncodeMetric for LatencyHistogram {
    fn encode(&self, mut encoder: MetricEncoder) -> Result<(), std::fmt::Error> {
        let counts = &self.inner;
        let buckets: Vec<(f64, u64)> = LATENCY_BUCKETS
            .iter()
            .copied()
            .chain(std::iter::once(f64::MAX))
            .zip(counts.buckets.iter().map(|b| b.load(Ordering::Relaxed)))
            .collect();
        let sum = counts.sum_nanos.load(Ordering::Relaxed) as f64 / 1e9;
        let count = counts.count.load(Ordering::Relaxed);
        encoder.encode_histogram::<NoLabelSet>(sum, count, &buckets, None)?;
        let exemplars = self.exemplars();
        if exemplars.iter().any(Option::is_some) {
            PAGE.with(|page| match page.borrow_mut().as_mut() {
                Some(page) => annotate_buckets(page, &exemplars),
                // Encoded by something other than `encode_page`: no exemplars.
                None => Ok(()),
            })?;
        }
        Ok(())
    }

    fn metric_type(&self) -> MetricType {
        Self::TYPE
    }
}

thread_local! {
    /// The page [`encode_page`] is writing on this thread.
    static PAGE: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// The OpenMetrics text of `registry`, with the exemplars of its latency histograms.
pub(crate) fn encode_page(registry: &Registry) -> String {
    PAGE.with(|page| *page.borrow_mut() = Some(String::new()));
    let written = prometheus_client::encoding::text::encode(&mut PageWriter, registry);
    let page = PAGE
        .with(|page| page.borrow_mut().take())
        .unwrap_or_default();
    written.expect("writing to a String cannot fail");
    page
}

/// Appends to this thread's [`PAGE`]; holds no borrow between writes, so a histogram can edit
/// the page once prometheus-client has written its lines.
struct PageWriter;

impl std::fmt::Write for PageWriter {
    fn write_str(&mut self, text: &str) -> std::fmt::Result {
        PAGE.with(|page| match page.borrow_mut().as_mut() {
            Some(page) => {
                page.push_str(text);
                Ok(())
            }
            None => Err(std::fmt::Error),
        })
    }
}

/// Adds the exemplars to the histogram's bucket lines, the last [`BUCKETS`] lines of `page`
/// (prometheus-client writes `_sum`, `_count`, then the buckets in order, each ending its line).
fn annotate_buckets(
    page: &mut String,
    exemplars: &[Option<Exemplar>; BUCKETS],
) -> std::fmt::Result {
    let body = page.strip_suffix('\n').unwrap_or(page);
    let start = body
        .rmatch_indices('\n')
        .nth(BUCKETS - 1)
        .map_or(0, |(newline, _)| newline + 1);
    let lines: Vec<String> = page[start..].lines().map(str::to_string).collect();
    if lines.len() != BUCKETS || !lines.iter().all(|line| line.contains("_bucket{")) {
        // Not the layout this was written for (a prometheus-client upgrade?): the tests stop
        // here; a release build leaves the page without exemplars rather than annotate the
        // wrong lines.
        debug_assert!(false, "bucket lines expected at the end of:\n{page}");
        return Ok(());
    }
    page.truncate(start);
    for (line, exemplar) in lines.iter().zip(exemplars) {
        page.push_str(line);
        if let Some(exemplar) = exemplar {
            let at = exemplar
                .at
                .duration_since(SystemTime::UNIX_EPOCH)
                .unwrap_or_default();
            write!(
                page,
                " # {{trace_id=\"{}\"}} {} {}.{:03}",
                exemplar.trace_id,
                exemplar.seconds,
                at.as_secs(),
                at.subsec_millis()
            )?;
        }
        page.push('\n');
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use prometheus_client::metrics::counter::Counter;

    fn encoded(histogram: &LatencyHistogram) -> String {
        let mut registry = Registry::default();
        registry.register("latency", "test", histogram.clone());
        encode_page(&registry)
    }

    const TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
    const LATER_TRACE: &str = "0af7651916cd43dd8448eb211c80319c";

    #[test]
    fn a_traced_observation_is_its_buckets_exemplar_and_the_last_one_wins() {
        let histogram = LatencyHistogram::default();
        histogram.observe(Duration::from_millis(3));
        histogram.observe_traced(Duration::from_micros(3100), TRACE.to_string());
        histogram.observe_traced(Duration::from_micros(4200), LATER_TRACE.to_string());
        histogram.observe_traced(Duration::from_secs(2), TRACE.to_string());
        histogram.observe(Duration::from_millis(4)); // untraced: the exemplar stays
        let page = encoded(&histogram);
        let line = |le: &str| {
            page.lines()
                .find(|line| line.starts_with(&format!("latency_bucket{{le=\"{le}\"}} ")))
                .unwrap_or_else(|| panic!("le={le} in\n{page}"))
                .to_string()
        };
        let with_exemplar = |line: String| {
            let (sample, exemplar) = line.split_once(" # ").expect("an exemplar");
            let parts: Vec<&str> = exemplar.split(' ').collect();
            (
                sample.to_string(),
                parts[0].to_string(),
                parts[1].to_string(),
                parts[2].to_string(),
            )
        };
        let (sample, labels, value, at) = with_exemplar(line("0.005"));
        assert_eq!(sample, "latency_bucket{le=\"0.005\"} 4");
        assert_eq!(labels, format!("{{trace_id=\"{LATER_TRACE}\"}}"));
        assert_eq!(value, "0.0042");
        let at: f64 = at.parse().expect("a unix time in seconds");
        let now = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap()
            .as_secs_f64();
        assert!(
            (now - 60.0..=now + 1.0).contains(&at),
            "{at} is not about now"
        );
        let (sample, labels, value, _) = with_exemplar(line("2.5"));
        assert_eq!(sample, "latency_bucket{le=\"2.5\"} 5");
        assert_eq!(labels, format!("{{trace_id=\"{TRACE}\"}}"));
        assert_eq!(value, "2");
        let exemplars = page.lines().filter(|line| line.contains(" # ")).count();
        assert_eq!(exemplars, 2, "only the two buckets traced:\n{page}");
        assert!(page.ends_with("# EOF\n"), "{page}");
    }

    #[test]
    fn untraced_observations_carry_no_exemplar() {
        let histogram = LatencyHistogram::default();
        histogram.observe(Duration::from_millis(3));
        let page = encoded(&histogram);
        assert!(!page.contains(" # "), "{page}");
        assert!(page.contains("latency_bucket{le=\"0.005\"} 1\n"), "{page}");
    }

    #[test]
    fn each_labelled_series_carries_its_own_exemplars() {
        use prometheus_client::metrics::family::Family;
        type Labels = Vec<(String, String)>;
        let family = Family::<Labels, LatencyHistogram>::default();
        let route = |r: &str| vec![("route".to_string(), r.to_string())];
        family
            .get_or_create(&route("/a"))
            .observe_traced(Duration::from_millis(3), TRACE.to_string());
        family
            .get_or_create(&route("/b"))
            .observe(Duration::from_millis(3));
        family
            .get_or_create(&route("/c"))
            .observe_traced(Duration::from_secs(100), LATER_TRACE.to_string());
        let mut registry = Registry::default();
        registry.register("latency", "test", family);
        registry.register(
            "after",
            "a metric written after the histograms",
            Counter::<u64>::default(),
        );
        let page = encode_page(&registry);
        let exemplars: Vec<&str> = page.lines().filter(|line| line.contains(" # ")).collect();
        assert_eq!(exemplars.len(), 2, "{page}");
        assert!(
            exemplars.iter().any(|line| line.starts_with(&format!(
                "latency_bucket{{le=\"0.005\",route=\"/a\"}} 1 # {{trace_id=\"{TRACE}\"}} 0.003 "
            ))),
            "{page}"
        );
        assert!(
            exemplars.iter().any(|line| line.starts_with(&format!(
            "latency_bucket{{le=\"+Inf\",route=\"/c\"}} 1 # {{trace_id=\"{LATER_TRACE}\"}} 100 "
        ))),
            "{page}"
        );
        assert!(page.contains("after_total 0\n"), "{page}");
    }

    #[test]
    fn buckets_are_cumulative_and_bounds_inclusive() {
        let histogram = LatencyHistogram::default();
        histogram.observe(Duration::from_micros(500)); // exactly the first bound
        histogram.observe(Duration::from_millis(3));
        histogram.observe(Duration::from_secs(120)); // beyond the last bound
        let page = encoded(&histogram);
        assert!(page.contains("latency_bucket{le=\"0.0005\"} 1\n"), "{page}");
        assert!(page.contains("latency_bucket{le=\"0.001\"} 1\n"), "{page}");
        assert!(page.contains("latency_bucket{le=\"0.005\"} 2\n"), "{page}");
        assert!(page.contains("latency_bucket{le=\"60.0\"} 2\n"), "{page}");
        assert!(page.contains("latency_bucket{le=\"+Inf\"} 3\n"), "{page}");
        assert!(page.contains("latency_count 3\n"), "{page}");
        assert!(page.contains("latency_sum 120.0035\n"), "{page}");
    }
}
