use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;
use platform::config::{parse_duration, ConfigError, ServerArgs, Validate};
use reqwest::header::HeaderValue;
use reqwest::Url;
use secrecy::{ExposeSecret, SecretString};

/// Largest `limit` by default (EXTERNAL_LOGS_MAX_LIMIT): the stand-in log-provider's own default
/// PROVIDER_MAX_LIMIT, so a default pair agrees (a test keeps the two equal).
pub const DEFAULT_EXTERNAL_LOGS_MAX_LIMIT: u64 = 10_000_000;

/// backend-api: the simulated operation and the external log download.
#[derive(Parser, Debug, Clone)]
#[command(name = "backend-api", version, about)]
pub struct Config {
    #[command(flatten)]
    pub server: ServerArgs,

    /// Simulated work of `/api_1`, in milliseconds (legacy: 500).
    #[arg(long, env = "SIMULATED_LATENCY_MS", default_value_t = 500)]
    pub simulated_latency_ms: u64,

    /// The external provider's logs URL; unset disables `/download_external_logs` (503).
    #[arg(long, env = "EXTERNAL_LOGS_URL", value_parser = parse_url)]
    pub external_logs_url: Option<Url>,

    /// The per-environment key sent as `Authorization: Bearer <key>` (secret).
    #[arg(long, env = "EXTERNAL_INTEGRATION_KEY", hide_env_values = true)]
    pub external_integration_key: Option<SecretString>,

    /// A file holding the key (a mounted Secret), read at start and reloaded live when it
    /// changes; instead of EXTERNAL_INTEGRATION_KEY, which keeps the key in the environment.
    #[arg(long, env = "EXTERNAL_INTEGRATION_KEY_FILE")]
    pub external_integration_key_file: Option<PathBuf>,

    /// Deprecated misspelling of EXTERNAL_INTEGRATION_KEY, still accepted with a warning.
    #[arg(
        long = "external-intgeration-key",
        env = "EXTERNAL_INTGERATION_KEY",
        hide = true,
        hide_env_values = true
    )]
    pub legacy_integration_key: Option<SecretString>,

    /// Callers allowed on `/download_external_logs`: a file of `name:token` lines (a mounted
    /// Secret), reloaded live; unset: no caller authentication (the network is the fence).
    #[arg(long, env = "API_TOKENS_FILE")]
    pub api_tokens_file: Option<PathBuf>,

    /// Downloads per minute per caller (its token name); beyond it 429 with Retry-After.
    /// Unset: no limit.
    #[arg(long, env = "DOWNLOAD_RATE_LIMIT")]
    pub download_rate_limit: Option<std::num::NonZeroU32>,

    /// Time allowed to open a connection to the provider.
    #[arg(long, env = "EXTERNAL_LOGS_CONNECT_TIMEOUT", default_value = "2s", value_parser = parse_duration)]
    pub connect_timeout: Duration,

    /// Overall budget until the provider's first byte, retries included (504 beyond it).
    #[arg(long, env = "EXTERNAL_LOGS_TIMEOUT", default_value = "30s", value_parser = parse_duration)]
    pub first_byte_budget: Duration,

    /// Retries after a failed attempt (connection refused, 5xx, 429), within the budget.
    #[arg(long, env = "EXTERNAL_LOGS_RETRIES", default_value_t = 2, value_parser = clap::value_parser!(u32).range(0..=10))]
    pub retries: u32,

    /// Longest a whole download may stream before it is cut.
    #[arg(long, env = "EXTERNAL_LOGS_STREAM_TIMEOUT", default_value = "10m", value_parser = parse_duration)]
    pub stream_timeout: Duration,

    /// Longest the provider's body may stay silent mid-stream; beyond it the download ends as a
    /// reported truncation (a partition must not hold a client for the whole stream timeout).
    #[arg(long, env = "EXTERNAL_LOGS_READ_IDLE_TIMEOUT", default_value = "30s", value_parser = parse_duration)]
    pub read_idle_timeout: Duration,

    /// PEM file of extra CA certificates (a private CA) trusted for the provider, next to the
    /// system bundle.
    #[arg(long, env = "EXTERNAL_LOGS_CA_FILE")]
    pub external_logs_ca_file: Option<PathBuf>,

    /// PEM certificate (chain) presented to a provider that wants mutual TLS; with
    /// EXTERNAL_LOGS_CLIENT_KEY_FILE.
    #[arg(long, env = "EXTERNAL_LOGS_CLIENT_CERT_FILE")]
    pub external_logs_client_cert_file: Option<PathBuf>,

    /// PEM private key of EXTERNAL_LOGS_CLIENT_CERT_FILE (secret).
    #[arg(long, env = "EXTERNAL_LOGS_CLIENT_KEY_FILE")]
    pub external_logs_client_key_file: Option<PathBuf>,

    /// Dev only: allows an `http://` EXTERNAL_LOGS_URL whose host is not loopback, so the key
    /// travels in clear; warned about at start. Loopback URLs need no flag.
    #[arg(long, env = "EXTERNAL_LOGS_ALLOW_PLAINTEXT", default_value_t = false, action = clap::ArgAction::Set)]
    pub allow_plaintext: bool,

    /// Largest `limit` passed to the provider, in lines; larger ones are refused before calling
    /// out. Set it to the provider's own bound.
    #[arg(long, env = "EXTERNAL_LOGS_MAX_LIMIT", default_value_t = DEFAULT_EXTERNAL_LOGS_MAX_LIMIT, value_parser = clap::value_parser!(u64).range(1..))]
    pub max_limit: u64,
}

