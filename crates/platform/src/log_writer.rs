//! The log writer: log lines are appended to a buffer in memory and written to the stream by a
//! thread of its own, so a request never waits for stdout (a log collector that reads slowly, a
//! pipe nobody reads), and a busy process writes many lines per system call.
//!
//! Why not tracing-appender's non-blocking writer (used before): it sends each line through a
//! channel whose receiver, the writer thread, spins (`sched_yield`) and parks after every line,
//! so each line cost a wake-up (`futex`), a few `sched_yield`s and a `write` of its own. strace at
//! 64 connections counted 2.8 of those system calls per request, more than the request's own two
//! (`recvfrom`, `writev`). Here a line is copied into the buffer under a lock, and the writer is
//! woken only when it has gone to sleep: while lines keep coming it takes what gathered every
//! [`PAUSE`], one `write` for all of them, and after [`QUIET_ROUNDS`] empty rounds it sleeps until
//! the next line. A line waits at most about a millisecond under load.
//!
//! Bounded: beyond [`MAX_BUFFERED`] bytes waiting, lines are dropped and counted
//! ([`LogWriter::dropped`]), never waited for. [`LogWriter::close`] writes what is left; lines
//! logged after it go straight to the stream.

use std::fs::File;
use std::io::{self, Write};
use std::os::fd::AsFd;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle, Thread};
use std::time::Duration;

/// Most bytes waiting for the writer thread (about 30,000 access-log lines); as many again may be
/// in the write under way.
const MAX_BUFFERED: usize = 8 * 1024 * 1024;
/// How long the writer lets lines gather before it writes them.
const PAUSE: Duration = Duration::from_millis(1);
/// Rounds without a line before the writer sleeps until woken.
const QUIET_ROUNDS: u32 = 3;
/// Longest [`LogWriter::close`] waits for the last write.
const CLOSE_WAIT: Duration = Duration::from_secs(1);

/// Where log lines go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogStream {
    Stdout,
    Stderr,
}

/// The handle the subscriber writes through (cheap to clone).
#[derive(Clone)]
pub(crate) struct LogWriter {
    shared: Arc<Shared>,
}

struct Shared {
    stream: LogStream,
    pending: Mutex<Vec<u8>>,
    /// The writer thread is asleep (or about to be): the next line wakes it.
    asleep: AtomicBool,
    closed: AtomicBool,
    dropped: AtomicU64,
    thread: Mutex<Option<(Thread, JoinHandle<()>)>>,
}

impl LogWriter {
    /// Starts the writer thread on `stream`; if no thread can be started, lines are written
    /// straight to the stream.
    pub(crate) fn start(stream: LogStream) -> Self {
        Self::start_on(stream, own_descriptor(stream))
    }

    /// As [`start`](Self::start), writing to `out` (`stream` after [`close`](Self::close)).
    fn start_on(stream: LogStream, out: Box<dyn Write + Send>) -> Self {
        let shared = Arc::new(Shared {
            stream,
            pending: Mutex::new(Vec::with_capacity(64 * 1024)),
            asleep: AtomicBool::new(false),
            closed: AtomicBool::new(false),
            dropped: AtomicU64::new(0),
            thread: Mutex::new(None),
        });
        let worker = shared.clone();
        match thread::Builder::new()
            .name("log-writer".to_string())
            .spawn(move || write_loop(&worker, out))
        {
            Ok(handle) => {
                let thread = handle.thread().clone();
                *lock(&shared.thread) = Some((thread, handle));
            }
            Err(_) => shared.closed.store(true, Ordering::SeqCst),
        }
        Self { shared }
    }

    /// Lines dropped because the buffer was full.
    pub(crate) fn dropped(&self) -> u64 {
        self.shared.dropped.load(Ordering::Relaxed)
    }

    /// Writes everything buffered and stops the thread (waiting at most [`CLOSE_WAIT`]); later
    /// lines are written straight to the stream.
    pub(crate) fn close(&self) {
        self.shared.closed.store(true, Ordering::SeqCst);
        let Some((thread, handle)) = lock(&self.shared.thread).take() else {
            return;
        };
        thread.unpark();
        let (done, finished) = std::sync::mpsc::channel();
        let _ = thread::Builder::new().spawn(move || {
            let _ = handle.join();
            let _ = done.send(());
        });
        let _ = finished.recv_timeout(CLOSE_WAIT);
    }
}

impl std::fmt::Debug for LogWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogWriter")
            .field("stream", &self.shared.stream)
            .finish_non_exhaustive()
    }
}

