//! The single writer: owns the instance folder and its active segment, appends each batch with
//! one write and one fdatasync, and only then acknowledges the batch (group commit). On any I/O
//! failure it cuts the file back to the last commit, refuses the batch, and keeps trying to
//! recover, at most once per [`RETRY_INTERVAL`], so a broken volume is not hammered.

use std::collections::VecDeque;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use tokio::sync::oneshot;

use super::io::{SegmentFile, StoreIo};
use super::lock::{InstanceLock, LockError};
use super::marker::{CommitMark, MARKER_FILE};
use super::record::{format_ts, Level, Record};
use super::segment::{self, SegmentInfo};
use super::{Ack, OpenError, OpenReport, Shared, StoreConfig, StoreError, TornTail};

/// Least time between two recovery attempts while the volume is unusable.
pub(crate) const RETRY_INTERVAL: Duration = Duration::from_millis(500);

/// Written, synced and removed to learn whether the volume takes writes again.
const PROBE_FILE: &str = ".probe";
const PROBE_BYTES: usize = 4096;

/// A record waiting for its commit, with the channel its acknowledgement goes back on.
pub(crate) struct Pending {
    pub level: Level,
    pub message: String,
    /// Id and time given by the caller (imported history) instead of made here.
    pub preset: Option<(String, SystemTime)>,
    /// The request's span, linked from the commit's span when traces are exported.
    pub caller: tracing::Span,
    pub reply: oneshot::Sender<Result<Ack, StoreError>>,
}

struct Encoded {
    line: Vec<u8>,
    ack: Ack,
    reply: oneshot::Sender<Result<Ack, StoreError>>,
}

struct Broken {
    error: StoreError,
    /// The folder must be opened again (the active file is gone or in an unknown state).
    reopen: bool,
}

pub(crate) struct Writer {
    io: Arc<dyn StoreIo>,
    log_dir: PathBuf,
    segment_bytes: u64,
    retention_bytes: u64,
    /// The format of the segments this writer starts (see `segment`).
    write_version: u32,
    /// Segments on disk, oldest first; the last is the active one. Lengths are committed bytes.
    segments: Vec<SegmentInfo>,
    active: Option<Box<dyn SegmentFile>>,
    /// The commit marker other processes read up to (see `marker`).
    marker: Option<Box<dyn SegmentFile>>,
    _lock: Option<InstanceLock>,
    /// Timestamps never go backwards within an instance, so readers can stop at `since`.
    last_time: SystemTime,
    broken: Option<Broken>,
    /// A failed write that could not be cut back: cut at the next reopen.
    rollback_to: Option<SegmentInfo>,
    last_attempt: Option<Instant>,
    shared: Arc<Shared>,
}

enum ReopenError {
    Locked,
    /// A segment of a format this release does not read: never written over or guessed at.
    Format(segment::UnsupportedVersion),
    Store(StoreError),
}

impl From<StoreError> for ReopenError {
    fn from(err: StoreError) -> Self {
        Self::Store(err)
    }
}

impl Writer {
    /// Creates the folder, takes the lock and recovers the last segment. I/O problems do not
    /// fail the start: the writer begins broken and recovers once the volume is usable.
    pub(crate) fn open(
        config: &StoreConfig,
        io: Arc<dyn StoreIo>,
        shared: Arc<Shared>,
    ) -> Result<(Self, OpenReport), OpenError> {
        let mut writer = Writer {
            io,
            log_dir: config.log_dir.clone(),
            segment_bytes: config.segment_bytes,
            retention_bytes: config.retention_bytes,
            write_version: config.format_version,
            segments: Vec::new(),
            active: None,
            marker: None,
            _lock: None,
            last_time: SystemTime::UNIX_EPOCH,
            broken: None,
            rollback_to: None,
            last_attempt: None,
            shared,
        };
        let mut report = OpenReport::default();
        match writer.reopen(true) {
            Ok(torn_tail) => {
                report.torn_tail = torn_tail;
                writer.shared.set_fault(None);
            }
            Err(ReopenError::Locked) => {
                return Err(OpenError::Locked {
                    dir: writer.dir().to_path_buf(),
                })
            }
            Err(ReopenError::Format(unsupported)) => {
                return Err(OpenError::UnsupportedFormat(unsupported))
            }
            Err(ReopenError::Store(err)) => {
                writer.last_attempt = Some(Instant::now());
                writer.set_broken(err.clone(), true);
                report.unavailable = Some(err);
            }
        }
        Ok((writer, report))
    }

