//! HTTP routes: the legacy `GET /`, `POST /logs` and `GET /logs`.

use std::collections::HashMap;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, MethodRouter};
use axum::Json;
use http_body_util::{BodyExt, LengthLimitError, Limited};
use platform::error::ErrorBody;
use platform::ApiError;
use rand::seq::IndexedRandom;
use serde::{Deserialize, Serialize};

use crate::store::{
    is_instance_name, Level, LogStore, Record, StoreError, Window, MAX_MESSAGE_CHARS,
};

/// Largest `POST /logs` body read, whatever MAX_BODY_BYTES says: a record needs far less.
pub const MAX_RECORD_BODY_BYTES: usize = 64 * 1024;
/// `GET /logs` answers at most this many records.
pub const MAX_LIMIT: u64 = 1000;
const DEFAULT_LIMIT: u64 = 100;

/// The legacy service's messages for `GET /`.
pub const LEGACY_MESSAGES: [&str; 4] = [
    "Processing request...",
    "Executing task...",
    "Preparing data...",
    "Performing operation...",
];

#[derive(Clone)]
pub(crate) struct AppState {
    pub store: LogStore,
    pub simulated_latency: Duration,
}

/// The routes, with their state applied; each waits on the store (or the simulated work).
pub(crate) fn routes(state: AppState) -> [(&'static str, MethodRouter); 2] {
    [
        ("/", get(legacy_root).with_state(state.clone())),
        (
            "/logs",
            get(list_records).post(create_record).with_state(state),
        ),
    ]
}

/// The OpenAPI description of these routes.
#[derive(utoipa::OpenApi)]
#[openapi(
    paths(legacy_root, create_record, list_records),
    components(schemas(NewRecord, Created, RecordList, Record, Level, ErrorBody))
)]
struct DataApiDoc;

/// The document as served, with the bounds stated from the constants the handlers check.
pub(crate) fn api_doc() -> utoipa::openapi::OpenApi {
    use utoipa::openapi::{RefOr, Schema};
    let mut doc = <DataApiDoc as utoipa::OpenApi>::openapi();
    platform::openapi::bound_query_integer(&mut doc, "/logs", "limit", 1, MAX_LIMIT);
    let message = doc
        .components
        .as_mut()
        .and_then(|c| c.schemas.get_mut("NewRecord"))
        .and_then(|record| match record {
            RefOr::T(Schema::Object(record)) => record.properties.get_mut("message"),
            _ => None,
        });
    match message {
        Some(RefOr::T(Schema::Object(message))) => {
            message.min_length = Some(1);
            message.max_length = Some(MAX_MESSAGE_CHARS);
        }
        _ => panic!("NewRecord has no message property"),
    }
    add_records_since_created_link(&mut doc);
    doc
}

/// Links a created record's `ts` to `GET /logs?since=`, the records from it on (schemathesis's
/// stateful phase follows it). The operation is named through `extensions` because utoipa 5.5
/// writes `Link::operation_id` as `operation_id`, where OpenAPI says `operationId`.
fn add_records_since_created_link(doc: &mut utoipa::openapi::OpenApi) {
    use utoipa::openapi::extensions::Extensions;
    use utoipa::openapi::link::LinkBuilder;
    use utoipa::openapi::RefOr;
    let link = LinkBuilder::new()
        .parameter("since", "$response.body#/ts")
        .description("The records from this one on, this one included")
        .extensions(Some(Extensions::from_iter([(
            "operationId",
            "list_records",
        )])))
        .build();
    let created = doc
        .paths
        .paths
        .get_mut("/logs")
        .and_then(|item| item.post.as_mut())
        .and_then(|post| post.responses.responses.get_mut("201"));
    match created {
        Some(RefOr::T(created)) => {
            created
                .links
                .insert("RecordsSinceCreated".to_string(), link.into());
        }
        _ => panic!("POST /logs declares no 201 answer"),
    }
}

/// `POST /logs` body.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewRecord {
    /// Text of at least one character (the most is stated as `maxLength`).
    pub message: String,
    /// `info` (default), `warn` or `error`.
    #[schema(value_type = Option<Level>)]
    pub level: Option<String>,
}

/// `POST /logs` answer: the durable record's identity.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Created {
    pub id: String,
    /// The record's time, RFC 3339 UTC with microseconds.
    #[schema(format = DateTime)]
    pub ts: String,
}

