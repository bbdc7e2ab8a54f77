//! Property tests of every parser of outside input in health-check: the YAML configuration and
//! its conditions, `name=url` targets (flags and the comma list of HEALTHCHECK_TARGETS), and the
//! history lines the report reads back. None may panic; each accepts exactly the well-formed.
//! (cargo-fuzz needs a nightly toolchain, not installed here; proptest runs on stable with
//! bounded case counts.)

use std::io::Write;
use std::time::{Duration, SystemTime};

use clap::Parser;
use health_check::cli::Cli;
use health_check::file_config::parse_targets;
use health_check::record::format_ts;
use health_check::report::{read_history, render_html, render_text};
use health_check::{ProbeRecord, Target};
use proptest::prelude::*;

/// Text built from what YAML gives meaning to, so the parser sees structure, not only noise.
fn yaml_noise() -> impl Strategy<Value = String> {
    prop::collection::vec(
        prop_oneof![
            Just("targets:".to_string()),
            Just("\n".to_string()),
            Just("  - ".to_string()),
            Just("name: ".to_string()),
            Just("url: ".to_string()),
            Just("expect_status: ".to_string()),
            Just("max_latency: ".to_string()),
            Just("body_contains: ".to_string()),
            Just("&a ".to_string()),
            Just("*a".to_string()),
            Just("!!binary ".to_string()),
            Just("<<: *a".to_string()),
            "[\\[\\]{}:,'\"#|>%@ -]{1,3}",
            "[a-z0-9./:]{1,12}",
            "-?[0-9]{1,22}",
            ".{1,4}",
        ],
        0..40,
    )
    .prop_map(|parts| parts.concat())
}

fn name() -> impl Strategy<Value = String> {
    "[a-zA-Z0-9_.-]{1,16}"
}

fn url() -> impl Strategy<Value = String> {
    (
        "https?",
        "[a-z][a-z0-9]{0,12}",
        1u16..,
        "(/[a-z0-9_]{0,6}){0,3}",
    )
        .prop_map(|(scheme, host, port, path)| format!("{scheme}://{host}:{port}{path}"))
}

