//! The commit marker: `<instance>/.commit` holds the segment and committed length the writer
//! last made durable. The writer rewrites it (same size, in place) and syncs it after each
//! fdatasync of the data and before acknowledging, so a reader in another process, which would
//! otherwise see written-but-unsynced bytes in the page cache, reads exactly the acknowledged
//! records of that folder and never a torn or in-progress tail.
//!
//! The pair is written twice on one line; a read that races the rewrite sees either both copies
//! equal (a whole old or new marker) or two different copies (retried), never a wrong pair.

use std::fs::File;
use std::io::{self, Read};
use std::path::Path;

pub const MARKER_FILE: &str = ".commit";

/// How often a reader retries a marker caught mid-rewrite before giving up on this read.
const READ_ATTEMPTS: usize = 5;

/// The durable end of a folder: segment `seq` is committed up to `len` bytes; every segment
/// before it is committed whole, every one after it holds nothing committed yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CommitMark {
    pub seq: u64,
    pub len: u64,
}

impl CommitMark {
    /// The marker's bytes: always the same length, so an in-place rewrite covers the old one.
    pub fn encode(self) -> Vec<u8> {
        let pair = format!("{:020} {:020}", self.seq, self.len);
        format!("{pair} {pair}\n").into_bytes()
    }

    /// `None` for anything but two equal, well-formed copies.
    pub fn decode(data: &[u8]) -> Option<Self> {
        let text = std::str::from_utf8(data).ok()?.strip_suffix('\n')?;
        let fields: Vec<&str> = text.split(' ').collect();
        let [seq, len, seq_again, len_again] = fields[..] else {
            return None;
        };
        if seq != seq_again || len != len_again || seq.len() != 20 || len.len() != 20 {
            return None;
        }
        Some(Self {
            seq: seq.parse().ok()?,
            len: len.parse().ok()?,
        })
    }
}

/// The folder's marker; `Ok(None)` when there is none (a folder no writer of this version has
/// opened yet, whose records are therefore not known to be committed).
pub fn read(dir: &Path) -> io::Result<Option<CommitMark>> {
    let path = dir.join(MARKER_FILE);
    for _ in 0..READ_ATTEMPTS {
        let mut data = Vec::new();
        match File::open(&path) {
            Ok(mut file) => file.read_to_end(&mut data)?,
            Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(err) => return Err(err),
        };
        if let Some(mark) = CommitMark::decode(&data) {
            return Ok(Some(mark));
        }
        std::thread::yield_now();
    }
    Err(io::Error::new(
        io::ErrorKind::InvalidData,
        format!("{} does not hold a commit marker", path.display()),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_marker_round_trips_and_any_mix_of_two_markers_is_refused() {
        let old = CommitMark { seq: 7, len: 4096 };
        let new = CommitMark { seq: 8, len: 0 };
        assert_eq!(CommitMark::decode(&old.encode()), Some(old));
        let (a, b) = (old.encode(), new.encode());
        assert_eq!(a.len(), b.len());
        // A read racing the rewrite: the start from one version, the rest from the other.
        for cut in 0..=a.len() {
            for (first, second) in [(&a, &b), (&b, &a)] {
                let mut mixed = first[..cut].to_vec();
                mixed.extend_from_slice(&second[cut..]);
                if let Some(mark) = CommitMark::decode(&mixed) {
                    assert!(mark == old || mark == new, "cut {cut}: {mark:?}");
                    assert!(mixed == a || mixed == b, "cut {cut}");
                }
            }
        }
        assert_eq!(CommitMark::decode(b""), None);
        assert_eq!(CommitMark::decode(&a[..a.len() - 1]), None);
    }

    #[test]
    fn a_missing_marker_is_none_and_a_broken_one_an_error() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(read(dir.path()).unwrap(), None);
        std::fs::write(dir.path().join(MARKER_FILE), b"garbage\n").unwrap();
        assert_eq!(
            read(dir.path()).unwrap_err().kind(),
            io::ErrorKind::InvalidData
        );
        let mark = CommitMark { seq: 3, len: 99 };
        std::fs::write(dir.path().join(MARKER_FILE), mark.encode()).unwrap();
        assert_eq!(read(dir.path()).unwrap(), Some(mark));
    }
}
