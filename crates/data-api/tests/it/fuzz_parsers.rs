//! Property tests of data-api's parsers of outside input: the record decoder (every line read
//! back from the volume), the recovery scan that cuts a torn tail at start, segment file names
//! and timestamps. None may panic; the scan keeps exactly the complete records before a tear.
//! Over HTTP, `GET /logs` and `POST /logs` accept exactly what the served OpenAPI document
//! declares and, just outside it, answer the documented error code.
//! (cargo-fuzz needs a nightly toolchain, not installed here; proptest runs on stable with
//! bounded case counts.)

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use crate::common::{test_config, TestServer};

use data_api::store::{
    format_ts, parse_segment_name, parse_ts, valid_prefix, Level, LogStore, RealIo, Record,
    StoreConfig, StoreMetrics,
};
use proptest::prelude::*;
use test_support::contract::{near_miss_date_time, query_integer_bounds, rfc3339_date_time};

fn level() -> impl Strategy<Value = Level> {
    prop_oneof![Just(Level::Info), Just(Level::Warn), Just(Level::Error)]
}

fn record() -> impl Strategy<Value = Record> {
    (
        0u64..4_000_000_000,
        0u32..1_000_000,
        level(),
        // Any text, newlines and NULs included: JSON escapes them, one record stays one line.
        prop_oneof![".{1,60}", "[\\n\\r\\u{0}\\u{2028}\"\\\\{}a]{1,20}"],
        "[a-z0-9-]{1,12}",
    )
        .prop_map(|(secs, micros, level, message, instance)| {
            let t = SystemTime::UNIX_EPOCH
                + Duration::from_secs(secs)
                + Duration::from_micros(u64::from(micros));
            Record {
                id: format!("0192{secs:012x}-{micros:08x}"),
                ts: format_ts(t),
                level,
                message,
                instance,
            }
        })
}