/// `GET /logs` answer.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RecordList {
    /// Newest first.
    pub records: Vec<Record>,
}

/// Legacy: simulated work, a record written, then `Log: <message>`.
#[utoipa::path(get, path = "/", tag = "data-api",
    responses(
        (status = 200, description = "The record is durable", body = String, content_type = "text/plain"),
        (status = 503, description = "The log volume is unusable", body = ErrorBody),
        (status = 507, description = "The log volume is full", body = ErrorBody)
    ))]
async fn legacy_root(State(state): State<AppState>) -> Result<Response, ApiError> {
    if !state.simulated_latency.is_zero() {
        tokio::time::sleep(state.simulated_latency).await;
    }
    let message = *LEGACY_MESSAGES
        .choose(&mut rand::rng())
        .expect("the message list is not empty");
    state
        .store
        .append(Level::Info, message.to_string())
        .await
        .map_err(store_error)?;
    tracing::debug!("Log: {message}");
    Ok((
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        format!("Log: {message}"),
    )
        .into_response())
}

/// Stores a record; answers once it is durable on disk.
#[utoipa::path(post, path = "/logs", tag = "data-api",
    request_body(content = NewRecord, content_type = "application/json"),
    responses(
        // Its link to `GET /logs?since=` is added by `api_doc`.
        (status = 201, description = "Stored durably", body = Created),
        (status = 400, description = "Not a JSON record", body = ErrorBody),
        (status = 413, description = "Body over 64 KiB (or MAX_BODY_BYTES when lower): only a message of thousands of characters each escaped as `\\uXXXX` gets there", body = ErrorBody),
        (status = 415, description = "Not application/json", body = ErrorBody),
        (status = 422, description = "Message empty or over 8192 characters, or unknown level", body = ErrorBody),
        (status = 503, description = "The log volume is unusable", body = ErrorBody),
        (status = 507, description = "The log volume is full", body = ErrorBody)
    ))]
async fn create_record(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Body,
) -> Result<(StatusCode, Json<Created>), ApiError> {
    if !is_json(&headers) {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "the request body must be application/json",
        ));
    }
    let bytes = read_limited(&headers, body).await?;
    let new: NewRecord = serde_json::from_slice(&bytes).map_err(|e| {
        ApiError::bad_request("invalid_json", format!("the body is not a record: {e}"))
    })?;
    let level = match new.level.as_deref() {
        None => Level::Info,
        Some(name) => Level::parse(name).ok_or_else(|| {
            ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_level",
                "level must be one of info, warn, error",
            )
        })?,
    };
    let chars = new.message.chars().count();
    if !(1..=MAX_MESSAGE_CHARS).contains(&chars) {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_message",
            format!("message must be 1 to {MAX_MESSAGE_CHARS} characters (got {chars})"),
        ));
    }
    let ack = state
        .store
        .append(level, new.message)
        .await
        .map_err(store_error)?;
    Ok((
        StatusCode::CREATED,
        Json(Created {
            id: ack.id,
            ts: ack.ts,
        }),
    ))
}

/// Recent records of every instance on the volume (or of one), newest first.
#[utoipa::path(get, path = "/logs", tag = "data-api",
    params(
        // Its range is set from MAX_LIMIT by `api_doc`.
        ("limit" = Option<u64>, Query, description = "Number of records (default 100)"),
        ("since" = Option<String>, Query, format = DateTime, description = "Any RFC 3339 date-time (any offset, any fraction): only records at or after it"),
        ("before" = Option<String>, Query, format = DateTime, description = "Any RFC 3339 date-time: only records strictly before it, to page back past `limit` (records sharing the boundary's exact time: `since=T&before=T+1µs`)"),
        ("instance" = Option<String>, Query, pattern = r"^[A-Za-z0-9_-][A-Za-z0-9._-]{0,127}$", description = "Only this instance's records (an INSTANCE_ID, or `legacy` for imported ones); default: every instance's, merged")
    ),
    responses(
        (status = 200, description = "Records", body = RecordList),
        (status = 400, description = "Bad limit, since, before or instance", body = ErrorBody),
        (status = 500, description = "A folder holds a segment in a storage format this release does not read (`unsupported_storage_format`)", body = ErrorBody),
        (status = 503, description = "The log volume cannot be read", body = ErrorBody)
    ))]
