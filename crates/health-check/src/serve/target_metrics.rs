//! Per-target series, so Prometheus sees which target failed: `healthcheck_target_up`,
//! `healthcheck_probe_duration_seconds` (histogram), `healthcheck_last_success_timestamp_seconds`
//! and `healthcheck_probes_total{result}`; `healthcheck_last_run_timestamp_seconds` shows that the
//! loop itself still runs (AbnStackHealthCheckStale).

use std::sync::atomic::AtomicU64;
use std::time::{Duration, UNIX_EPOCH};

use platform::metrics::{LatencyHistogram, MetricsRegistry};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;

use crate::record::ProbeRecord;
use crate::Target;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TargetLabel {
    target: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResultLabels {
    target: String,
    result: &'static str,
}

const RESULTS: [&str; 2] = ["ok", "failed"];

#[derive(Clone)]
pub struct TargetMetrics {
    up: Family<TargetLabel, Gauge>,
    duration: Family<TargetLabel, LatencyHistogram>,
    last_success: Family<TargetLabel, Gauge<f64, AtomicU64>>,
    probes: Family<ResultLabels, Counter>,
    last_run: Gauge<f64, AtomicU64>,
}

impl TargetMetrics {
    /// Registers the series; every target's probe counters start at 0, so a rate over them is
    /// defined from the first scrape.
    pub fn register(registry: &MetricsRegistry, targets: &[Target]) -> Self {
        let metrics = Self {
            up: Family::default(),
            duration: Family::default(),
            last_success: Family::default(),
            probes: Family::default(),
            last_run: Gauge::default(),
        };
        registry.register(
            "healthcheck_last_run_timestamp_seconds",
            "Unix time at which the probe loop last finished a run",
            metrics.last_run.clone(),
        );
        registry.register(
            "healthcheck_target_up",
            "1 when the target's last probe met every condition, else 0",
            metrics.up.clone(),
        );
        registry.register(
            "healthcheck_probe_duration_seconds",
            "Time from the start of a probe to its outcome, by target",
            metrics.duration.clone(),
        );
        registry.register(
            "healthcheck_last_success_timestamp_seconds",
            "Unix time of the target's last probe that met every condition",
            metrics.last_success.clone(),
        );
        registry.register(
            "healthcheck_probes",
            "Probes made, by target and result (ok or failed)",
            metrics.probes.clone(),
        );
        for target in targets {
            for result in RESULTS {
                let _ = metrics.probes.get_or_create(&ResultLabels {
                    target: target.name.clone(),
                    result,
                });
            }
        }
        metrics
    }

    /// Records one run.
    pub fn observe(&self, records: &[ProbeRecord]) {
        let now = std::time::SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        self.last_run.set(now.as_secs_f64());
        for r in records {
            let label = TargetLabel {
                target: r.target.clone(),
            };
            self.up.get_or_create(&label).set(i64::from(r.ok));
            self.duration
                .get_or_create(&label)
                .observe(Duration::from_millis(r.latency_ms));
            if r.ok {
                if let Some(at) = r.time() {
                    let secs = at.duration_since(UNIX_EPOCH).unwrap_or_default();
                    self.last_success
                        .get_or_create(&label)
                        .set(secs.as_secs_f64());
                }
            }
            self.probes
                .get_or_create(&ResultLabels {
                    target: r.target.clone(),
                    result: RESULTS[usize::from(!r.ok)],
                })
                .inc();
        }
    }
}
