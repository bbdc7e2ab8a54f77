//! Readiness: `/readyz` is 200 only while every check passes and the process is not draining.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};

use serde::Serialize;

type Check = Arc<dyn Fn() -> Result<(), String> + Send + Sync>;

/// Shared readiness state of one service. Cheap to clone.
#[derive(Clone, Default)]
pub struct Readiness {
    inner: Arc<Inner>,
}

#[derive(Default)]
struct Inner {
    draining: AtomicBool,
    checks: RwLock<Vec<(String, Check)>>,
}

/// The `/readyz` body: overall status and each check's result.
#[derive(Debug, Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct ReadinessReport {
    /// `ready` or `not_ready`.
    pub status: String,
    /// Each check by name: `ok`, or the reason it fails.
    pub checks: std::collections::BTreeMap<String, String>,
}

impl Readiness {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a named check, evaluated on every `/readyz` request; keep it cheap (read a flag).
    pub fn add_check(
        &self,
        name: impl Into<String>,
        check: impl Fn() -> Result<(), String> + Send + Sync + 'static,
    ) {
        self.inner
            .checks
            .write()
            .expect("readiness lock")
            .push((name.into(), Arc::new(check)));
    }

    /// From now on `/readyz` answers 503 (graceful shutdown has begun).
    pub fn set_draining(&self) {
        self.inner.draining.store(true, Ordering::SeqCst);
    }

    pub fn is_draining(&self) -> bool {
        self.inner.draining.load(Ordering::SeqCst)
    }

    /// Evaluates every check.
    pub fn report(&self) -> (bool, ReadinessReport) {
        let mut checks = std::collections::BTreeMap::new();
        let mut ready = true;
        let draining = self.is_draining();
        checks.insert(
            "draining".to_string(),
            if draining {
                "shutting down".to_string()
            } else {
                "ok".to_string()
            },
        );
        ready &= !draining;
        for (name, check) in self.inner.checks.read().expect("readiness lock").iter() {
            match check() {
                Ok(()) => {
                    checks.insert(name.clone(), "ok".to_string());
                }
                Err(reason) => {
                    ready = false;
                    checks.insert(name.clone(), reason);
                }
            }
        }
        let status = if ready { "ready" } else { "not_ready" }.to_string();
        (ready, ReadinessReport { status, checks })
    }
}
