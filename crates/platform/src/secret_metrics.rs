//! `secret_reloads_total{secret,outcome}` and `secret_last_reload_timestamp_seconds{secret}`:
//! what an operator (and a deployment's verify step) reads to see that a rotated file was taken.
//! The labels are the secret's name, never its value or anything derived from it.

use std::sync::atomic::AtomicU64;
use std::time::SystemTime;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;

use crate::metrics::MetricsRegistry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReloadLabels {
    secret: &'static str,
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SecretLabel {
    secret: &'static str,
}

#[derive(Clone)]
pub struct SecretMetrics {
    reloads: Family<ReloadLabels, Counter>,
    last_reload: Family<SecretLabel, Gauge<f64, AtomicU64>>,
}

impl SecretMetrics {
    pub fn register(registry: &MetricsRegistry) -> Self {
        let metrics = Self {
            reloads: Family::default(),
            last_reload: Family::default(),
        };
        registry.register(
            "secret_reloads",
            "Secret file reloads, by secret and outcome (ok, failed: the current value is kept)",
            metrics.reloads.clone(),
        );
        registry.register(
            "secret_last_reload_timestamp_seconds",
            "Unix time the secret's value in use was read (at start, then at each good reload)",
            metrics.last_reload.clone(),
        );
        metrics
    }

    /// The value read at start: its time, and both outcomes at 0 so rates and alerts see them.
    pub(crate) fn loaded(&self, secret: &'static str) {
        for outcome in ["ok", "failed"] {
            self.reloads
                .get_or_create(&ReloadLabels { secret, outcome })
                .inc_by(0);
        }
        self.stamp(secret);
    }

    pub(crate) fn reloaded(&self, secret: &'static str) {
        self.reloads
            .get_or_create(&ReloadLabels {
                secret,
                outcome: "ok",
            })
            .inc();
        self.stamp(secret);
    }

    pub(crate) fn failed(&self, secret: &'static str) {
        self.reloads
            .get_or_create(&ReloadLabels {
                secret,
                outcome: "failed",
            })
            .inc();
    }

    fn stamp(&self, secret: &'static str) {
        let now = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs_f64();
        self.last_reload
            .get_or_create(&SecretLabel { secret })
            .set(now);
    }
}
