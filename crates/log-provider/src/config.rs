use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;
use platform::config::{parse_duration, ConfigError, ServerArgs, Validate};
use secrecy::{ExposeSecret, SecretString};

/// Largest `limit` by default (PROVIDER_MAX_LIMIT), in lines.
pub const DEFAULT_MAX_LIMIT: u64 = 10_000_000;

/// log-provider: a stand-in for the external log provider.
#[derive(Parser, Debug, Clone)]
#[command(name = "log-provider", version, about)]
pub struct Config {
    #[command(flatten)]
    pub server: ServerArgs,

    /// The key clients must present as `Authorization: Bearer <key>` (secret); one per line
    /// to accept several.
    #[arg(long, env = "PROVIDER_KEY", hide_env_values = true, value_parser = parse_key)]
    pub provider_key: Option<SecretString>,

    /// A file of accepted keys, one per line (a mounted Secret), reloaded live when it changes:
    /// a rotation adds the new key, switches the clients, then removes the old one. Instead of
    /// PROVIDER_KEY.
    #[arg(long, env = "PROVIDER_KEY_FILE")]
    pub provider_key_file: Option<PathBuf>,

    /// Largest `limit` a request may ask for, in lines.
    #[arg(long, env = "PROVIDER_MAX_LIMIT", default_value_t = DEFAULT_MAX_LIMIT, value_parser = clap::value_parser!(u64).range(1..))]
    pub max_limit: u64,

    /// PEM certificate chain to serve HTTPS with (with TLS_KEY_FILE); reloaded live when the
    /// file changes. Unset: plain HTTP.
    #[arg(long, env = "TLS_CERT_FILE")]
    pub tls_cert_file: Option<PathBuf>,

    /// PEM private key of TLS_CERT_FILE (secret).
    #[arg(long, env = "TLS_KEY_FILE")]
    pub tls_key_file: Option<PathBuf>,

    /// Delay before answering, to rehearse a slow provider (fault drills and tests).
    #[arg(long, env = "PROVIDER_FIRST_BYTE_DELAY", default_value = "0s", value_parser = parse_duration)]
    pub first_byte_delay: Duration,
}

impl Config {
    /// In-process defaults (tests, the all-in-one runner).
    pub fn local(provider_key: SecretString) -> Self {
        Self {
            server: ServerArgs::local(crate::DEFAULT_ADDR),
            provider_key: Some(provider_key),
            provider_key_file: None,
            max_limit: DEFAULT_MAX_LIMIT,
            first_byte_delay: Duration::ZERO,
            tls_cert_file: None,
            tls_key_file: None,
        }
    }
}

impl Validate for Config {
    fn check_requested(&self) -> bool {
        self.server.check.check_config
    }

    fn validate(&self) -> Result<(), ConfigError> {
        self.keys()?;
        self.tls().map(drop)
    }
}

/// Where the accepted keys come from.
#[derive(Debug, Clone)]
pub enum KeysSource {
    /// PROVIDER_KEY: fixed for the life of the process.
    Value(Vec<SecretString>),
    /// PROVIDER_KEY_FILE: read at start, then watched.
    File(PathBuf),
}

impl Config {
    /// Exactly one of PROVIDER_KEY and PROVIDER_KEY_FILE; the file is read now, so a start and
    /// --check-config refuse a missing or empty one.
    pub fn keys(&self) -> Result<KeysSource, ConfigError> {
        match (&self.provider_key, &self.provider_key_file) {
            (Some(_), Some(_)) => Err(ConfigError::new(
                "PROVIDER_KEY_FILE",
                "set either PROVIDER_KEY or PROVIDER_KEY_FILE, not both",
            )),
            (None, None) => Err(ConfigError::new(
                "PROVIDER_KEY",
                "required but not set (or PROVIDER_KEY_FILE)",
            )),
            (Some(value), None) => key_set(value.expose_secret())
                .map(KeysSource::Value)
                .map_err(|problem| ConfigError::new("PROVIDER_KEY", problem)),
            (None, Some(path)) => platform::secret_file::load(path, key_set)
                .map(|_| KeysSource::File(path.clone()))
                .map_err(|err| ConfigError::new("PROVIDER_KEY_FILE", err.to_string())),
        }
    }
}

impl Config {
    /// Both TLS files or neither; read now, so a start and --check-config refuse bad ones.
    pub fn tls(&self) -> Result<Option<crate::tls::TlsFiles>, ConfigError> {
        match (&self.tls_cert_file, &self.tls_key_file) {
            (None, None) => Ok(None),
            (Some(_), None) => Err(ConfigError::new(
                "TLS_KEY_FILE",
                "required with TLS_CERT_FILE",
            )),
            (None, Some(_)) => Err(ConfigError::new(
                "TLS_CERT_FILE",
                "required with TLS_KEY_FILE",
            )),
            (Some(cert), Some(key)) => {
                platform::secret_file::load(cert, |pem| crate::tls::server_config(pem, key))
                    .map_err(|err| ConfigError::new("TLS_CERT_FILE", err.to_string()))?;
                Ok(Some(crate::tls::TlsFiles {
                    cert: cert.clone(),
                    key: key.clone(),
                }))
            }
        }
    }
}

/// The accepted keys: one per line, surrounding whitespace trimmed, blank lines skipped. Errors
/// name a line by its number, never by its content.
pub fn key_set(text: &str) -> Result<Vec<SecretString>, String> {
    let mut keys = Vec::new();
    for (number, line) in text.lines().enumerate() {
        let key = line.trim();
        if key.is_empty() {
            continue;
        }
        if !key.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(format!(
                "line {}: a key may contain only visible ASCII characters",
                number + 1
            ));
        }
        keys.push(SecretString::from(key.to_string()));
    }
    if keys.is_empty() {
        return Err("holds no key".to_string());
    }
    Ok(keys)
}

fn parse_key(value: &str) -> Result<SecretString, String> {
    if value.trim().is_empty() {
        return Err("must not be empty".to_string());
    }
    Ok(SecretString::from(value.to_string()))
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

    #[test]
    fn key_sets_skip_blank_lines_and_never_quote_a_key() {
        let keys = key_set("old-key\n\n  new-key  \n").unwrap();
        let keys: Vec<_> = keys.iter().map(|k| k.expose_secret().to_string()).collect();
        assert_eq!(keys, ["old-key", "new-key"]);
        assert_eq!(key_set(" \n").unwrap_err(), "holds no key");
        let err = key_set("good\nbad key").unwrap_err();
        assert!(err.starts_with("line 2") && !err.contains("bad"), "{err}");
    }

    #[test]
    fn exactly_one_source_and_the_file_must_be_good() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keys");
        let mut c = Config::local(SecretString::from("k".to_string()));
        c.provider_key_file = Some(path.clone());
        assert_eq!(c.keys().unwrap_err().variable, "PROVIDER_KEY_FILE");
        c.provider_key = None;
        assert!(c.keys().unwrap_err().problem.contains("cannot read"));
        std::fs::write(&path, "\n").unwrap();
        assert!(c.keys().unwrap_err().problem.contains("empty"));
        std::fs::write(&path, "a\nb\n").unwrap();
        assert!(matches!(c.keys().unwrap(), KeysSource::File(_)));
        c.provider_key_file = None;
        assert_eq!(c.keys().unwrap_err().variable, "PROVIDER_KEY");
    }
}
