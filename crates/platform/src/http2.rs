//! HTTP/2 for the services that serve it: the connection settings, and the idle timeout hyper
//! lacks (a connection that keeps no stream open for that long is shut down gracefully, with a
//! GOAWAY, so idle clients cannot hold `MAX_CONNECTIONS` slots forever).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::{Body, HttpBody};
use axum::extract::Request;
use axum::response::Response;
use axum::Router;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::sync::Notify;

use crate::config::ServerArgs;

/// HTTP/2 connection settings; [`Http2Settings::default`] suits a service in a cluster.
#[derive(Debug, Clone, Copy)]
pub struct Http2Settings {
    /// How often a PING checks that a connection's peer is still there.
    pub keep_alive_interval: Duration,
    /// How long a PING may go unanswered before the connection is closed.
    pub keep_alive_timeout: Duration,
    /// How long a connection may have no open stream before it is shut down.
    pub idle_timeout: Duration,
}

impl Default for Http2Settings {
    fn default() -> Self {
        Self {
            keep_alive_interval: Duration::from_secs(20),
            keep_alive_timeout: Duration::from_secs(20),
            idle_timeout: Duration::from_secs(60),
        }
    }
}

/// The HTTP/1 and HTTP/2 connection builder (the protocol is read from the first bytes).
pub(crate) fn builder(args: &ServerArgs, settings: &Http2Settings) -> auto::Builder<TokioExecutor> {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(args.header_read_timeout)
        .max_buf_size(args.max_header_bytes as usize);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_header_list_size(args.max_header_bytes)
        .keep_alive_interval(settings.keep_alive_interval)
        .keep_alive_timeout(settings.keep_alive_timeout);
    builder
}

/// Open requests (streams) of one connection, and a way to wait until it has had none for a
/// while.
#[derive(Default)]
pub(crate) struct Activity {
    open: AtomicUsize,
    changed: Notify,
}

impl Activity {
    /// Resolves once no request has been open for `idle`.
    pub(crate) async fn idle_for(self: Arc<Self>, idle: Duration) {
        loop {
            let changed = self.changed.notified();
            tokio::pin!(changed);
            // Registered before the count is read, so no change between the two is missed.
            changed.as_mut().enable();
            if self.open.load(Ordering::Acquire) == 0 {
                if tokio::time::timeout(idle, changed).await.is_err() {
                    return;
                }
            } else {
                changed.await;
            }
        }
    }

    fn enter(self: &Arc<Self>) -> OpenStream {
        self.open.fetch_add(1, Ordering::AcqRel);
        self.changed.notify_waiters();
        OpenStream(self.clone())
    }
}

/// One open request: from its arrival until its response body is done or dropped.
struct OpenStream(Arc<Activity>);

impl Drop for OpenStream {
    fn drop(&mut self) {
        self.0.open.fetch_sub(1, Ordering::AcqRel);
        self.0.changed.notify_waiters();
    }
}

/// The router of one connection, counting its open requests into [`Activity`].
#[derive(Clone)]
pub(crate) struct Tracked {
    router: Router,
    activity: Arc<Activity>,
}

impl Tracked {
    pub(crate) fn new(router: Router, activity: Arc<Activity>) -> Self {
        Self { router, activity }
    }
}

impl<B> tower::Service<Request<B>> for Tracked
where
    B: HttpBody<Data = axum::body::Bytes> + Send + 'static,
    B::Error: Into<axum::BoxError>,
{
    type Response = Response;
    type Error = std::convert::Infallible;
    type Future = futures_util::future::BoxFuture<'static, Result<Response, Self::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        tower::Service::<Request<B>>::poll_ready(&mut self.router, cx)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        let open = self.activity.enter();
        let response = self.router.call(request);
        Box::pin(async move {
            let response = response.await?;
            Ok(response.map(|body| Body::new(StreamBody { body, _open: open })))
        })
    }
}

/// A response body that keeps its stream counted as open until it is done or dropped.
struct StreamBody {
    body: Body,
    _open: OpenStream,
}

impl HttpBody for StreamBody {
    type Data = axum::body::Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        std::pin::Pin::new(&mut self.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.body.size_hint()
    }
}
