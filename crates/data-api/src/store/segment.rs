//! Segment files in the instance's folder, named by sequence and format version:
//! `segment-<20-digit sequence>.jsonl` is format 1 (what 0.1.0 wrote, no version in the name),
//! `segment-<20-digit sequence>.v<N>.jsonl` format N (2 and later). The version is in the name,
//! so the listing alone says what a folder holds: recovery, the commit marker (sequence and
//! length) and the readers stay the same, and a file of an unknown newer version is refused
//! before a byte of it is read. Any other file there (or in `LOG_DIR`) is not the store's and
//! is left alone.
//!
//! Compatibility rule: a release reads its own newest format and the one before; it writes, by
//! default, the newest format the previous release reads (so a one-release rollback never meets
//! a file it cannot read), and `LOG_FORMAT_VERSION` opts into the newer one.

use std::io;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use super::io::StoreIo;
use super::record::Record;

const PREFIX: &str = "segment-";
const SUFFIX: &str = ".jsonl";
const DIGITS: usize = 20;

/// The newest segment format this release reads (and writes with `LOG_FORMAT_VERSION=2`).
/// Format 2 holds the same JSON lines as format 1; what it adds is the version in the name.
pub const NEWEST_VERSION: u32 = 2;
/// The oldest format this release reads: 0.1.0's unversioned segments.
pub const OLDEST_VERSION: u32 = 1;
/// What a writer uses for new segments unless told otherwise: the newest format the previous
/// release (0.1.0, format 1 only) reads.
pub const DEFAULT_WRITE_VERSION: u32 = 1;

/// A segment, its format and its length in bytes (for the active segment: what is committed).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SegmentInfo {
    pub seq: u64,
    pub len: u64,
    pub version: u32,
}

impl SegmentInfo {
    pub fn file_name(&self) -> String {
        file_name(self.seq, self.version)
    }
}

/// A segment file of a format this release cannot read (written by a newer data-api).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("segment {} is in storage format {version}; this data-api reads formats {OLDEST_VERSION} to {NEWEST_VERSION} (written by a newer release?)", path.display())]
pub struct UnsupportedVersion {
    pub path: PathBuf,
    pub version: u32,
}

impl UnsupportedVersion {
    /// The error inside an `io::Error` from [`list`], if that is what it is.
    pub fn find(err: &io::Error) -> Option<&Self> {
        err.get_ref()?.downcast_ref::<Self>()
    }
}

/// File name of segment `seq` in format `version`; names sort in sequence order.
pub fn file_name(seq: u64, version: u32) -> String {
    if version <= 1 {
        format!("{PREFIX}{seq:0DIGITS$}{SUFFIX}")
    } else {
        format!("{PREFIX}{seq:0DIGITS$}.v{version}{SUFFIX}")
    }
}

/// The sequence number and format version of a segment file name (any version, known or not),
/// `None` for any other name.
pub fn parse_name(name: &str) -> Option<(u64, u32)> {
    let rest = name.strip_prefix(PREFIX)?.strip_suffix(SUFFIX)?;
    let (digits, version) = match rest.split_once('.') {
        None => (rest, 1),
        Some((digits, tag)) => {
            let number = tag.strip_prefix('v')?;
            // One spelling per version: no leading zero, and format 1 has no tag.
            if number.is_empty()
                || number.starts_with('0')
                || !number.bytes().all(|b| b.is_ascii_digit())
            {
                return None;
            }
            let version: u32 = number.parse().ok()?;
            if version < 2 {
                return None;
            }
            (digits, version)
        }
    };
    if digits.len() != DIGITS || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some((digits.parse().ok()?, version))
}

/// The sequence number of a segment file name, `None` for any other name.
pub fn parse_file_name(name: &str) -> Option<u64> {
    parse_name(name).map(|(seq, _)| seq)
}

/// The segments in `dir`, oldest first. A segment in a format this release does not read is an
/// error ([`UnsupportedVersion`] inside the `io::Error`), and so are two files for one sequence
/// number: neither is guessed around.
pub fn list(io: &dyn StoreIo, dir: &Path) -> io::Result<Vec<SegmentInfo>> {
    let mut segments = Vec::new();
    for (name, len) in io.list_files(dir)? {
        let Some((seq, version)) = parse_name(&name) else {
            continue;
        };
        if !(OLDEST_VERSION..=NEWEST_VERSION).contains(&version) {
            return Err(io::Error::other(UnsupportedVersion {
                path: dir.join(name),
                version,
            }));
        }
        segments.push(SegmentInfo { seq, len, version });
    }
    segments.sort_by_key(|s| s.seq);
    if let Some(pair) = segments.windows(2).find(|w| w[0].seq == w[1].seq) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!(
                "{} holds both {} and {} for one segment",
                dir.display(),
                pair[0].file_name(),
                pair[1].file_name()
            ),
        ));
    }
    Ok(segments)
}