    fn dir(&self) -> &Path {
        &self.shared.dir
    }

    fn segment_path(&self, info: SegmentInfo) -> PathBuf {
        self.dir().join(info.file_name())
    }

    fn active_len(&self) -> u64 {
        self.segments.last().map_or(0, |s| s.len)
    }

    /// Commits a batch: acknowledges every record once it is durable, refuses the rest.
    pub(crate) fn commit(&mut self, batch: Vec<Pending>) {
        let span = commit_span(&batch);
        let _entered = span.enter();
        if let Err(err) = self.ensure_writable() {
            self.refuse(batch.into_iter().map(|p| p.reply), &err);
            return;
        }
        let mut queue: VecDeque<Encoded> = batch.into_iter().map(|p| self.encode(p)).collect();
        let mut rotated = false;
        while let Some(first) = queue.front() {
            let len = self.active_len();
            if len > 0 && len + first.line.len() as u64 > self.segment_bytes {
                if let Err(err) = self.rotate() {
                    self.active = None;
                    self.set_broken(err.clone(), true);
                    self.refuse(queue.into_iter().map(|e| e.reply), &err);
                    return;
                }
                rotated = true;
            }
            // As many records as fit the active segment; always at least one, so a record
            // larger than a segment still gets written (into a segment of its own).
            let mut size = self.active_len();
            let mut buf = Vec::new();
            let mut count = 0;
            for encoded in &queue {
                let next = encoded.line.len() as u64;
                if count > 0 && size + next > self.segment_bytes {
                    break;
                }
                buf.extend_from_slice(&encoded.line);
                size += next;
                count += 1;
            }
            let result = self.append_durably(&buf, count);
            let chunk: Vec<Encoded> = queue.drain(..count).collect();
            match result {
                Ok(()) => {
                    for encoded in chunk {
                        // The client may have gone away; the record is stored either way.
                        let _ = encoded.reply.send(Ok(encoded.ack));
                    }
                }
                Err(err) => {
                    let rest = chunk.into_iter().chain(queue);
                    self.refuse(rest.map(|e| e.reply), &err);
                    return;
                }
            }
        }
        if rotated {
            self.apply_retention();
        }
    }

    /// Called when no record arrived for a while: retries recovery, or notices a vanished folder.
    pub(crate) fn tick(&mut self) {
        if self.broken.is_some() {
            let _ = self.ensure_writable();
            return;
        }
        let linked = self
            .active
            .as_ref()
            .is_some_and(|f| matches!(f.is_linked(), Ok(true)));
        if !linked || !self.io.is_dir(self.dir()) {
            self.active = None;
            let err = StoreError::Unavailable {
                detail: format!(
                    "the folder {} or its segment was removed",
                    self.dir().display()
                ),
            };
            self.set_broken(err, true);
        }
    }

    fn encode(&mut self, pending: Pending) -> Encoded {
        let (id, time) = match pending.preset {
            // The importer hands over its records in time order, none older than the folder's.
            Some((id, time)) => (id, time),
            None => (
                uuid::Uuid::now_v7().to_string(),
                SystemTime::now().max(self.last_time),
            ),
        };
        self.last_time = self.last_time.max(time);
        let record = Record {
            id,
            ts: format_ts(time),
            level: pending.level,
            message: pending.message,
            instance: self.shared.instance.clone(),
        };
        Encoded {
            line: record.to_line(),
            ack: Ack {
                id: record.id,
                ts: record.ts,
            },
            reply: pending.reply,
        }
    }

    fn refuse(
        &self,
        replies: impl Iterator<Item = oneshot::Sender<Result<Ack, StoreError>>>,
        err: &StoreError,
    ) {
        // Counted before anyone is answered: a client that saw its refusal sees it on /metrics.
        let replies: Vec<_> = replies.collect();
        self.shared
            .metrics
            .write_errors(err.kind(), replies.len() as u64);
        for reply in replies {
            let _ = reply.send(Err(err.clone()));
        }
    }

