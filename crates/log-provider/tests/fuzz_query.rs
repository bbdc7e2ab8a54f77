//! Property tests of the provider's query parameters (`since`, `limit`): the parser never
//! panics, accepts exactly what it documents, and whatever it accepts streams to the end.
//! (cargo-fuzz needs a nightly toolchain, which this machine does not have; proptest runs on
//! stable with bounded case counts.)

use std::collections::HashMap;
use std::time::{Duration, SystemTime};

use log_provider::{service, Config, LogsRequest};
use platform::Shutdown;
use proptest::prelude::*;
use secrecy::SecretString;

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
                prop_assert!((1..=max_limit).contains(&request.limit));
                if let Some(l) = &limit {
                    prop_assert_eq!(l.parse::<u64>().ok(), Some(request.limit));
                }
                // Every line's timestamp can be printed.
                let last = request.since + Duration::from_secs(request.limit - 1);
                prop_assert!(humantime::format_rfc3339_seconds(last).to_string().len() == 20);
            }
            Err(err) => {
                prop_assert_eq!(err.status.as_u16(), 400);
                prop_assert!(err.code == "invalid_since" || err.code == "invalid_limit", "{}", err.code);
            }
        }
    }

    /// A valid time and an in-range limit are accepted as given.
    #[test]
    fn valid_parameters_are_accepted(secs in 0u64..253_402_000_000, limit in 1u64..=MAX_LIMIT) {
        let since = SystemTime::UNIX_EPOCH + Duration::from_secs(secs);
        let text = humantime::format_rfc3339_seconds(since).to_string();
        let request = LogsRequest::parse(&query(Some(text), Some(limit.to_string())), MAX_LIMIT).unwrap();
        prop_assert_eq!(request.since, since);
        prop_assert_eq!(request.limit, limit);
    }
}

/// Over real HTTP: whatever the parser accepts streams every line to the end (a panic in the
/// stream would cut the answer short), and whatever it refuses is a JSON 400.
#[test]
fn accepted_queries_stream_to_the_end() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let shutdown = Shutdown::new();
    let mut config = Config::local(SecretString::from(KEY.to_string()));
    config.max_limit = MAX_LIMIT;
    let (addr, _) = runtime
        .block_on(async {
            let service = service(config).await.expect("valid");
            test_support::spawn(service, shutdown.clone()).await
        })
        .unwrap();
    let client = reqwest::Client::new();
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig::with_cases(64));
    let strategy = (
        prop_oneof![
            timestamp_like(),
            Just("9999-12-31T23:59:59Z".to_string()),
            Just("9999-12-31T23:59:00Z".to_string())
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
                    let lines = body.lines().count() as u64;
                    prop_assert_eq!(lines, limit, "since={}", since);
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
    shutdown.trigger();
}
