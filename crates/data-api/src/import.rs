//! `data-api import-legacy --from <dir>`: takes over the volume the Flask service wrote. It wrote
//! one file per request, `log_<time.time()>.txt`, opened in append mode with one `message\n`
//! each (so a file can hold several lines). Every non-empty line becomes an `info` record with
//! the file name's time and an id derived from file name and line number, stored durably (group
//! commit) in time order in the instance folder `legacy`. A second run adds nothing; the legacy
//! files are only read. The lock on `legacy/` keeps two imports apart; serving instances read the
//! folder up to its commit marker meanwhile, like any other.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use clap::Parser;
use platform::config::{ConfigError, LogFormat};

use crate::store::{
    format_ts, Level, LogStore, OpenError, RealIo, Record, StoreConfig, StoreMetrics,
    MAX_MESSAGE_CHARS,
};

/// The instance folder imported records live in (no live instance may use this name).
pub const LEGACY_INSTANCE: &str = "legacy";

/// Records handed to the store at once: big enough to fill group commits, small enough for the
/// progress line to move.
const CHUNK: usize = 2000;

/// The namespace of the imported records' UUIDv5 ids (a fixed, random UUID: ids stay stable
/// across runs and versions).
const ID_NAMESPACE: uuid::Uuid = uuid::uuid!("6f1d7c2e-7a35-4c3b-9a8e-3e5b1f0c9d42");

/// data-api import-legacy: reads the legacy service's log files into the store.
#[derive(Parser, Debug, Clone)]
#[command(name = "data-api import-legacy", version, about)]
pub struct ImportArgs {
    /// The legacy service's log folder (its `log_<unix time>.txt` files); only read.
    #[arg(long, env = "LEGACY_LOG_DIR")]
    pub from: PathBuf,

    /// The store's volume; records go to `LOG_DIR/legacy/`.
    #[arg(long, env = "LOG_DIR", default_value = "./var/logs")]
    pub log_dir: PathBuf,

    /// Log format (`json` or `text`; default: text on a terminal, JSON otherwise).
    #[arg(long, env = "LOG_FORMAT")]
    pub log_format: Option<LogFormat>,
}

/// What a run did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Summary {
    pub files: usize,
    pub imported: usize,
    pub already_imported: usize,
    /// File name and why it was not imported.
    pub unreadable: Vec<(String, String)>,
}

impl std::fmt::Display for Summary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "import-legacy: {} files, imported {} records, skipped {} already imported, {} files unreadable",
            self.files,
            self.imported,
            self.already_imported,
            self.unreadable.len()
        )
    }
}

/// The subcommand's entry: `args` without the binary name and `import-legacy`.
pub fn main(args: impl IntoIterator<Item = std::ffi::OsString>) -> ExitCode {
    let argv = std::iter::once("data-api import-legacy".into()).chain(args);
    let parsed: ImportArgs = platform::config::parse_from_or_exit(argv);
    let _logs =
        platform::telemetry::init_on(parsed.log_format, platform::telemetry::LogStream::Stderr);
    if !parsed.from.is_dir() {
        ConfigError::new("LEGACY_LOG_DIR (--from)", "is not a folder").exit();
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime starts");
    match runtime.block_on(import(&parsed.from, &parsed.log_dir)) {
        Ok(summary) => {
            println!("{summary}");
            ExitCode::SUCCESS
        }
        Err(ImportError::Locked) => ConfigError::new(
            "LOG_DIR",
            "another import-legacy holds LOG_DIR/legacy (wait for it to finish)",
        )
        .exit(),
        Err(ImportError::Failed(problem)) => {
            tracing::error!(error = %problem, "import-legacy stopped; run it again to continue");
            ExitCode::FAILURE
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("another process holds LOG_DIR/legacy")]
    Locked,
    #[error("{0}")]
    Failed(String),
}

/// Imports every legacy file in `from` into `log_dir/legacy/`.
pub async fn import(from: &Path, log_dir: &Path) -> Result<Summary, ImportError> {
    let config = StoreConfig {
        log_dir: log_dir.to_path_buf(),
        instance: LEGACY_INSTANCE.to_string(),
        segment_bytes: 16 << 20,
        // Imported history is kept whole: retention never deletes from this folder by size.
        retention_bytes: u64::MAX,
        format_version: crate::store::DEFAULT_WRITE_VERSION,
    };
    let (store, report) = LogStore::open(config, Arc::new(RealIo), StoreMetrics::new())
        .await
        .map_err(|err| match err {
            OpenError::Locked { .. } => ImportError::Locked,
            OpenError::UnsupportedFormat(unsupported) => {
                ImportError::Failed(unsupported.to_string())
            }
        })?;
    if let Some(err) = report.unavailable {
        return Err(ImportError::Failed(err.to_string()));
    }
    let result = import_into(&store, from).await;
    store.close().await;
    result
}

async fn import_into(store: &LogStore, from: &Path) -> Result<Summary, ImportError> {
    let failed = |e: &dyn std::fmt::Display| ImportError::Failed(e.to_string());
    let existing = store.all_records().await.map_err(|e| failed(&e))?;
    let newest_stored = existing.last().and_then(Record::time);
    let known: HashSet<String> = existing.into_iter().map(|r| r.id).collect();

    let from_owned = from.to_path_buf();
    let (mut records, mut summary) = tokio::task::spawn_blocking(move || read_folder(&from_owned))
        .await
        .map_err(|e| failed(&e))?
        .map_err(|e| failed(&format!("reading {}: {e}", from.display())))?;
    // Time order (the store's rule), then file and id: the same order on every run.
    records.sort_by(|a, b| (a.0, &a.1, &a.2.id).cmp(&(b.0, &b.1, &b.2.id)));

    let mut fresh = Vec::new();
    for (time, file, record) in records {
        if known.contains(&record.id) {
            summary.already_imported += 1;
        } else if newest_stored.is_some_and(|newest| time < newest) {
            // Records of an instance never go back in time (readers rely on it).
            summary.unreadable.push((
                file,
                format!(
                    "dated {} but records up to {} are already imported",
                    record.ts,
                    newest_stored.map(format_ts).unwrap_or_default()
                ),
            ));
        } else {
            fresh.push(record);
        }
    }
    for (file, reason) in &summary.unreadable {
        tracing::warn!(file, reason, "not imported");
    }
    let total = fresh.len();
    let mut fresh = fresh.into_iter().peekable();
    while fresh.peek().is_some() {
        let chunk: Vec<Record> = fresh.by_ref().take(CHUNK).collect();
        let count = chunk.len();
        store.append_imported(chunk).await.map_err(|e| failed(&e))?;
        summary.imported += count;
        tracing::info!(
            imported = summary.imported,
            of = total,
            "import-legacy progress"
        );
    }
    Ok(summary)
}

/// A record read from a legacy file, with its time and the file's name.
type Found = (SystemTime, String, Record);

/// Every record the legacy files hold (with its time, for sorting), and the files' count and
/// problems. Files with other names are not the legacy service's and are ignored.
fn read_folder(from: &Path) -> std::io::Result<(Vec<Found>, Summary)> {
    let mut summary = Summary::default();
    let mut records = Vec::new();
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let Ok(name) = entry.file_name().into_string() else {
            continue;
        };
        let Some(time) = legacy_time(&name) else {
            continue;
        };
        summary.files += 1;
        match std::fs::read(entry.path()) {
            Ok(data) => match records_of(&name, time, &data) {
                Ok(found) => records.extend(found.into_iter().map(|r| (time, name.clone(), r))),
                Err(reason) => summary.unreadable.push((name, reason)),
            },
            Err(err) => summary.unreadable.push((name, err.to_string())),
        }
    }
    Ok((records, summary))
}

/// The time in a legacy file name, `log_<seconds since the epoch, as Python prints a float>.txt`.
pub fn legacy_time(name: &str) -> Option<SystemTime> {
    let number = name.strip_prefix("log_")?.strip_suffix(".txt")?;
    if number.is_empty() || !number.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        return None;
    }
    let seconds: f64 = number.parse().ok()?;
    let since_epoch = Duration::try_from_secs_f64(seconds).ok()?;
    SystemTime::UNIX_EPOCH.checked_add(since_epoch)
}

