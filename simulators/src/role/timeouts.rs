//! How long a server waits on its peers ([`ServerTimeouts`]), and the writer that holds a
//! peer to the write deadline ([`StallGuard`]).
//!
//! A server must not keep a connection, a task or a buffer for a peer that has stopped
//! taking part: one that connects and never speaks, sends its request a byte at a time,
//! goes quiet between requests, or never reads what it is sent. Each such connection is
//! closed once its deadline passes and counted under a failure category:
//!
//! - `timeout`: the peer did not send what was due in time (its TLS handshake, its first
//!   request, or its next request);
//! - `stalled`: the peer stopped reading: a write made no progress for
//!   [`ServerTimeouts::write_stall`].

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::AsyncWrite;
use tokio::time::Sleep;

use crate::transport::HANDSHAKE_TIMEOUT;

/// Default of [`ServerTimeouts::first_request`].
pub const FIRST_REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// Default of [`ServerTimeouts::idle`]: long, because real sessions poll every few
/// seconds to minutes and stay connected in between.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(120);
/// Default of [`ServerTimeouts::write_stall`]: far longer than any pause a reading client
/// makes, short enough that a client that has gone away without a word is let go.
pub const WRITE_STALL_TIMEOUT: Duration = Duration::from_secs(30);

/// The failure category of a connection whose deadline to send passed.
pub(crate) const TIMEOUT: &str = "timeout";
/// The failure category of a connection that stopped reading.
pub(crate) const STALLED: &str = "stalled";

/// How long a server waits on each connection's peer. The defaults suit a real run;
/// tests of hostile peers set them to a second or two.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ServerTimeouts {
    /// The TLS handshake, from the TCP accept ([`HANDSHAKE_TIMEOUT`], 10 s).
    pub handshake: Duration,
    /// From the handshake to the last byte of the first request
    /// ([`FIRST_REQUEST_TIMEOUT`], 10 s): a peer that never speaks, or sends its request a
    /// byte at a time, is closed then.
    pub first_request: Duration,
    /// From the end of one answer to the last byte of the next request
    /// ([`IDLE_TIMEOUT`], 120 s), for servers that take several requests per connection.
    pub idle: Duration,
    /// How long a write may make no progress because the peer does not read
    /// ([`WRITE_STALL_TIMEOUT`], 30 s).
    pub write_stall: Duration,
}

impl Default for ServerTimeouts {
    fn default() -> Self {
        ServerTimeouts {
            handshake: HANDSHAKE_TIMEOUT,
            first_request: FIRST_REQUEST_TIMEOUT,
            idle: IDLE_TIMEOUT,
            write_stall: WRITE_STALL_TIMEOUT,
        }
    }
}

impl ServerTimeouts {
    /// Every deadline set to `d`: for tests that want hostile peers dealt with quickly.
    pub fn all(d: Duration) -> Self {
        ServerTimeouts {
            handshake: d,
            first_request: d,
            idle: d,
            write_stall: d,
        }
    }
}

/// A writer that fails with [`io::ErrorKind::TimedOut`] when a write, flush or shutdown
/// stays blocked (the peer not reading, its buffers full) for longer than its limit; any
/// progress starts the wait afresh.
#[derive(Debug)]
pub(crate) struct StallGuard<W> {
    inner: W,
    limit: Duration,
    /// Armed while the inner writer is blocked.
    timer: Option<Pin<Box<Sleep>>>,
}

impl<W> StallGuard<W> {
    /// Guards `inner` with `limit`.
    pub(crate) fn new(inner: W, limit: Duration) -> Self {
        StallGuard {
            inner,
            limit,
            timer: None,
        }
    }

    /// Whether `err` is this guard's verdict of a stalled peer.
    pub(crate) fn is_stall(err: &io::Error) -> bool {
        err.kind() == io::ErrorKind::TimedOut
    }

    /// Passes on a ready result (disarming the timer), or checks the timer while blocked.
    fn watch<T>(&mut self, cx: &mut Context<'_>, poll: Poll<io::Result<T>>) -> Poll<io::Result<T>> {
        match poll {
            Poll::Ready(r) => {
                self.timer = None;
                Poll::Ready(r)
            }
            Poll::Pending => {
                let limit = self.limit;
                let timer = self
                    .timer
                    .get_or_insert_with(|| Box::pin(tokio::time::sleep(limit)));
                match timer.as_mut().poll(cx) {
                    Poll::Ready(()) => {
                        self.timer = None;
                        Poll::Ready(Err(io::Error::new(
                            io::ErrorKind::TimedOut,
                            format!("the peer read nothing for {limit:?}"),
                        )))
                    }
                    Poll::Pending => Poll::Pending,
                }
            }
        }
    }
}

impl<W: AsyncWrite + Unpin> AsyncWrite for StallGuard<W> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let me = self.get_mut();
        let poll = Pin::new(&mut me.inner).poll_write(cx, buf);
        me.watch(cx, poll)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let me = self.get_mut();
        let poll = Pin::new(&mut me.inner).poll_write_vectored(cx, bufs);
        me.watch(cx, poll)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let me = self.get_mut();
        let poll = Pin::new(&mut me.inner).poll_flush(cx);
        me.watch(cx, poll)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let me = self.get_mut();
        let poll = Pin::new(&mut me.inner).poll_shutdown(cx);
        me.watch(cx, poll)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncWriteExt;

    #[tokio::test]
    async fn a_writer_nobody_reads_fails_after_its_limit_and_one_that_drains_does_not() {
        // A pipe of 64 bytes: the reader decides whether writes make progress.
        let (w, mut r) = tokio::io::duplex(64);
        let mut guarded = StallGuard::new(w, Duration::from_secs(1));
        // Reads every 50 ms (each pause far shorter than the limit) until it has 1 KiB,
        // then stops reading but keeps the pipe open.
        let reader = tokio::spawn(async move {
            let mut buf = [0u8; 64];
            let mut total = 0;
            while total < 1024 {
                tokio::time::sleep(Duration::from_millis(50)).await;
                total += tokio::io::AsyncReadExt::read(&mut r, &mut buf)
                    .await
                    .expect("read");
            }
            r
        });
        let mut written = 0;
        let e = loop {
            match guarded.write_all(&[7u8; 256]).await {
                Ok(()) => written += 256,
                Err(e) => break e,
            }
        };
        assert!(StallGuard::<()>::is_stall(&e), "{e}");
        // The slow reader was never taken for a stalled one.
        assert!(written >= 1024 - 64, "only {written} bytes went out");
        let _still_open = reader.await.expect("reader");
    }
}
