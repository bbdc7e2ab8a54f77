//! One writer per instance folder: an exclusive `flock` on `<instance>/.lock`, so two processes
//! started with the same `INSTANCE_ID` on one `LOG_DIR` (the legacy workers' shared-file bug)
//! cannot both append. The kernel releases it when the process dies, even by SIGKILL.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::fd::AsRawFd;
use std::path::Path;

pub const LOCK_FILE: &str = ".lock";

/// Held while the writer owns the folder.
#[derive(Debug)]
pub struct InstanceLock {
    _file: File,
}

/// Why the lock was not taken.
#[derive(Debug)]
pub enum LockError {
    /// Another live process holds it.
    Held,
    Io(io::Error),
}

impl InstanceLock {
    pub fn acquire(dir: &Path) -> Result<Self, LockError> {
        try_flock(&dir.join(LOCK_FILE)).map(|file| Self { _file: file })
    }
}

/// An exclusive, non-blocking `flock` on `path` (created when missing), held while the returned
/// file is open; [`LockError::Held`] when another open file (any process) holds it.
pub fn try_flock(path: &Path) -> Result<File, LockError> {
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        // A read-only volume cannot create it, but an existing one can still be locked.
        .or_else(|_| File::open(path))
        .map_err(LockError::Io)?;
    // SAFETY: flock on a descriptor we own; no memory is shared with the call.
    let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    if rc == 0 {
        return Ok(file);
    }
    let err = io::Error::last_os_error();
    if err.kind() == io::ErrorKind::WouldBlock {
        Err(LockError::Held)
    } else {
        Err(LockError::Io(err))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_holder_is_refused_until_the_first_lets_go() {
        let dir = tempfile::tempdir().unwrap();
        let first = InstanceLock::acquire(dir.path()).unwrap();
        assert!(matches!(
            InstanceLock::acquire(dir.path()),
            Err(LockError::Held)
        ));
        drop(first);
        InstanceLock::acquire(dir.path()).unwrap();
    }
}
