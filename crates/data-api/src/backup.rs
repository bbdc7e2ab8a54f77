//! `data-api backup --to <dir|file.tar>`, `data-api verify <dir>`, `data-api restore --from
//! <dir|file.tar>`: a consistent copy of every instance folder of a live `LOG_DIR`, its check,
//! and its way back onto an empty volume.
//!
//! The copy reads each folder the way another replica does: its commit marker first, then the
//! segments before the marked one whole and the marked one up to the marked length. The writer
//! moves the marker only after the data is synced and before it acknowledges, so every record
//! acknowledged before the backup started is in the copy, and no torn or unsynced tail is. The
//! writers keep going meanwhile (nothing is locked). Each copied folder gets a marker of its
//! own, so a restored volume is read like any other; `MANIFEST.json` lists every file with its
//! size and SHA-256.

use std::collections::HashSet;
use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::SystemTime;

use clap::Parser;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::store::{
    self, format_ts, instance_dirs, is_instance_name, CommitMark, Folder, Record, MARKER_FILE,
};

/// The manifest's name at the top of a copy.
pub const MANIFEST_FILE: &str = "MANIFEST.json";
/// The manifest's own format.
const MANIFEST_VERSION: u32 = 1;

/// What a copy holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    pub manifest_version: u32,
    /// When the copy was taken (RFC 3339).
    pub created: String,
    pub files: Vec<ManifestEntry>,
}

/// One file of a copy, by its path relative to the copy's top (`<instance>/<file>`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManifestEntry {
    pub path: String,
    pub bytes: u64,
    pub sha256: String,
}

/// data-api backup: a consistent copy of a live LOG_DIR, every instance folder.
#[derive(Parser, Debug, Clone)]
#[command(name = "data-api backup", version, about)]
#[command(group(clap::ArgGroup::new("target").required(true).args(["to", "into"])))]
pub struct BackupArgs {
    /// Where the copy goes: a folder (created; must be empty or absent) or a file ending in `.tar`.
    #[arg(long)]
    pub to: Option<PathBuf>,
    /// A folder of copies (scheduled backups): the copy becomes `backup-<UTC time>.tar` in it,
    /// written under a temporary name and renamed once complete.
    #[arg(long)]
    pub into: Option<PathBuf>,
    /// With `--into`: keep the newest this many `backup-*.tar` there, delete older ones.
    #[arg(long, conflicts_with = "to", value_parser = clap::value_parser!(u32).range(1..))]
    pub keep: Option<u32>,
    /// The store's volume, read while its writers go on.
    #[arg(long, env = "LOG_DIR", default_value = "./var/logs")]
    pub log_dir: PathBuf,
}

/// data-api verify: checks a copy or a live volume.
#[derive(Parser, Debug, Clone)]
#[command(name = "data-api verify", version, about)]
pub struct VerifyArgs {
    /// A copy made by `data-api backup`, or a LOG_DIR.
    pub dir: PathBuf,
}

/// data-api restore: puts a copy onto an empty volume, then verifies it.
#[derive(Parser, Debug, Clone)]
#[command(name = "data-api restore", version, about)]
pub struct RestoreArgs {
    /// A copy made by `data-api backup`: its folder or its `.tar` file.
    #[arg(long)]
    pub from: PathBuf,
    /// The volume to fill; it must be empty (or absent).
    #[arg(long, env = "LOG_DIR", default_value = "./var/logs")]
    pub log_dir: PathBuf,
}

/// What a backup copied.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BackupSummary {
    pub folders: usize,
    pub segments: usize,
    pub bytes: u64,
}

/// What verify found: counts, and every problem (empty: the copy is sound).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Verification {
    pub folders: usize,
    pub segments: usize,
    pub records: usize,
    pub problems: Vec<String>,
}

/// Where a backup writes: a folder or a tar stream.
enum Sink {
    Dir(PathBuf),
    Tar(tar::Builder<File>),
}