/// The records of one legacy file: one per non-empty line (a last line without its newline, left
/// by a write the legacy service never synced, is still its message).
fn records_of(name: &str, time: SystemTime, data: &[u8]) -> Result<Vec<Record>, String> {
    let text = std::str::from_utf8(data).map_err(|e| format!("not UTF-8: {e}"))?;
    let ts = format_ts(time);
    let mut records = Vec::new();
    for (number, line) in text.split('\n').enumerate() {
        let message = line.strip_suffix('\r').unwrap_or(line);
        if message.is_empty() {
            continue;
        }
        let chars = message.chars().count();
        if chars > MAX_MESSAGE_CHARS {
            return Err(format!(
                "line {} has {chars} characters (at most {MAX_MESSAGE_CHARS})",
                number + 1
            ));
        }
        records.push(Record {
            id: legacy_id(name, number + 1),
            ts: ts.clone(),
            level: Level::Info,
            message: message.to_string(),
            instance: LEGACY_INSTANCE.to_string(),
        });
    }
    Ok(records)
}

/// The same file and line always give the same id, so a second import recognises the record.
pub fn legacy_id(file_name: &str, line_number: usize) -> String {
    uuid::Uuid::new_v5(
        &ID_NAMESPACE,
        format!("{file_name}:{line_number}").as_bytes(),
    )
    .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn legacy_names_give_their_time_and_other_names_none() {
        let time = legacy_time("log_1700000000.123456.txt").unwrap();
        assert_eq!(format_ts(time), "2023-11-14T22:13:20.123456Z");
        assert!(legacy_time("log_1700000000.txt").is_some());
        for other in [
            "log_.txt",
            "log_-1.txt",
            "log_1e9.txt",
            "log_nan.txt",
            "log_1.5.txt.bak",
            "notes.txt",
        ] {
            assert_eq!(legacy_time(other), None, "{other}");
        }
    }

    #[test]
    fn every_line_is_a_record_with_a_stable_id() {
        let time = SystemTime::UNIX_EPOCH;
        let records = records_of("log_0.5.txt", time, b"one\n\ntwo\nthree").unwrap();
        let messages: Vec<&str> = records.iter().map(|r| r.message.as_str()).collect();
        assert_eq!(messages, ["one", "two", "three"]);
        assert_eq!(records[1].id, legacy_id("log_0.5.txt", 3));
        assert_ne!(legacy_id("log_0.5.txt", 1), legacy_id("log_0.50.txt", 1));
        assert!(records_of("x", time, b"").unwrap().is_empty());
        assert!(records_of("x", time, &[0xff, b'\n']).is_err());
    }
}
