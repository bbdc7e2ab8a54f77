//! Delivering a change to every receiver: one task per receiver and change, retried with
//! exponential backoff (backon) within `give_up_after`, so a slow or hung receiver never holds
//! the probe loop. Each outcome is logged by receiver name and counted in
//! `healthcheck_notifications_total{receiver,result}`; the URL is never logged (reqwest's
//! errors are stripped of it).

use std::sync::Arc;
use std::time::Duration;

use backon::{ExponentialBuilder, Retryable};
use platform::metrics::MetricsRegistry;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use serde::Serialize;
use tokio::sync::Semaphore;
use tokio_util::task::TaskTracker;

use super::config::{Alerting, Delivery, Receiver, ReceiverKind};
use super::state::Change;

/// Deliveries under way at once; beyond, a change is counted failed rather than queued without
/// bound behind a receiver that hangs.
const MAX_IN_FLIGHT: usize = 64;

/// The generic webhook's JSON body (version 1).
#[derive(Debug, Clone, Serialize)]
pub struct Notification {
    pub version: u32,
    pub source: &'static str,
    pub target: String,
    /// "down" or "up".
    pub state: &'static str,
    /// The probed URL (its password replaced, as in the history).
    pub url: String,
    /// When the probe that made the change started (RFC 3339).
    pub since: String,
    /// Probes in a row that made the change.
    pub consecutive: u32,
    pub status: Option<u16>,
    pub error: Option<String>,
    /// One human sentence (the Slack text).
    pub summary: String,
}

impl Notification {
    pub fn of(change: &Change) -> Self {
        let r = &change.record;
        let summary = if change.down {
            let why = r.error.as_deref().unwrap_or("failed");
            format!(
                "health-check: {} is DOWN after {} failed probes in a row ({why}); {}",
                r.target, change.consecutive, r.url
            )
        } else {
            format!(
                "health-check: {} is UP again after {} good probe(s); {}",
                r.target, change.consecutive, r.url
            )
        };
        Self {
            version: 1,
            source: "health-check",
            target: r.target.clone(),
            state: if change.down { "down" } else { "up" },
            url: r.url.clone(),
            since: r.ts.clone(),
            consecutive: change.consecutive,
            status: r.status,
            error: r.error.clone(),
            summary,
        }
    }

