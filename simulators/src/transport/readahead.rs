//! Read-ahead that costs no memory while a connection waits: a [`ReadAhead`] borrows a
//! buffer from its thread's spares when it reads, and gives it back as soon as everything
//! in it has been taken. Thousands of idle connections hold no buffer at all; a busy one
//! reads a whole frame (or many) in one system call instead of one per 4 KiB, and no
//! frame allocates once the spares exist.
//!
//! [`ReadAheadReader`] puts one in front of any reader, as a `BufRead` that lends its
//! buffer out between frames.

use std::cell::RefCell;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncBufRead, AsyncRead, ReadBuf};

/// Bytes read at once: two TLS records, or a few `sub` frames.
pub const READ_AHEAD: usize = 32 * 1024;

/// Spare buffers a thread keeps for its connections' next reads.
const SPARES_PER_THREAD: usize = 32;

thread_local! {
    static SPARES: RefCell<Vec<Box<[u8]>>> = const { RefCell::new(Vec::new()) };
}

/// A buffer from this thread's spares, or a new one.
fn borrow() -> Box<[u8]> {
    SPARES
        .with(|s| s.borrow_mut().pop())
        .unwrap_or_else(|| vec![0u8; READ_AHEAD].into_boxed_slice())
}

/// Returns a buffer to this thread's spares (dropped when there are enough).
fn give_back(buf: Box<[u8]>) {
    SPARES.with(|s| {
        let mut spares = s.borrow_mut();
        if spares.len() < SPARES_PER_THREAD {
            spares.push(buf);
        }
    });
}

/// Bytes read ahead of what the reader above has taken, in a buffer held only while
/// there are some.
#[derive(Debug, Default)]
pub struct ReadAhead {
    buf: Option<Box<[u8]>>,
    start: usize,
    end: usize,
}

impl ReadAhead {
    /// The bytes read and not taken yet.
    pub fn buffered(&self) -> &[u8] {
        match &self.buf {
            Some(b) => &b[self.start..self.end],
            None => &[],
        }
    }

    /// Marks `n` buffered bytes as taken; the buffer goes back once all are.
    pub fn consume(&mut self, n: usize) {
        self.start = (self.start + n).min(self.end);
        if self.start == self.end {
            self.release();
        }
    }

    fn release(&mut self) {
        self.start = 0;
        self.end = 0;
        if let Some(b) = self.buf.take() {
            give_back(b);
        }
    }

    /// Reads from `src` when nothing is buffered. Ready with nothing buffered is the end
    /// of the stream; the count is the bytes read now (0 when some were buffered).
    pub fn poll_fill<R: AsyncRead + ?Sized>(
        &mut self,
        cx: &mut Context<'_>,
        src: Pin<&mut R>,
    ) -> Poll<io::Result<usize>> {
        if self.start < self.end {
            return Poll::Ready(Ok(0));
        }
        let mut buf = self.buf.take().unwrap_or_else(borrow);
        let mut rb = ReadBuf::new(&mut buf[..]);
        let polled = src.poll_read(cx, &mut rb);
        let n = rb.filled().len();
        match polled {
            Poll::Ready(Ok(())) if n > 0 => {
                self.buf = Some(buf);
                self.start = 0;
                self.end = n;
                Poll::Ready(Ok(n))
            }
            other => {
                give_back(buf);
                other.map_ok(|()| 0)
            }
        }
    }

    /// Copies buffered bytes into `dst`; how many.
    pub fn copy_to(&mut self, dst: &mut ReadBuf<'_>) -> usize {
        let n = self.buffered().len().min(dst.remaining());
        dst.put_slice(&self.buffered()[..n]);
        self.consume(n);
        n
    }

