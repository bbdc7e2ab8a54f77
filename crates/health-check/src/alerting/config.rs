//! The `alerting:` section of the config file: thresholds, delivery bounds and receivers, read
//! and checked at start. A receiver's URL is a secret (a Slack hook's path is its credential):
//! it is held as a [`SecretString`] and no error, log line or `Debug` output quotes it.

use std::path::PathBuf;
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

/// The section as written in YAML (unknown keys refused).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlertingSection {
    #[serde(default = "default_down_after")]
    down_after: u32,
    #[serde(default = "default_up_after")]
    up_after: u32,
    #[serde(default)]
    delivery: DeliverySection,
    receivers: Vec<ReceiverSection>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct DeliverySection {
    #[serde(default = "default_attempts")]
    attempts: u32,
    #[serde(default = "default_attempt_timeout", with = "humantime_serde_str")]
    attempt_timeout: Duration,
    #[serde(default = "default_give_up_after", with = "humantime_serde_str")]
    give_up_after: Duration,
}

impl Default for DeliverySection {
    fn default() -> Self {
        Self {
            attempts: default_attempts(),
            attempt_timeout: default_attempt_timeout(),
            give_up_after: default_give_up_after(),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ReceiverSection {
    name: String,
    #[serde(rename = "type")]
    kind: ReceiverKind,
    #[serde(default)]
    url: Option<SecretText>,
    #[serde(default)]
    url_file: Option<PathBuf>,
}

/// A string from the file that must never be shown.
#[derive(Deserialize)]
#[serde(transparent)]
struct SecretText(String);

impl std::fmt::Debug for SecretText {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("[redacted]")
    }
}

/// What a receiver is sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReceiverKind {
    /// The generic JSON document ([`crate::alerting::deliver::Notification`]).
    Webhook,
    /// A Slack-compatible incoming webhook (`{"text": ...}`; Mattermost, Rocket.Chat accept it).
    Slack,
}

fn default_down_after() -> u32 {
    2
}
fn default_up_after() -> u32 {
    1
}
fn default_attempts() -> u32 {
    4
}
fn default_attempt_timeout() -> Duration {
    Duration::from_secs(5)
}
fn default_give_up_after() -> Duration {
    Duration::from_secs(30)
}

/// The alerting configuration, checked.
#[derive(Debug, Clone)]
pub struct Alerting {
    pub down_after: u32,
    pub up_after: u32,
    pub delivery: Delivery,
    pub receivers: Vec<Receiver>,
    /// The delivery counters (`serve` registers them on its `/metrics`).
    pub metrics: crate::alerting::NotificationMetrics,
}

/// How hard one notification is pushed to one receiver.
#[derive(Debug, Clone, Copy)]
pub struct Delivery {
    /// Tries in all, the first included (4).
    pub attempts: u32,
    /// Each try, connection included (5s).
    pub attempt_timeout: Duration,
    /// The whole delivery, backoff included: then it is given up and counted failed (30s).
    pub give_up_after: Duration,
}

#[derive(Clone)]
pub struct Receiver {
    pub name: String,
    pub kind: ReceiverKind,
    url: SecretString,
}

impl std::fmt::Debug for Receiver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Receiver")
            .field("name", &self.name)
            .field("kind", &self.kind)
            .field("url", &"[redacted]")
            .finish()
    }
}

impl Receiver {
    pub fn new(name: impl Into<String>, kind: ReceiverKind, url: SecretString) -> Self {
        Self {
            name: name.into(),
            kind,
            url,
        }
    }

    /// The URL, for the request only.
    pub(crate) fn url(&self) -> &str {
        self.url.expose_secret()
    }
}

