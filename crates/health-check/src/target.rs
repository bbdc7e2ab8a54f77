//! What to probe and what counts as healthy.

use std::time::Duration;

use serde::Deserialize;

/// One probed URL and the conditions its answer must meet.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Target {
    /// Short name used in the history and the report (unique within a run).
    pub name: String,
    /// An `http://` or `https://` URL.
    pub url: String,
    /// The status a healthy target answers (200).
    #[serde(default = "default_status")]
    pub expect_status: u16,
    /// Slower answers count as failures (none by default; the run timeout always applies).
    #[serde(default, with = "humantime_opt")]
    pub max_latency: Option<Duration>,
    /// Text the body must contain (only the first [`crate::probe::MAX_BODY_BYTES`] are read).
    #[serde(default)]
    pub body_contains: Option<String>,
    /// Direct alerting: failed probes in a row before the target counts as down (the
    /// `alerting.down_after` of the config file when unset).
    #[serde(default)]
    pub down_after: Option<u32>,
    /// Direct alerting: good probes in a row before a down target counts as up again
    /// (`alerting.up_after` when unset).
    #[serde(default)]
    pub up_after: Option<u32>,
}

fn default_status() -> u16 {
    200
}

impl Target {
    /// A target healthy when `url` answers 200, with no other condition.
    pub fn new(name: impl Into<String>, url: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            url: url.into(),
            expect_status: default_status(),
            max_latency: None,
            body_contains: None,
            down_after: None,
            up_after: None,
        }
    }

    pub fn expect_status(mut self, status: u16) -> Self {
        self.expect_status = status;
        self
    }

    pub fn max_latency(mut self, limit: Duration) -> Self {
        self.max_latency = Some(limit);
        self
    }

    pub fn body_contains(mut self, needle: impl Into<String>) -> Self {
        self.body_contains = Some(needle.into());
        self
    }

    /// Checks what serde and the constructors cannot: a usable name, URL and status.
    pub fn validate(&self) -> Result<(), String> {
        let name = &self.name;
        if name.is_empty() {
            return Err(format!("target for {:?} has an empty name", self.url));
        }
        if !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        {
            return Err(format!(
                "target name {name:?} may only use letters, digits, '-', '_' and '.'"
            ));
        }
        let url = reqwest::Url::parse(&self.url)
            .map_err(|e| format!("target {name:?}: {:?} is not a URL ({e})", self.url))?;
        if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
            return Err(format!(
                "target {name:?}: {:?} is not an http:// or https:// URL with a host",
                self.url
            ));
        }
        if self.down_after == Some(0) || self.up_after == Some(0) {
            return Err(format!(
                "target {name:?}: down_after and up_after count probes and must be at least 1"
            ));
        }
        if !(100..=599).contains(&self.expect_status) {
            return Err(format!(
                "target {name:?}: expect_status {} is not an HTTP status",
                self.expect_status
            ));
        }
        Ok(())
    }
}

impl Target {
    /// The URL as shown in lines, the history and logs: a password in it is replaced, so a
    /// basic-auth target does not leak its secret into files and logs.
    pub fn display_url(&self) -> String {
        match reqwest::Url::parse(&self.url) {
            Ok(mut url) if url.password().is_some() => {
                let _ = url.set_password(Some("redacted"));
                url.to_string()
            }
            _ => self.url.clone(),
        }
    }
}

/// Parses `name=url` (a `--target` flag or one item of `HEALTHCHECK_TARGETS`).
pub fn parse_target_arg(s: &str) -> Result<Target, String> {
    let (name, url) = s.split_once('=').ok_or_else(|| {
        "expected name=url, e.g. backend=http://127.0.0.1:5000/healthz".to_string()
    })?;
    let target = Target::new(name.trim(), url.trim());
    target.validate()?;
    Ok(target)
}

/// Rejects two targets with one name: the history and the report key on it.
pub fn check_unique_names(targets: &[Target]) -> Result<(), String> {
    let mut seen = std::collections::HashSet::new();
    for t in targets {
        if !seen.insert(t.name.as_str()) {
            return Err(format!("target name {:?} is used twice", t.name));
        }
    }
    Ok(())
}

/// `max_latency: 500ms` in YAML.
mod humantime_opt {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer};

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        let text: Option<String> = Option::deserialize(d)?;
        text.map(|t| platform::config::parse_duration(&t).map_err(serde::de::Error::custom))
            .transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_name_equals_url() {
        let t = parse_target_arg("backend=http://127.0.0.1:5000/healthz").unwrap();
        assert_eq!(t, Target::new("backend", "http://127.0.0.1:5000/healthz"));
    }

    #[test]
    fn url_may_contain_equals_signs() {
        let t = parse_target_arg("q=http://h/x?a=b").unwrap();
        assert_eq!(t.url, "http://h/x?a=b");
    }

    #[test]
    fn rejects_what_cannot_be_probed() {
        for bad in [
            "no-equals-sign",
            "=http://h/",
            "x=",
            "x=ftp://h/",
            "x=not a url",
            "bad name=http://h/",
        ] {
            assert!(parse_target_arg(bad).is_err(), "{bad} should be rejected");
        }
        assert!(Target::new("a", "http://h/")
            .expect_status(42)
            .validate()
            .is_err());
    }

    #[test]
    fn passwords_in_urls_are_not_shown() {
        let t = Target::new("a", "http://user:hunter2@h/x");
        assert_eq!(t.display_url(), "http://user:redacted@h/x");
        assert_eq!(
            Target::new("a", "http://h/x?y=1").display_url(),
            "http://h/x?y=1"
        );
    }

    #[test]
    fn duplicate_names_are_rejected() {
        let ts = [Target::new("a", "http://h/"), Target::new("a", "http://g/")];
        assert!(check_unique_names(&ts).unwrap_err().contains("\"a\""));
    }
}
