//! The real binary's start checks of PROVIDER_KEY and PROVIDER_KEY_FILE.

const BIN: &str = env!("CARGO_BIN_EXE_log-provider");
const KEY: &str = "provider-key-5d0c1e7a9b";

/// A start and --check-config give the same verdict: one line naming the variable, exit 2.
#[test]
fn key_file_errors_stop_the_start_and_the_check() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing");
    let empty = dir.path().join("empty");
    std::fs::write(&empty, "\n\n").unwrap();
    let good = dir.path().join("keys");
    std::fs::write(&good, format!("{KEY}\nsecond-{KEY}\n")).unwrap();
    let file = |p: &std::path::Path| p.to_str().unwrap().to_string();
    let cases = [
        (
            vec![("PROVIDER_KEY_FILE", file(&missing))],
            "PROVIDER_KEY_FILE",
        ),
        (
            vec![("PROVIDER_KEY_FILE", file(&empty))],
            "PROVIDER_KEY_FILE",
        ),
        (
            vec![
                ("PROVIDER_KEY_FILE", file(&good)),
                ("PROVIDER_KEY", KEY.into()),
            ],
            "not both",
        ),
        (vec![], "PROVIDER_KEY"),
        (
            vec![("PROVIDER_KEY", KEY.into()), ("TLS_CERT_FILE", file(&good))],
            "TLS_KEY_FILE",
        ),
        (
            vec![
                ("PROVIDER_KEY", KEY.into()),
                ("TLS_CERT_FILE", file(&missing)),
                ("TLS_KEY_FILE", file(&missing)),
            ],
            "TLS_CERT_FILE",
        ),
        // A file that is not a PEM certificate.
        (
            vec![
                ("PROVIDER_KEY", KEY.into()),
                ("TLS_CERT_FILE", file(&good)),
                ("TLS_KEY_FILE", file(&good)),
            ],
            "TLS_CERT_FILE",
        ),
    ];
    for (envs, expected) in &cases {
        let envs: Vec<(&str, &str)> = envs.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let start = std::process::Command::new(BIN)
            .env_clear()
            .envs(envs.iter().copied())
            .output()
            .unwrap();
        let start = (
            start.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&start.stderr).to_string(),
        );
        for (code, output) in [start, test_support::check_config(BIN, &[], &envs)] {
            assert_eq!(code, 2, "{envs:?}: {output}");
            assert_eq!(output.trim().lines().count(), 1, "one line: {output}");
            assert!(output.contains(expected), "{expected}: {output}");
            assert!(!output.contains(KEY), "no secret: {output}");
        }
    }
    let (code, output) =
        test_support::check_config(BIN, &[], &[("PROVIDER_KEY_FILE", &file(&good))]);
    assert_eq!((code, output.trim()), (0, "configuration ok"));
}