/// The integration as validated at start: `None` when no URL is configured.
#[derive(Debug, Clone)]
pub struct Integration {
    pub url: Url,
    pub key: KeySource,
    pub tls: ClientTls,
}

/// What the provider client adds to the system bundle: a private CA, a client certificate.
#[derive(Clone, Default)]
pub struct ClientTls {
    pub roots: Vec<reqwest::Certificate>,
    pub identity: Option<reqwest::Identity>,
}

/// Never prints the client key.
impl std::fmt::Debug for ClientTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientTls")
            .field("roots", &self.roots.len())
            .field("identity", &self.identity.is_some())
            .finish()
    }
}

/// Where the key comes from.
#[derive(Debug, Clone)]
pub enum KeySource {
    /// An environment variable or flag: fixed for the life of the process.
    Value(SecretString),
    /// EXTERNAL_INTEGRATION_KEY_FILE: read at start, then watched.
    File(PathBuf),
}

/// The `Authorization` header sent to the provider for a key (from the variable or the file's
/// content); the error never quotes the key.
pub fn authorization(key: &str) -> Result<HeaderValue, String> {
    if !key.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(
            "may contain only visible ASCII characters (it is sent in an HTTP header)".to_string(),
        );
    }
    let mut value = HeaderValue::from_str(&format!("Bearer {key}"))
        .map_err(|_| "is not a valid header value".to_string())?;
    // Keeps the value out of any header Debug output (and HTTP/2 compression).
    value.set_sensitive(true);
    Ok(value)
}

/// Settings a warning should be logged about once telemetry is up.
#[derive(Debug, Default)]
pub struct Warnings(pub Vec<String>);

impl Config {
    /// In-process defaults (tests, the all-in-one runner): no integration, legacy latency.
    pub fn local() -> Self {
        Self {
            server: ServerArgs::local(crate::DEFAULT_ADDR),
            simulated_latency_ms: 500,
            external_logs_url: None,
            external_integration_key: None,
            external_integration_key_file: None,
            api_tokens_file: None,
            download_rate_limit: None,
            legacy_integration_key: None,
            connect_timeout: Duration::from_secs(2),
            first_byte_budget: Duration::from_secs(30),
            retries: 2,
            stream_timeout: Duration::from_secs(600),
            read_idle_timeout: Duration::from_secs(30),
            external_logs_ca_file: None,
            external_logs_client_cert_file: None,
            external_logs_client_key_file: None,
            allow_plaintext: false,
            max_limit: DEFAULT_EXTERNAL_LOGS_MAX_LIMIT,
        }
    }