/// What a segment's bytes hold: the length of the leading run of complete, parseable records
/// and the timestamp of the last of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ValidPrefix {
    pub len: u64,
    pub last_time: Option<SystemTime>,
}

/// Scans `data` line by line and stops at the first line that is incomplete or does not parse.
/// Only the tail written after the last sync can be damaged by a crash (every earlier batch was
/// synced before the next was written), so everything from that line on was never acknowledged.
pub fn valid_prefix(data: &[u8]) -> ValidPrefix {
    let mut len = 0usize;
    let mut last_time = None;
    while len < data.len() {
        let rest = &data[len..];
        let Some(newline) = rest.iter().position(|b| *b == b'\n') else {
            break;
        };
        let Some(record) = Record::from_line(&rest[..newline]) else {
            break;
        };
        last_time = record.time().or(last_time);
        len += newline + 1;
    }
    ValidPrefix {
        len: len as u64,
        last_time,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::record::{format_ts, Level};

    fn line(message: &str) -> Vec<u8> {
        Record {
            id: "id".into(),
            ts: format_ts(SystemTime::now()),
            level: Level::Info,
            message: message.into(),
            instance: "i".into(),
        }
        .to_line()
    }

    #[test]
    fn names_round_trip_and_foreign_names_are_ignored() {
        assert_eq!(parse_file_name(&file_name(42, 1)), Some(42));
        assert_eq!(file_name(1, 1), "segment-00000000000000000001.jsonl");
        assert_eq!(file_name(7, 2), "segment-00000000000000000007.v2.jsonl");
        assert_eq!(parse_name(&file_name(7, 2)), Some((7, 2)));
        assert_eq!(
            parse_name("segment-00000000000000000007.v31.jsonl"),
            Some((7, 31))
        );
        for foreign in [
            "segment-00000000000000000001.v1.jsonl",
            "segment-00000000000000000001.v02.jsonl",
            "segment-00000000000000000001.v.jsonl",
            "segment-00000000000000000001.x2.jsonl",
            "segment-1.jsonl",
            "segment-0000000000000000000a.jsonl",
            "notes.txt",
            ".lock",
            "segment-00000000000000000001.jsonl.bak",
        ] {
            assert_eq!(parse_file_name(foreign), None, "{foreign}");
        }
    }

    #[test]
    fn valid_prefix_cuts_a_torn_tail_and_whatever_follows_garbage() {
        let mut data = line("a");
        data.extend(line("b"));
        let good = data.len() as u64;
        assert_eq!(valid_prefix(&data).len, good);

        let mut torn = data.clone();
        torn.extend(&line("c")[..10]);
        assert_eq!(valid_prefix(&torn).len, good);

        // Zeros where an unsynced page never reached the disk, then a complete line.
        let mut holes = data.clone();
        holes.extend([0u8; 100]);
        holes.push(b'\n');
        holes.extend(line("d"));
        assert_eq!(valid_prefix(&holes).len, good);
        assert!(valid_prefix(&holes).last_time.is_some());
        assert_eq!(valid_prefix(b"").len, 0);
    }

    proptest::proptest! {
        /// Wherever a crash cuts the file, exactly the records whose whole line (newline
        /// included) lies before the cut are kept.
        #[test]
        fn valid_prefix_keeps_exactly_the_complete_lines(
            messages in proptest::collection::vec(".{0,40}", 0..12),
            cut_permille in 0u64..=1000,
        ) {
            let mut data = Vec::new();
            let mut boundaries = vec![0u64];
            for m in &messages {
                data.extend(line(m));
                boundaries.push(data.len() as u64);
            }
            let cut = data.len() as u64 * cut_permille / 1000;
            let expected = boundaries.iter().copied().filter(|b| *b <= cut).max().unwrap();
            proptest::prop_assert_eq!(valid_prefix(&data[..cut as usize]).len, expected);
        }
    }
}
