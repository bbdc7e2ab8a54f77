//! Property tests of `/download_external_logs`'s query against its served OpenAPI document:
//! every `limit` from its `minimum` to its `maximum` (EXTERNAL_LOGS_MAX_LIMIT) with every RFC 3339
//! `since` is passed on and streamed back whole; one step outside is refused with the documented
//! code before the provider is called.

use crate::common::*;
use proptest::prelude::*;
use secrecy::SecretString;
use test_support::contract::{near_miss_date_time, query_integer_bounds, rfc3339_date_time};

const MAX_LIMIT: u64 = 50;

#[test]
fn the_default_bound_is_the_stand_in_providers() {
    assert_eq!(
        backend_api::DEFAULT_EXTERNAL_LOGS_MAX_LIMIT,
        log_provider::DEFAULT_MAX_LIMIT
    );
    assert_eq!(
        backend_api::Config::local().max_limit,
        log_provider::DEFAULT_MAX_LIMIT
    );
}

#[test]
fn the_query_is_checked_against_the_documented_bounds() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let client = reqwest::Client::new();
    // The provider with the same bound, as an operator would configure the pair.
    let mut provider_config = log_provider::Config::local(SecretString::from(KEY.to_string()));
    provider_config.max_limit = MAX_LIMIT;
    let provider = runtime.block_on(async {
        test_support::TestApp::start(log_provider::service(provider_config).await.expect("valid"))
            .await
    });
    let mut wired = config(Some(provider.url("/v1/logs")), Some(KEY));
    wired.max_limit = MAX_LIMIT;
    let backend = runtime.block_on(start_backend(wired));
    // A backend whose provider is down: a query it passed on would answer 502.
    let mut unwired = config(Some(runtime.block_on(closed_port_url())), Some(KEY));
    unwired.max_limit = MAX_LIMIT;
    unwired.retries = 0;
    let down = runtime.block_on(start_backend(unwired));

    let bounds = runtime.block_on(query_integer_bounds(
        &client,
        &backend.base,
        "/download_external_logs",
        "limit",
    ));
    assert_eq!(bounds, (1, MAX_LIMIT));
    let (min, max) = bounds;

    let get = |base: &str, query: Vec<(&'static str, String)>| {
        runtime.block_on(async {
            let response = client
                .get(format!("{base}/download_external_logs"))
                .query(&query)
                .send()
                .await
                .unwrap();
            (response.status().as_u16(), response.text().await.unwrap())
        })
    };
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig::with_cases(64));
    runner
        .run(&(min..=max, rfc3339_date_time()), |(limit, since)| {
            let query = vec![("limit", limit.to_string()), ("since", since.clone())];
            let (status, body) = get(&backend.base, query);
            prop_assert_eq!(status, 200, "limit={} since={}: {}", limit, since, body);
            // Every line, up to the end of the year 9999 at the latest.
            let lines = body.lines().count() as u64;
            prop_assert!(lines <= limit && (lines == limit || since.starts_with("9999")));
            Ok(())
        })
        .unwrap();
    let outside = (
        prop_oneof![Just(min - 1), Just(max + 1), (max + 1)..=u64::MAX],
        near_miss_date_time(),
    );
    runner
        .run(&outside, |(limit, since)| {
            let (status, body) = get(&down.base, vec![("limit", limit.to_string())]);
            let error: serde_json::Value = serde_json::from_str(&body).unwrap();
            prop_assert_eq!(
                (status, error["code"].as_str()),
                (400, Some("invalid_limit"))
            );
            let (status, body) = get(&down.base, vec![("since", since.clone())]);
            let error: serde_json::Value = serde_json::from_str(&body).unwrap();
            prop_assert_eq!(
                (status, error["code"].as_str()),
                (400, Some("invalid_since")),
                "{}",
                since
            );
            Ok(())
        })
        .unwrap();
    // And within the bounds the down provider is really called.
    let (status, _) = get(&down.base, vec![("limit", max.to_string())]);
    assert_eq!(status, 502);
    drop(provider);
}
