//! The server side: a [`Listener`] accepts TCP connections ([`Incoming`]) whose TLS
//! handshakes then run in their own tasks, each giving an [`Accepted`] connection.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustls::ServerConfig;
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::{TlsAcceptor, TlsStream};

use super::error::ConnectError;
use super::handshake::{within_timeout, HANDSHAKE_TIMEOUT};
use super::settings::{Mode, Negotiated};
use super::stream::{CountedTcp, Stream};

/// A listening socket that hands out connections, with TLS if it has a server config.
#[derive(Debug)]
pub struct Listener {
    tcp: TcpListener,
    tls: Option<Arc<ServerConfig>>,
}

impl Listener {
    /// Binds `addr` (use port 0 to let the system choose). With `tls` set, every accepted
    /// connection must complete a TLS handshake before it is used.
    pub async fn bind(addr: SocketAddr, tls: Option<Arc<ServerConfig>>) -> io::Result<Self> {
        let tcp = TcpListener::bind(addr).await?;
        Ok(Listener { tcp, tls })
    }

    /// The address actually bound.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.tcp.local_addr()
    }

    /// Whether connections are plaintext or TLS.
    pub fn mode(&self) -> Mode {
        if self.tls.is_some() {
            Mode::Tls
        } else {
            Mode::Plain
        }
    }

    /// Accepts the next TCP connection. The TLS handshake, if any, happens in
    /// [`Incoming::handshake`], so that a slow or hostile peer delays only its own task.
    pub async fn accept(&self) -> io::Result<Incoming> {
        let (tcp, peer) = self.tcp.accept().await?;
        tcp.set_nodelay(true)?;
        Ok(Incoming {
            tcp,
            peer,
            tls: self.tls.clone(),
        })
    }
}

/// An accepted TCP connection whose TLS handshake (if any) has not happened yet.
#[derive(Debug)]
pub struct Incoming {
    tcp: TcpStream,
    peer: SocketAddr,
    tls: Option<Arc<ServerConfig>>,
}

/// A server-side connection ready for use.
#[derive(Debug)]
pub struct Accepted {
    /// The stream.
    pub stream: Stream,
    /// The peer's address.
    pub peer: SocketAddr,
    /// What the handshake settled on (`None` for plaintext).
    pub negotiated: Option<Negotiated>,
    /// How long the server side of the handshake took.
    pub handshake: Duration,
}

impl Incoming {
    /// The peer's address.
    pub fn peer(&self) -> SocketAddr {
        self.peer
    }

    /// Completes the TLS handshake (a no-op for plaintext) within [`HANDSHAKE_TIMEOUT`].
    pub async fn handshake(self) -> Result<Accepted, ConnectError> {
        self.handshake_within(HANDSHAKE_TIMEOUT).await
    }

    /// Completes the TLS handshake (a no-op for plaintext) within `limit`: a peer that
    /// says nothing, or too slowly, fails with [`FailureCategory::Timeout`].
    ///
    /// [`FailureCategory::Timeout`]: super::FailureCategory::Timeout
    pub async fn handshake_within(self, limit: Duration) -> Result<Accepted, ConnectError> {
        let peer = self.peer;
        let Some(config) = self.tls else {
            return Ok(Accepted {
                stream: Stream::Plain(self.tcp.into()),
                peer,
                negotiated: None,
                handshake: Duration::ZERO,
            });
        };
        let start = Instant::now();
        let name = peer.to_string();
        let accept = TlsAcceptor::from(config).accept(CountedTcp::from(self.tcp));
        let tls = within_timeout(&name, peer, limit, accept).await?;
        let handshake = start.elapsed();
        let negotiated = Some(Negotiated::from_common(tls.get_ref().1));
        Ok(Accepted {
            stream: Stream::Tls(Box::new(TlsStream::Server(tls))),
            peer,
            negotiated,
            handshake,
        })
    }
}
