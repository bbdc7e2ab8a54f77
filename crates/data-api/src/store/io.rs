//! The store's I/O seam: every file-system call the writer makes goes through [`StoreIo`], so
//! tests can inject a full or read-only volume where the machine cannot mount a small one.
//! Readers of committed data and the instance lock use the real file system directly.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::Path;
use std::sync::{Arc, Mutex};

/// The file-system operations the writer needs.
pub trait StoreIo: Send + Sync + 'static {
    fn create_dir_all(&self, path: &Path) -> io::Result<()>;
    fn is_dir(&self, path: &Path) -> bool;
    /// Regular files in `path`: name and length. Names that are not UTF-8 are skipped.
    fn list_files(&self, path: &Path) -> io::Result<Vec<(String, u64)>>;
    fn read_file(&self, path: &Path) -> io::Result<Vec<u8>>;
    /// Opens for appending; `create_new` fails if the file exists, otherwise it is created when
    /// missing.
    fn open_append(&self, path: &Path, create_new: bool) -> io::Result<Box<dyn SegmentFile>>;
    /// Opens (creating when missing) a small file whose `write_all` rewrites it in place from
    /// offset 0: the commit marker.
    fn open_in_place(&self, path: &Path) -> io::Result<Box<dyn SegmentFile>>;
    fn remove_file(&self, path: &Path) -> io::Result<()>;
    /// Makes created and removed directory entries durable.
    fn sync_dir(&self, path: &Path) -> io::Result<()>;
}

/// A file opened for appending.
pub trait SegmentFile: Send {
    fn write_all(&mut self, buf: &[u8]) -> io::Result<()>;
    /// `fdatasync`: the data and the length that reading it needs are on disk.
    fn sync_data(&mut self) -> io::Result<()>;
    fn set_len(&mut self, len: u64) -> io::Result<()>;
    /// False once the file was removed from its directory (the write would be lost).
    fn is_linked(&self) -> io::Result<bool>;
}

/// The real file system.
#[derive(Debug, Clone, Copy, Default)]
pub struct RealIo;

impl StoreIo for RealIo {
    fn create_dir_all(&self, path: &Path) -> io::Result<()> {
        fs::create_dir_all(path)
    }

    fn is_dir(&self, path: &Path) -> bool {
        path.is_dir()
    }

    fn list_files(&self, path: &Path) -> io::Result<Vec<(String, u64)>> {
        let mut files = Vec::new();
        for entry in fs::read_dir(path)? {
            let entry = entry?;
            let Ok(name) = entry.file_name().into_string() else {
                continue;
            };
            match entry.metadata() {
                Ok(meta) if meta.is_file() => files.push((name, meta.len())),
                Ok(_) => {}
                // Removed between listing and stat: not there any more.
                Err(err) if err.kind() == io::ErrorKind::NotFound => {}
                Err(err) => return Err(err),
            }
        }
        Ok(files)
    }

    fn read_file(&self, path: &Path) -> io::Result<Vec<u8>> {
        fs::read(path)
    }

    fn open_append(&self, path: &Path, create_new: bool) -> io::Result<Box<dyn SegmentFile>> {
        let mut options = OpenOptions::new();
        options.append(true);
        if create_new {
            options.create_new(true);
        } else {
            options.create(true);
        }
        Ok(Box::new(RealFile {
            file: options.open(path)?,
            in_place: false,
        }))
    }

    fn open_in_place(&self, path: &Path) -> io::Result<Box<dyn SegmentFile>> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)?;
        Ok(Box::new(RealFile {
            file,
            in_place: true,
        }))
    }

    fn remove_file(&self, path: &Path) -> io::Result<()> {
        fs::remove_file(path)
    }

    fn sync_dir(&self, path: &Path) -> io::Result<()> {
        File::open(path)?.sync_all()
    }
}

/// A real file: appended to, or (`in_place`, not opened for appending, where `pwrite` would
/// append) rewritten from offset 0.
struct RealFile {
    file: File,
    in_place: bool,
}