    /// Writes `buf` at the end of the active segment and syncs it. On failure the segment is cut
    /// back to its last commit, so no unacknowledged bytes remain as records.
    fn append_durably(&mut self, buf: &[u8], records: usize) -> Result<(), StoreError> {
        let started = Instant::now();
        let committed = *self
            .segments
            .last()
            .expect("a writable store has a segment");
        let path = self.segment_path(committed);
        let file = self
            .active
            .as_mut()
            .expect("a writable store has an active segment");
        let new_mark = CommitMark {
            seq: committed.seq,
            len: committed.len + buf.len() as u64,
        };
        // The marker moves only once the data is durable: readers elsewhere never get ahead.
        let result = file
            .write_all(buf)
            .and_then(|()| {
                let syncing = Instant::now();
                let synced = file.sync_data();
                let took = syncing.elapsed().as_secs_f64() * 1000.0;
                tracing::Span::current().record("fdatasync_ms", took);
                synced
            })
            .and_then(|()| match file.is_linked()? {
                true => Ok(()),
                false => Err(io::Error::new(
                    io::ErrorKind::NotFound,
                    "the segment file was removed from its folder",
                )),
            })
            .and_then(|()| write_marker(self.marker.as_mut(), new_mark));
        if let Err(err) = result {
            let error = StoreError::from_io(&err, &format!("writing {}", path.display()));
            let old_mark = CommitMark {
                seq: committed.seq,
                len: committed.len,
            };
            let rolled_back = matches!(file.is_linked(), Ok(true))
                && file
                    .set_len(committed.len)
                    .and_then(|()| file.sync_data())
                    .and_then(|()| write_marker(self.marker.as_mut(), old_mark))
                    .is_ok();
            if !rolled_back {
                self.rollback_to = Some(committed);
                self.active = None;
            }
            self.set_broken(error.clone(), !rolled_back);
            return Err(error);
        }
        let metrics = &self.shared.metrics;
        metrics
            .sync_duration
            .observe(started.elapsed().as_secs_f64());
        metrics.batch_size.observe(records as f64);
        metrics.records_written.inc_by(records as u64);
        if let Some(last) = self.segments.last_mut() {
            last.len += buf.len() as u64;
        }
        self.publish();
        Ok(())
    }

    /// Ok when writes can be attempted; otherwise tries to recover (rate-limited).
    fn ensure_writable(&mut self) -> Result<(), StoreError> {
        let Some(broken) = &self.broken else {
            return Ok(());
        };
        if self
            .last_attempt
            .is_some_and(|t| t.elapsed() < RETRY_INTERVAL)
        {
            return Err(broken.error.clone());
        }
        self.last_attempt = Some(Instant::now());
        if broken.reopen {
            match self.reopen(false) {
                Ok(_) => {}
                Err(ReopenError::Locked) => {
                    let err = StoreError::Unavailable {
                        detail: format!(
                            "another process holds the lock on {}",
                            self.dir().display()
                        ),
                    };
                    self.set_broken(err.clone(), true);
                    return Err(err);
                }
                Err(ReopenError::Format(unsupported)) => {
                    let err = StoreError::UnsupportedFormat {
                        detail: unsupported.to_string(),
                    };
                    self.set_broken(err.clone(), true);
                    return Err(err);
                }
                Err(ReopenError::Store(err)) => {
                    self.set_broken(err.clone(), true);
                    return Err(err);
                }
            }
        }
        if let Err(err) = self.probe() {
            self.set_broken(err.clone(), false);
            return Err(err);
        }
        self.broken = None;
        self.shared.set_fault(None);
        tracing::info!(dir = %self.dir().display(), "log store is writable again");
        Ok(())
    }

    fn set_broken(&mut self, error: StoreError, reopen: bool) {
        let changed = self.broken.as_ref().is_none_or(|b| b.error != error);
        if changed {
            tracing::error!(
                dir = %self.dir().display(),
                kind = error.kind(),
                error = %error,
                "log store cannot take writes; refusing them until the volume is usable again"
            );
        }
        // Without an open segment there is nothing to append to: the folder must be reopened.
        let reopen = reopen || self.active.is_none();
        self.shared.set_fault(Some(error.clone()));
        self.broken = Some(Broken { error, reopen });
    }

