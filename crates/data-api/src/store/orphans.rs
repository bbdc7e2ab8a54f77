//! Retention for the folders of instances that are gone (scaled down, renamed) on a shared
//! volume. Each live instance deletes only its own old segments (the writer's retention); the
//! folders nobody writes any more stay readable until one of two rules removes them:
//!
//! - **age**: a folder whose newest record is older than `LOG_ORPHAN_RETENTION` is deleted whole;
//! - **shared budget**: while everything under `LOG_DIR` exceeds `LOG_SHARED_RETENTION_BYTES`,
//!   the orphans' segments go, globally oldest first.
//!
//! A folder is an orphan when no live process holds its `.lock`; the sweep takes that lock while
//! it deletes, so an instance restarting meanwhile cannot write into a folder being removed. The
//! imported history (`legacy`) is exempt. One live instance sweeps at a time: the sweep runs only
//! while it holds an `flock` on `LOG_DIR/.retention.lock`; the others skip that round.

use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use super::lock::{try_flock, InstanceLock, LockError};
use super::reader::{self, Folder};
use super::segment;

/// The volume-wide lock naming the one sweeper.
pub const RETENTION_LOCK_FILE: &str = ".retention.lock";

/// The rules, from the configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OrphanPolicy {
    /// An orphan folder whose newest record is older than this is deleted.
    pub max_age: Duration,
    /// Above this total (every folder, live ones included), orphans' oldest segments go first.
    pub shared_budget: Option<u64>,
    /// How often a sweep is attempted.
    pub interval: Duration,
}

/// What one sweep did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SweepReport {
    /// False when another instance held the retention lock (this one did nothing).
    pub swept: bool,
    pub folders_removed: Vec<String>,
    pub segments_removed: usize,
}

/// One sweep of `log_dir`, by the instance `own` (whose folder is never touched here).
pub fn sweep(
    log_dir: &Path,
    own: &str,
    exempt: &[&str],
    policy: &OrphanPolicy,
    now: SystemTime,
) -> io::Result<SweepReport> {
    let _sweeper = match try_flock(&log_dir.join(RETENTION_LOCK_FILE)) {
        Ok(file) => file,
        Err(LockError::Held) => return Ok(SweepReport::default()),
        Err(LockError::Io(err)) => return Err(err),
    };
    let mut report = SweepReport {
        swept: true,
        ..SweepReport::default()
    };
    let names = reader::instance_dirs(log_dir, super::is_instance_name)?;
    // Held until the sweep ends: nobody starts writing an orphan while it is being removed.
    let mut orphans: Vec<(String, PathBuf, InstanceLock)> = Vec::new();
    for name in names {
        if name == own || exempt.contains(&name.as_str()) {
            continue;
        }
        let dir = log_dir.join(&name);
        match InstanceLock::acquire(&dir) {
            Ok(lock) => orphans.push((name, dir, lock)),
            Err(LockError::Held) => {}
            Err(LockError::Io(err)) if err.kind() == io::ErrorKind::NotFound => {}
            Err(LockError::Io(err)) => return Err(err),
        }
    }

    let mut remaining = Vec::new();
    for (name, dir, lock) in orphans {
        // A folder without records is as old as its last change (a new one is not swept away
        // between its creation and its writer's first record).
        let newest = match newest_record_time(&dir)? {
            Some(time) => Some(time),
            None => std::fs::metadata(&dir)?.modified().ok(),
        };
        let expired =
            newest.is_some_and(|t| now.duration_since(t).unwrap_or_default() > policy.max_age);
        if expired {
            remove_folder(&dir)?;
            tracing::info!(instance = %name, newest = ?newest.map(super::format_ts), "orphan retention removed the folder of an instance that is gone");
            report.folders_removed.push(name);
        } else {
            remaining.push((name, dir, lock));
        }
    }

    if let Some(budget) = policy.shared_budget {
        report.segments_removed = enforce_budget(log_dir, budget, &remaining)?;
    }
    Ok(report)
}

