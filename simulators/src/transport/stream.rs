//! A connected [`Stream`], plaintext or TLS, over a TCP socket that counts the bytes read
//! from it ([`CountedTcp`]), and the byte counts of the application and of the kernel
//! ([`ByteCounter`]).

use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};

use rustls_pki_types::CertificateDer;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::TlsStream;

use super::readahead::ReadAhead;

/// A connected stream, plaintext or TLS, client or server side.
#[derive(Debug)]
pub enum Stream {
    /// Plain TCP.
    Plain(CountedTcp),
    /// TLS over TCP (client or server side).
    Tls(Box<TlsStream<CountedTcp>>),
}

/// A TCP stream that counts the bytes read from the socket: for TLS, below the TLS layer
/// (records, headers, tags and all), so that what the application took off the wire can be
/// checked against the kernel's own count ([`ByteCounter`]). A relaxed atomic add or two
/// per read.
#[derive(Debug)]
pub struct CountedTcp {
    tcp: TcpStream,
    counts: Arc<Counts>,
    /// Set for TLS: reads go through `ahead` (see [`CountedTcp::reading_ahead`]).
    read_ahead: bool,
    ahead: ReadAhead,
}

impl From<TcpStream> for CountedTcp {
    fn from(tcp: TcpStream) -> Self {
        CountedTcp {
            tcp,
            counts: Arc::default(),
            read_ahead: false,
            ahead: ReadAhead::default(),
        }
    }
}

impl CountedTcp {
    /// Reads up to [`READ_AHEAD`] bytes at a time whatever the reader above asks for.
    /// For TLS: rustls asks for 4 KiB at a time, which would take three system calls for
    /// a 9 KB frame (and a fourth to find the socket empty); one read ahead takes it all,
    /// and a short read tells the runtime the socket is empty. The buffer is held only
    /// while bytes wait in it.
    pub fn reading_ahead(mut self) -> Self {
        self.read_ahead = true;
        self
    }

    /// The TCP stream inside.
    pub fn get_ref(&self) -> &TcpStream {
        &self.tcp
    }

    /// The TCP stream inside, no longer counted. Server streams, which do not read ahead,
    /// are the ones taken apart; bytes read ahead and not taken yet would be lost.
    pub fn into_inner(self) -> TcpStream {
        debug_assert!(
            self.ahead.buffered().is_empty(),
            "bytes read ahead are dropped"
        );
        self.tcp
    }
}

impl AsyncRead for CountedTcp {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let me = self.get_mut();
        let polled = if me.read_ahead {
            me.ahead.poll_read(cx, Pin::new(&mut me.tcp), buf)
        } else {
            let before = buf.filled().len();
            Pin::new(&mut me.tcp)
                .poll_read(cx, buf)
                .map_ok(|()| buf.filled().len().saturating_sub(before))
        };
        if let Poll::Ready(Ok(n)) = polled {
            me.counts.read.fetch_add(n as u64, Ordering::Relaxed);
            let ahead = me.ahead.buffered().len() as u64;
            me.counts.ahead.store(ahead, Ordering::Relaxed);
        }
        polled.map_ok(|_| ())
    }
}

impl AsyncWrite for CountedTcp {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().tcp).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().tcp).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.tcp.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().tcp).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().tcp).poll_shutdown(cx)
    }
}

/// What a [`CountedTcp`] has counted.
#[derive(Debug, Default)]
struct Counts {
    /// Bytes handed to the reader above (TLS, or the application).
    read: AtomicU64,
    /// Bytes read from the socket ahead of it, not handed up yet.
    ahead: AtomicU64,
}

/// Reads a connection's byte counts, also after its stream has been split into halves:
/// the bytes the application read from the socket and the bytes the kernel's TCP stack
/// received. Valid while the stream it came from is open (it refers to its descriptor).
#[derive(Clone, Debug)]
pub struct ByteCounter {
    #[cfg(unix)]
    fd: std::os::fd::RawFd,
    counts: Arc<Counts>,
}

impl ByteCounter {
    /// Bytes read from the socket so far (below TLS) and handed up.
    pub fn bytes_read(&self) -> u64 {
        self.counts.read.load(Ordering::Relaxed)
    }

    /// Bytes of TCP payload the kernel has received on this connection
    /// (`tcpi_bytes_received` of `TCP_INFO`, Linux 4.1 and later), whether or not the
    /// application has read them yet. `None` where the kernel does not say.
    pub fn bytes_received_by_kernel(&self) -> Option<u64> {
        #[cfg(target_os = "linux")]
        {
            kernel_bytes_received(self.fd)
        }
        #[cfg(not(target_os = "linux"))]
        {
            None
        }
    }