impl AlertingSection {
    /// Checks the section and reads the URL files; errors name the receiver, never its URL.
    pub fn resolve(self) -> Result<Alerting, String> {
        if self.down_after == 0 || self.up_after == 0 {
            return Err(
                "alerting: down_after and up_after count probes and must be at least 1".into(),
            );
        }
        let d = &self.delivery;
        if !(1..=20).contains(&d.attempts) {
            return Err("alerting.delivery.attempts must be 1 to 20".into());
        }
        if d.attempt_timeout.is_zero() || d.give_up_after < d.attempt_timeout {
            return Err(
                "alerting.delivery: attempt_timeout must be more than 0 and give_up_after at least attempt_timeout"
                    .into(),
            );
        }
        if self.receivers.is_empty() {
            return Err(
                "alerting.receivers is empty: name at least one, or remove the alerting section"
                    .into(),
            );
        }
        let mut receivers = Vec::with_capacity(self.receivers.len());
        for r in self.receivers {
            let name = r.name;
            if name.is_empty()
                || !name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
            {
                return Err(format!(
                    "alerting receiver name {name:?} may only use letters, digits, '-', '_' and '.'"
                ));
            }
            if receivers.iter().any(|known: &Receiver| known.name == name) {
                return Err(format!("alerting receiver name {name:?} is used twice"));
            }
            let url = match (r.url, r.url_file) {
                (Some(text), None) => SecretString::from(text.0.trim().to_string()),
                (None, Some(path)) => platform::secret_file::read(&path)
                    .map_err(|e| format!("alerting receiver {name:?}: url_file: {e}"))?,
                _ => {
                    return Err(format!(
                        "alerting receiver {name:?}: set exactly one of url and url_file"
                    ))
                }
            };
            check_url(url.expose_secret())
                .map_err(|problem| format!("alerting receiver {name:?}: its URL {problem}"))?;
            receivers.push(Receiver {
                name,
                kind: r.kind,
                url,
            });
        }
        Ok(Alerting {
            down_after: self.down_after,
            up_after: self.up_after,
            delivery: Delivery {
                attempts: d.attempts,
                attempt_timeout: d.attempt_timeout,
                give_up_after: d.give_up_after,
            },
            receivers,
            metrics: Default::default(),
        })
    }
}

/// Says what is wrong without quoting the URL (reqwest's parse errors do not quote it either).
fn check_url(url: &str) -> Result<(), String> {
    let parsed = reqwest::Url::parse(url).map_err(|e| format!("is not a URL ({e})"))?;
    if !matches!(parsed.scheme(), "http" | "https") || parsed.host().is_none() {
        return Err("is not an http:// or https:// URL with a host".into());
    }
    Ok(())
}

/// `attempt_timeout: 5s` in YAML.
mod humantime_serde_str {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer};

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let text = String::deserialize(d)?;
        let duration = platform::config::parse_duration(&text).map_err(serde::de::Error::custom)?;
        if duration.is_zero() {
            return Err(serde::de::Error::custom("must be more than 0"));
        }
        Ok(duration)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(yaml: &str) -> Result<Alerting, String> {
        serde_yaml_ng::from_str::<AlertingSection>(yaml)
            .map_err(|e| e.to_string())?
            .resolve()
    }

    #[test]
    fn defaults_and_both_kinds() {
        let a = parse(
            "receivers:\n  - {name: ops, type: webhook, url: 'http://h/hook'}\n  - {name: chat, type: slack, url: 'https://hooks.example/services/T/B/sekrit'}\n",
        )
        .unwrap();
        assert_eq!((a.down_after, a.up_after), (2, 1));
        assert_eq!(a.delivery.attempts, 4);
        assert_eq!(a.receivers[1].kind, ReceiverKind::Slack);
        assert!(!format!("{a:?}").contains("sekrit"));
    }

    #[test]
    fn url_from_a_file_and_errors_never_quote_it() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("hook");
        std::fs::write(&file, "https://hooks.example/services/sekrit\n").unwrap();
        let a = parse(&format!(
            "receivers:\n  - {{name: chat, type: slack, url_file: '{}'}}\n",
            file.display()
        ))
        .unwrap();
        assert_eq!(
            a.receivers[0].url(),
            "https://hooks.example/services/sekrit"
        );
        std::fs::write(&file, "ftp://sekrit-host/sekrit\n").unwrap();
        let err = parse(&format!(
            "receivers:\n  - {{name: chat, type: slack, url_file: '{}'}}\n",
            file.display()
        ))
        .unwrap_err();
        assert!(err.contains("\"chat\"") && !err.contains("sekrit"), "{err}");
    }

    #[test]
    fn mistakes_are_refused() {
        for bad in [
            "receivers: []\n",
            "receivers:\n  - {name: a, type: pager, url: 'http://h/'}\n",
            "receivers:\n  - {name: a, type: webhook}\n",
            "receivers:\n  - {name: a, type: webhook, url: 'http://h/', url_file: /x}\n",
            "receivers:\n  - {name: a, type: webhook, url: 'http://h/', colour: red}\n",
            "down_after: 0\nreceivers:\n  - {name: a, type: webhook, url: 'http://h/'}\n",
            "delivery: {attempts: 0}\nreceivers:\n  - {name: a, type: webhook, url: 'http://h/'}\n",
            "delivery: {give_up_after: 1s, attempt_timeout: 5s}\nreceivers:\n  - {name: a, type: webhook, url: 'http://h/'}\n",
            "receivers:\n  - {name: a, type: webhook, url: 'http://h/'}\n  - {name: a, type: slack, url: 'http://h/'}\n",
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }
}