impl Sink {
    fn put(&mut self, path: &str, data: &[u8]) -> io::Result<()> {
        match self {
            Sink::Dir(top) => {
                let target = top.join(path);
                if let Some(parent) = target.parent() {
                    fs::create_dir_all(parent)?;
                }
                let mut file = File::create(&target)?;
                file.write_all(data)?;
                file.sync_all()
            }
            Sink::Tar(builder) => {
                let mut header = tar::Header::new_gnu();
                header.set_size(data.len() as u64);
                header.set_mode(0o644);
                header.set_mtime(
                    SystemTime::now()
                        .duration_since(SystemTime::UNIX_EPOCH)
                        .map_or(0, |d| d.as_secs()),
                );
                header.set_entry_type(tar::EntryType::Regular);
                builder.append_data(&mut header, path, data)
            }
        }
    }

    fn finish(self) -> io::Result<()> {
        match self {
            Sink::Dir(top) => {
                for dir in instance_dirs(&top, |_| true)? {
                    File::open(top.join(dir))?.sync_all()?;
                }
                File::open(&top)?.sync_all()
            }
            Sink::Tar(builder) => builder.into_inner()?.sync_all(),
        }
    }
}

fn is_tar(path: &Path) -> bool {
    path.extension().is_some_and(|e| e == "tar")
}

fn is_empty_or_absent(dir: &Path) -> io::Result<bool> {
    match fs::read_dir(dir) {
        Ok(mut entries) => Ok(entries.next().is_none()),
        Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(true),
        Err(err) => Err(err),
    }
}

/// Writes one file of the copy and returns its manifest entry.
fn put_entry(sink: &mut Sink, path: String, data: &[u8]) -> Result<ManifestEntry, String> {
    sink.put(&path, data)
        .map_err(|e| format!("writing {path}: {e}"))?;
    Ok(ManifestEntry {
        path,
        bytes: data.len() as u64,
        sha256: sha256_hex(data),
    })
}

