//! Reading records back, newest first, from the committed part of each segment only, walking
//! each file backwards in chunks so a request costs what it returns, not the size of the segment.
//!
//! Every instance folder under `LOG_DIR` is one newest-first stream (its timestamps never
//! decrease); `GET /logs` is a k-way merge of those streams, so it reads about `limit` records
//! plus one chunk per folder, however many folders and segments there are. The own folder is read
//! up to what this process's writer has acknowledged; another writer's folder up to its commit
//! marker.

use std::cmp::Ordering;
use std::collections::BinaryHeap;
use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use super::marker;
use super::record::Record;
use super::segment::{self, SegmentInfo};

const CHUNK: u64 = 64 * 1024;

/// One instance folder and its committed segments, oldest first.
#[derive(Debug, Clone)]
pub struct Folder {
    pub dir: PathBuf,
    pub segments: Vec<SegmentInfo>,
}

impl Folder {
    /// A folder another process writes (or wrote): committed up to its marker. Without a marker
    /// nothing in it is known to be committed, so nothing is read.
    pub fn committed_by_marker(dir: PathBuf) -> io::Result<Self> {
        // The marker first: a segment it shows as closed is complete by the time it is listed.
        let Some(mark) = marker::read(&dir)? else {
            return Ok(Self {
                dir,
                segments: Vec::new(),
            });
        };
        let mut segments = match segment::list(&super::RealIo, &dir) {
            Ok(segments) => segments,
            Err(err) if err.kind() == io::ErrorKind::NotFound => Vec::new(),
            Err(err) => return Err(err),
        };
        segments.retain(|s| s.seq <= mark.seq);
        if let Some(last) = segments.last_mut().filter(|s| s.seq == mark.seq) {
            last.len = mark.len;
        }
        Ok(Self { dir, segments })
    }
}

/// The times a read covers: at or after `since`, strictly before `before`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Window {
    pub since: Option<SystemTime>,
    pub before: Option<SystemTime>,
}

/// Up to `limit` records of all `folders`, newest first (ties: larger id first), within `window`.
pub fn recent(folders: Vec<Folder>, limit: usize, window: Window) -> io::Result<Vec<Record>> {
    let mut streams = Vec::with_capacity(folders.len());
    let mut heap = BinaryHeap::with_capacity(folders.len());
    for folder in folders {
        let mut stream = Stream::new(folder, window);
        if let Some(record) = stream.next_record()? {
            heap.push(Head::new(record, streams.len()));
        }
        streams.push(stream);
    }
    let mut out = Vec::with_capacity(limit.min(1024));
    while out.len() < limit {
        let Some(head) = heap.pop() else { break };
        let source = head.stream;
        out.push(head.record);
        if out.len() < limit {
            if let Some(next) = streams[source].next_record()? {
                heap.push(Head::new(next, source));
            }
        }
    }
    Ok(out)
}

/// A stream's newest unreturned record, ordered for the max-heap: newest first.
struct Head {
    time: SystemTime,
    record: Record,
    stream: usize,
}

impl Head {
    fn new(record: Record, stream: usize) -> Self {
        Self {
            time: record.time().unwrap_or(SystemTime::UNIX_EPOCH),
            record,
            stream,
        }
    }
}

impl Ord for Head {
    fn cmp(&self, other: &Self) -> Ordering {
        self.time
            .cmp(&other.time)
            .then_with(|| self.record.id.cmp(&other.record.id))
            .then_with(|| other.stream.cmp(&self.stream))
    }
}

impl PartialOrd for Head {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for Head {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Head {}

/// One folder's records, newest first, read lazily segment by segment, chunk by chunk.
struct Stream {
    folder: Folder,
    window: Window,
    /// Segments not yet opened are `folder.segments[..next_segment]`, taken from the end.
    next_segment: usize,
    current: Option<(PathBuf, BackwardLines)>,
    done: bool,
}

impl Stream {
    fn new(folder: Folder, window: Window) -> Self {
        let next_segment = folder.segments.len();
        Self {
            folder,
            window,
            next_segment,
            current: None,
            done: false,
        }
    }