fn yaml_string(s: &str) -> String {
    // JSON strings are YAML strings: quoting makes any text safe to embed.
    serde_json::to_string(s).unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1000))]

    /// Any text is either refused with a one-line message or gives valid targets.
    #[test]
    fn yaml_config_never_panics(text in prop_oneof![yaml_noise(), ".{0,300}"]) {
        match parse_targets(&text) {
            Ok(targets) => {
                for t in &targets {
                    prop_assert!(t.validate().is_ok());
                }
            }
            Err(message) => prop_assert!(!message.contains('\n'), "{message}"),
        }
    }

    /// Well-formed targets with conditions are read back exactly.
    #[test]
    fn yaml_conditions_are_read_exactly(
        targets in prop::collection::vec(
            (name(), url(), 100u16..=599, proptest::option::of(1u64..600_000), proptest::option::of("[ -~äöü€日本]{0,20}")),
            1..5,
        )
    ) {
        let mut text = String::from("targets:\n");
        for (name, url, status, latency, body) in &targets {
            text.push_str(&format!("  - name: {}\n    url: {}\n    expect_status: {status}\n", yaml_string(name), yaml_string(url)));
            if let Some(ms) = latency {
                text.push_str(&format!("    max_latency: {ms}ms\n"));
            }
            if let Some(body) = body {
                text.push_str(&format!("    body_contains: {}\n", yaml_string(body)));
            }
        }
        let parsed = parse_targets(&text).map_err(|e| TestCaseError::fail(format!("{e}\n{text}")))?;
        prop_assert_eq!(parsed.len(), targets.len());
        for (t, (name, url, status, latency, body)) in parsed.iter().zip(&targets) {
            prop_assert_eq!(&t.name, name);
            prop_assert_eq!(&t.url, url);
            prop_assert_eq!(t.expect_status, *status);
            prop_assert_eq!(t.max_latency, latency.map(Duration::from_millis));
            prop_assert_eq!(&t.body_contains, body);
        }
    }

    /// Out-of-range or ill-typed conditions are refused, never accepted silently.
    #[test]
    fn bad_conditions_are_refused(
        status in prop_oneof![0i64..100, 600i64..100_000, Just(-1i64), Just(i64::from(u16::MAX) + 1)],
        latency in prop_oneof![Just("soon".to_string()), Just("-5ms".to_string()), "[a-z]{1,5}"],
    ) {
        let bad_status = format!("targets:\n  - name: a\n    url: http://h/\n    expect_status: {status}\n");
        prop_assert!(parse_targets(&bad_status).is_err());
        let bad_latency = format!("targets:\n  - name: a\n    url: http://h/\n    max_latency: {latency}\n");
        prop_assert!(parse_targets(&bad_latency).is_err());
    }

    /// HEALTHCHECK_TARGETS-style comma lists (and --target) never panic the command line; a
    /// list of well-formed items gives one target per item.
    #[test]
    fn target_lists_never_panic(text in prop_oneof![".{0,120}", "([a-z]{1,4}=https?://[a-z]{1,5}(:[0-9]{1,6})?/?,?){0,5}"]) {
        let _ = Cli::try_parse_from(["health-check".to_string(), "--once".to_string(), format!("--target={text}")]);
    }

    #[test]
    fn well_formed_target_lists_parse(items in prop::collection::vec((name(), url()), 1..6)) {
        let list: Vec<String> = items.iter().map(|(n, u)| format!("{n}={u}")).collect();
        let cli = Cli::try_parse_from(["health-check".to_string(), "--once".to_string(), format!("--target={}", list.join(","))]).unwrap();
        let expected: Vec<Target> = items.iter().map(|(n, u)| Target::new(n.clone(), u.clone())).collect();
        prop_assert_eq!(cli.probe.run.targets, expected);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    /// The report reads any history file without panicking: every valid record line counts,
    /// every other non-blank line is skipped, and the rendered pages escape what they show.
    #[test]
    fn history_lines_are_parsed_or_skipped(
        garbage in prop::collection::vec(prop_oneof![
            ".{1,60}",
            "\\{\"ts\":\"[0-9T:Z-]{0,24}\",\"target\":\"[a-z]{0,3}\".{0,20}",
            prop::collection::vec(any::<u8>(), 1..60).prop_map(|b| String::from_utf8_lossy(&b).into_owned()),
        ], 0..20),
        hostile in "[<>&\"' a-z/]{1,30}",
        valid in 0usize..20,
    ) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("history.log");
        let now = SystemTime::now();
        let mut file = std::fs::File::create(&path).unwrap();
        let garbage: Vec<String> = garbage
            .into_iter()
            .map(|g| g.replace('\n', " "))
            .filter(|g| !g.trim().is_empty() && serde_json::from_str::<ProbeRecord>(g).is_err())
            .collect();
        for i in 0..valid.max(garbage.len()) {
            if i < valid {
                let record = ProbeRecord {
                    ts: format_ts(now - Duration::from_secs(100 + i as u64)),
                    target: format!("t{}", i % 3),
                    url: format!("http://h/{hostile}"),
                    ok: i % 2 == 0,
                    status: (i % 2 == 0).then_some(200),
                    latency_ms: i as u64,
                    error: (i % 2 == 1).then(|| format!("<script>{hostile}</script>")),
                };
                writeln!(file, "{}", serde_json::to_string(&record).unwrap()).unwrap();
            }
            if let Some(g) = garbage.get(i) {
                writeln!(file, "{g}").unwrap();
            }
        }
        drop(file);
        let (records, skipped) = read_history(&path).unwrap();
        prop_assert_eq!(records.len(), valid);
        prop_assert_eq!(skipped, garbage.len());
        let report = health_check::report::build(&records, None, now);
        let _ = render_text(&report);
        let html = render_html(&report);
        prop_assert!(!html.contains("<script>"), "unescaped markup in the status page");
    }
}
