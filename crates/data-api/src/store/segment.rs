//! Segment files: `segment-<20-digit sequence>.jsonl` in the instance's folder. Any other file
//! there (or in `LOG_DIR`) is not the store's and is left alone.

use std::io;
use std::path::Path;
use std::time::SystemTime;

use super::io::StoreIo;
use super::record::Record;

const PREFIX: &str = "segment-";
const SUFFIX: &str = ".jsonl";
const DIGITS: usize = 20;

/// A segment and its length in bytes (for the active segment: what is committed).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SegmentInfo {
    pub seq: u64,
    pub len: u64,
}

/// File name of segment `seq`; names sort in sequence order.
pub fn file_name(seq: u64) -> String {
    format!("{PREFIX}{seq:0DIGITS$}{SUFFIX}")
}

/// The sequence number of a segment file name, `None` for any other name.
pub fn parse_file_name(name: &str) -> Option<u64> {
    let digits = name.strip_prefix(PREFIX)?.strip_suffix(SUFFIX)?;
    if digits.len() != DIGITS || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// The segments in `dir`, oldest first.
pub fn list(io: &dyn StoreIo, dir: &Path) -> io::Result<Vec<SegmentInfo>> {
    let mut segments: Vec<SegmentInfo> = io
        .list_files(dir)?
        .into_iter()
        .filter_map(|(name, len)| parse_file_name(&name).map(|seq| SegmentInfo { seq, len }))
        .collect();
    segments.sort_by_key(|s| s.seq);
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
        assert_eq!(parse_file_name(&file_name(42)), Some(42));
        assert_eq!(file_name(1), "segment-00000000000000000001.jsonl");
        for foreign in [
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