impl SegmentFile for RealFile {
    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        if self.in_place {
            self.file.write_all_at(buf, 0)
        } else {
            self.file.write_all(buf)
        }
    }

    fn sync_data(&mut self) -> io::Result<()> {
        self.file.sync_data()
    }

    fn set_len(&mut self, len: u64) -> io::Result<()> {
        self.file.set_len(len)
    }

    fn is_linked(&self) -> io::Result<bool> {
        Ok(self.file.metadata()?.nlink() > 0)
    }
}

/// A volume fault to inject.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Writes and syncs fail with ENOSPC, as on a full volume.
    Full,
    /// Every change fails with EROFS, as on a volume remounted read-only.
    ReadOnly,
}

impl Fault {
    fn error(self) -> io::Error {
        match self {
            Fault::Full => io::Error::from_raw_os_error(libc::ENOSPC),
            Fault::ReadOnly => io::Error::from_raw_os_error(libc::EROFS),
        }
    }
}

/// The real file system with faults switched on and off by a test ([`FaultyIo::set`]).
#[derive(Debug, Clone, Default)]
pub struct FaultyIo {
    fault: Arc<Mutex<Option<Fault>>>,
}

impl FaultyIo {
    pub fn new() -> Self {
        Self::default()
    }

    /// Injects `fault` into every later call (and into files already open); `None` heals.
    pub fn set(&self, fault: Option<Fault>) {
        *self.fault.lock().expect("fault lock") = fault;
    }

    fn check(fault: &Mutex<Option<Fault>>, applies: impl Fn(Fault) -> bool) -> io::Result<()> {
        match *fault.lock().expect("fault lock") {
            Some(f) if applies(f) => Err(f.error()),
            _ => Ok(()),
        }
    }

    fn read_only(&self) -> io::Result<()> {
        Self::check(&self.fault, |f| f == Fault::ReadOnly)
    }
}

impl StoreIo for FaultyIo {
    fn create_dir_all(&self, path: &Path) -> io::Result<()> {
        self.read_only()?;
        RealIo.create_dir_all(path)
    }

    fn is_dir(&self, path: &Path) -> bool {
        RealIo.is_dir(path)
    }

    fn list_files(&self, path: &Path) -> io::Result<Vec<(String, u64)>> {
        RealIo.list_files(path)
    }

    fn read_file(&self, path: &Path) -> io::Result<Vec<u8>> {
        RealIo.read_file(path)
    }

    fn open_append(&self, path: &Path, create_new: bool) -> io::Result<Box<dyn SegmentFile>> {
        self.read_only()?;
        let inner = RealIo.open_append(path, create_new)?;
        Ok(Box::new(FaultyFile {
            inner,
            fault: self.fault.clone(),
        }))
    }

    fn open_in_place(&self, path: &Path) -> io::Result<Box<dyn SegmentFile>> {
        self.read_only()?;
        let inner = RealIo.open_in_place(path)?;
        Ok(Box::new(FaultyFile {
            inner,
            fault: self.fault.clone(),
        }))
    }

    fn remove_file(&self, path: &Path) -> io::Result<()> {
        self.read_only()?;
        RealIo.remove_file(path)
    }

    fn sync_dir(&self, path: &Path) -> io::Result<()> {
        self.read_only()?;
        RealIo.sync_dir(path)
    }
}

struct FaultyFile {
    inner: Box<dyn SegmentFile>,
    fault: Arc<Mutex<Option<Fault>>>,
}

impl SegmentFile for FaultyFile {
    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        match *self.fault.lock().expect("fault lock") {
            // A full volume takes part of the write, like a short write before ENOSPC, so the
            // writer's rollback is exercised.
            Some(Fault::Full) => {
                let part = &buf[..buf.len() / 2];
                self.inner.write_all(part)?;
                Err(Fault::Full.error())
            }
            Some(fault) => Err(fault.error()),
            None => self.inner.write_all(buf),
        }
    }

    fn sync_data(&mut self) -> io::Result<()> {
        FaultyIo::check(&self.fault, |f| f == Fault::ReadOnly)?;
        self.inner.sync_data()
    }

    fn set_len(&mut self, len: u64) -> io::Result<()> {
        FaultyIo::check(&self.fault, |f| f == Fault::ReadOnly)?;
        self.inner.set_len(len)
    }

    fn is_linked(&self) -> io::Result<bool> {
        self.inner.is_linked()
    }
}
