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

/// States on query parameter `name` of `GET path` the range the parser enforces (a whole number
/// from `min` to `max`), from the same constants or start-time configuration, so the document
/// and the parser cannot drift. Panics when the document has no such parameter: a programming
/// error every start (and so every test) would show.
pub fn bound_query_integer(
    doc: &mut utoipa::openapi::OpenApi,
    path: &str,
    name: &str,
    min: u64,
    max: u64,
) {
    use utoipa::openapi::schema::{KnownFormat, ObjectBuilder, SchemaFormat, Type};
    let parameter = doc
        .paths
        .paths
        .get_mut(path)
        .and_then(|item| item.get.as_mut())
        .and_then(|operation| operation.parameters.as_mut())
        .and_then(|parameters| parameters.iter_mut().find(|p| p.name == name))
        .unwrap_or_else(|| panic!("GET {path} declares no parameter {name}"));
    parameter.schema = Some(
        ObjectBuilder::new()
            .schema_type(Type::Integer)
            .format(Some(SchemaFormat::KnownFormat(KnownFormat::Int64)))
            .minimum(Some(min as f64))
            .maximum(Some(max as f64))
            .into(),
    );
    let range = format!("{min} to {max}");
    parameter.description = Some(match parameter.description.take() {
        Some(text) => format!("{text}: {range}"),
        None => range,
    });
}
