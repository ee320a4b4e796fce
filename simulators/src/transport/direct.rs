//! A server connection written from any thread, with no task in between: the socket's
//! non-blocking writes, and for TLS the rustls session behind a lock. A recording server's
//! pacer hands each frame to the socket itself the moment it is due; only a connection that
//! cannot take it (a full socket buffer) needs an async task to wait for room.
//!
//! Nothing here decides what to do with a frame the socket does not take: the caller keeps
//! the rest and comes back when [`DirectIo::writable`] says there is room.

use std::io::{self, IoSlice, Read, Write};
use std::sync::{Mutex, MutexGuard};

use rustls::ServerConnection;
use tokio::net::TcpStream;
use tokio_rustls::TlsStream;

use super::Stream;

/// A server connection for direct writes.
#[derive(Debug)]
pub struct DirectIo {
    tcp: TcpStream,
    tls: Option<Mutex<ServerConnection>>,
}

/// What a write handed to the connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Sent {
    /// Bytes of the message taken: by the socket (plaintext) or by the TLS session, which
    /// encrypts them. All of it, part of it, or none when the socket buffer was full.
    pub taken: usize,
    /// Whether nothing taken is left waiting in a TLS session's send buffer (always true
    /// for plaintext); if something is, [`DirectIo::try_flush`] later.
    pub flushed: bool,
}

/// `io::Write` over non-blocking socket writes (a full socket is `WouldBlock`).
struct TryWrite<'a>(&'a TcpStream);

impl Write for TryWrite<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.try_write(buf)
    }

    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        self.0.try_write_vectored(bufs)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl DirectIo {
    /// The server side of an accepted stream, for direct writes. Plaintext already
    /// received stays with it (a TLS session keeps what it decrypted).
    pub fn from_stream(stream: Stream) -> io::Result<DirectIo> {
        match stream {
            Stream::Plain(tcp) => Ok(DirectIo {
                tcp: tcp.into_inner(),
                tls: None,
            }),
            Stream::Tls(tls) => match *tls {
                TlsStream::Server(s) => {
                    let (tcp, session) = s.into_inner();
                    Ok(DirectIo {
                        tcp: tcp.into_inner(),
                        tls: Some(Mutex::new(session)),
                    })
                }
                TlsStream::Client(_) => Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    "direct writes are for the server side of a connection",
                )),
            },
        }
    }

    fn session(&self) -> Option<io::Result<MutexGuard<'_, ServerConnection>>> {
        self.tls.as_ref().map(|m| {
            m.lock()
                .map_err(|_| io::Error::other("TLS session lock poisoned"))
        })
    }

    /// Hands `head` then `body` to the connection now, as far as it takes them without
    /// waiting: in one vectored write (plaintext) or through the session (TLS), which
    /// encrypts as much as its buffer holds, pushes the records to the socket, and takes
    /// more until the message is in or the socket is full.
    pub fn try_send(&self, head: &[u8], body: &[u8]) -> io::Result<Sent> {
        let Some(session) = self.session() else {
            let bufs = [IoSlice::new(head), IoSlice::new(body)];
            let taken = match self.tcp.try_write_vectored(&bufs) {
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => 0,
                Err(e) => return Err(e),
            };
            return Ok(Sent {
                taken,
                flushed: true,
            });
        };
        let mut session = session?;
        let total = head.len() + body.len();
        let mut taken = 0;
        while taken < total {
            let (a, b): (&[u8], &[u8]) = if taken < head.len() {
                (&head[taken..], body)
            } else {
                (&body[taken - head.len()..], &[])
            };
            let n = session
                .writer()
                .write_vectored(&[IoSlice::new(a), IoSlice::new(b)])?;
            if n > 0 {
                taken += n;
            } else if !push(&mut session, &self.tcp)? {
                // The session's buffer is full and the socket takes no more.
                return Ok(Sent {
                    taken,
                    flushed: false,
                });
            }
        }
        let flushed = push(&mut session, &self.tcp)?;
        Ok(Sent { taken, flushed })
    }

    /// Pushes what a TLS session still holds to the socket; `true` when nothing is left
    /// (always, for plaintext).
    pub fn try_flush(&self) -> io::Result<bool> {
        match self.session() {
            None => Ok(true),
            Some(session) => push(&mut *session?, &self.tcp),
        }
    }

    /// Waits until the socket has room again.
    pub async fn writable(&self) -> io::Result<()> {
        self.tcp.writable().await
    }

    /// Reads what the peer sent into `buf` (decrypted, for TLS): `Ok(0)` when it closed.
    /// Waits until something arrives.
    pub async fn read(&self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            if let Some(session) = self.session() {
                // Plaintext the session already holds comes first.
                let mut session = session?;
                match session.reader().read(buf) {
                    Ok(n) => return Ok(n),
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                    Err(e) => return Err(e),
                }
            }
            self.tcp.readable().await?;
            let mut raw = [0u8; 4096];
            let n = match self.tcp.try_read(&mut raw) {
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                Err(e) => return Err(e),
            };
            let Some(session) = self.session() else {
                let n = n.min(buf.len());
                buf[..n].copy_from_slice(&raw[..n]);
                return Ok(n);
            };
            let mut session = session?;
            if n == 0 {
                // The peer closed the socket: what the session decrypted is all there is.
                return match session.reader().read(buf) {
                    Ok(n) => Ok(n),
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(0),
                    Err(e) => Err(e),
                };
            }
            let mut fed = &raw[..n];
            while !fed.is_empty() {
                session.read_tls(&mut fed)?;
                session
                    .process_new_packets()
                    .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
            }
            // Whatever the session wants to send in answer goes out with the next write.
            let _ = push(&mut session, &self.tcp);
        }
    }

    /// Ends the sending side: TLS close_notify (pushed as far as the socket takes it), then
    /// the TCP write shutdown.
    pub fn close(&self) {
        if let Some(Ok(mut session)) = self.session() {
            session.send_close_notify();
            let _ = push(&mut session, &self.tcp);
        }
        #[cfg(unix)]
        {
            use std::os::fd::AsRawFd;
            // SAFETY: shutdown(2) on a descriptor this stream owns; it only changes the
            // socket's state.
            unsafe {
                libc::shutdown(self.tcp.as_raw_fd(), libc::SHUT_WR);
            }
        }
    }
}

/// Writes a session's pending records to the socket until it is empty (`true`) or the
/// socket is full (`false`).
fn push(session: &mut ServerConnection, tcp: &TcpStream) -> io::Result<bool> {
    while session.wants_write() {
        match session.write_tls(&mut TryWrite(tcp)) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
            Err(e) => return Err(e),
        }
    }
    Ok(true)
}
