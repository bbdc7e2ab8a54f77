//! A Prometheus histogram of durations whose `observe` is three atomic additions: no lock on the
//! request path (prometheus-client's own histogram takes a write lock per observation).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use prometheus_client::encoding::{EncodeMetric, MetricEncoder, NoLabelSet};
use prometheus_client::metrics::{MetricType, TypedMetric};

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

/// Cheap to clone: clones share the counts.
#[derive(Clone, Debug, Default)]
pub struct LatencyHistogram {
    inner: Arc<Counts>,
}

#[derive(Debug, Default)]
struct Counts {
    /// Per bucket, not cumulative; the last one is `+Inf`.
    buckets: [AtomicU64; 17],
    count: AtomicU64,
    sum_nanos: AtomicU64,
}

impl LatencyHistogram {
    pub fn observe(&self, elapsed: Duration) {
        let nanos = u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX);
        let bucket = BOUNDS_NANOS.partition_point(|&bound| bound < nanos);
        let counts = &self.inner;
        counts.buckets[bucket].fetch_add(1, Ordering::Relaxed);
        counts.count.fetch_add(1, Ordering::Relaxed);
        counts.sum_nanos.fetch_add(nanos, Ordering::Relaxed);
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
        encoder.encode_histogram::<NoLabelSet>(sum, count, &buckets, None)
    }

    fn metric_type(&self) -> MetricType {
        Self::TYPE
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use prometheus_client::registry::Registry;

    fn encoded(histogram: &LatencyHistogram) -> String {
        let mut registry = Registry::default();
        registry.register("latency", "test", histogram.clone());
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &registry).unwrap();
        out
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