    /// Cross-checks settings; the one-line error never includes the key.
    pub fn integration(&self) -> Result<(Option<Integration>, Warnings), ConfigError> {
        let mut warnings = Warnings::default();
        if self.first_byte_budget >= self.server.request_timeout {
            return Err(ConfigError::new(
                "EXTERNAL_LOGS_TIMEOUT",
                format!(
                    "must be shorter than REQUEST_TIMEOUT ({})",
                    humantime_secs(self.server.request_timeout)
                ),
            ));
        }
        // A connection that cannot open must fail, and count as the provider being down (502),
        // before the budget runs out and reads as the provider being slow (504).
        if self.connect_timeout >= self.first_byte_budget {
            return Err(ConfigError::new(
                "EXTERNAL_LOGS_CONNECT_TIMEOUT",
                format!(
                    "must be shorter than EXTERNAL_LOGS_TIMEOUT ({})",
                    humantime_secs(self.first_byte_budget)
                ),
            ));
        }
        if self.read_idle_timeout.is_zero() {
            return Err(ConfigError::new(
                "EXTERNAL_LOGS_READ_IDLE_TIMEOUT",
                "must be longer than 0s",
            ));
        }
        let current = non_empty(&self.external_integration_key);
        let legacy = non_empty(&self.legacy_integration_key);
        let value = match (current, legacy) {
            (Some(key), _) => Some(key),
            (None, Some(key)) => {
                warnings.0.push(
                    "EXTERNAL_INTGERATION_KEY is deprecated (misspelled); set EXTERNAL_INTEGRATION_KEY instead"
                        .to_string(),
                );
                Some(key)
            }
            (None, None) => None,
        };
        let key = match (value, &self.external_integration_key_file) {
            (Some(_), Some(_)) => return Err(ConfigError::new(
                "EXTERNAL_INTEGRATION_KEY_FILE",
                "set either EXTERNAL_INTEGRATION_KEY or EXTERNAL_INTEGRATION_KEY_FILE, not both",
            )),
            (Some(value), None) => {
                authorization(value.expose_secret())
                    .map_err(|problem| ConfigError::new("EXTERNAL_INTEGRATION_KEY", problem))?;
                Some(KeySource::Value(value))
            }
            // Read now, so that a start and --check-config refuse a missing or empty file.
            (None, Some(path)) => {
                platform::secret_file::load(path, authorization).map_err(|err| {
                    ConfigError::new("EXTERNAL_INTEGRATION_KEY_FILE", err.to_string())
                })?;
                Some(KeySource::File(path.clone()))
            }
            (None, None) => None,
        };
        let Some(url) = self.external_logs_url.clone() else {
            return Ok((None, warnings));
        };
        if url.scheme() == "http" && !is_loopback(&url) {
            if !self.allow_plaintext {
                return Err(ConfigError::new(
                    "EXTERNAL_LOGS_URL",
                    "must be https:// (the key would travel in clear); http:// is accepted for a loopback host, or with EXTERNAL_LOGS_ALLOW_PLAINTEXT=true (dev only)",
                ));
            }
            warnings.0.push(
                "EXTERNAL_LOGS_ALLOW_PLAINTEXT=true: the integration key travels in clear to a non-loopback host (dev only)"
                    .to_string(),
            );
        }
        let key = key.ok_or_else(|| {
            ConfigError::new(
                "EXTERNAL_INTEGRATION_KEY",
                "required when EXTERNAL_LOGS_URL is set (or EXTERNAL_INTEGRATION_KEY_FILE)",
            )
        })?;
        let tls = self.client_tls()?;
        Ok((Some(Integration { url, key, tls }), warnings))
    }
}