    /// Proves the volume takes a synced write now, without touching any segment.
    fn probe(&self) -> Result<(), StoreError> {
        let path = self.dir().join(PROBE_FILE);
        let context = format!("writing {}", path.display());
        let mut file = self
            .io
            .open_append(&path, false)
            .map_err(|e| StoreError::from_io(&e, &context))?;
        let result = file
            .set_len(0)
            .and_then(|()| file.write_all(&[b'\n'; PROBE_BYTES]))
            .and_then(|()| file.sync_data());
        drop(file);
        let _ = self.io.remove_file(&path);
        result.map_err(|e| StoreError::from_io(&e, &context))
    }

    /// (Re)opens the instance folder: lock, find segments, cut a torn tail, open the last one.
    fn reopen(&mut self, create_log_dir: bool) -> Result<Option<TornTail>, ReopenError> {
        self.active = None;
        self.marker = None;
        self._lock = None;
        let dir = self.dir().to_path_buf();
        let io = self.io.clone();
        let ctx = |what: &str, path: &Path| format!("{what} {}", path.display());
        // At run time LOG_DIR is the volume: if it is gone, creating it again would write to
        // whatever lies beneath the mount point.
        if !create_log_dir && !io.is_dir(&self.log_dir) {
            return Err(StoreError::Unavailable {
                detail: format!(
                    "LOG_DIR {} is missing (volume not mounted?)",
                    self.log_dir.display()
                ),
            }
            .into());
        }
        io.create_dir_all(&dir)
            .map_err(|e| StoreError::from_io(&e, &ctx("creating", &dir)))?;
        self._lock = Some(InstanceLock::acquire(&dir).map_err(|e| match e {
            LockError::Held => ReopenError::Locked,
            LockError::Io(e) => StoreError::from_io(&e, &ctx("locking", &dir)).into(),
        })?);
        let mut segments =
            segment::list(io.as_ref(), &dir).map_err(
                |e| match segment::UnsupportedVersion::find(&e) {
                    Some(unsupported) => ReopenError::Format(unsupported.clone()),
                    None => StoreError::from_io(&e, &ctx("listing", &dir)).into(),
                },
            )?;
        let mut torn_tail = None;
        if let Some(last) = segments.last().copied() {
            let path = dir.join(last.file_name());
            let data = io
                .read_file(&path)
                .map_err(|e| StoreError::from_io(&e, &ctx("reading", &path)))?;
            let valid = segment::valid_prefix(&data);
            let mut keep = valid.len;
            if let Some(rollback) = self.rollback_to.filter(|r| r.seq == last.seq) {
                keep = keep.min(rollback.len);
            }
            if let Some(time) = valid.last_time {
                self.last_time = self.last_time.max(time);
            }
            // Readers may use what is valid even if the volume refuses writes below.
            if let Some(l) = segments.last_mut() {
                l.len = keep;
            }
            self.segments = segments.clone();
            self.publish();
            let mut file = io
                .open_append(&path, false)
                .map_err(|e| StoreError::from_io(&e, &ctx("opening", &path)))?;
            let on_disk = data.len() as u64;
            if keep < on_disk {
                file.set_len(keep)
                    .and_then(|()| file.sync_data())
                    .map_err(|e| StoreError::from_io(&e, &ctx("truncating", &path)))?;
                let dropped_bytes = on_disk - valid.len;
                if dropped_bytes > 0 {
                    tracing::warn!(
                        segment = %path.display(),
                        dropped_bytes,
                        kept_bytes = keep,
                        "cut off an incomplete record at the end of the last segment (left by a crash); everything before it is kept"
                    );
                    torn_tail = Some(TornTail {
                        segment: path.clone(),
                        dropped_bytes,
                    });
                }
                if valid.len > keep {
                    tracing::warn!(
                        segment = %path.display(),
                        dropped_bytes = valid.len - keep,
                        "removed records of a failed write that were never acknowledged"
                    );
                }
            }
            self.active = Some(file);
        } else {
            let first = SegmentInfo {
                seq: 1,
                len: 0,
                version: self.write_version,
            };
            let path = dir.join(first.file_name());
            let file = io
                .open_append(&path, true)
                .and_then(|f| io.sync_dir(&dir).map(|()| f))
                .map_err(|e| StoreError::from_io(&e, &ctx("creating", &path)))?;
            segments.push(first);
            self.active = Some(file);
        }
        self.rollback_to = None;
        self.segments = segments;
        self.publish();
        let last = *self
            .segments
            .last()
            .expect("a segment was opened or created");
        let marker_path = dir.join(MARKER_FILE);
        let mut marker = io
            .open_in_place(&marker_path)
            .and_then(|m| io.sync_dir(&dir).map(|()| m))
            .map_err(|e| StoreError::from_io(&e, &ctx("opening", &marker_path)))?;
        write_marker(
            Some(&mut marker),
            CommitMark {
                seq: last.seq,
                len: last.len,
            },
        )
        .map_err(|e| StoreError::from_io(&e, &ctx("writing", &marker_path)))?;
        self.marker = Some(marker);
        // A segment of another format (0.1.0's, or the newer one before LOG_FORMAT_VERSION went
        // back) is sealed as it is: new records go to a segment of the format written now.
        let active_version = self.segments.last().map(|s| s.version);
        if self.active_len() >= self.segment_bytes || active_version != Some(self.write_version) {
            self.rotate()?;
        }
        self.apply_retention();
        Ok(torn_tail)
    }