/// What a crash can leave after the last synced record: part of a line, zeros (a file extended
/// but not written), or anything without a newline.
fn torn_tail(next: Vec<u8>) -> impl Strategy<Value = Vec<u8>> {
    let len = next.len();
    prop_oneof![
        (1..len).prop_map(move |cut| next[..cut].to_vec()),
        (1usize..64).prop_map(|n| vec![0u8; n]),
        prop::collection::vec(
            any::<u8>().prop_filter("no newline", |b| *b != b'\n'),
            1..64
        ),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1000))]

    /// Any bytes: the decoder never panics, and what it accepts encodes back to a line it reads
    /// the same way.
    #[test]
    fn the_record_decoder_never_panics(line in prop_oneof![
        prop::collection::vec(any::<u8>(), 0..200),
        ".{0,200}".prop_map(String::into_bytes),
        record().prop_map(|r| { let mut l = r.to_line(); l.pop(); l }),
    ]) {
        if let Some(record) = Record::from_line(&line) {
            let again = record.to_line();
            prop_assert_eq!(again.iter().filter(|b| **b == b'\n').count(), 1);
            prop_assert_eq!(Record::from_line(&again[..again.len() - 1]), Some(record));
        }
    }

    /// A record is one line whatever its message holds, and reads back equal.
    #[test]
    fn records_round_trip_as_one_line(record in record()) {
        let line = record.to_line();
        prop_assert_eq!(line.last(), Some(&b'\n'));
        prop_assert_eq!(line.iter().filter(|b| **b == b'\n').count(), 1);
        prop_assert_eq!(Record::from_line(&line[..line.len() - 1]), Some(record));
    }

    /// On any bytes the scan returns a prefix that ends at a newline, holds only records, and is
    /// its own scan (recovering twice changes nothing).
    #[test]
    fn the_recovery_scan_never_panics(data in prop_oneof![
        prop::collection::vec(any::<u8>(), 0..400),
        prop::collection::vec(prop_oneof![
            record().prop_map(|r| r.to_line()),
            prop::collection::vec(any::<u8>(), 0..30),
            Just(b"\n".to_vec()),
        ], 0..8).prop_map(|parts| parts.concat()),
    ]) {
        let scan = valid_prefix(&data);
        let len = scan.len as usize;
        prop_assert!(len <= data.len());
        if len > 0 {
            prop_assert_eq!(data[len - 1], b'\n');
        }
        for line in data[..len].split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
            prop_assert!(Record::from_line(line).is_some());
        }
        prop_assert_eq!(valid_prefix(&data[..len]).len, scan.len);
    }

    /// Complete records followed by a torn tail: the scan keeps every record and nothing of the
    /// tail, and reports the last record's time.
    #[test]
    fn the_recovery_scan_cuts_exactly_the_torn_tail(
        (records, tail) in (prop::collection::vec(record(), 0..10), record())
            .prop_flat_map(|(records, next)| (Just(records), torn_tail(next.to_line())))
    ) {
        let mut data: Vec<u8> = records.iter().flat_map(Record::to_line).collect();
        let good = data.len() as u64;
        data.extend_from_slice(&tail);
        let scan = valid_prefix(&data);
        prop_assert_eq!(scan.len, good);
        prop_assert_eq!(scan.last_time, records.last().and_then(Record::time));
    }

    /// Only the store's own names parse, and they parse back to their number.
    #[test]
    fn segment_names_parse_only_when_canonical(
        name in prop_oneof![".{0,40}", "segment-[0-9]{18,22}\\.jsonl", "segment-[0-9+ -]{20}\\.jsonl"],
        seq in any::<u64>(),
    ) {
        if let Some(n) = parse_segment_name(&name) {
            prop_assert_eq!(format!("segment-{n:020}.jsonl"), name);
        }
        prop_assert_eq!(parse_segment_name(&format!("segment-{seq:020}.jsonl")), Some(seq));
    }

    /// Timestamps: any text parses or not without a panic; stored ones read back exactly.
    #[test]
    fn timestamps_parse_or_are_refused(text in ".{0,40}", secs in 0u64..253_402_300_000, micros in 0u64..1_000_000) {
        let _ = parse_ts(&text);
        let t = SystemTime::UNIX_EPOCH + Duration::from_secs(secs) + Duration::from_micros(micros);
        prop_assert_eq!(parse_ts(&format_ts(t)), Some(t));
    }
}

/// The same through the real store: a segment with records and a torn tail, opened, is cut to
/// exactly its records, and the store then appends after them.
#[test]
fn opening_a_torn_segment_keeps_every_record() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig::with_cases(24));
    let strategy = (prop::collection::vec(record(), 1..8), record())
        .prop_flat_map(|(records, next)| (Just(records), torn_tail(next.to_line())));
    runner
        .run(&strategy, |(records, tail)| {
            let dir = tempfile::tempdir().unwrap();
            let instance_dir = dir.path().join("fuzz");
            std::fs::create_dir_all(&instance_dir).unwrap();
            let segment = instance_dir.join(format!("segment-{:020}.jsonl", 0));
            let mut data: Vec<u8> = records.iter().flat_map(Record::to_line).collect();
            let good = data.len() as u64;
            data.extend_from_slice(&tail);
            std::fs::write(&segment, &data).unwrap();

            let config = StoreConfig {
                log_dir: dir.path().to_path_buf(),
                instance: "fuzz".into(),
                segment_bytes: 1 << 20,
                retention_bytes: 8 << 20,
                format_version: data_api::store::DEFAULT_WRITE_VERSION,
            };
            let (kept, dropped) = runtime.block_on(async {
                let (store, report) = LogStore::open(config, Arc::new(RealIo), StoreMetrics::new())
                    .await
                    .expect("opens");
                let dropped = report.torn_tail.map(|t| t.dropped_bytes);
                store
                    .append(Level::Info, "after".into())
                    .await
                    .expect("appends");
                store.close().await;
                (std::fs::read(&segment).unwrap(), dropped)
            });
            prop_assert_eq!(dropped, Some(tail.len() as u64));
            prop_assert_eq!(&kept[..good as usize], &data[..good as usize]);
            let last = kept[good as usize..]
                .strip_suffix(b"\n")
                .expect("one more line");
            prop_assert_eq!(
                Record::from_line(last).map(|r| r.message),
                Some("after".to_string())
            );
            Ok(())
        })
        .unwrap();
}