impl Config {
    /// Reads the CA and client certificate files now, so a bad one is a start error.
    fn client_tls(&self) -> Result<ClientTls, ConfigError> {
        let mut tls = ClientTls::default();
        if let Some(path) = &self.external_logs_ca_file {
            let pem = read_pem("EXTERNAL_LOGS_CA_FILE", path)?;
            tls.roots = reqwest::Certificate::from_pem_bundle(&pem)
                .ok()
                .filter(|roots| !roots.is_empty())
                .ok_or_else(|| {
                    ConfigError::new(
                        "EXTERNAL_LOGS_CA_FILE",
                        format!("{}: holds no PEM certificate", path.display()),
                    )
                })?;
        }
        match (
            &self.external_logs_client_cert_file,
            &self.external_logs_client_key_file,
        ) {
            (None, None) => {}
            (Some(cert), Some(key)) => {
                let mut pem = read_pem("EXTERNAL_LOGS_CLIENT_CERT_FILE", cert)?;
                pem.push(b'\n');
                pem.extend(read_pem("EXTERNAL_LOGS_CLIENT_KEY_FILE", key)?);
                // The cause is not quoted: it could echo key material.
                let identity = reqwest::Identity::from_pem(&pem).map_err(|_| {
                    ConfigError::new(
                        "EXTERNAL_LOGS_CLIENT_CERT_FILE",
                        "with EXTERNAL_LOGS_CLIENT_KEY_FILE: not a PEM certificate and private key",
                    )
                })?;
                tls.identity = Some(identity);
            }
            (Some(_), None) => {
                return Err(ConfigError::new(
                    "EXTERNAL_LOGS_CLIENT_KEY_FILE",
                    "required with EXTERNAL_LOGS_CLIENT_CERT_FILE",
                ))
            }
            (None, Some(_)) => {
                return Err(ConfigError::new(
                    "EXTERNAL_LOGS_CLIENT_CERT_FILE",
                    "required with EXTERNAL_LOGS_CLIENT_KEY_FILE",
                ))
            }
        }
        Ok(tls)
    }
}

fn read_pem(variable: &'static str, path: &std::path::Path) -> Result<Vec<u8>, ConfigError> {
    std::fs::read(path)
        .map_err(|err| ConfigError::new(variable, format!("cannot read {}: {err}", path.display())))
}

impl Validate for Config {
    fn check_requested(&self) -> bool {
        self.server.check.check_config
    }

    fn validate(&self) -> Result<(), ConfigError> {
        self.integration()?;
        platform::callers::Callers::check_file(self.api_tokens_file.as_deref())?;
        Ok(())
    }
}

fn non_empty(key: &Option<SecretString>) -> Option<SecretString> {
    key.as_ref()
        .filter(|k| !k.expose_secret().trim().is_empty())
        .cloned()
}

fn humantime_secs(d: Duration) -> String {
    format!("{}s", d.as_secs_f64())
}

/// Whether the URL's host is this machine: plain HTTP there never crosses a network.
fn is_loopback(url: &Url) -> bool {
    let Some(host) = url.host_str() else {
        return false;
    };
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    match bare.parse::<std::net::IpAddr>() {
        Ok(ip) => ip.is_loopback(),
        Err(_) => host.eq_ignore_ascii_case("localhost"),
    }
}

fn parse_url(value: &str) -> Result<Url, String> {
    let url = Url::parse(value.trim()).map_err(|e| format!("not a URL ({e})"))?;
    match url.scheme() {
        "http" | "https" => {}
        other => return Err(format!("scheme must be http or https, not {other}")),
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err("must not carry credentials; use EXTERNAL_INTEGRATION_KEY".to_string());
    }
    Ok(url)
}

/// The server settings, for [`platform::run`].
impl AsRef<ServerArgs> for Config {
    fn as_ref(&self) -> &ServerArgs {
        &self.server
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(url: Option<&str>, key: Option<&str>, legacy: Option<&str>) -> Config {
        let mut c = Config::local();
        c.external_logs_url = url.map(|u| parse_url(u).unwrap());
        c.external_integration_key = key.map(|k| SecretString::from(k.to_string()));
        c.legacy_integration_key = legacy.map(|k| SecretString::from(k.to_string()));
        c
    }

    fn value(key: KeySource) -> String {
        match key {
            KeySource::Value(v) => v.expose_secret().to_string(),
            KeySource::File(path) => panic!("a file: {path:?}"),
        }
    }

    #[test]
    fn the_key_file_is_read_at_start_and_excludes_the_variable() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("key");
        let mut c = with(Some("https://p/v1/logs"), None, None);
        c.external_integration_key_file = Some(path.clone());
        let err = c.integration().unwrap_err();
        assert_eq!(err.variable, "EXTERNAL_INTEGRATION_KEY_FILE");
        assert!(err.problem.contains("cannot read"), "{err}");
        std::fs::write(&path, "\n  \n").unwrap();
        assert!(c.integration().unwrap_err().problem.contains("empty"));
        std::fs::write(&path, "file key\n").unwrap();
        let err = c.integration().unwrap_err();
        assert!(!err.to_string().contains("file key"), "{err}");
        std::fs::write(&path, "  filekey\n").unwrap();
        let (integration, _) = c.integration().unwrap();
        assert!(matches!(integration.unwrap().key, KeySource::File(p) if p == path));
        c.external_integration_key = Some(SecretString::from("k".to_string()));
        let err = c.integration().unwrap_err();
        assert!(err.problem.contains("not both"), "{err}");
    }