    /// Reads from `src` into `dst` through the read-ahead (straight into `dst` when nothing
    /// is buffered and `dst` has room for a whole read-ahead); the bytes put in `dst`.
    pub fn poll_read<R: AsyncRead + ?Sized>(
        &mut self,
        cx: &mut Context<'_>,
        mut src: Pin<&mut R>,
        dst: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<usize>> {
        if self.buffered().is_empty() && dst.remaining() >= READ_AHEAD {
            let before = dst.filled().len();
            return src
                .as_mut()
                .poll_read(cx, dst)
                .map_ok(|()| dst.filled().len().saturating_sub(before));
        }
        self.poll_fill(cx, src).map_ok(|_| self.copy_to(dst))
    }
}

impl Drop for ReadAhead {
    fn drop(&mut self) {
        self.release();
    }
}

/// A buffered reader whose buffer is lent out whenever it is empty (see the module).
#[derive(Debug)]
pub struct ReadAheadReader<R> {
    inner: R,
    ahead: ReadAhead,
}

impl<R> ReadAheadReader<R> {
    /// Reads `inner` through a read-ahead.
    pub fn new(inner: R) -> Self {
        ReadAheadReader {
            inner,
            ahead: ReadAhead::default(),
        }
    }

    /// The bytes read ahead and not taken yet.
    pub fn buffered(&self) -> &[u8] {
        self.ahead.buffered()
    }

    /// The reader inside; bytes read ahead and not taken are lost.
    pub fn into_inner(self) -> R {
        let ReadAheadReader { inner, ahead } = self;
        drop(ahead);
        inner
    }
}

impl<R: AsyncRead + Unpin> AsyncRead for ReadAheadReader<R> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let me = self.get_mut();
        me.ahead
            .poll_read(cx, Pin::new(&mut me.inner), buf)
            .map_ok(|_| ())
    }
}

impl<R: AsyncRead + Unpin> AsyncBufRead for ReadAheadReader<R> {
    fn poll_fill_buf(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<&[u8]>> {
        let me = self.get_mut();
        match me.ahead.poll_fill(cx, Pin::new(&mut me.inner)) {
            Poll::Ready(Ok(_)) => Poll::Ready(Ok(me.ahead.buffered())),
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => Poll::Pending,
        }
    }

    fn consume(self: Pin<&mut Self>, amt: usize) {
        self.get_mut().ahead.consume(amt);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt};

    #[tokio::test]
    async fn reads_everything_in_order_and_lends_the_buffer_back_between_reads() {
        let (mut a, b) = tokio::io::duplex(64 * 1024);
        let data: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
        let sent = data.clone();
        let writer = tokio::spawn(async move {
            for piece in sent.chunks(7_000) {
                a.write_all(piece).await?;
            }
            a.shutdown().await
        });
        let mut rd = ReadAheadReader::new(b);
        let mut got = Vec::new();
        let mut small = [0u8; 100];
        loop {
            // Alternate small reads with taking what is buffered.
            let n = rd.read(&mut small).await.expect("read");
            if n == 0 {
                break;
            }
            got.extend_from_slice(&small[..n]);
            let chunk = rd.fill_buf().await.expect("fill");
            let m = chunk.len().min(3_000);
            got.extend_from_slice(&chunk[..m]);
            rd.consume(m);
        }
        writer.await.expect("writer task").expect("write");
        assert_eq!(got, data);
        assert!(rd.ahead.buf.is_none(), "the buffer is held at the end");
    }

    #[test]
    fn an_empty_read_ahead_holds_no_buffer_and_a_drained_one_gives_it_back() {
        let mut ahead = ReadAhead::default();
        assert!(ahead.buffered().is_empty());
        ahead.buf = Some(borrow());
        ahead.end = 10;
        ahead.consume(4);
        assert_eq!(ahead.buffered().len(), 6);
        let before = SPARES.with(|s| s.borrow().len());
        ahead.consume(100);
        assert!(ahead.buf.is_none());
        assert_eq!(SPARES.with(|s| s.borrow().len()), before + 1);
    }
}
