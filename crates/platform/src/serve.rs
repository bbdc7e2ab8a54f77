//! The accept loop of a bound service, and its graceful stop: `/readyz` 503 at once, keep serving
//! for the drain period, stop accepting, let in-flight requests finish up to the shutdown timeout.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::ServerArgs;
use crate::connection::ConnectionServer;
use crate::readiness::Readiness;
use crate::shutdown::Shutdown;

/// A bound service, ready to serve.
pub struct RunningService {
    pub(crate) name: &'static str,
    pub(crate) listener: TcpListener,
    pub(crate) local_addr: SocketAddr,
    pub(crate) args: ServerArgs,
    pub(crate) readiness: Readiness,
    pub(crate) connections: ConnectionServer,
}

impl RunningService {
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    pub fn readiness(&self) -> &Readiness {
        &self.readiness
    }

    /// Serves until `shutdown` is requested, then drains and stops (see the module's text).
    pub async fn serve(self, shutdown: Shutdown) -> io::Result<()> {
        let RunningService {
            name,
            listener,
            local_addr: _,
            args,
            readiness,
            connections,
        } = self;

        let open = TaskTracker::new();
        let stop_connections = CancellationToken::new();
        let permits = Arc::new(Semaphore::new(args.max_connections as usize));

        // Readiness turns 503 the moment shutdown is requested, while the accept loop goes on
        // for the drain period so that in-flight routing changes can catch up.
        let stop_accepting = {
            let readiness = readiness.clone();
            let drain = args.drain_period;
            async move {
                shutdown.requested().await;
                readiness.set_draining();
                tracing::info!(service = name, drain = ?drain, "draining");
                tokio::time::sleep(drain).await;
            }
        };
        tokio::pin!(stop_accepting);

        loop {
            let permit = tokio::select! {
                _ = &mut stop_accepting => break,
                permit = permits.clone().acquire_owned() => permit.expect("semaphore never closed"),
            };
            let stream = tokio::select! {
                _ = &mut stop_accepting => break,
                accepted = listener.accept() => match accepted {
                    Ok((stream, _peer)) => stream,
                    Err(err) => {
                        // Out of file descriptors and similar: back off instead of spinning.
                        tracing::warn!(service = name, error = %err, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                },
            };
            let connections = connections.clone();
            let stop = stop_connections.clone();
            open.spawn(async move {
                connections.serve(stream, stop).await;
                drop(permit);
            });
        }
        drop(listener);
        tracing::info!(
            service = name,
            "stopped accepting; finishing in-flight requests"
        );
        stop_connections.cancel();
        open.close();
        match tokio::time::timeout(args.shutdown_timeout, open.wait()).await {
            Ok(()) => tracing::info!(service = name, "stopped gracefully"),
            Err(_) => tracing::warn!(
                service = name,
                timeout = ?args.shutdown_timeout,
                "shutdown timeout reached; closing remaining connections"
            ),
        }
        Ok(())
    }
}