    fn body_for(&self, kind: ReceiverKind) -> serde_json::Value {
        match kind {
            ReceiverKind::Webhook => serde_json::to_value(self).expect("a notification serializes"),
            ReceiverKind::Slack => serde_json::json!({ "text": self.summary }),
        }
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResultLabels {
    receiver: String,
    result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReceiverLabel {
    receiver: String,
}

/// `healthcheck_notifications_total{receiver,result="sent|failed"}` and
/// `healthcheck_notification_retries_total{receiver}`; registered by `serve`, kept (unexposed)
/// by the other modes.
#[derive(Clone, Debug, Default)]
pub struct NotificationMetrics {
    notifications: Family<ResultLabels, Counter>,
    retries: Family<ReceiverLabel, Counter>,
}

impl NotificationMetrics {
    pub fn register(&self, registry: &MetricsRegistry, alerting: &Alerting) {
        registry.register(
            "healthcheck_notifications",
            "Direct-alerting notifications by receiver and result (sent, or failed once retries were spent)",
            self.notifications.clone(),
        );
        registry.register(
            "healthcheck_notification_retries",
            "Direct-alerting delivery attempts after the first, by receiver",
            self.retries.clone(),
        );
        for r in &alerting.receivers {
            for result in ["sent", "failed"] {
                let _ = self.count(&r.name, result);
            }
            let _ = self.retries.get_or_create(&ReceiverLabel {
                receiver: r.name.clone(),
            });
        }
    }

    fn count(&self, receiver: &str, result: &'static str) -> u64 {
        self.notifications
            .get_or_create(&ResultLabels {
                receiver: receiver.to_string(),
                result,
            })
            .get()
    }

    fn inc(&self, receiver: &str, result: &'static str) {
        self.notifications
            .get_or_create(&ResultLabels {
                receiver: receiver.to_string(),
                result,
            })
            .inc();
    }
}

/// Hands changes to the receivers in the background.
#[derive(Clone)]
pub struct Notifier {
    client: reqwest::Client,
    receivers: Arc<[Receiver]>,
    delivery: Delivery,
    metrics: NotificationMetrics,
    slots: Arc<Semaphore>,
    tasks: TaskTracker,
}

enum Failure {
    /// Worth another try: no answer, a timeout, 5xx, 408, 429.
    Transient(String),
    /// The receiver refused the request (another 4xx): retrying sends the same refusal.
    Refused(String),
}

impl Failure {
    fn is_transient(&self) -> bool {
        matches!(self, Self::Transient(_))
    }
    fn text(&self) -> &str {
        match self {
            Self::Transient(t) | Self::Refused(t) => t,
        }
    }
}

impl Notifier {
    pub fn new(alerting: &Alerting, metrics: NotificationMetrics) -> Result<Self, reqwest::Error> {
        let client = platform::http_client::builder()
            .user_agent(concat!(
                "abn-stack-health-check/",
                env!("CARGO_PKG_VERSION")
            ))
            // A redirect would carry the body elsewhere; hooks answer 2xx directly.
            .redirect(reqwest::redirect::Policy::none())
            .build()?;
        Ok(Self {
            client,
            receivers: alerting.receivers.clone().into(),
            delivery: alerting.delivery,
            metrics,
            slots: Arc::new(Semaphore::new(MAX_IN_FLIGHT)),
            tasks: TaskTracker::new(),
        })
    }

    /// Starts one delivery per receiver and returns at once.
    pub fn dispatch(&self, change: &Change) {
        let notification = Notification::of(change);
        for receiver in self.receivers.iter() {
            let Ok(slot) = self.slots.clone().try_acquire_owned() else {
                self.metrics.inc(&receiver.name, "failed");
                tracing::error!(
                    receiver = %receiver.name,
                    target_name = %notification.target,
                    state = notification.state,
                    "notification dropped: {MAX_IN_FLIGHT} deliveries already under way"
                );
                continue;
            };
            let body = notification.body_for(receiver.kind);
            let (client, receiver, delivery, metrics) = (
                self.client.clone(),
                receiver.clone(),
                self.delivery,
                self.metrics.clone(),
            );
            let (target, state) = (notification.target.clone(), notification.state);
            self.tasks.spawn(async move {
                let outcome = deliver(&client, &receiver, &body, delivery, &metrics).await;
                drop(slot);
                match outcome {
                    Ok(attempts) => {
                        metrics.inc(&receiver.name, "sent");
                        tracing::info!(receiver = %receiver.name, target_name = %target, state, attempts, "notification sent");
                    }
                    Err(error) => {
                        metrics.inc(&receiver.name, "failed");
                        tracing::error!(receiver = %receiver.name, target_name = %target, state, error = %error, "notification not delivered");
                    }
                }
            });
        }
    }

    /// Waits for the deliveries under way (each ends within `give_up_after`).
    pub async fn drain(&self) {
        self.tasks.close();
        let bound = self.delivery.give_up_after + Duration::from_secs(1);
        if tokio::time::timeout(bound, self.tasks.wait())
            .await
            .is_err()
        {
            tracing::error!("notifications still under way at exit were abandoned");
        }
        self.tasks.reopen();
    }
}

/// One delivery: tries until a 2xx, a refusal, `attempts` or `give_up_after`; Ok(tries).
async fn deliver(
    client: &reqwest::Client,
    receiver: &Receiver,
    body: &serde_json::Value,
    delivery: Delivery,
    metrics: &NotificationMetrics,
) -> Result<u32, String> {
    let tries = std::sync::atomic::AtomicU32::new(0);
    let last = std::sync::Mutex::new(String::new());
    let attempt = || async {
        tries.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let answer = client
            .post(receiver.url())
            .timeout(delivery.attempt_timeout)
            .json(body)
            .send()
            .await
            .map_err(|e| Failure::Transient(describe(e)))?;
        let status = answer.status();
        if status.is_success() {
            Ok(())
        } else if status.is_server_error() || matches!(status.as_u16(), 408 | 429) {
            Err(Failure::Transient(format!("HTTP {}", status.as_u16())))
        } else {
            Err(Failure::Refused(format!("HTTP {}", status.as_u16())))
        }
    };
    let retried = attempt
        .retry(
            ExponentialBuilder::default()
                .with_min_delay(Duration::from_millis(200))
                .with_max_delay(Duration::from_secs(5))
                .with_max_times(delivery.attempts.saturating_sub(1) as usize)
                .with_jitter(),
        )
        .sleep(tokio::time::sleep)
        .when(Failure::is_transient)
        .notify(|failure, delay| {
            metrics
                .retries
                .get_or_create(&ReceiverLabel {
                    receiver: receiver.name.clone(),
                })
                .inc();
            tracing::warn!(receiver = %receiver.name, error = failure.text(), retry_in = ?delay, "notification attempt failed");
            *last.lock().expect("last failure") = failure.text().to_string();
        });
    let tried = || tries.load(std::sync::atomic::Ordering::Relaxed);
    match tokio::time::timeout(delivery.give_up_after, retried).await {
        Ok(Ok(())) => Ok(tried()),
        Ok(Err(failure)) => Err(format!("{} after {} attempt(s)", failure.text(), tried())),
        Err(_) => {
            let last = last.lock().expect("last failure").clone();
            let last = if last.is_empty() {
                "no answer".to_string()
            } else {
                last
            };
            Err(format!(
                "gave up after {:?} and {} attempt(s) (last: {last})",
                delivery.give_up_after,
                tried()
            ))
        }
    }
}

/// The error and its causes, without the URL (it carries the hook's secret).
fn describe(error: reqwest::Error) -> String {
    let error = error.without_url();
    let mut text = error.to_string();
    let mut source = std::error::Error::source(&error);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