    /// Starts the next segment; the directory entry is synced before anything is acknowledged
    /// in it.
    fn rotate(&mut self) -> Result<(), StoreError> {
        let next = SegmentInfo {
            seq: self.segments.last().map_or(1, |s| s.seq + 1),
            len: 0,
            version: self.write_version,
        };
        let path = self.segment_path(next);
        let file = self
            .io
            .open_append(&path, true)
            .and_then(|f| self.io.sync_dir(self.dir()).map(|()| f))
            .map_err(|e| StoreError::from_io(&e, &format!("creating {}", path.display())))?;
        self.active = Some(file);
        self.segments.push(next);
        self.publish();
        Ok(())
    }

    /// Deletes the oldest segments while the total exceeds the limit; never the active one.
    fn apply_retention(&mut self) {
        let mut total: u64 = self.segments.iter().map(|s| s.len).sum();
        while total > self.retention_bytes && self.segments.len() > 1 {
            let oldest = self.segments[0];
            let path = self.segment_path(oldest);
            match self.io.remove_file(&path) {
                Ok(()) => {}
                Err(err) if err.kind() == io::ErrorKind::NotFound => {}
                Err(err) => {
                    tracing::warn!(segment = %path.display(), error = %err, "retention could not delete a segment");
                    break;
                }
            }
            tracing::debug!(segment = %path.display(), bytes = oldest.len, "retention deleted a segment");
            total -= oldest.len;
            self.segments.remove(0);
        }
        self.publish();
    }

    /// Makes the committed view visible to readers and metrics.
    fn publish(&self) {
        let total: u64 = self.segments.iter().map(|s| s.len).sum();
        self.shared.metrics.store_bytes.set(total as i64);
        *self.shared.committed.write().expect("segments lock") = self.segments.clone();
    }
}

/// The trace's span of one group commit (records in the batch, fdatasync time), linked to the
/// span of every request it acknowledges; none when none of them is in an exported trace.
fn commit_span(batch: &[Pending]) -> tracing::Span {
    let root = platform::otel::linked_root(batch.iter().map(|pending| &pending.caller));
    if !root.is_kept() {
        return tracing::Span::none();
    }
    let span = root.open(|| {
        tracing::info_span!(
            parent: None,
            "group commit",
            records = batch.len() as i64,
            fdatasync_ms = tracing::field::Empty,
        )
    });
    for pending in batch {
        span.follows_from(&pending.caller);
    }
    span
}

/// Rewrites the commit marker and makes it durable.
fn write_marker(marker: Option<&mut Box<dyn SegmentFile>>, mark: CommitMark) -> io::Result<()> {
    let marker = marker
        .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "the commit marker is not open"))?;
    marker.write_all(&mark.encode())?;
    marker.sync_data()
}