    /// Bytes the kernel has received but the application not read yet (`SIOCINQ`).
    pub fn bytes_queued_in_kernel(&self) -> Option<u64> {
        #[cfg(target_os = "linux")]
        {
            let mut n: libc::c_int = 0;
            // SAFETY: SIOCINQ (FIONREAD) writes one int to the pointer given, which is valid.
            let rc = unsafe { libc::ioctl(self.fd, libc::FIONREAD, &mut n) };
            (rc == 0).then(|| u64::try_from(n).unwrap_or(0))
        }
        #[cfg(not(target_os = "linux"))]
        {
            None
        }
    }

    /// Bytes the kernel has handed to the application and the application passed on:
    /// received, minus still queued, minus read ahead and not passed on yet. Compared with
    /// [`ByteCounter::bytes_read`] at the same instant, this checks the application's own
    /// count against the kernel's.
    pub fn bytes_delivered_by_kernel(&self) -> Option<u64> {
        let received = self.bytes_received_by_kernel()?;
        let ahead = self.counts.ahead.load(Ordering::Relaxed);
        Some(
            received
                .saturating_sub(self.bytes_queued_in_kernel()?)
                .saturating_sub(ahead),
        )
    }
}

#[cfg(target_os = "linux")]
fn kernel_bytes_received(fd: std::os::fd::RawFd) -> Option<u64> {
    let mut info = std::mem::MaybeUninit::<libc::tcp_info>::zeroed();
    let mut len = std::mem::size_of::<libc::tcp_info>() as libc::socklen_t;
    // SAFETY: `info` is writable memory of `len` bytes; getsockopt writes at most `len`
    // bytes and reports how many. A descriptor that is no longer a TCP socket makes the
    // call fail; it cannot make it write elsewhere.
    let rc = unsafe {
        libc::getsockopt(
            fd,
            libc::IPPROTO_TCP,
            libc::TCP_INFO,
            info.as_mut_ptr().cast(),
            &mut len,
        )
    };
    let needed = std::mem::offset_of!(libc::tcp_info, tcpi_bytes_received) + 8;
    if rc != 0 || (len as usize) < needed {
        return None;
    }
    // SAFETY: zeroed and then (partly) written by the kernel: every bit pattern is a valid
    // `tcp_info` (plain integers), and the field read was written (len checked above).
    let info = unsafe { info.assume_init() };
    Some(info.tcpi_bytes_received)
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_write_vectored(cx, bufs),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            Stream::Plain(s) => s.is_write_vectored(),
            Stream::Tls(s) => s.is_write_vectored(),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_flush(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

impl Stream {
    /// The TCP socket underneath.
    fn tcp(&self) -> &CountedTcp {
        match self {
            Stream::Plain(s) => s,
            Stream::Tls(s) => s.get_ref().0,
        }
    }

    /// A handle on this connection's byte counts that outlives splitting the stream.
    pub fn byte_counter(&self) -> ByteCounter {
        let tcp = self.tcp();
        ByteCounter {
            #[cfg(unix)]
            fd: std::os::fd::AsRawFd::as_raw_fd(&tcp.tcp),
            counts: tcp.counts.clone(),
        }
    }

    /// Bytes of TCP payload the kernel has received on this connection (`TCP_INFO`);
    /// `None` where the kernel does not say. See [`ByteCounter::bytes_received_by_kernel`].
    pub fn bytes_received_by_kernel(&self) -> Option<u64> {
        self.byte_counter().bytes_received_by_kernel()
    }

    /// The certificate chain the peer presented, leaf first: `None` for plaintext and for
    /// a peer that sent none (a client without a certificate, as every client here). On a
    /// resumed session it is the chain remembered from the original handshake.
    pub fn peer_certificates(&self) -> Option<&[CertificateDer<'static>]> {
        match self {
            Stream::Plain(_) => None,
            Stream::Tls(s) => s.get_ref().1.peer_certificates(),
        }
    }

    /// Queues a TLS close_notify alert, to be written by the next write or flush, without
    /// shutting down the TCP connection: the peer can still answer with its own
    /// close_notify (and anything it had to send first, such as TLS 1.3 session tickets),
    /// which a read then reports as the end of the stream. Does nothing for plaintext.
    /// `shutdown` sends close_notify too, but also closes the sending half of TCP.
    pub fn send_close_notify(&mut self) {
        if let Stream::Tls(s) = self {
            s.get_mut().1.send_close_notify();
        }
    }
}
