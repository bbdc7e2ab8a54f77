//! What a service is (name, version, git revision), for `/version`, metrics and logs.

use serde::Serialize;

/// What a service is, for `/version`, metrics and logs.
#[derive(Debug, Clone, Copy)]
pub struct ServiceInfo {
    pub name: &'static str,
    pub version: &'static str,
    /// The git revision baked in at build time (`ABN_GIT_REVISION`), when known.
    pub revision: Option<&'static str>,
}

/// `ServiceInfo` for the calling crate: `service_info!("backend-api")`.
#[macro_export]
macro_rules! service_info {
    ($name:expr) => {
        $crate::ServiceInfo {
            name: $name,
            version: env!("CARGO_PKG_VERSION"),
            revision: option_env!("ABN_GIT_REVISION"),
        }
    };
}

/// The `/version` body.
#[derive(Debug, Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct VersionInfo {
    pub name: String,
    pub version: String,
    /// The git revision the binary was built from, when known.
    pub git_revision: Option<String>,
}

impl From<&ServiceInfo> for VersionInfo {
    fn from(info: &ServiceInfo) -> Self {
        Self {
            name: info.name.to_string(),
            version: info.version.to_string(),
            git_revision: info.revision.map(str::to_string),
        }
    }
}
