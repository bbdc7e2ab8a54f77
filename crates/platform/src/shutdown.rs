//! Shutdown as Kubernetes needs it: the first SIGTERM or SIGINT starts a graceful stop (readiness
//! turns 503, the drain period, then in-flight requests finish); a second signal exits at once.

use tokio_util::sync::CancellationToken;

/// Exit code used when a second signal cuts the graceful stop short.
pub const EXIT_FORCED: i32 = 130;

/// A repeat of the stop signal within this time is taken as the same request.
const REPEAT_DEBOUNCE: std::time::Duration = std::time::Duration::from_millis(300);

/// A cloneable "please stop" flag shared by every server of a process.
#[derive(Clone, Debug, Default)]
pub struct Shutdown {
    token: CancellationToken,
}

impl Shutdown {
    /// A flag that only [`Shutdown::trigger`] sets (tests, embedding).
    pub fn new() -> Self {
        Self::default()
    }

    /// A flag set by the first SIGTERM or SIGINT; the second signal exits the process at once.
    /// The handlers are installed before this returns, so no signal is missed. Must be called
    /// inside a Tokio runtime.
    pub fn on_signals() -> Self {
        let shutdown = Self::new();
        let trigger = shutdown.clone();
        let mut signals = Signals::install();
        tokio::spawn(async move {
            let first = signals.next().await;
            tracing::info!(
                signal = first,
                "shutdown requested: draining, then stopping"
            );
            trigger.trigger();
            // Some supervisors (timeout(1), a process-group kill) deliver one stop twice within
            // microseconds; only a signal sent after a pause means "stop now".
            let first_at = tokio::time::Instant::now();
            let second = loop {
                let signal = signals.next().await;
                if first_at.elapsed() >= REPEAT_DEBOUNCE {
                    break signal;
                }
            };
            tracing::warn!(signal = second, "second signal: exiting at once");
            std::process::exit(EXIT_FORCED);
        });
        shutdown
    }

    pub fn trigger(&self) {
        self.token.cancel();
    }

    pub fn is_triggered(&self) -> bool {
        self.token.is_cancelled()
    }

    /// Resolves once shutdown has been requested.
    pub async fn requested(&self) {
        self.token.cancelled().await
    }
}

#[cfg(unix)]
struct Signals {
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
}

#[cfg(unix)]
impl Signals {
    fn install() -> Self {
        use tokio::signal::unix::{signal, SignalKind};
        Self {
            term: signal(SignalKind::terminate()).expect("install SIGTERM handler"),
            int: signal(SignalKind::interrupt()).expect("install SIGINT handler"),
        }
    }

    async fn next(&mut self) -> &'static str {
        tokio::select! {
            _ = self.term.recv() => "SIGTERM",
            _ = self.int.recv() => "SIGINT",
        }
    }
}

#[cfg(not(unix))]
struct Signals;

#[cfg(not(unix))]
impl Signals {
    fn install() -> Self {
        Signals
    }

    async fn next(&mut self) -> &'static str {
        let _ = tokio::signal::ctrl_c().await;
        "ctrl-c"
    }
}
