//! Reading records back, newest first, from the committed part of each segment only (what the
//! writer has synced and acknowledged), walking each file backwards in chunks so a request costs
//! what it returns, not the size of the segment.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::time::SystemTime;

use super::record::Record;
use super::segment::{self, SegmentInfo};

const CHUNK: u64 = 64 * 1024;

/// Up to `limit` records, newest first, with a timestamp at or after `since`.
pub fn recent(
    dir: &Path,
    segments: &[SegmentInfo],
    limit: usize,
    since: Option<SystemTime>,
) -> io::Result<Vec<Record>> {
    let mut out = Vec::new();
    for info in segments.iter().rev() {
        if out.len() >= limit {
            break;
        }
        let path = dir.join(segment::file_name(info.seq));
        let file = match File::open(&path) {
            Ok(f) => f,
            // Deleted by retention since the snapshot was taken.
            Err(err) if err.kind() == io::ErrorKind::NotFound => continue,
            Err(err) => return Err(err),
        };
        let done = read_backwards(&file, info.len, |line| {
            let Some(record) = Record::from_line(line) else {
                tracing::warn!(segment = %path.display(), "skipping a line that is not a record");
                return true;
            };
            // Timestamps never decrease within an instance: everything older follows.
            if let (Some(since), Some(time)) = (since, record.time()) {
                if time < since {
                    return false;
                }
            }
            out.push(record);
            out.len() < limit
        })?;
        if done {
            break;
        }
    }
    Ok(out)
}

/// Calls `visit` with each line (without its newline) of `file[..len]`, last line first, until
/// it returns false. Returns true when `visit` stopped the walk.
fn read_backwards(file: &File, len: u64, mut visit: impl FnMut(&[u8]) -> bool) -> io::Result<bool> {
    // `buf` holds file[start..end) where end is just past a newline (or the committed end).
    let mut start = len;
    let mut buf: Vec<u8> = Vec::new();
    loop {
        // The last byte of `buf` is the newline ending the last unvisited line.
        let body = buf.len().saturating_sub(1);
        match buf[..body].iter().rposition(|b| *b == b'\n') {
            Some(newline) => {
                if !visit(&buf[newline + 1..body]) {
                    return Ok(true);
                }
                buf.truncate(newline + 1);
            }
            None if start == 0 => {
                if !buf.is_empty() && !visit(&buf[..body]) {
                    return Ok(true);
                }
                return Ok(false);
            }
            None => {
                let from = start.saturating_sub(CHUNK);
                let mut chunk = vec![0u8; (start - from) as usize];
                file.read_exact_at(&mut chunk, from)?;
                chunk.extend_from_slice(&buf);
                buf = chunk;
                start = from;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn lines_backwards(content: &[u8]) -> Vec<String> {
        let mut file = tempfile::tempfile().unwrap();
        file.write_all(content).unwrap();
        let mut seen = Vec::new();
        read_backwards(&file, content.len() as u64, |l| {
            seen.push(String::from_utf8(l.to_vec()).unwrap());
            true
        })
        .unwrap();
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
