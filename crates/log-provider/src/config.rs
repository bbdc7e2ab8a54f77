use std::time::Duration;

use clap::Parser;
use platform::config::{parse_duration, ConfigError, ServerArgs, Validate};
use secrecy::SecretString;

/// Largest `limit` by default (PROVIDER_MAX_LIMIT), in lines.
pub const DEFAULT_MAX_LIMIT: u64 = 10_000_000;

/// log-provider: a stand-in for the external log provider.
#[derive(Parser, Debug, Clone)]
#[command(name = "log-provider", version, about)]
pub struct Config {
    #[command(flatten)]
    pub server: ServerArgs,

    /// The key clients must present as `Authorization: Bearer <key>` (secret).
    #[arg(long, env = "PROVIDER_KEY", hide_env_values = true, value_parser = parse_key)]
    pub provider_key: SecretString,

    /// Largest `limit` a request may ask for, in lines.
    #[arg(long, env = "PROVIDER_MAX_LIMIT", default_value_t = DEFAULT_MAX_LIMIT, value_parser = clap::value_parser!(u64).range(1..))]
    pub max_limit: u64,

    /// Delay before answering, to rehearse a slow provider (fault drills and tests).
    #[arg(long, env = "PROVIDER_FIRST_BYTE_DELAY", default_value = "0s", value_parser = parse_duration)]
    pub first_byte_delay: Duration,
}

impl Config {
    /// In-process defaults (tests, the all-in-one runner).
    pub fn local(provider_key: SecretString) -> Self {
        Self {
            server: ServerArgs::local(crate::DEFAULT_ADDR),
            provider_key,
            max_limit: DEFAULT_MAX_LIMIT,
            first_byte_delay: Duration::ZERO,
        }
    }
}

impl Validate for Config {
    fn check_requested(&self) -> bool {
        self.server.check.check_config
    }

    /// Every setting is checked by its parser; nothing depends on another.
    fn validate(&self) -> Result<(), ConfigError> {
        Ok(())
    }
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
