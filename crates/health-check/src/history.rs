//! The JSON Lines history: appended per run, rotated by size with a bounded number of files.

use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use crate::record::ProbeRecord;

/// Where a run's JSON lines go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HistoryOutput {
    /// Appended to a file whose directory is created when missing.
    File { path: PathBuf, rotation: Rotation },
    /// Printed on stdout after the human lines (`--output -`: exec probes, read-only disks).
    Stdout,
}

impl HistoryOutput {
    /// A file with the default rotation.
    pub fn file(path: impl Into<PathBuf>) -> Self {
        Self::File {
            path: path.into(),
            rotation: Rotation::default(),
        }
    }
}

/// When the history file would grow past `max_bytes` it becomes `<file>.1` (older ones shift
/// to `.2` ...) and only `keep_files` rotated files are kept, so disk use stays bounded by
/// about `(keep_files + 1) * max_bytes`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rotation {
    pub max_bytes: u64,
    pub keep_files: u32,
}

impl Default for Rotation {
    fn default() -> Self {
        Self {
            max_bytes: 10 * 1024 * 1024,
            keep_files: 5,
        }
    }
}

/// The history could not be written; the run's results are not lost from stdout but the caller
/// must say so and fail.
#[derive(Debug, thiserror::Error)]
#[error("cannot write the health history to {path}: {source}")]
pub struct HistoryError {
    pub path: String,
    #[source]
    pub source: io::Error,
}

/// Appends one run's records (one write, so concurrent runs do not interleave lines).
pub fn append(output: &HistoryOutput, records: &[ProbeRecord]) -> Result<(), HistoryError> {
    let mut lines = Vec::with_capacity(records.len() * 160);
    for record in records {
        serde_json::to_writer(&mut lines, record).expect("a record serializes");
        lines.push(b'\n');
    }
    match output {
        HistoryOutput::Stdout => {
            let mut out = io::stdout().lock();
            out.write_all(&lines)
                .and_then(|()| out.flush())
                .map_err(|source| HistoryError {
                    path: "stdout".into(),
                    source,
                })
        }
        HistoryOutput::File { path, rotation } => {
            append_to_file(path, *rotation, &lines).map_err(|source| HistoryError {
                path: path.display().to_string(),
                source,
            })
        }
    }
}

fn append_to_file(path: &Path, rotation: Rotation, lines: &[u8]) -> io::Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        fs::create_dir_all(dir)?;
    }
    let current = match fs::metadata(path) {
        Ok(m) => m.len(),
        Err(e) if e.kind() == io::ErrorKind::NotFound => 0,
        Err(e) => return Err(e),
    };
    if current > 0 && current + lines.len() as u64 > rotation.max_bytes {
        rotate(path, rotation.keep_files)?;
    }
    let mut file = OpenOptions::new().create(true).append(true).open(path)?;
    file.write_all(lines)?;
    file.flush()
}

/// `<file>.<n>`: the n-th most recent rotated file.
pub fn rotated_path(path: &Path, n: u32) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(format!(".{n}"));
    PathBuf::from(name)
}

fn rotate(path: &Path, keep_files: u32) -> io::Result<()> {
    if keep_files == 0 {
        return remove_if_present(path);
    }
    remove_if_present(&rotated_path(path, keep_files))?;
    for n in (1..keep_files).rev() {
        rename_if_present(&rotated_path(path, n), &rotated_path(path, n + 1))?;
    }
    fs::rename(path, rotated_path(path, 1))
}

fn remove_if_present(path: &Path) -> io::Result<()> {
    match fs::remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

fn rename_if_present(from: &Path, to: &Path) -> io::Result<()> {
    match fs::rename(from, to) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

/// The history files of `path`, oldest first: `<file>.N` ... `<file>.1`, `<file>`.
pub fn files_oldest_first(path: &Path) -> Vec<PathBuf> {
    let mut rotated: Vec<(u32, PathBuf)> = Vec::new();
    if let (Some(dir), Some(name)) = (path.parent(), path.file_name()) {
        let dir = if dir.as_os_str().is_empty() {
            Path::new(".")
        } else {
            dir
        };
        let prefix = format!("{}.", name.to_string_lossy());
        if let Ok(entries) = fs::read_dir(dir) {
            for entry in entries.flatten() {
                let file_name = entry.file_name().to_string_lossy().into_owned();
                if let Some(n) = file_name
                    .strip_prefix(&prefix)
                    .and_then(|rest| rest.parse::<u32>().ok())
                {
                    rotated.push((n, rotated_path(path, n)));
                }
            }
        }
    }
    rotated.sort_by_key(|(n, _)| std::cmp::Reverse(*n));
    let mut files: Vec<PathBuf> = rotated.into_iter().map(|(_, p)| p).collect();
    files.push(path.to_path_buf());
    files
}