impl Write for LogWriter {
    /// One call per line (the subscriber writes a formatted line at once).
    fn write(&mut self, line: &[u8]) -> io::Result<usize> {
        let shared = &self.shared;
        if shared.closed.load(Ordering::Acquire) {
            return straight(shared.stream, line);
        }
        {
            let mut pending = lock(&shared.pending);
            if pending.len() + line.len() > MAX_BUFFERED {
                shared.dropped.fetch_add(1, Ordering::Relaxed);
                return Ok(line.len());
            }
            pending.extend_from_slice(line);
        }
        if shared.asleep.swap(false, Ordering::AcqRel) {
            if let Some((thread, _)) = lock(&shared.thread).as_ref() {
                thread.unpark();
            }
        }
        Ok(line.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for LogWriter {
    type Writer = LogWriter;

    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

/// The writer thread: takes what gathered, writes it in one go, pauses; sleeps once quiet.
fn write_loop(shared: &Shared, mut out: Box<dyn Write + Send>) {
    let mut spare = Vec::with_capacity(64 * 1024);
    let mut quiet = 0;
    loop {
        let batch = {
            let mut pending = lock(&shared.pending);
            std::mem::swap(&mut *pending, &mut spare);
            std::mem::take(&mut spare)
        };
        if !batch.is_empty() {
            // A stream that fails (closed, full disk) loses these lines: nothing better to do.
            let _ = out.write_all(&batch).and_then(|()| out.flush());
            quiet = 0;
        } else if shared.closed.load(Ordering::Acquire) {
            return;
        } else {
            quiet += 1;
        }
        spare = batch;
        spare.clear();
        if quiet < QUIET_ROUNDS {
            thread::park_timeout(PAUSE);
            continue;
        }
        // Asleep until a line (or close) wakes it; a line that came in between is seen first.
        shared.asleep.store(true, Ordering::SeqCst);
        if lock(&shared.pending).is_empty() && !shared.closed.load(Ordering::SeqCst) {
            thread::park();
        }
        shared.asleep.store(false, Ordering::SeqCst);
        quiet = 0;
    }
}

/// The stream through a file descriptor of its own, so nothing else's stdout lock or line
/// buffering is in the way; the shared handle when no descriptor is left.
fn own_descriptor(stream: LogStream) -> Box<dyn Write + Send> {
    let fd = match stream {
        LogStream::Stdout => io::stdout().as_fd().try_clone_to_owned(),
        LogStream::Stderr => io::stderr().as_fd().try_clone_to_owned(),
    };
    match (fd, stream) {
        (Ok(fd), _) => Box::new(File::from(fd)),
        (Err(_), LogStream::Stdout) => Box::new(io::stdout()),
        (Err(_), LogStream::Stderr) => Box::new(io::stderr()),
    }
}

fn straight(stream: LogStream, line: &[u8]) -> io::Result<usize> {
    match stream {
        LogStream::Stdout => io::stdout().lock().write_all(line)?,
        LogStream::Stderr => io::stderr().lock().write_all(line)?,
    }
    Ok(line.len())
}

/// A poisoned lock still holds valid bytes (a panic cannot leave a half-appended line: appends
/// do not panic short of allocation failure).
fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use std::sync::mpsc;

    use super::*;

    /// An output that hands each write to the test, after `gate` lets it (a stalled reader).
    struct Output {
        writes: mpsc::Sender<Vec<u8>>,
        gate: Arc<Mutex<()>>,
    }

    impl Write for Output {
        fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
            let _open = lock(&self.gate);
            let _ = self.writes.send(bytes.to_vec());
            Ok(bytes.len())
        }

        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    fn writer() -> (LogWriter, mpsc::Receiver<Vec<u8>>, Arc<Mutex<()>>) {
        let (writes, received) = mpsc::channel();
        let gate = Arc::new(Mutex::new(()));
        let out = Output {
            writes,
            gate: gate.clone(),
        };
        (
            LogWriter::start_on(LogStream::Stderr, Box::new(out)),
            received,
            gate,
        )
    }

    fn received_until(received: &mpsc::Receiver<Vec<u8>>, expected: usize) -> Vec<u8> {
        let mut all = Vec::new();
        while all.len() < expected {
            let write = received
                .recv_timeout(Duration::from_secs(10))
                .expect("the writer writes within 10 s");
            all.extend(write);
        }
        all
    }

    #[test]
    fn lines_arrive_whole_and_in_order_and_after_the_writer_slept() {
        let (mut writer, received, _gate) = writer();
        let mut expected = Vec::new();
        for i in 0..2000 {
            let line = format!("line {i}\n");
            writer.write_all(line.as_bytes()).unwrap();
            expected.extend(line.into_bytes());
        }
        let all = received_until(&received, expected.len());
        assert_eq!(all, expected);
        // The writer falls asleep after a few quiet rounds; the next line wakes it.
        while !writer.shared.asleep.load(Ordering::SeqCst) {
            thread::sleep(PAUSE);
        }
        writer.write_all(b"after a sleep\n").unwrap();
        assert_eq!(received_until(&received, 14), b"after a sleep\n");
    }

    #[test]
    fn a_stalled_output_drops_and_counts_beyond_the_bound_and_close_writes_the_rest() {
        let (mut writer, received, gate) = writer();
        let stalled = lock(&gate);
        let line = vec![b'x'; 1024];
        let bound = MAX_BUFFERED / line.len();
        let lines = 2 * bound + 100;
        for _ in 0..lines {
            writer.write_all(&line).unwrap();
        }
        // Up to a bound's worth in the stalled write, a bound's worth waiting, the rest dropped.
        let dropped = writer.dropped() as usize;
        assert!((100..=bound + 100).contains(&dropped), "dropped {dropped}");
        drop(stalled);
        writer.close();
        let written: usize = received.try_iter().map(|w| w.len()).sum();
        assert_eq!(written as u64, (lines as u64 - writer.dropped()) * 1024);
    }
}
