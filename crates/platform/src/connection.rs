//! Serving one accepted connection: through the acceptor hook, with HTTP/1 only or HTTP/1 and
//! HTTP/2 (where the service serves it), until it ends, goes idle (HTTP/2) or the server stops.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;

use crate::acceptor::{Acceptor, Connection};
use crate::config::ServerArgs;
use crate::first_bytes::FirstBytesDeadline;
use crate::http2::{self, Activity, Http2Settings, Tracked};

/// Runs a hyper connection to its end; once `$stop` resolves, lets its requests finish and closes
/// it. A macro: hyper's two connection types share no trait, and a function generic over them
/// defeats the compiler's proof that the connection task is `Send`.
macro_rules! serve_until {
    ($connection:expr, $stop:expr) => {{
        let connection = $connection;
        tokio::pin!(connection);
        tokio::select! {
            _ = connection.as_mut() => {}
            _ = $stop => {
                connection.as_mut().graceful_shutdown();
                let _ = connection.await;
            }
        }
    }};
}

/// How a service's connections are served; built once, shared by every connection.
#[derive(Clone)]
pub(crate) struct ConnectionServer {
    inner: Arc<Inner>,
}

struct Inner {
    router: Router,
    protocol: Protocol,
    acceptor: Option<Arc<dyn Acceptor>>,
    /// Bounds the acceptor (a TLS handshake) and the first bytes as the request head is bounded.
    header_read_timeout: Duration,
}

enum Protocol {
    Http1(http1::Builder),
    Http1And2 {
        builder: auto::Builder<TokioExecutor>,
        idle_timeout: Duration,
    },
}

impl ConnectionServer {
    pub(crate) fn new(
        router: Router,
        args: &ServerArgs,
        http2: Option<Http2Settings>,
        acceptor: Option<Arc<dyn Acceptor>>,
    ) -> Self {
        let protocol = match http2 {
            None => {
                let mut builder = http1::Builder::new();
                builder
                    .timer(TokioTimer::new())
                    .header_read_timeout(args.header_read_timeout)
                    .max_buf_size(args.max_header_bytes as usize);
                Protocol::Http1(builder)
            }
            Some(settings) => Protocol::Http1And2 {
                builder: http2::builder(args, &settings),
                idle_timeout: settings.idle_timeout,
            },
        };
        Self {
            inner: Arc::new(Inner {
                router,
                protocol,
                acceptor,
                header_read_timeout: args.header_read_timeout,
            }),
        }
    }

    /// Serves `stream` until the connection ends; once `stop` is cancelled, in-flight requests
    /// finish and the connection closes.
    pub(crate) async fn serve(&self, stream: TcpStream, stop: CancellationToken) {
        let _ = stream.set_nodelay(true);
        let inner = &self.inner;
        match &inner.acceptor {
            None => self.serve_on(stream, stop).await,
            Some(acceptor) => {
                let accepted =
                    tokio::time::timeout(inner.header_read_timeout, acceptor.accept(stream)).await;
                match accepted {
                    Ok(Ok(connection)) => self.serve_on(connection, stop).await,
                    Ok(Err(err)) => tracing::debug!(error = %err, "acceptor refused a connection"),
                    Err(_) => tracing::debug!("acceptor timed out"),
                }
            }
        }
    }

    async fn serve_on<C: Connection>(&self, connection: C, stop: CancellationToken) {
        // Closes, without an answer, a connection that sends nothing or only part of the HTTP/2
        // preface (hyper would answer a partial head with a 408 and keep the slot until then).
        let connection = FirstBytesDeadline::new(connection, self.inner.header_read_timeout);
        match &self.inner.protocol {
            Protocol::Http1(builder) => {
                let service = TowerToHyperService::new(self.inner.router.clone());
                serve_until!(
                    builder.serve_connection(TokioIo::new(connection), service),
                    stop.cancelled()
                );
            }
            Protocol::Http1And2 {
                builder,
                idle_timeout,
            } => {
                let activity = Arc::new(Activity::default());
                let service = TowerToHyperService::new(Tracked::new(
                    self.inner.router.clone(),
                    activity.clone(),
                ));
                let idle = activity.idle_for(*idle_timeout);
                let served = builder.serve_connection(TokioIo::new(connection), service);
                serve_until!(served, async {
                    tokio::select! {
                        _ = stop.cancelled() => {}
                        _ = idle => {}
                    }
                });
            }
        }
    }
}