async fn list_records(
    State(state): State<AppState>,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Json<RecordList>, ApiError> {
    let limit = platform::query::limit(
        params.get("limit").map(String::as_str),
        DEFAULT_LIMIT,
        1,
        MAX_LIMIT,
    )?;
    let since = params
        .get("since")
        .map(|text| platform::query::since(text))
        .transpose()?;
    let before = params
        .get("before")
        .map(|text| {
            platform::query::parse_rfc3339(text).ok_or_else(|| {
                ApiError::bad_request(
                    "invalid_before",
                    "before must be an RFC 3339 date-time such as 2026-01-02T03:04:05Z",
                )
            })
        })
        .transpose()?;
    let instance = params.get("instance").cloned();
    if instance
        .as_deref()
        .is_some_and(|name| !is_instance_name(name))
    {
        return Err(ApiError::bad_request(
            "invalid_instance",
            "instance must be 1 to 128 ASCII letters, digits, '.', '_' and '-', not starting with '.'",
        ));
    }
    let records = state
        .store
        .recent(limit as usize, Window { since, before }, instance)
        .await
        .map_err(|err| {
            tracing::warn!(error = %err, "reading records failed");
            match err {
                StoreError::UnsupportedFormat { .. } => store_error(err),
                _ => ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "storage_unavailable",
                    "the log volume cannot be read",
                ),
            }
        })?;
    Ok(Json(RecordList { records }))
}

fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|essence| essence.trim().eq_ignore_ascii_case("application/json"))
}

/// Reads the body up to [`MAX_RECORD_BODY_BYTES`]; a declared larger length is refused unread.
async fn read_limited(headers: &HeaderMap, body: Body) -> Result<Bytes, ApiError> {
    let too_large = || {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "body_too_large",
            format!("the request body must be at most {MAX_RECORD_BODY_BYTES} bytes"),
        )
    };
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > MAX_RECORD_BODY_BYTES as u64) {
        return Err(too_large());
    }
    match Limited::new(body, MAX_RECORD_BODY_BYTES).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(err) if is_length_limit(err.as_ref()) => Err(too_large()),
        Err(_) => Err(ApiError::bad_request(
            "body_unreadable",
            "the request body could not be read",
        )),
    }
}

/// True when the error (or one it wraps, such as the platform's own body limit) is a length
/// limit.
fn is_length_limit(err: &(dyn std::error::Error + 'static)) -> bool {
    let mut current = Some(err);
    while let Some(e) = current {
        if e.is::<LengthLimitError>() {
            return true;
        }
        current = e.source();
    }
    false
}

fn store_error(err: StoreError) -> ApiError {
    match err {
        StoreError::Full { .. } => ApiError::new(
            StatusCode::INSUFFICIENT_STORAGE,
            "storage_full",
            "the log volume is full; the record was not stored",
        ),
        StoreError::Unavailable { .. } => ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "storage_unavailable",
            "the log volume is not writable or missing; the record was not stored",
        ),
        // Which file and format are in the server's log, not in the answer.
        StoreError::UnsupportedFormat { .. } => ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "unsupported_storage_format",
            "the log volume holds a segment in a storage format this data-api does not read (written by a newer release)",
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_document_states_the_handlers_bounds_and_links_created_to_since() {
        let doc = serde_json::to_value(api_doc()).unwrap();
        let limit = &doc["paths"]["/logs"]["get"]["parameters"][0];
        assert_eq!(limit["name"], "limit");
        assert_eq!(limit["schema"]["minimum"], 1.0);
        assert_eq!(limit["schema"]["maximum"], MAX_LIMIT as f64);
        let message = &doc["components"]["schemas"]["NewRecord"]["properties"]["message"];
        assert_eq!(message["minLength"], 1);
        assert_eq!(message["maxLength"], MAX_MESSAGE_CHARS);
        let link =
            &doc["paths"]["/logs"]["post"]["responses"]["201"]["links"]["RecordsSinceCreated"];
        assert_eq!(link["operationId"], "list_records");
        assert_eq!(link["parameters"]["since"], "$response.body#/ts");
        assert!(link.get("operation_id").is_none(), "{link}");
        assert_eq!(doc["paths"]["/logs"]["get"]["operationId"], "list_records");
    }
}
