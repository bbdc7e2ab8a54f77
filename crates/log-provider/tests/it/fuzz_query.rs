//! Property tests of the provider's query parameters (`since`, `limit`): the parser never
//! panics, accepts exactly what the served OpenAPI document declares (and just outside it
//! answers the documented code), and whatever it accepts streams to the end.
//! (cargo-fuzz needs a nightly toolchain, which this machine does not have; proptest runs on
//! stable with bounded case counts.)

use std::collections::HashMap;
use std::time::Duration;

use log_provider::{service, Config, LogsRequest};
use proptest::prelude::*;
use secrecy::SecretString;
use test_support::contract::{near_miss_date_time, query_integer_bounds, rfc3339_date_time};
use test_support::TestApp;

const KEY: &str = "fuzz-provider-key-8c41";
const MAX_LIMIT: u64 = 1000;

fn query(since: Option<String>, limit: Option<String>) -> HashMap<String, String> {
    let mut q = HashMap::new();
    if let Some(s) = since {
        q.insert("since".to_string(), s);
    }
    if let Some(l) = limit {
        q.insert("limit".to_string(), l);
    }
    q
}

/// RFC 3339-shaped text with fields that may be out of range.
fn timestamp_like() -> impl Strategy<Value = String> {
    (
        0u32..=10_000,
        0u32..=13,
        0u32..=32,
        0u32..=25,
        0u32..=61,
        0u32..=61,
        prop_oneof![
            Just("Z".to_string()),
            Just(String::new()),
            Just("+00:00".to_string()),
            Just(".123456Z".to_string()),
            "[+-][0-9]{2}:[0-9]{2}",
        ],
    )
        .prop_map(|(y, mo, d, h, mi, s, tz)| {
            format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}{tz}")
        })
}

fn limit_like() -> impl Strategy<Value = String> {
    prop_oneof![
        (0u64..=MAX_LIMIT + 5).prop_map(|n| n.to_string()),
        any::<u64>().prop_map(|n| n.to_string()),
        "[-+]?[0-9]{0,25}",
        ".{0,12}",
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    /// Arbitrary text never panics the parser; errors carry their stable code.
    #[test]
    fn arbitrary_parameters_never_panic(
        since in proptest::option::of(prop_oneof![timestamp_like(), ".{0,40}"]),
        limit in proptest::option::of(limit_like()),
        max_limit in prop_oneof![Just(MAX_LIMIT), Just(u64::MAX), 1u64..10],
    ) {
        match LogsRequest::parse(&query(since.clone(), limit.clone()), max_limit) {
            Ok(request) => {
                prop_assert!(request.limit <= max_limit);
                if let Some(l) = &limit {
                    // As asked, or fewer where the stream reaches the end of the year 9999.
                    let asked = l.parse::<u64>().ok();
                    prop_assert!(asked.is_some_and(|n| n >= request.limit && n >= 1));
                }
                // Every line's timestamp can be printed.
                if request.limit > 0 {
                    let last = request.since + Duration::from_secs(request.limit - 1);
                    prop_assert!(platform::query::format_rfc3339_seconds(last).is_some());
                }
            }
            Err(err) => {
                prop_assert_eq!(err.status.as_u16(), 400);
                prop_assert!(err.code == "invalid_since" || err.code == "invalid_limit", "{}", err.code);
            }
        }
    }
}

/// The provider on port 0 with PROVIDER_MAX_LIMIT = MAX_LIMIT.
async fn start_provider() -> (std::net::SocketAddr, TestApp) {
    let mut config = Config::local(SecretString::from(KEY.to_string()));
    config.max_limit = MAX_LIMIT;
    let service = service(config).await.expect("valid");
    let app = TestApp::start(service).await;
    (app.addr, app)
}

/// The served document's bounds are exactly the parser's: every `limit` from its `minimum` to
/// its `maximum` with every RFC 3339 date-time is accepted (the lines stop at the end of the year
/// 9999, never later); one below or above the range answers `invalid_limit`, a near-miss time
/// `invalid_since`.
#[test]
fn the_parser_accepts_exactly_what_the_document_declares() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let (addr, app) = runtime.block_on(start_provider());
    let (min, max) = runtime.block_on(query_integer_bounds(
        &reqwest::Client::new(),
        &format!("http://{addr}"),
        "/v1/logs",
        "limit",
    ));
    drop(app);
    assert_eq!(
        (min, max),
        (1, MAX_LIMIT),
        "the configured PROVIDER_MAX_LIMIT"
    );

    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig::with_cases(2000));
    let inside = (rfc3339_date_time(), min..=max);
    runner
        .run(&inside, |(since, limit)| {
            let request =
                LogsRequest::parse(&query(Some(since.clone()), Some(limit.to_string())), max)
                    .map_err(|e| {
                        TestCaseError::fail(format!("since={since} limit={limit}: {e}"))
                    })?;
            prop_assert!(request.limit <= limit);
            if request.limit < limit {
                let after_last = request.since + Duration::from_secs(request.limit);
                prop_assert!(
                    platform::query::format_rfc3339_seconds(after_last).is_none(),
                    "{}",
                    since
                );
            }
            Ok(())
        })
        .unwrap();
    let outside = (
        rfc3339_date_time(),
        prop_oneof![Just(min - 1), Just(max + 1), (max + 1)..=u64::MAX],
        near_miss_date_time(),
        min..=max,
    );
    runner
        .run(&outside, |(since, bad_limit, bad_since, limit)| {
            let err = LogsRequest::parse(&query(Some(since), Some(bad_limit.to_string())), max)
                .unwrap_err();
            prop_assert_eq!((err.status.as_u16(), err.code), (400, "invalid_limit"));
            let err = LogsRequest::parse(
                &query(Some(bad_since.clone()), Some(limit.to_string())),
                max,
            )
            .map(|r| format!("accepted as {r:?}"))
            .unwrap_err();
            prop_assert_eq!(
                (err.status.as_u16(), err.code),
                (400, "invalid_since"),
                "{}",
                bad_since
            );
            Ok(())
        })
        .unwrap();
}

