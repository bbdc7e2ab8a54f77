//! The latest report, shared by the page, the status API and the badges: built from the history
//! file at start and again after every run, off the async threads, so requests answer from memory.

use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};

use tokio::sync::Notify;

use crate::report::{Report, ReportBuilder};

/// The window the page and the status API report on (the longest uptime they show).
pub const WINDOW: Duration = Duration::from_secs(7 * 86_400);

/// Cheap to clone: clones share the report.
#[derive(Clone)]
pub struct Board {
    inner: Arc<Inner>,
}

struct Inner {
    history: PathBuf,
    interval: Duration,
    latest: RwLock<Option<Arc<Report>>>,
    changed: Notify,
}

impl Board {
    /// A board holding the report of whatever history `history` already has (none when the
    /// file does not exist yet).
    pub async fn load(history: PathBuf, interval: Duration) -> Self {
        let board = Self {
            inner: Arc::new(Inner {
                history,
                interval,
                latest: RwLock::new(None),
                changed: Notify::new(),
            }),
        };
        board.rebuild().await;
        board
    }

    /// The latest report; none before the first probe was written.
    pub fn latest(&self) -> Option<Arc<Report>> {
        self.inner.latest.read().expect("board lock").clone()
    }

    /// How often the loop probes (and so how often the page is worth refreshing).
    pub fn interval(&self) -> Duration {
        self.inner.interval
    }

    /// A run appended to the history: rebuild soon (never blocks the loop).
    pub fn history_changed(&self) {
        self.inner.changed.notify_one();
    }

    /// Rebuilds after each [`Self::history_changed`]; runs until aborted.
    pub async fn rebuild_after_runs(self) {
        loop {
            self.inner.changed.notified().await;
            self.rebuild().await;
        }
    }

    async fn rebuild(&self) {
        let path = self.inner.history.clone();
        let built = tokio::task::spawn_blocking(move || {
            let now = SystemTime::now();
            let mut builder = ReportBuilder::new(now.checked_sub(WINDOW));
            builder.read_history(&path).map(|()| builder.finish(now))
        })
        .await
        .unwrap_or_else(|join| std::panic::resume_unwind(join.into_panic()));
        match built {
            Ok(report) => *self.inner.latest.write().expect("board lock") = Some(Arc::new(report)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => tracing::warn!(error = %e, "cannot read the health history for the page"),
        }
    }
}