fn sha256_hex(data: &[u8]) -> String {
    Sha256::digest(data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Copies every instance folder of `log_dir` (committed records only) to `to`.
pub fn backup(log_dir: &Path, to: &Path) -> Result<BackupSummary, String> {
    // The volume first: a missing LOG_DIR leaves no empty copy behind.
    let names = instance_dirs(log_dir, is_instance_name)
        .map_err(|e| format!("reading {}: {e}", log_dir.display()))?;
    let mut sink = if is_tar(to) {
        if to.exists() {
            return Err(format!("{} exists already", to.display()));
        }
        let file = File::create_new(to).map_err(|e| format!("creating {}: {e}", to.display()))?;
        Sink::Tar(tar::Builder::new(file))
    } else {
        if !is_empty_or_absent(to).map_err(|e| format!("reading {}: {e}", to.display()))? {
            return Err(format!(
                "{} is not empty: a backup goes into a new folder",
                to.display()
            ));
        }
        fs::create_dir_all(to).map_err(|e| format!("creating {}: {e}", to.display()))?;
        Sink::Dir(to.to_path_buf())
    };
    let mut summary = BackupSummary::default();
    let mut files = Vec::new();
    for name in names {
        let dir = log_dir.join(&name);
        let folder = Folder::committed_by_marker(dir.clone())
            .map_err(|e| format!("reading {}: {e}", dir.display()))?;
        let mut last_copied = None;
        for info in &folder.segments {
            let file_name = info.file_name();
            let source = dir.join(&file_name);
            let data = match read_prefix(&source, info.len) {
                Ok(data) => data,
                // Deleted by retention since the folder was listed: not part of the store now.
                Err(err) if err.kind() == io::ErrorKind::NotFound => continue,
                Err(err) => return Err(format!("reading {}: {err}", source.display())),
            };
            files.push(put_entry(&mut sink, format!("{name}/{file_name}"), &data)?);
            summary.segments += 1;
            summary.bytes += data.len() as u64;
            last_copied = Some(CommitMark {
                seq: info.seq,
                len: data.len() as u64,
            });
        }
        // A folder without a marker has nothing known to be committed: nothing to copy.
        let Some(mark) = last_copied else { continue };
        let marker = mark.encode();
        files.push(put_entry(
            &mut sink,
            format!("{name}/{MARKER_FILE}"),
            &marker,
        )?);
        summary.folders += 1;
    }
    let manifest = Manifest {
        manifest_version: MANIFEST_VERSION,
        created: format_ts(SystemTime::now()),
        files,
    };
    let mut text = serde_json::to_vec_pretty(&manifest).expect("a manifest serializes");
    text.push(b'\n');
    // Last, so a copy that has a manifest is complete.
    sink.put(MANIFEST_FILE, &text)
        .map_err(|e| format!("writing {MANIFEST_FILE}: {e}"))?;
    sink.finish()
        .map_err(|e| format!("syncing {}: {e}", to.display()))?;
    Ok(summary)
}

/// Prefix of the copies `--into` makes; they sort by time.
const COPY_PREFIX: &str = "backup-";
/// A copy being written (or left by a failed run) in an `--into` folder.
const PARTIAL_PREFIX: &str = ".partial-";

/// A scheduled backup: `into/backup-<UTC time>.tar`, renamed into place once complete, then the
/// copies beyond the newest `keep` deleted (and what failed runs left behind).
pub fn backup_into(
    log_dir: &Path,
    into: &Path,
    keep: Option<u32>,
) -> Result<(BackupSummary, PathBuf), String> {
    fs::create_dir_all(into).map_err(|e| format!("creating {}: {e}", into.display()))?;
    let copies = |prefix: &str| -> Result<Vec<String>, String> {
        let mut names: Vec<String> = fs::read_dir(into)
            .map_err(|e| format!("reading {}: {e}", into.display()))?
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .filter(|n| n.starts_with(prefix) && n.ends_with(".tar"))
            .collect();
        names.sort();
        Ok(names)
    };
    // One run at a time (the CronJob forbids overlap): a partial copy is a failed run's.
    for stale in copies(PARTIAL_PREFIX)? {
        let _ = fs::remove_file(into.join(stale));
    }
    let name = format!(
        "{COPY_PREFIX}{}.tar",
        format_ts(SystemTime::now()).replace(':', "")
    );
    let partial = into.join(format!("{PARTIAL_PREFIX}{name}"));
    let done = into.join(&name);
    let summary = backup(log_dir, &partial)?;
    fs::rename(&partial, &done)
        .and_then(|()| File::open(into)?.sync_all())
        .map_err(|e| format!("renaming {}: {e}", partial.display()))?;
    if let Some(keep) = keep {
        let names = copies(COPY_PREFIX)?;
        let excess = names.len().saturating_sub(keep as usize);
        for old in &names[..excess] {
            fs::remove_file(into.join(old)).map_err(|e| format!("deleting {old}: {e}"))?;
        }
    }
    Ok((summary, done))
}

/// The first `len` bytes of `path` (a segment's committed part).
fn read_prefix(path: &Path, len: u64) -> io::Result<Vec<u8>> {
    let file = File::open(path)?;
    let mut data = vec![0u8; usize::try_from(len).map_err(io::Error::other)?];
    file.read_exact_at(&mut data, 0)?;
    Ok(data)
}

/// Checks `dir` (a copy or a live LOG_DIR): the manifest's files, sizes and checksums when there
/// is one, then every instance folder's committed records: every line parses, ids are unique.
pub fn verify(dir: &Path) -> Verification {
    let mut found = Verification::default();
    let manifest_path = dir.join(MANIFEST_FILE);
    let mut listed = HashSet::new();
    match fs::read(&manifest_path) {
        Ok(text) => match serde_json::from_slice::<Manifest>(&text) {
            Ok(manifest) => {
                for entry in &manifest.files {
                    listed.insert(entry.path.clone());
                    check_entry(dir, entry, &mut found.problems);
                }
            }
            Err(err) => found
                .problems
                .push(format!("{MANIFEST_FILE}: not a manifest: {err}")),
        },
        Err(err) if err.kind() == io::ErrorKind::NotFound => {}
        Err(err) => found.problems.push(format!("{MANIFEST_FILE}: {err}")),
    }
    let has_manifest = manifest_path.exists();
    let names = match instance_dirs(dir, is_instance_name) {
        Ok(names) => names,
        Err(err) => {
            found.problems.push(format!("{}: {err}", dir.display()));
            return found;
        }
    };
    let mut ids = HashSet::new();
    for name in names {
        let folder_dir = dir.join(&name);
        let folder = match committed_or_whole(&folder_dir) {
            Ok(folder) => folder,
            Err(err) => {
                found.problems.push(format!("{name}: {err}"));
                continue;
            }
        };
        found.folders += 1;
        for info in &folder.segments {
            let file_name = info.file_name();
            let path = format!("{name}/{file_name}");
            if has_manifest && !listed.contains(&path) {
                found
                    .problems
                    .push(format!("{path}: not in {MANIFEST_FILE}"));
            }
            let data = match read_prefix(&folder_dir.join(&file_name), info.len) {
                Ok(data) => data,
                Err(err) => {
                    found.problems.push(format!("{path}: {err}"));
                    continue;
                }
            };
            found.segments += 1;
            check_lines(&path, &data, &mut ids, &mut found);
        }
    }
    found
}

/// A folder as another replica reads it (by its marker); without a marker (a copy made by hand,
/// or a volume 0.1.0 last wrote) every segment whole.
fn committed_or_whole(dir: &Path) -> io::Result<Folder> {
    if store::read_marker(dir)?.is_some() {
        return Folder::committed_by_marker(dir.to_path_buf());
    }
    Ok(Folder {
        dir: dir.to_path_buf(),
        segments: store::list_segments(dir)?,
    })
}

fn check_entry(dir: &Path, entry: &ManifestEntry, problems: &mut Vec<String>) {
    let path = &entry.path;
    // Paths stay inside the copy: `<instance>/<file>`, no `..`, not absolute.
    let safe = Path::new(path)
        .components()
        .all(|c| matches!(c, std::path::Component::Normal(_)));
    if !safe {
        problems.push(format!("{MANIFEST_FILE}: path {path:?} leaves the copy"));
        return;
    }
    let mut data = Vec::new();
    if let Err(err) = File::open(dir.join(path)).and_then(|mut f| f.read_to_end(&mut data)) {
        problems.push(format!("{path}: {err}"));
        return;
    }
    if data.len() as u64 != entry.bytes {
        problems.push(format!(
            "{path}: {} bytes, the manifest says {}",
            data.len(),
            entry.bytes
        ));
    } else if sha256_hex(&data) != entry.sha256 {
        problems.push(format!(
            "{path}: SHA-256 differs from the manifest (the file changed or is corrupt)"
        ));
    }
}

fn check_lines(path: &str, data: &[u8], ids: &mut HashSet<String>, found: &mut Verification) {
    let mut rest = data;
    let mut line_number = 0usize;
    while !rest.is_empty() {
        line_number += 1;
        let Some(newline) = rest.iter().position(|b| *b == b'\n') else {
            found.problems.push(format!(
                "{path}: line {line_number} has no end (torn record)"
            ));
            return;
        };
        match Record::from_line(&rest[..newline]) {
            Some(record) => {
                found.records += 1;
                if !ids.insert(record.id.clone()) {
                    found.problems.push(format!(
                        "{path}: line {line_number}: id {} appears twice",
                        record.id
                    ));
                }
            }
            None => found
                .problems
                .push(format!("{path}: line {line_number} is not a record")),
        }
        rest = &rest[newline + 1..];
    }
}

/// Puts the copy `from` into the empty `log_dir`, verifies it there against its manifest, then
/// removes the manifest (the store's files change from the first write on).
pub fn restore(from: &Path, log_dir: &Path) -> Result<Verification, String> {
    if !is_empty_or_absent(log_dir).map_err(|e| format!("reading {}: {e}", log_dir.display()))? {
        return Err(format!(
            "{} is not empty: restore fills an empty volume only",
            log_dir.display()
        ));
    }
    fs::create_dir_all(log_dir).map_err(|e| format!("creating {}: {e}", log_dir.display()))?;
    if is_tar(from) {
        let file = File::open(from).map_err(|e| format!("opening {}: {e}", from.display()))?;
        // `unpack` refuses entries whose path leaves the target folder.
        tar::Archive::new(file)
            .unpack(log_dir)
            .map_err(|e| format!("unpacking {}: {e}", from.display()))?;
    } else {
        copy_copy(from, log_dir)?;
    }
    if !log_dir.join(MANIFEST_FILE).exists() {
        return Err(format!(
            "{} has no {MANIFEST_FILE}: not a complete copy made by data-api backup",
            from.display()
        ));
    }
    let found = verify(log_dir);
    if found.problems.is_empty() {
        fs::remove_file(log_dir.join(MANIFEST_FILE))
            .and_then(|()| File::open(log_dir)?.sync_all())
            .map_err(|e| format!("removing {MANIFEST_FILE}: {e}"))?;
    }
    Ok(found)
}

/// Copies a backup folder (its manifest and instance folders, nothing else) into `to`.
fn copy_copy(from: &Path, to: &Path) -> Result<(), String> {
    let err = |what: &Path, e: io::Error| format!("{}: {e}", what.display());
    let manifest = from.join(MANIFEST_FILE);
    copy_file(&manifest, &to.join(MANIFEST_FILE)).map_err(|e| err(&manifest, e))?;
    for name in instance_dirs(from, is_instance_name).map_err(|e| err(from, e))? {
        let source = from.join(&name);
        let target = to.join(&name);
        fs::create_dir(&target).map_err(|e| err(&target, e))?;
        for entry in fs::read_dir(&source).map_err(|e| err(&source, e))? {
            let entry = entry.map_err(|e| err(&source, e))?;
            if entry.file_type().is_ok_and(|t| t.is_file()) {
                copy_file(&entry.path(), &target.join(entry.file_name()))
                    .map_err(|e| err(&entry.path(), e))?;
            }
        }
        File::open(&target)
            .and_then(|d| d.sync_all())
            .map_err(|e| err(&target, e))?;
    }
    Ok(())
}

fn copy_file(from: &Path, to: &Path) -> io::Result<()> {
    let mut source = File::open(from)?;
    let mut target = File::create_new(to)?;
    io::copy(&mut source, &mut target)?;
    target.sync_all()
}

fn report(found: &Verification, what: &str) -> ExitCode {
    for problem in &found.problems {
        eprintln!("{what}: {problem}");
    }
    let verdict = if found.problems.is_empty() {
        "ok".to_string()
    } else {
        format!("{} problems", found.problems.len())
    };
    println!(
        "{what}: {} folders, {} segments, {} records, {verdict}",
        found.folders, found.segments, found.records
    );
    if found.problems.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// `data-api backup ...` (`args` without the binary name and the subcommand).
pub fn backup_main(args: impl IntoIterator<Item = std::ffi::OsString>) -> ExitCode {
    let argv = std::iter::once("data-api backup".into()).chain(args);
    let parsed: BackupArgs = platform::config::parse_from_or_exit(argv);
    let result = match (&parsed.to, &parsed.into) {
        (Some(to), _) => backup(&parsed.log_dir, to).map(|summary| (summary, to.clone())),
        (None, Some(into)) => backup_into(&parsed.log_dir, into, parsed.keep),
        (None, None) => unreachable!("clap requires --to or --into"),
    };
    match result {
        Ok((summary, to)) => {
            println!(
                "backup: {} folders, {} segments, {} bytes to {}",
                summary.folders,
                summary.segments,
                summary.bytes,
                to.display()
            );
            ExitCode::SUCCESS
        }
        Err(problem) => {
            eprintln!("backup: {problem}");
            ExitCode::FAILURE
        }
    }
}

/// `data-api verify <dir>`.
pub fn verify_main(args: impl IntoIterator<Item = std::ffi::OsString>) -> ExitCode {
    let argv = std::iter::once("data-api verify".into()).chain(args);
    let parsed: VerifyArgs = platform::config::parse_from_or_exit(argv);
    if !parsed.dir.is_dir() {
        eprintln!("verify: {} is not a folder", parsed.dir.display());
        return ExitCode::FAILURE;
    }
    report(&verify(&parsed.dir), "verify")
}

/// `data-api restore --from <dir|tar>`.
pub fn restore_main(args: impl IntoIterator<Item = std::ffi::OsString>) -> ExitCode {
    let argv = std::iter::once("data-api restore".into()).chain(args);
    let parsed: RestoreArgs = platform::config::parse_from_or_exit(argv);
    match restore(&parsed.from, &parsed.log_dir) {
        Ok(found) => report(&found, "restore"),
        Err(problem) => {
            eprintln!("restore: {problem}");
            ExitCode::FAILURE
        }
    }
}
