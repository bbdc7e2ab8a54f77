//! The log store: records as JSON Lines in size-rotated segment files under
//! `LOG_DIR/<instance>/`, acknowledged only once durable, with group commit.
//!
//! Requests send their record over a bounded channel to one writer task, which owns the folder.
//! The writer drains whatever is queued, appends it with one write and one fdatasync, then
//! acknowledges the whole batch; while it syncs, the next batch queues up. Readers see only the
//! committed part of each segment.

mod io;
mod lock;
mod marker;
mod metrics;
mod orphans;
mod reader;
mod record;
mod segment;
mod writer;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, SystemTime};

use tokio::sync::{mpsc, oneshot, watch};

pub use self::io::{Fault, FaultyIo, RealIo, SegmentFile, StoreIo};
pub(crate) use self::marker::{CommitMark, MARKER_FILE};
pub use self::metrics::StoreMetrics;
pub use self::orphans::{sweep as sweep_orphans, OrphanPolicy, SweepReport};
pub use self::reader::Window;
pub(crate) use self::reader::{instance_dirs, Folder};
pub use self::record::{format_ts, parse_ts, Level, Record, MAX_MESSAGE_CHARS};
pub(crate) use self::segment::SegmentInfo;
pub use self::segment::{
    file_name as segment_file_name, parse_file_name as parse_segment_name,
    parse_name as parse_segment_name_and_version, valid_prefix, UnsupportedVersion,
    DEFAULT_WRITE_VERSION, NEWEST_VERSION, OLDEST_VERSION,
};
use self::writer::{Pending, Writer};

/// Records waiting for the writer; beyond this, senders wait (back-pressure).
const QUEUE_CAPACITY: usize = 4096;
/// Most records in one commit.
const MAX_BATCH: usize = 1024;
/// How often an idle writer checks its folder or retries a broken volume.
const IDLE_TICK: Duration = Duration::from_secs(1);

/// Where and how the store keeps its records.
#[derive(Debug, Clone)]
pub struct StoreConfig {
    /// The volume (`LOG_DIR`); the store writes only inside `<log_dir>/<instance>/`.
    pub log_dir: PathBuf,
    /// This writer's name (`INSTANCE_ID`), a folder under `log_dir`.
    pub instance: String,
    /// A segment is closed and a new one started beyond this size.
    pub segment_bytes: u64,
    /// Oldest segments are deleted while the total is above this.
    pub retention_bytes: u64,
    /// The storage format of the segments this writer starts (`LOG_FORMAT_VERSION`).
    pub format_version: u32,
}

/// Why a record was not stored. `Display` is for logs and `/readyz`, not for clients.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    #[error("the log volume is full: {detail}")]
    Full { detail: String },
    #[error("the log store is unavailable: {detail}")]
    Unavailable { detail: String },
    /// A segment in a storage format this release does not read (a newer data-api wrote it).
    #[error("the log store holds a format this data-api does not read: {detail}")]
    UnsupportedFormat { detail: String },
}

impl StoreError {
    /// The `kind` label of `data_api_write_errors_total`.
    pub fn kind(&self) -> &'static str {
        match self {
            StoreError::Full { .. } => "full",
            StoreError::Unavailable { .. } => "unavailable",
            StoreError::UnsupportedFormat { .. } => "unsupported_format",
        }
    }

    pub(crate) fn from_io(err: &std::io::Error, context: &str) -> Self {
        use std::io::ErrorKind;
        if let Some(unsupported) = segment::UnsupportedVersion::find(err) {
            return StoreError::UnsupportedFormat {
                detail: unsupported.to_string(),
            };
        }
        let detail = format!("{context}: {err}");
        match err.kind() {
            ErrorKind::StorageFull | ErrorKind::QuotaExceeded | ErrorKind::FileTooLarge => {
                StoreError::Full { detail }
            }
            _ => StoreError::Unavailable { detail },
        }
    }

    fn stopped() -> Self {
        StoreError::Unavailable {
            detail: "the writer has stopped".into(),
        }
    }
}

/// A folder name an instance may have: 1 to 128 ASCII letters, digits, `.`, `_`, `-`, not
/// starting with a dot (so never `.` or `..`, and never the store's hidden files).
pub fn is_instance_name(name: &str) -> bool {
    let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-');
    (1..=128).contains(&name.len()) && !name.starts_with('.') && name.chars().all(allowed)
}

/// A durable record's identity, returned once it is on disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ack {
    pub id: String,
    pub ts: String,
}

/// An incomplete record cut off the end of the last segment at start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TornTail {
    pub segment: PathBuf,
    pub dropped_bytes: u64,
}

/// What opening found.
#[derive(Debug, Clone, Default)]
pub struct OpenReport {
    pub torn_tail: Option<TornTail>,
    /// Set when the volume could not be used at start; the store retries by itself.
    pub unavailable: Option<StoreError>,
}

