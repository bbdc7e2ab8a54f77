//! Keeps a value read from a secret file current while the service runs.
//!
//! The file's directory is watched (inotify through `notify`), not the file: the kubelet updates a
//! Secret volume by renaming a new `..data` symlink over the old one, editors and `kubectl cp`
//! replace the file, and some tools edit it in place; each of these is an event in the
//! directory. A periodic check is the fallback for events that never come (a path whose link
//! points elsewhere, an exhausted inotify limit). A reload that fails keeps the current value,
//! says so once in the log (without the value) and counts in `secret_reloads_total`.

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock, Weak};
use std::time::Duration;

use notify::{RecursiveMode, Watcher};
use secrecy::{ExposeSecret, SecretString};
use tokio::sync::mpsc;

use crate::reloadable::{self, Reloadable};
use crate::secret_file::{self, SecretFileError};
use crate::secret_metrics::SecretMetrics;

/// How often the file is read even without an event.
pub const FALLBACK_CHECK: Duration = Duration::from_secs(10);
/// Events come in bursts (a swap is a create and a rename): wait for the burst to end.
const SETTLE: Duration = Duration::from_millis(100);

type Parse<T> = Arc<dyn Fn(&str) -> Result<T, String> + Send + Sync>;

/// Reads `path` now (an error is the caller's start error) and keeps the value current from
/// then on. `name` is the secret's metric label and log field. Needs a Tokio runtime.
pub fn watch<T, F>(
    name: &'static str,
    path: &Path,
    parse: F,
    metrics: &SecretMetrics,
) -> Result<Reloadable<T>, SecretFileError>
where
    T: Send + Sync + 'static,
    F: Fn(&str) -> Result<T, String> + Send + Sync + 'static,
{
    watch_every(name, path, Arc::new(parse), metrics, FALLBACK_CHECK)
}

pub(crate) fn watch_every<T: Send + Sync + 'static>(
    name: &'static str,
    path: &Path,
    parse: Parse<T>,
    metrics: &SecretMetrics,
    fallback: Duration,
) -> Result<Reloadable<T>, SecretFileError> {
    // Watching before the first read: a change between the two is never missed.
    let (tx, events) = mpsc::channel::<()>(1);
    let watcher = start_watcher(name, path, tx);
    let (raw, value) = secret_file::load(path, &*parse)?;
    let reloadable = Reloadable::fixed(value);
    metrics.loaded(name);
    let state = WatchState {
        name,
        path: path.to_path_buf(),
        parse,
        target: reloadable.downgrade(),
        in_use: raw,
        failing: None,
        metrics: metrics.clone(),
    };
    tokio::spawn(state.run(watcher, events, fallback));
    Ok(reloadable)
}

/// Watches the file's directory; without a watcher the periodic check still runs.
fn start_watcher(
    name: &'static str,
    path: &Path,
    tx: mpsc::Sender<()>,
) -> Option<notify::RecommendedWatcher> {
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        if event.is_ok() {
            // Full means a check is already due: this event adds nothing.
            let _ = tx.try_send(());
        }
    })
    .and_then(|mut watcher| {
        watcher.watch(&dir, RecursiveMode::NonRecursive)?;
        Ok(watcher)
    });
    match watcher {
        Ok(watcher) => Some(watcher),
        Err(err) => {
            tracing::warn!(secret = name, dir = %dir.display(), error = %err,
                "cannot watch the secret's directory; checking every {}s instead",
                FALLBACK_CHECK.as_secs());
            None
        }
    }
}

struct WatchState<T> {
    name: &'static str,
    path: PathBuf,
    parse: Parse<T>,
    target: Weak<RwLock<Arc<T>>>,
    /// The content in use, to tell a change from an event that changed nothing.
    in_use: SecretString,
    /// The failure last reported, so a failure that lasts is logged and counted once.
    failing: Option<String>,
    metrics: SecretMetrics,
}

impl<T> WatchState<T> {
    /// `_watcher` lives as long as the loop: dropping it ends the watch.
    async fn run(
        mut self,
        _watcher: Option<notify::RecommendedWatcher>,
        mut events: mpsc::Receiver<()>,
        fallback: Duration,
    ) {
        let mut tick = tokio::time::interval(fallback);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tick.tick().await;
        loop {
            tokio::select! {
                Some(()) = events.recv() => {
                    tokio::time::sleep(SETTLE).await;
                    while events.try_recv().is_ok() {}
                }
                _ = tick.tick() => {}
            }
            if !self.check() {
                return;
            }
        }
    }

