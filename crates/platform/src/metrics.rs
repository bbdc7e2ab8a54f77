//! Prometheus metrics: a registry per service, the HTTP request metrics labelled by route
//! template, method and status, and a build-info gauge. Services register their own metrics at
//! start.

use std::sync::{Arc, Mutex};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::{Metric, Registry};

pub use crate::latency_histogram::{LatencyHistogram, LATENCY_BUCKETS};
use crate::service_info::ServiceInfo;

/// A service's metric registry. Cheap to clone; register before serving.
#[derive(Clone, Default)]
pub struct MetricsRegistry {
    inner: Arc<Mutex<Registry>>,
}

impl MetricsRegistry {
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers a metric under `name` (counters get `_total` appended on output).
    pub fn register(&self, name: &str, help: &str, metric: impl Metric) {
        self.inner
            .lock()
            .expect("metrics lock")
            .register(name, help, metric);
    }

    /// The OpenMetrics text exposition of every registered metric, `# EOF` included, with the
    /// latency histograms' exemplars.
    pub fn encode(&self) -> String {
        let registry = self.inner.lock().expect("metrics lock");
        crate::latency_histogram::encode_page(&registry)
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct HttpLabels {
    pub route: String,
    pub method: String,
    pub status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct BuildLabels {
    service: String,
    version: String,
    revision: String,
}

/// Request count, latency and in-flight gauge of one service. The request pipeline reaches the
/// labelled children through [`crate::route_metrics::RouteMetrics`], resolved once per route.
#[derive(Clone)]
pub struct HttpMetrics {
    pub(crate) requests: Family<HttpLabels, Counter>,
    pub(crate) duration: Family<HttpLabels, LatencyHistogram>,
    pub(crate) in_flight: Gauge,
}

impl HttpMetrics {
    /// Creates and registers the HTTP and build-info metrics.
    pub fn register(registry: &MetricsRegistry, info: &ServiceInfo) -> Self {
        let requests = Family::<HttpLabels, Counter>::default();
        let duration = Family::<HttpLabels, LatencyHistogram>::default();
        let in_flight = Gauge::default();
        registry.register(
            "http_requests",
            "HTTP requests answered, by route template, method and status",
            requests.clone(),
        );
        registry.register(
            "http_request_duration_seconds",
            "Time from request to response head, by route template, method and status",
            duration.clone(),
        );
        registry.register(
            "http_requests_in_flight",
            "HTTP requests being handled now",
            in_flight.clone(),
        );
        let build = Family::<BuildLabels, Gauge>::default();
        build
            .get_or_create(&BuildLabels {
                service: info.name.to_string(),
                version: info.version.to_string(),
                revision: info.revision.unwrap_or("unknown").to_string(),
            })
            .set(1);
        registry.register("build_info", "Always 1; labels say what is running", build);
        Self {
            requests,
            duration,
            in_flight,
        }
    }
}