/// Over real HTTP: whatever the parser accepts streams every line to the end (a panic in the
/// stream would cut the answer short), and whatever it refuses is a JSON 400.
#[test]
fn accepted_queries_stream_to_the_end() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let (addr, app) = runtime.block_on(start_provider());
    let client = reqwest::Client::new();
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig::with_cases(64));
    let strategy = (
        prop_oneof![
            timestamp_like(),
            rfc3339_date_time(),
            Just("9999-12-31T23:59:59Z".to_string()),
            Just("9999-12-31T23:59:00Z".to_string()),
            Just("0769-01-05T05:16:41.68216Z".to_string())
        ],
        prop_oneof![1u64..=200, Just(0), Just(MAX_LIMIT + 1)],
    );
    runner
        .run(&strategy, |(since, limit)| {
            let url = format!("http://{addr}/v1/logs");
            let (status, body) = runtime.block_on(async {
                let response = client
                    .get(&url)
                    .query(&[("since", since.as_str()), ("limit", &limit.to_string())])
                    .bearer_auth(KEY)
                    .send()
                    .await
                    .expect("an answer");
                let status = response.status().as_u16();
                (status, response.text().await.expect("the whole body"))
            });
            match status {
                200 => {
                    // As many lines as asked, or up to the end of the year 9999.
                    let expected = LogsRequest::parse(
                        &query(Some(since.clone()), Some(limit.to_string())),
                        MAX_LIMIT,
                    )
                    .expect("answered 200, so it parses")
                    .limit;
                    prop_assert_eq!(body.lines().count() as u64, expected, "since={}", since);
                    for line in body.lines() {
                        let line: serde_json::Value = serde_json::from_str(line).unwrap();
                        prop_assert!(
                            line["ts"].as_str().is_some_and(|ts| ts.len() == 20),
                            "{}",
                            line
                        );
                    }
                }
                400 => {
                    let error: serde_json::Value = serde_json::from_str(&body).unwrap();
                    prop_assert!(error["code"].is_string());
                }
                other => prop_assert!(false, "since={since} limit={limit}: {other}"),
            }
            Ok(())
        })
        .unwrap();
    drop(app);
}
