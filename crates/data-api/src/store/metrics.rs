//! The store's Prometheus metrics (names agreed in interfaces.md).

use platform::metrics::MetricsRegistry;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};

/// fdatasync takes tens of microseconds on tmpfs and up to seconds on a struggling disk.
const SYNC_BUCKETS: [f64; 14] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
];

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ErrorLabels {
    kind: String,
}

/// Counters, gauges and histograms the writer updates. Cheap to clone (shared handles).
#[derive(Clone, Debug)]
pub struct StoreMetrics {
    pub(crate) records_written: Counter,
    pub(crate) store_bytes: Gauge,
    pub(crate) retention_bytes: Gauge,
    pub(crate) sync_duration: Histogram,
    pub(crate) batch_size: Histogram,
    pub(crate) writable: Gauge,
    write_errors: Family<ErrorLabels, Counter>,
}

impl Default for StoreMetrics {
    fn default() -> Self {
        let write_errors = Family::<ErrorLabels, Counter>::default();
        // Both kinds appear from the start, at 0, so alerts can use rate() at once.
        for kind in ["full", "unavailable"] {
            let _ = write_errors.get_or_create(&ErrorLabels { kind: kind.into() });
        }
        Self {
            records_written: Counter::default(),
            store_bytes: Gauge::default(),
            retention_bytes: Gauge::default(),
            sync_duration: Histogram::new(SYNC_BUCKETS.iter().copied()),
            batch_size: Histogram::new(exponential_buckets(1.0, 2.0, 12)),
            writable: Gauge::default(),
            write_errors,
        }
    }
}

impl StoreMetrics {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn register(&self, registry: &MetricsRegistry) {
        registry.register(
            "data_api_records_written",
            "Records durably written and acknowledged",
            self.records_written.clone(),
        );
        registry.register(
            "data_api_store_bytes",
            "Bytes of segment files on disk for this instance",
            self.store_bytes.clone(),
        );
        registry.register(
            "data_api_retention_bytes",
            "Configured limit of segment bytes kept for this instance (LOG_RETENTION_BYTES)",
            self.retention_bytes.clone(),
        );
        registry.register(
            "data_api_sync_duration_seconds",
            "Time of one write plus fdatasync of a commit batch, and of the commit marker after it",
            self.sync_duration.clone(),
        );
        registry.register(
            "data_api_commit_batch_size",
            "Records acknowledged per fdatasync (group commit)",
            self.batch_size.clone(),
        );
        registry.register(
            "data_api_store_writable",
            "1 while the log store accepts writes, 0 while the volume is full or unusable",
            self.writable.clone(),
        );
        registry.register(
            "data_api_write_errors",
            "Records refused because the volume was full or unusable, by kind",
            self.write_errors.clone(),
        );
    }

    pub(crate) fn write_errors(&self, kind: &str, records: u64) {
        self.write_errors
            .get_or_create(&ErrorLabels { kind: kind.into() })
            .inc_by(records);
    }
}