/// Why the store did not open.
#[derive(Debug, Clone, thiserror::Error)]
pub enum OpenError {
    #[error("another process already writes {dir} (is INSTANCE_ID unique?)")]
    Locked { dir: PathBuf },
    #[error("{0}")]
    UnsupportedFormat(segment::UnsupportedVersion),
}

/// State the writer shares with readers and `/readyz`.
pub(crate) struct Shared {
    /// The volume, whose other instance folders readers merge in.
    pub log_dir: PathBuf,
    pub dir: PathBuf,
    pub instance: String,
    pub committed: RwLock<Vec<SegmentInfo>>,
    pub fault: Mutex<Option<StoreError>>,
    pub metrics: StoreMetrics,
}

impl Shared {
    pub(crate) fn set_fault(&self, fault: Option<StoreError>) {
        self.metrics.writable.set(i64::from(fault.is_none()));
        *self.fault.lock().expect("fault lock") = fault;
    }
}

/// A handle to the store. Cheap to clone; the writer stops once every handle is dropped.
#[derive(Clone)]
pub struct LogStore {
    tx: mpsc::Sender<Pending>,
    shared: Arc<Shared>,
    stopped: watch::Receiver<bool>,
}

/// Whether the store takes writes, for readiness checks (does not keep the writer alive).
#[derive(Clone)]
pub struct StoreHealth(Arc<Shared>);

impl StoreHealth {
    pub fn check(&self) -> Result<(), StoreError> {
        match &*self.0.fault.lock().expect("fault lock") {
            None => Ok(()),
            Some(err) => Err(err.clone()),
        }
    }
}

impl LogStore {
    /// Opens (creating the folder when needed), recovers the last segment and starts the writer.
    /// A volume that cannot be used now does not fail the start: see [`OpenReport::unavailable`].
    pub async fn open(
        config: StoreConfig,
        io: Arc<dyn StoreIo>,
        metrics: StoreMetrics,
    ) -> Result<(Self, OpenReport), OpenError> {
        metrics
            .retention_bytes
            .set(i64::try_from(config.retention_bytes).unwrap_or(i64::MAX));
        let shared = Arc::new(Shared {
            log_dir: config.log_dir.clone(),
            dir: config.log_dir.join(&config.instance),
            instance: config.instance.clone(),
            committed: RwLock::new(Vec::new()),
            fault: Mutex::new(None),
            metrics,
        });
        let opening = shared.clone();
        let (writer, report) =
            tokio::task::spawn_blocking(move || Writer::open(&config, io, opening))
                .await
                .expect("opening the store does not panic")?;
        let (tx, rx) = mpsc::channel(QUEUE_CAPACITY);
        let (stopped_tx, stopped) = watch::channel(false);
        tokio::spawn(run_writer(writer, rx, stopped_tx, shared.clone()));
        Ok((
            Self {
                tx,
                shared,
                stopped,
            },
            report,
        ))
    }

    /// Stores a record; resolves once it is durable (or refused).
    pub async fn append(&self, level: Level, message: String) -> Result<Ack, StoreError> {
        let (reply, acked) = oneshot::channel();
        self.tx
            .send(Pending {
                level,
                message,
                preset: None,
                caller: tracing::Span::current(),
                reply,
            })
            .await
            .map_err(|_| StoreError::stopped())?;
        acked.await.map_err(|_| StoreError::stopped())?
    }

    /// Up to `limit` acknowledged records, newest first, within `window`: of every instance
    /// folder on the volume, or only of `instance`'s (no records when it has no folder).
    pub async fn recent(
        &self,
        limit: usize,
        window: Window,
        instance: Option<String>,
    ) -> Result<Vec<Record>, StoreError> {
        // This process's own acknowledged view, taken before the other folders' markers are
        // read, so nothing acknowledged before the request is missed.
        let own = reader::Folder {
            dir: self.shared.dir.clone(),
            segments: self.shared.committed.read().expect("segments lock").clone(),
        };
        let shared = self.shared.clone();
        tokio::task::spawn_blocking(move || {
            let names = match instance {
                Some(name) => vec![name],
                None => reader::instance_dirs(&shared.log_dir, is_instance_name)?,
            };
            let mut folders = Vec::with_capacity(names.len());
            for name in names {
                if name == shared.instance {
                    folders.push(own.clone());
                } else {
                    folders.push(reader::Folder::committed_by_marker(
                        shared.log_dir.join(&name),
                    )?);
                }
            }
            reader::recent(folders, limit, window)
        })
        .await
        .map_err(|_| StoreError::stopped())?
        .map_err(|e| StoreError::from_io(&e, "reading records"))
    }

