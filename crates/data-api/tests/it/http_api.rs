//! The HTTP contract over real listeners: records in and out, the legacy `GET /`, refusals of bad
//! input (each writing nothing), concurrent writers, metrics and OpenAPI.

use std::collections::HashSet;

use crate::common::{segment_records, test_config, TestServer};
use data_api::store::Level;
use data_api::{RecordList, LEGACY_MESSAGES};
use serde_json::Value;

#[tokio::test]
async fn records_are_read_back_newest_first_and_filtered_by_time() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(test_config(dir.path(), "inst-a")).await;

    let mut ids = Vec::new();
    for (message, level) in [("first", "info"), ("second", "warn"), ("third", "error")] {
        let response = server
            .client
            .post(server.url("/logs"))
            .json(&serde_json::json!({ "message": message, "level": level }))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 201);
        let created: Value = response.json().await.unwrap();
        ids.push(created["id"].as_str().unwrap().to_string());
        assert!(created["ts"].as_str().unwrap().ends_with('Z'));
    }
    let unique: HashSet<_> = ids.iter().collect();
    assert_eq!(unique.len(), 3);

    let list: RecordList =
        test_support::get_json(&server.client, &server.url("/logs?limit=2")).await;
    let messages: Vec<_> = list.records.iter().map(|r| r.message.as_str()).collect();
    assert_eq!(messages, ["third", "second"]);
    assert_eq!(list.records[0].level, Level::Error);
    assert_eq!(list.records[0].instance, "inst-a");
    assert_eq!(list.records[0].id, ids[2]);

    // `since` the second record's time: the second and the third.
    let since = list.records[1].ts.clone();
    let list: RecordList = server
        .client
        .get(server.url("/logs"))
        .query(&[("since", since.as_str())])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let messages: Vec<_> = list.records.iter().map(|r| r.message.as_str()).collect();
    assert_eq!(messages, ["third", "second"]);

    // The level defaults to info.
    assert_eq!(server.post("no level").await.status(), 201);
    let on_disk = segment_records(&dir.path().join("inst-a"));
    assert_eq!(on_disk.len(), 4);
    assert_eq!(on_disk[3].level, Level::Info);
    server.stop().await;
}

#[tokio::test]
async fn legacy_root_writes_a_record_and_answers_log_line() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(test_config(dir.path(), "legacy-root")).await;
    let response = server.client.get(server.url("/")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let body = response.text().await.unwrap();
    let message = body.strip_prefix("Log: ").expect("legacy format");
    assert!(LEGACY_MESSAGES.contains(&message), "{body}");
    let on_disk = segment_records(&dir.path().join("legacy-root"));
    assert_eq!(on_disk.len(), 1);
    assert_eq!(on_disk[0].message, message);
    server.stop().await;
}

/// Name, content type, body, expected status and error code.
type BadInput = (
    &'static str,
    Option<&'static str>,
    Vec<u8>,
    u16,
    &'static str,
);

#[tokio::test]
async fn bad_input_gets_a_4xx_json_error_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    // A foreign file in LOG_DIR must be left alone.
    std::fs::write(dir.path().join("not-ours.txt"), b"keep me").unwrap();
    let server = TestServer::start(test_config(dir.path(), "strict")).await;
    let json = "application/json";
    let too_long = serde_json::json!({ "message": "x".repeat(8193) }).to_string();
    let over_limit = serde_json::json!({ "message": "y".repeat(70_000) }).to_string();
    let cases: Vec<BadInput> = vec![
        (
            "no content type",
            None,
            br#"{"message":"m"}"#.to_vec(),
            415,
            "unsupported_media_type",
        ),
        (
            "text/plain",
            Some("text/plain"),
            br#"{"message":"m"}"#.to_vec(),
            415,
            "unsupported_media_type",
        ),
        (
            "not json",
            Some(json),
            b"message=m".to_vec(),
            400,
            "invalid_json",
        ),
        (
            "missing message",
            Some(json),
            br#"{"level":"info"}"#.to_vec(),
            400,
            "invalid_json",
        ),
        (
            "unknown field",
            Some(json),
            br#"{"message":"m","extra":1}"#.to_vec(),
            400,
            "invalid_json",
        ),
        (
            "message not a string",
            Some(json),
            br#"{"message":5}"#.to_vec(),
            400,
            "invalid_json",
        ),
        (
            "invalid UTF-8",
            Some(json),
            b"{\"message\":\"\xff\xfe\"}".to_vec(),
            400,
            "invalid_json",
        ),
        (
            "empty message",
            Some(json),
            br#"{"message":""}"#.to_vec(),
            422,
            "invalid_message",
        ),
        (
            "8193-character message",
            Some(json),
            too_long.into_bytes(),
            422,
            "invalid_message",
        ),
        (
            "unknown level",
            Some(json),
            br#"{"message":"m","level":"debug"}"#.to_vec(),
            422,
            "invalid_level",
        ),
        (
            "level in capitals",
            Some(json),
            br#"{"message":"m","level":"INFO"}"#.to_vec(),
            422,
            "invalid_level",
        ),
        (
            "body over 64 KiB",
            Some(json),
            over_limit.clone().into_bytes(),
            413,
            "body_too_large",
        ),
    ];
    for (name, content_type, body, status, code) in cases {
        let mut request = server.client.post(server.url("/logs")).body(body);
        if let Some(ct) = content_type {
            request = request.header("content-type", ct);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status().as_u16(), status, "{name}");
        let error: Value = response
            .json()
            .await
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(error["code"], code, "{name}: {error}");
        assert!(
            error["error"].as_str().is_some_and(|s| !s.is_empty()),
            "{name}"
        );
    }

    // A chunked body (no Content-Length) over the limit is cut off while streaming.
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> = over_limit
        .into_bytes()
        .chunks(8192)
        .map(|c| Ok(c.to_vec()))
        .collect();
    let response = server
        .client
        .post(server.url("/logs"))
        .header("content-type", json)
        .body(reqwest::Body::wrap_stream(futures_util::stream::iter(
            chunks,
        )))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 413);

    for (query, code) in [
        ("limit=0", "invalid_limit"),
        ("limit=1001", "invalid_limit"),
        ("limit=ten", "invalid_limit"),
        ("since=yesterday", "invalid_since"),
    ] {
        let response = server
            .client
            .get(server.url(&format!("/logs?{query}")))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 400, "{query}");
        let error: Value = response.json().await.unwrap();
        assert_eq!(error["code"], code, "{query}");
    }

    assert_eq!(server.metric("data_api_records_written_total").await, 0.0);
    assert_eq!(server.metric("data_api_store_bytes").await, 0.0);
    assert!(segment_records(&dir.path().join("strict")).is_empty());
    assert_eq!(
        std::fs::read(dir.path().join("not-ours.txt")).unwrap(),
        b"keep me"
    );

    // An 8192-character message is fine.
    assert_eq!(server.post(&"z".repeat(8192)).await.status(), 201);
    server.stop().await;
}