    /// Reads the file and takes a changed value; false once nobody uses the value any more.
    /// The read is a small local file, done inline.
    fn check(&mut self) -> bool {
        if self.target.strong_count() == 0 {
            return false;
        }
        match secret_file::load(&self.path, &*self.parse) {
            Ok((raw, value)) => {
                let recovered = self.failing.take().is_some();
                if raw.expose_secret() == self.in_use.expose_secret() && !recovered {
                    return true;
                }
                if !reloadable::replace(&self.target, value) {
                    return false;
                }
                self.in_use = raw;
                self.metrics.reloaded(self.name);
                tracing::info!(secret = self.name, path = %self.path.display(), "secret reloaded");
            }
            Err(err) => {
                let reason = err.to_string();
                if self.failing.as_deref() != Some(reason.as_str()) {
                    self.metrics.failed(self.name);
                    tracing::warn!(secret = self.name, error = %reason,
                        "secret reload failed; the current value stays in use");
                    self.failing = Some(reason);
                }
            }
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::MetricsRegistry;
    use std::os::unix::fs::symlink;

    const NAME: &str = "test_key";

    fn parse(text: &str) -> Result<String, String> {
        if text.contains(' ') {
            return Err("has a space".to_string());
        }
        Ok(text.to_string())
    }

    fn metric(registry: &MetricsRegistry, outcome: &str) -> f64 {
        let page = registry.encode();
        let series = format!("secret_reloads_total{{secret=\"{NAME}\",outcome=\"{outcome}\"}} ");
        page.lines()
            .find_map(|l| l.strip_prefix(&series))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or_else(|| panic!("no {series} in\n{page}"))
    }

    /// Polls (bounded: 10 s) until the value is `want`.
    async fn until(value: &Reloadable<String>, want: &str) {
        for _ in 0..200 {
            if *value.current() == want {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("value never became {want:?}, is {:?}", value.current());
    }

    /// The kubelet's way: a new timestamped folder, a `..data_tmp` link renamed over `..data`.
    fn kubelet_swap(dir: &Path, generation: u32, content: &str) {
        let folder = format!("..2026_12_01_13_00_0{generation}.{generation}");
        std::fs::create_dir(dir.join(&folder)).unwrap();
        std::fs::write(dir.join(&folder).join("key"), content).unwrap();
        symlink(&folder, dir.join("..data_tmp")).unwrap();
        std::fs::rename(dir.join("..data_tmp"), dir.join("..data")).unwrap();
    }

    #[tokio::test]
    async fn kubelet_swap_replace_and_in_place_edit_are_picked_up() {
        let dir = tempfile::tempdir().unwrap();
        kubelet_swap(dir.path(), 1, "first\n");
        symlink("..data/key", dir.path().join("key")).unwrap();
        let registry = MetricsRegistry::new();
        let metrics = SecretMetrics::register(&registry);
        // A fallback far away: the watcher alone must see each change.
        let value = watch_every(
            NAME,
            &dir.path().join("key"),
            Arc::new(parse),
            &metrics,
            Duration::from_secs(3600),
        )
        .unwrap();
        assert_eq!(*value.current(), "first");

        kubelet_swap(dir.path(), 2, "second");
        until(&value, "second").await;

        // Replaced: written elsewhere, renamed over the path.
        std::fs::remove_file(dir.path().join("key")).unwrap();
        std::fs::write(dir.path().join("key.new"), "third").unwrap();
        std::fs::rename(dir.path().join("key.new"), dir.path().join("key")).unwrap();
        until(&value, "third").await;

        // Edited in place.
        std::fs::write(dir.path().join("key"), "fourth").unwrap();
        until(&value, "fourth").await;
        assert_eq!(metric(&registry, "ok"), 3.0);
        assert_eq!(metric(&registry, "failed"), 0.0);
    }

    #[tokio::test]
    async fn a_failed_reload_keeps_the_value_and_counts_once() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("key");
        std::fs::write(&path, "good").unwrap();
        let registry = MetricsRegistry::new();
        let metrics = SecretMetrics::register(&registry);
        let value = watch_every(
            NAME,
            &path,
            Arc::new(parse),
            &metrics,
            Duration::from_millis(100),
        )
        .unwrap();

        std::fs::remove_file(&path).unwrap();
        for _ in 0..200 {
            if metric(&registry, "failed") >= 1.0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        // Several fallback checks later the same failure is still counted once.
        tokio::time::sleep(Duration::from_millis(400)).await;
        assert_eq!(metric(&registry, "failed"), 1.0);
        assert_eq!(*value.current(), "good");

        std::fs::write(&path, "bad value").unwrap();
        for _ in 0..200 {
            if metric(&registry, "failed") >= 2.0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert_eq!(metric(&registry, "failed"), 2.0);
        assert_eq!(*value.current(), "good");

        std::fs::write(&path, "better").unwrap();
        until(&value, "better").await;
        assert_eq!(metric(&registry, "ok"), 1.0);
    }
}