    /// Stores records made elsewhere (imported history), keeping their id and time, in the
    /// order given, which must be time order; resolves once all are durable (group-committed),
    /// or at the first refusal.
    pub async fn append_imported(&self, records: Vec<Record>) -> Result<(), StoreError> {
        let mut acks = Vec::with_capacity(records.len());
        for record in records {
            let time = record.time().ok_or_else(|| StoreError::Unavailable {
                detail: format!("record {} has no valid time", record.id),
            })?;
            let (reply, acked) = oneshot::channel();
            self.tx
                .send(Pending {
                    level: record.level,
                    message: record.message,
                    preset: Some((record.id, time)),
                    caller: tracing::Span::none(),
                    reply,
                })
                .await
                .map_err(|_| StoreError::stopped())?;
            acks.push(acked);
        }
        for acked in acks {
            acked.await.map_err(|_| StoreError::stopped())??;
        }
        Ok(())
    }

    /// Every record this process's folder holds (committed), oldest first: for the importer,
    /// which must know what an earlier run stored. Reads whole segments; not for requests.
    pub async fn all_records(&self) -> Result<Vec<Record>, StoreError> {
        let folder = reader::Folder {
            dir: self.shared.dir.clone(),
            segments: self.shared.committed.read().expect("segments lock").clone(),
        };
        tokio::task::spawn_blocking(move || {
            let mut records = reader::recent(vec![folder], usize::MAX, Window::default())?;
            records.reverse();
            Ok::<_, std::io::Error>(records)
        })
        .await
        .map_err(|_| StoreError::stopped())?
        .map_err(|e| StoreError::from_io(&e, "reading records"))
    }

    /// Starts sweeping the folders of instances that are gone (see `orphans`), every
    /// `policy.interval` while this store runs; `exempt` folders (the imported history) are kept.
    pub fn start_orphan_retention(&self, policy: OrphanPolicy, exempt: &'static [&'static str]) {
        let log_dir = self.shared.log_dir.clone();
        let own = self.shared.instance.clone();
        let mut stopped = self.stopped.clone();
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = stopped.wait_for(|s| *s) => break,
                    () = tokio::time::sleep(policy.interval) => {}
                }
                let (log_dir, own) = (log_dir.clone(), own.clone());
                let swept = tokio::task::spawn_blocking(move || {
                    orphans::sweep(&log_dir, &own, exempt, &policy, SystemTime::now())
                })
                .await;
                match swept {
                    Ok(Ok(_)) => {}
                    Ok(Err(err)) => {
                        tracing::warn!(error = %err, "orphan retention failed; retrying next round")
                    }
                    Err(err) => tracing::error!(error = %err, "orphan retention panicked"),
                }
            }
        });
    }

    pub fn health(&self) -> StoreHealth {
        StoreHealth(self.shared.clone())
    }

    /// The instance folder.
    pub fn dir(&self) -> &Path {
        &self.shared.dir
    }

    /// Drops this handle and waits until the writer has stopped (every other handle must be
    /// dropped too), so the folder's lock is free again.
    pub async fn close(self) {
        let mut stopped = self.stopped.clone();
        drop(self);
        let _ = stopped.wait_for(|s| *s).await;
    }
}

async fn run_writer(
    writer: Writer,
    mut rx: mpsc::Receiver<Pending>,
    stopped: watch::Sender<bool>,
    shared: Arc<Shared>,
) {
    let mut writer = Some(writer);
    while let Some(current) = writer.take() {
        let next = tokio::select! {
            next = rx.recv() => next,
            () = tokio::time::sleep(IDLE_TICK) => {
                writer = blocking(current, Writer::tick).await;
                continue;
            }
        };
        let Some(first) = next else {
            // Every handle is gone: stop, releasing the folder's lock.
            drop(current);
            break;
        };
        let mut batch = Vec::with_capacity(64);
        batch.push(first);
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(pending) => batch.push(pending),
                Err(_) => break,
            }
        }
        writer = blocking(current, move |w| w.commit(batch)).await;
    }
    if !rx.is_closed() {
        // The writer panicked while handles remain: make readiness say so.
        shared.set_fault(Some(StoreError::stopped()));
    }
    let _ = stopped.send(true);
}

/// Runs a writer step on the blocking pool (file I/O and fdatasync block). `None` if it panicked.
async fn blocking(
    mut writer: Writer,
    step: impl FnOnce(&mut Writer) + Send + 'static,
) -> Option<Writer> {
    let joined = tokio::task::spawn_blocking(move || {
        step(&mut writer);
        writer
    })
    .await;
    match joined {
        Ok(writer) => Some(writer),
        Err(err) => {
            tracing::error!(error = %err, "the log store writer stopped");
            None
        }
    }
}

/// The commit marker of `dir`, if it has one (for `backup` and `verify`).
pub(crate) fn read_marker(dir: &Path) -> std::io::Result<Option<CommitMark>> {
    marker::read(dir)
}

/// Every segment of `dir`, whole (for `verify` of a folder without a marker).
pub(crate) fn list_segments(dir: &Path) -> std::io::Result<Vec<SegmentInfo>> {
    segment::list(&RealIo, dir)
}
