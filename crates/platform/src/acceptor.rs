//! The acceptor hook: what turns an accepted TCP connection into the byte stream HTTP is served
//! on. Plain TCP by default; a TLS acceptor implements [`Acceptor`] and is handed to
//! [`Service::acceptor`](crate::Service::acceptor).

use std::future::Future;
use std::io;
use std::pin::Pin;

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;

/// A byte stream HTTP can be served on.
pub trait Connection: AsyncRead + AsyncWrite + Unpin + Send + 'static {}

impl<T: AsyncRead + AsyncWrite + Unpin + Send + 'static> Connection for T {}

/// What an acceptor's `accept` returns.
pub type Accepting = Pin<Box<dyn Future<Output = io::Result<Box<dyn Connection>>> + Send>>;

/// Wraps each accepted TCP connection (a TLS handshake, for example). Runs in the connection's
/// own task, bounded by `HEADER_READ_TIMEOUT`; an error closes that connection only.
pub trait Acceptor: Send + Sync + 'static {
    fn accept(&self, stream: TcpStream) -> Accepting;
}
