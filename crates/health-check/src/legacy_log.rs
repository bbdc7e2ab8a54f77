//! `--legacy-log FILE`: the legacy human lines appended to a file as well, as `health_check.sh`
//! did to `/var/log/health_check.log`, so whatever reads that file keeps working.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::Path;

use crate::history::HistoryError;
use crate::record::ProbeRecord;

/// Appends one run's human lines in one write (the directory is created when missing).
pub fn append(path: &Path, records: &[ProbeRecord]) -> Result<(), HistoryError> {
    let fail = |source| HistoryError {
        path: path.display().to_string(),
        source,
    };
    let mut text = String::with_capacity(records.len() * 120);
    for r in records {
        text.push_str(&r.human_line());
        text.push('\n');
    }
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        fs::create_dir_all(dir).map_err(fail)?;
    }
    OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .and_then(|mut f| f.write_all(text.as_bytes()))
        .map_err(fail)
}
