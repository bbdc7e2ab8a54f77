//! The HTTP metric children of one route template, resolved when the router is built: answering
//! a request costs atomic additions, with no label set built, hashed or looked up under a lock.

use std::sync::OnceLock;
use std::time::Duration;

use axum::http::{Method, StatusCode};
use prometheus_client::metrics::counter::Counter;

use crate::latency_histogram::LatencyHistogram;
use crate::metrics::{HttpLabels, HttpMetrics};

/// The methods with a place of their own; any other method is looked up in the family each time
/// (rare, and still labelled as it came).
const METHODS: [Method; 7] = [
    Method::GET,
    Method::HEAD,
    Method::POST,
    Method::PUT,
    Method::DELETE,
    Method::PATCH,
    Method::OPTIONS,
];

/// Distinct statuses remembered per route and method; more are looked up in the family.
const STATUS_SLOTS: usize = 6;

/// The label the router's fallback (no route matched) is counted under.
pub(crate) const UNMATCHED: &str = "unmatched";

pub(crate) struct RouteMetrics {
    route: String,
    families: HttpMetrics,
    by_method: [StatusSlots; METHODS.len()],
}

/// Children for the statuses seen so far, filled on first use of each status (a series appears
/// on `/metrics` only once it has counted a request, as before).
#[derive(Default)]
struct StatusSlots([OnceLock<Children>; STATUS_SLOTS]);

struct Children {
    status: u16,
    requests: Counter,
    duration: LatencyHistogram,
}

impl RouteMetrics {
    pub(crate) fn new(families: &HttpMetrics, route: &str) -> Self {
        Self {
            route: route.to_string(),
            families: families.clone(),
            by_method: Default::default(),
        }
    }

    /// Counts one answered request and its time to the response head; `trace_id`, the request's
    /// when its trace is exported, becomes the exemplar of the observation's bucket.
    pub(crate) fn record(
        &self,
        method: &Method,
        status: StatusCode,
        elapsed: Duration,
        trace_id: Option<&str>,
    ) {
        let status = status.as_u16();
        let slots = METHODS
            .iter()
            .position(|known| known == method)
            .map(|i| &self.by_method[i]);
        let remembered =
            slots.and_then(|s| s.get_or_resolve(status, || self.resolve(method, status)));
        match remembered {
            Some(children) => children.record(elapsed, trace_id),
            None => self.resolve(method, status).record(elapsed, trace_id),
        }
    }

    fn resolve(&self, method: &Method, status: u16) -> Children {
        let labels = HttpLabels {
            route: self.route.clone(),
            method: method.as_str().to_string(),
            status,
        };
        Children {
            status,
            requests: self.families.requests.get_or_create(&labels).clone(),
            duration: self.families.duration.get_or_create(&labels).clone(),
        }
    }
}

impl StatusSlots {
    fn get_or_resolve(&self, status: u16, resolve: impl Fn() -> Children) -> Option<&Children> {
        for slot in &self.0 {
            // A racing request may fill this slot with another status: then try the next one.
            let children = slot.get_or_init(&resolve);
            if children.status == status {
                return Some(children);
            }
        }
        None
    }
}

impl Children {
    fn record(&self, elapsed: Duration, trace_id: Option<&str>) {
        self.requests.inc();
        match trace_id {
            Some(trace_id) => self.duration.observe_traced(elapsed, trace_id.to_string()),
            None => self.duration.observe(elapsed),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::MetricsRegistry;

    fn families() -> (MetricsRegistry, HttpMetrics) {
        let registry = MetricsRegistry::new();
        let http = HttpMetrics::register(&registry, &crate::service_info!("test"));
        (registry, http)
    }

    #[test]
    fn every_status_and_method_gets_its_own_series_beyond_the_remembered_ones() {
        let (registry, http) = families();
        let route = RouteMetrics::new(&http, "/items/{id}");
        let statuses = [200, 201, 204, 400, 404, 409, 418, 500, 503];
        for status in statuses {
            for _ in 0..2 {
                route.record(
                    &Method::GET,
                    StatusCode::from_u16(status).unwrap(),
                    Duration::from_millis(1),
                    None,
                );
            }
        }
        let brew = Method::from_bytes(b"BREW").unwrap();
        route.record(&brew, StatusCode::METHOD_NOT_ALLOWED, Duration::ZERO, None);
        let page = registry.encode();
        for status in statuses {
            let series = format!(
                "http_requests_total{{route=\"/items/{{id}}\",method=\"GET\",status=\"{status}\"}} 2\n"
            );
            assert!(page.contains(&series), "{series} in\n{page}");
        }
        assert!(
            page.contains(
                "http_requests_total{route=\"/items/{id}\",method=\"BREW\",status=\"405\"} 1\n"
            ),
            "{page}"
        );
        assert!(page.contains(
            "http_request_duration_seconds_count{route=\"/items/{id}\",method=\"GET\",status=\"418\"} 2\n"
        ));
    }

    #[test]
    fn nothing_is_exposed_before_a_request_is_counted() {
        let (registry, http) = families();
        let _route = RouteMetrics::new(&http, "/quiet");
        assert!(!registry.encode().contains("/quiet"));
    }
}