    #[test]
    fn url_without_key_is_a_start_error() {
        let err = with(Some("https://p/v1/logs"), None, None)
            .integration()
            .unwrap_err();
        assert_eq!(err.variable, "EXTERNAL_INTEGRATION_KEY");
        let err = with(Some("https://p/v1/logs"), Some("  "), None)
            .integration()
            .unwrap_err();
        assert_eq!(err.variable, "EXTERNAL_INTEGRATION_KEY");
    }

    #[test]
    fn connect_timeout_must_fit_in_the_budget() {
        let mut c = with(Some("https://p/v1/logs"), Some("k"), None);
        c.first_byte_budget = Duration::from_secs(2);
        c.connect_timeout = Duration::from_secs(2);
        let err = c.integration().unwrap_err();
        assert_eq!(err.variable, "EXTERNAL_LOGS_CONNECT_TIMEOUT");
        c.connect_timeout = Duration::from_millis(500);
        assert!(c.integration().is_ok());
    }

    #[test]
    fn legacy_name_works_with_a_warning() {
        let (integration, warnings) = with(Some("https://p/v1/logs"), None, Some("k"))
            .integration()
            .unwrap();
        assert_eq!(value(integration.unwrap().key), "k");
        assert_eq!(warnings.0.len(), 1);
        assert!(warnings.0[0].contains("EXTERNAL_INTGERATION_KEY"));
    }

    #[test]
    fn current_name_wins_without_warning() {
        let (integration, warnings) = with(Some("https://p/v1/logs"), Some("new"), Some("old"))
            .integration()
            .unwrap();
        assert_eq!(value(integration.unwrap().key), "new");
        assert!(warnings.0.is_empty());
    }

    #[test]
    fn no_url_means_disabled() {
        let (integration, _) = with(None, Some("k"), None).integration().unwrap();
        assert!(integration.is_none());
    }

    #[test]
    fn key_with_control_characters_is_refused_without_echo() {
        let err = with(Some("https://p/v1/logs"), Some("abc\ndef"), None)
            .integration()
            .unwrap_err();
        assert!(!err.to_string().contains("abc"));
    }

    #[test]
    fn plaintext_is_refused_beyond_loopback_unless_allowed() {
        for url in [
            "http://p/v1/logs",
            "http://10.0.0.1/v1/logs",
            "http://localhost.evil/",
        ] {
            let err = with(Some(url), Some("k"), None).integration().unwrap_err();
            assert_eq!(err.variable, "EXTERNAL_LOGS_URL", "{url}");
            assert!(err.problem.contains("https://"), "{err}");
        }
        for url in [
            "http://127.0.0.1:5002/v1/logs",
            "http://localhost:5002/v1/logs",
            "http://[::1]:5002/v1/logs",
            "https://p/v1/logs",
        ] {
            let (_, warnings) = with(Some(url), Some("k"), None).integration().unwrap();
            assert!(warnings.0.is_empty(), "{url}: {:?}", warnings.0);
        }
        let mut c = with(Some("http://p/v1/logs"), Some("k"), None);
        c.allow_plaintext = true;
        let (integration, warnings) = c.integration().unwrap();
        assert!(integration.is_some());
        assert_eq!(warnings.0.len(), 1);
        assert!(warnings.0[0].contains("EXTERNAL_LOGS_ALLOW_PLAINTEXT"));
    }

    #[test]
    fn urls_are_checked() {
        assert!(parse_url("ftp://x/").is_err());
        assert!(parse_url("not a url").is_err());
        assert!(parse_url("https://user:pw@x/").is_err());
        assert!(parse_url("https://x/v1/logs").is_ok());
    }

    #[test]
    fn debug_output_redacts_the_key() {
        let c = with(
            Some("https://p/v1/logs"),
            Some("topsecret"),
            Some("legacysecret"),
        );
        let debug = format!("{c:?} {:?}", c.integration().unwrap());
        assert!(
            !debug.contains("topsecret") && !debug.contains("legacysecret"),
            "{debug}"
        );
    }
}
