//! A deadline for a new connection's first bytes.
//!
//! hyper-util's auto builder reads up to the 24-byte HTTP/2 preface to tell HTTP/1 from HTTP/2,
//! with no timeout of its own, and hyper's header read timeout only starts once it has decided.
//! Without this deadline a connection that sends nothing (or a slow prefix of the preface) holds
//! one of `MAX_CONNECTIONS` forever, and enough of them stop the service from accepting at all.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::Sleep;

const HTTP2_PREFACE: &[u8; 24] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// Fails reads with `TimedOut` when the protocol is still undecided at the deadline: fewer than
/// 24 bytes arrived and all of them match the HTTP/2 preface. Once the bytes diverge from the
/// preface (HTTP/1) or the preface is complete (HTTP/2), the deadline is off and hyper's own
/// timeouts apply.
pub(crate) struct FirstBytesDeadline<S> {
    inner: S,
    received: usize,
    deadline: Option<Pin<Box<Sleep>>>,
}

impl<S> FirstBytesDeadline<S> {
    pub(crate) fn new(inner: S, timeout: Duration) -> Self {
        Self {
            inner,
            received: 0,
            deadline: Some(Box::pin(tokio::time::sleep(timeout))),
        }
    }

    fn saw(&mut self, bytes: &[u8]) {
        for byte in bytes {
            if self.received >= HTTP2_PREFACE.len() || *byte != HTTP2_PREFACE[self.received] {
                self.deadline = None;
                return;
            }
            self.received += 1;
        }
        if self.received >= HTTP2_PREFACE.len() {
            self.deadline = None;
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for FirstBytesDeadline<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let poll = Pin::new(&mut this.inner).poll_read(cx, buf);
        if this.deadline.is_none() {
            return poll;
        }
        match poll {
            Poll::Ready(Ok(())) => {
                let new = buf.filled()[before..].to_vec();
                this.saw(&new);
                Poll::Ready(Ok(()))
            }
            Poll::Pending => match this.deadline.as_mut().map(|d| d.as_mut().poll(cx)) {
                Some(Poll::Ready(())) => Poll::Ready(Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "no request within the header read timeout",
                ))),
                _ => Poll::Pending,
            },
            other => other,
        }
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for FirstBytesDeadline<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    async fn read_all_after(first: &[u8]) -> io::Result<Vec<u8>> {
        let (mut client, server) = tokio::io::duplex(1024);
        client.write_all(first).await.unwrap();
        let mut guarded = FirstBytesDeadline::new(server, Duration::from_millis(200));
        let mut out = vec![0u8; first.len()];
        guarded.read_exact(&mut out).await?;
        // The client stays connected and silent: only the deadline can end this read.
        let mut more = [0u8; 1];
        let result = tokio::time::timeout(Duration::from_secs(2), guarded.read(&mut more)).await;
        drop(client);
        match result {
            Ok(Ok(_)) => Ok(out),
            Ok(Err(e)) => Err(e),
            Err(_) => Ok(out),
        }
    }

    #[tokio::test]
    async fn a_silent_connection_times_out() {
        let (_client, server) = tokio::io::duplex(64);
        let mut guarded = FirstBytesDeadline::new(server, Duration::from_millis(100));
        let err = guarded.read(&mut [0u8; 8]).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
    }

    #[tokio::test]
    async fn a_partial_http2_preface_times_out() {
        let err = read_all_after(b"PRI * HTTP").await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
    }

    #[tokio::test]
    async fn http1_and_a_complete_preface_are_left_to_hyper() {
        assert!(read_all_after(b"GET").await.is_ok());
        assert!(read_all_after(HTTP2_PREFACE).await.is_ok());
    }
}