/// Text of exactly `chars` characters drawn from one to four UTF-8 bytes each, so that the bound
/// is seen to count characters (as JSON Schema's `maxLength` does), not bytes.
fn text_of(chars: usize) -> impl Strategy<Value = String> {
    prop::collection::vec(
        prop_oneof![Just('a'), Just('é'), Just('€'), Just('🏻')],
        chars,
    )
    .prop_map(|cs| cs.into_iter().collect())
}

/// The served document's bounds are the handlers': `limit` from its `minimum` to its `maximum`
/// and every RFC 3339 `since` answer 200, one step outside 400 with the documented code; a
/// message of `minLength` to `maxLength` characters is stored (201), one more or none is 422.
#[test]
fn the_api_accepts_exactly_what_the_document_declares() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let server = runtime.block_on(TestServer::start(test_config(dir.path(), "contract")));
    let base = format!("http://{}", server.addr);
    let (min, max) = runtime.block_on(query_integer_bounds(
        &server.client,
        &base,
        "/logs",
        "limit",
    ));
    assert_eq!((min, max), (1, data_api::MAX_LIMIT));
    let doc: serde_json::Value = runtime.block_on(test_support::get_json(
        &server.client,
        &format!("{base}/openapi.json"),
    ));
    let message = &doc["components"]["schemas"]["NewRecord"]["properties"]["message"];
    let (min_chars, max_chars) = (
        message["minLength"].as_u64().unwrap() as usize,
        message["maxLength"].as_u64().unwrap() as usize,
    );

    let get = |query: Vec<(&'static str, String)>| {
        runtime.block_on(async {
            let response = server
                .client
                .get(server.url("/logs"))
                .query(&query)
                .send()
                .await
                .unwrap();
            let status = response.status().as_u16();
            let body: serde_json::Value = response.json().await.unwrap();
            (status, body)
        })
    };
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig::with_cases(64));
    runner
        .run(&(min..=max, rfc3339_date_time()), |(limit, since)| {
            let (status, body) = get(vec![("limit", limit.to_string()), ("since", since.clone())]);
            prop_assert_eq!(status, 200, "limit={} since={}: {}", limit, since, body);
            Ok(())
        })
        .unwrap();
    runner
        .run(
            &(
                prop_oneof![Just(min - 1), Just(max + 1), (max + 1)..=u64::MAX],
                near_miss_date_time(),
            ),
            |(limit, since)| {
                let (status, body) = get(vec![("limit", limit.to_string())]);
                prop_assert_eq!(
                    (status, body["code"].as_str()),
                    (400, Some("invalid_limit"))
                );
                let (status, body) = get(vec![("since", since.clone())]);
                prop_assert_eq!(
                    (status, body["code"].as_str()),
                    (400, Some("invalid_since")),
                    "{}",
                    since
                );
                Ok(())
            },
        )
        .unwrap();

    let post = |message: String| {
        runtime.block_on(async {
            let response = server.post(&message).await;
            let status = response.status().as_u16();
            let body: serde_json::Value = response.json().await.unwrap();
            (status, body)
        })
    };
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig::with_cases(24));
    let inside =
        prop_oneof![Just(min_chars), Just(max_chars), min_chars..=max_chars].prop_flat_map(text_of);
    runner
        .run(&inside, |message| {
            let (status, body) = post(message);
            prop_assert_eq!(status, 201, "{}", body);
            Ok(())
        })
        .unwrap();
    for chars in [min_chars - 1, max_chars + 1] {
        runner
            .run(&text_of(chars), |message| {
                let (status, body) = post(message);
                prop_assert_eq!(
                    (status, body["code"].as_str()),
                    (422, Some("invalid_message"))
                );
                Ok(())
            })
            .unwrap();
    }
    runtime.block_on(server.stop());
}
