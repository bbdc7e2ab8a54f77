//! OpenAPI: each service describes its own routes with utoipa; the common endpoints are described
//! here once and merged into every service's document.

use utoipa::OpenApi;

use crate::error::ErrorBody;
use crate::readiness::ReadinessReport;
use crate::service_info::{ServiceInfo, VersionInfo};

#[derive(OpenApi)]
#[openapi(
    paths(
        crate::common_endpoints::healthz,
        crate::common_endpoints::readyz,
        crate::common_endpoints::metrics,
        crate::common_endpoints::version,
        crate::common_endpoints::openapi_json
    ),
    components(schemas(ErrorBody, ReadinessReport, VersionInfo))
)]
struct CommonApi;

/// The service's document with the common endpoints merged in and its title and version set.
pub fn complete(mut doc: utoipa::openapi::OpenApi, info: &ServiceInfo) -> utoipa::openapi::OpenApi {
    doc.merge(CommonApi::openapi());
    doc.info.title = info.name.to_string();
    doc.info.version = info.version.to_string();
    doc
}