#[tokio::test]
async fn sixty_four_concurrent_writers_never_interleave_records() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = test_config(dir.path(), "busy");
    // Small segments, so rotation happens under concurrency too.
    config.log_segment_bytes = 256 * 1024;
    let server = std::sync::Arc::new(TestServer::start(config).await);
    let writers = 64;
    let per_writer = 15;
    let mut tasks = Vec::new();
    for w in 0..writers {
        let server = server.clone();
        tasks.push(tokio::spawn(async move {
            let mut acked = Vec::new();
            for n in 0..per_writer {
                // Long, writer-specific messages: interleaved bytes would break a line or mix
                // two writers' letters in one message.
                let letter = char::from(b'A' + (w % 26) as u8);
                let message = format!("w{w}-n{n}-{}", letter.to_string().repeat(3000));
                let response = server.post(&message).await;
                assert_eq!(response.status(), 201);
                let created: Value = response.json().await.unwrap();
                acked.push((created["id"].as_str().unwrap().to_string(), message));
            }
            acked
        }));
    }
    let mut acked = Vec::new();
    for task in tasks {
        acked.extend(task.await.unwrap());
    }
    let records = segment_records(&dir.path().join("busy"));
    assert_eq!(records.len(), writers * per_writer);
    let stored: std::collections::HashMap<_, _> = records
        .iter()
        .map(|r| (r.id.clone(), r.message.clone()))
        .collect();
    assert_eq!(stored.len(), records.len(), "ids are unique");
    for (id, message) in &acked {
        assert_eq!(stored.get(id), Some(message), "record {id} stored whole");
    }
    let batches = server.metric("data_api_commit_batch_size_count").await;
    let written = server.metric("data_api_records_written_total").await;
    assert_eq!(written, (writers * per_writer) as f64);
    println!("{written} records in {batches} fdatasync batches");
    std::sync::Arc::try_unwrap(server)
        .ok()
        .unwrap()
        .stop()
        .await;
}

#[tokio::test]
async fn metrics_readiness_and_openapi_describe_the_store() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(test_config(dir.path(), "meta")).await;
    assert_eq!(server.post("one").await.status(), 201);
    let metrics = server.metrics_page().await;
    for name in [
        "data_api_records_written_total 1",
        "data_api_retention_bytes 805306368",
        "data_api_store_writable 1",
        "data_api_sync_duration_seconds_count 1",
        "data_api_commit_batch_size_count 1",
        "data_api_write_errors_total{kind=\"full\"} 0",
        "data_api_write_errors_total{kind=\"unavailable\"} 0",
        "http_requests_total{route=\"/logs\",method=\"POST\",status=\"201\"} 1",
    ] {
        assert!(metrics.contains(name), "{name} missing in\n{metrics}");
    }
    assert!(server.metric("data_api_store_bytes").await > 0.0);

    let ready: Value = test_support::get_json(&server.client, &server.url("/readyz")).await;
    assert_eq!(ready["checks"]["log_store"], "ok");

    let doc: Value = test_support::get_json(&server.client, &server.url("/openapi.json")).await;
    assert!(doc["paths"]["/logs"]["post"].is_object());
    assert!(doc["paths"]["/logs"]["get"].is_object());
    assert!(doc["paths"]["/"]["get"].is_object());
    assert_eq!(doc["info"]["title"], "data-api");
    server.stop().await;
}