    fn next_record(&mut self) -> io::Result<Option<Record>> {
        while !self.done {
            let Some((path, lines)) = self.current.as_mut() else {
                if !self.open_next()? {
                    self.done = true;
                }
                continue;
            };
            let Some(line) = lines.next_line()? else {
                self.current = None;
                continue;
            };
            let Some(record) = Record::from_line(&line) else {
                tracing::warn!(segment = %path.display(), "skipping a line that is not a record");
                continue;
            };
            // Timestamps never decrease within an instance: everything older follows.
            if let (Some(since), Some(time)) = (self.window.since, record.time()) {
                if time < since {
                    self.done = true;
                    break;
                }
            }
            // Newer than the window: walked past (paging back costs what it skips).
            if let (Some(before), Some(time)) = (self.window.before, record.time()) {
                if time >= before {
                    continue;
                }
            }
            return Ok(Some(record));
        }
        Ok(None)
    }

    /// Opens the next older segment; false when there is none.
    fn open_next(&mut self) -> io::Result<bool> {
        while self.next_segment > 0 {
            self.next_segment -= 1;
            let info = self.folder.segments[self.next_segment];
            let path = self.folder.dir.join(info.file_name());
            match File::open(&path) {
                Ok(file) => {
                    self.current = Some((path, BackwardLines::new(file, info.len)));
                    return Ok(true);
                }
                // Deleted by retention since the folder was listed.
                Err(err) if err.kind() == io::ErrorKind::NotFound => continue,
                Err(err) => return Err(err),
            }
        }
        Ok(false)
    }
}

/// The lines (without their newline) of `file[..len]`, last line first.
struct BackwardLines {
    file: File,
    /// `buf` holds `file[start..end)`, where end is just past a newline (or the committed end).
    start: u64,
    buf: Vec<u8>,
}

impl BackwardLines {
    fn new(file: File, len: u64) -> Self {
        Self {
            file,
            start: len,
            buf: Vec::new(),
        }
    }

    fn next_line(&mut self) -> io::Result<Option<Vec<u8>>> {
        loop {
            // The last byte of `buf` is the newline ending the last unvisited line.
            let body = self.buf.len().saturating_sub(1);
            match self.buf[..body].iter().rposition(|b| *b == b'\n') {
                Some(newline) => {
                    let line = self.buf[newline + 1..body].to_vec();
                    self.buf.truncate(newline + 1);
                    return Ok(Some(line));
                }
                None if self.start == 0 => {
                    if self.buf.is_empty() {
                        return Ok(None);
                    }
                    let line = self.buf[..body].to_vec();
                    self.buf.clear();
                    return Ok(Some(line));
                }
                None => {
                    let from = self.start.saturating_sub(CHUNK);
                    let mut chunk = vec![0u8; (self.start - from) as usize];
                    self.file.read_exact_at(&mut chunk, from)?;
                    chunk.extend_from_slice(&self.buf);
                    self.buf = chunk;
                    self.start = from;
                }
            }
        }
    }
}

/// The instance folders under `log_dir` (directories with a valid instance name), sorted.
pub fn instance_dirs(log_dir: &Path, valid_name: impl Fn(&str) -> bool) -> io::Result<Vec<String>> {
    let mut names = Vec::new();
    for entry in std::fs::read_dir(log_dir)? {
        let entry = entry?;
        let Ok(name) = entry.file_name().into_string() else {
            continue;
        };
        if valid_name(&name) && entry.file_type().is_ok_and(|t| t.is_dir()) {
            names.push(name);
        }
    }
    names.sort();
    Ok(names)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn lines_backwards(content: &[u8]) -> Vec<String> {
        let mut file = tempfile::tempfile().unwrap();
        file.write_all(content).unwrap();
        let mut lines = BackwardLines::new(file, content.len() as u64);
        let mut seen = Vec::new();
        while let Some(line) = lines.next_line().unwrap() {
            seen.push(String::from_utf8(line).unwrap());
        }
        seen
    }

    #[test]
    fn walks_lines_last_first_across_chunk_borders() {
        let lines: Vec<String> = (0..5000)
            .map(|i| format!("line {i} {}", "x".repeat(i % 97)))
            .collect();
        let mut content = Vec::new();
        for l in &lines {
            content.extend_from_slice(l.as_bytes());
            content.push(b'\n');
        }
        assert!(content.len() as u64 > 3 * CHUNK);
        let mut expected = lines.clone();
        expected.reverse();
        assert_eq!(lines_backwards(&content), expected);
    }

    #[test]
    fn an_empty_file_has_no_lines_and_a_long_line_is_whole() {
        assert!(lines_backwards(b"").is_empty());
        let long = "y".repeat(3 * CHUNK as usize + 5);
        let content = format!("a\n{long}\n");
        assert_eq!(
            lines_backwards(content.as_bytes()),
            vec![long, "a".to_string()]
        );
    }
}
