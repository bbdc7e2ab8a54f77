//! A value that a watcher may replace while requests read it: each request takes the current
//! value once (an `Arc`), so a reload never changes a value under a request in flight.

use std::fmt;
use std::sync::{Arc, RwLock, Weak};

pub struct Reloadable<T> {
    current: Arc<RwLock<Arc<T>>>,
}

impl<T> Clone for Reloadable<T> {
    fn clone(&self) -> Self {
        Self {
            current: self.current.clone(),
        }
    }
}

/// Never prints the value: it is usually a secret.
impl<T> fmt::Debug for Reloadable<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Reloadable(..)")
    }
}

impl<T> Reloadable<T> {
    /// A value nothing reloads (it came from an environment variable).
    pub fn fixed(value: T) -> Self {
        Self {
            current: Arc::new(RwLock::new(Arc::new(value))),
        }
    }

    /// The value to use for this request.
    pub fn current(&self) -> Arc<T> {
        self.current.read().expect("reloadable lock").clone()
    }

    /// What a watcher holds: it stops once every user of the value is gone.
    pub(crate) fn downgrade(&self) -> Weak<RwLock<Arc<T>>> {
        Arc::downgrade(&self.current)
    }
}

/// Replaces the value behind a watcher's weak handle; false when nobody uses it any more.
pub(crate) fn replace<T>(handle: &Weak<RwLock<Arc<T>>>, value: T) -> bool {
    match handle.upgrade() {
        Some(current) => {
            *current.write().expect("reloadable lock") = Arc::new(value);
            true
        }
        None => false,
    }
}