/// Deletes the orphans' segments, oldest last record first, while the volume's total is above
/// `budget`; an orphan left without segments is removed.
fn enforce_budget(
    log_dir: &Path,
    budget: u64,
    orphans: &[(String, PathBuf, InstanceLock)],
) -> io::Result<usize> {
    let mut total = volume_bytes(log_dir)?;
    if total <= budget {
        return Ok(0);
    }
    // Every orphan segment with the time of its last record (records never go back in time
    // within a folder, so that is the segment's newest).
    let mut candidates = Vec::new();
    for (name, dir, _) in orphans {
        let folder = Folder::committed_by_marker(dir.clone())?;
        for info in &folder.segments {
            let one = Folder {
                dir: dir.clone(),
                segments: vec![*info],
            };
            let last = reader::recent(vec![one], 1, reader::Window::default())?
                .first()
                .and_then(|r| r.time())
                .unwrap_or(SystemTime::UNIX_EPOCH);
            candidates.push((last, name.clone(), dir.clone(), info.file_name()));
        }
    }
    candidates.sort();
    let mut removed = 0;
    for (last, name, dir, file_name) in candidates {
        if total <= budget {
            break;
        }
        let path = dir.join(file_name);
        let bytes = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
        match std::fs::remove_file(&path) {
            Ok(()) => {}
            Err(err) if err.kind() == io::ErrorKind::NotFound => {}
            Err(err) => return Err(err),
        }
        total = total.saturating_sub(bytes);
        removed += 1;
        tracing::info!(instance = %name, segment = %path.display(), newest = %super::format_ts(last), bytes, "shared retention deleted an orphan's oldest segment (the volume is over LOG_SHARED_RETENTION_BYTES)");
        if segment::list(&super::RealIo, &dir)?.is_empty() {
            remove_folder(&dir)?;
        }
    }
    Ok(removed)
}

/// Bytes of every segment in every instance folder.
fn volume_bytes(log_dir: &Path) -> io::Result<u64> {
    let mut total = 0;
    for name in reader::instance_dirs(log_dir, super::is_instance_name)? {
        match segment::list(&super::RealIo, &log_dir.join(name)) {
            Ok(segments) => total += segments.iter().map(|s| s.len).sum::<u64>(),
            Err(err) if err.kind() == io::ErrorKind::NotFound => {}
            Err(err) => return Err(err),
        }
    }
    Ok(total)
}

/// The time of the folder's newest committed record; `None` when it has none.
fn newest_record_time(dir: &Path) -> io::Result<Option<SystemTime>> {
    let folder = Folder::committed_by_marker(dir.to_path_buf())?;
    Ok(reader::recent(vec![folder], 1, reader::Window::default())?
        .first()
        .and_then(|r| r.time()))
}

/// Removes the store's files (segments, marker), then the folder; the lock file goes last, so
/// the folder stays locked until it is empty. Foreign files keep the folder (and are logged).
fn remove_folder(dir: &Path) -> io::Result<()> {
    let mut lock_file = None;
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name == super::lock::LOCK_FILE {
            lock_file = Some(entry.path());
        } else if segment::parse_file_name(&name).is_some() || name == super::marker::MARKER_FILE {
            std::fs::remove_file(entry.path())?;
        } else {
            tracing::warn!(folder = %dir.display(), file = %name, "orphan retention keeps a folder holding a file that is not the store's");
            return Ok(());
        }
    }
    if let Some(lock) = lock_file {
        std::fs::remove_file(lock)?;
    }
    match std::fs::remove_dir(dir) {
        // Gone already, or an instance started in it just now: it is that instance's again.
        Err(err)
            if matches!(
                err.kind(),
                io::ErrorKind::NotFound | io::ErrorKind::DirectoryNotEmpty
            ) =>
        {
            Ok(())
        }
        other => other,
    }
}
