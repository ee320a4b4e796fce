//! The client side: a [`Connector`] dials servers and gives [`Connected`] streams with
//! their setup timings.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustls::ClientConfig;
use rustls_pki_types::{CertificateDer, ServerName};
use tokio::net::TcpStream;
use tokio_rustls::{TlsConnector, TlsStream};

use super::error::{ConnectError, FailureCategory};
use super::handshake::{within_timeout, HANDSHAKE_TIMEOUT};
use super::legacy;
use super::settings::{Mode, Negotiated};
use super::stream::{CountedTcp, Stream};

/// Dials servers, plaintext or with a TLS client config (or as a client that offers only
/// TLS 1.1, which no current server should accept).
#[derive(Clone, Debug)]
pub struct Connector {
    tls: Option<Arc<ClientConfig>>,
    tls11_only: bool,
}

/// A client-side connection ready for use, with its setup timings.
#[derive(Debug)]
pub struct Connected {
    /// The stream.
    pub stream: Stream,
    /// Time for the TCP connection to be established.
    pub tcp_connect: Duration,
    /// Time for the TLS handshake after TCP was up (zero for plaintext).
    pub handshake: Duration,
    /// What the handshake settled on (`None` for plaintext).
    pub negotiated: Option<Negotiated>,
}

impl Connector {
    /// A connector for plaintext links.
    pub fn plain() -> Self {
        Connector {
            tls: None,
            tls11_only: false,
        }
    }

    /// A connector for TLS links with this client configuration.
    pub fn tls(config: Arc<ClientConfig>) -> Self {
        Connector {
            tls: Some(config),
            tls11_only: false,
        }
    }

    /// A connector that offers only TLS 1.1 (see [`legacy`]): every connection
    /// fails, with the server's answer as the reason.
    pub fn tls11_only() -> Self {
        Connector {
            tls: None,
            tls11_only: true,
        }
    }

    /// Whether this connector speaks plaintext or TLS.
    pub fn mode(&self) -> Mode {
        if self.tls.is_some() || self.tls11_only {
            Mode::Tls
        } else {
            Mode::Plain
        }
    }

    /// Connects to `addr`, verifying (for TLS) that the server is `host`.
    pub async fn connect(&self, addr: SocketAddr, host: &str) -> Result<Connected, ConnectError> {
        let start = Instant::now();
        let tcp = TcpStream::connect(addr).await.map_err(|e| {
            ConnectError::new(
                host,
                addr,
                FailureCategory::Connect,
                format!("TCP connect: {e}"),
            )
        })?;
        let tcp_connect = start.elapsed();
        tcp.set_nodelay(true).map_err(|e| {
            ConnectError::new(
                host,
                addr,
                FailureCategory::Connect,
                format!("TCP_NODELAY: {e}"),
            )
        })?;
        if self.tls11_only {
            return Err(legacy::offer_tls11(tcp, host, addr).await);
        }
        let Some(config) = &self.tls else {
            return Ok(Connected {
                stream: Stream::Plain(tcp.into()),
                tcp_connect,
                handshake: Duration::ZERO,
                negotiated: None,
            });
        };
        let name = ServerName::try_from(host.to_owned()).map_err(|e| {
            ConnectError::new(
                host,
                addr,
                FailureCategory::WrongHost,
                format!("{host:?} is not a valid DNS name or IP address: {e}"),
            )
        })?;
        let start = Instant::now();
        let tcp = CountedTcp::from(tcp).reading_ahead();
        let connect = TlsConnector::from(config.clone()).connect(name, tcp);
        let tls = within_timeout(host, addr, HANDSHAKE_TIMEOUT, connect).await?;
        let handshake = start.elapsed();
        let negotiated = Some(Negotiated::from_common(tls.get_ref().1));
        Ok(Connected {
            stream: Stream::Tls(Box::new(TlsStream::Client(tls))),
            tcp_connect,
            handshake,
            negotiated,
        })
    }
}

impl Connected {
    /// The certificate chain the server presented, leaf first (`None` for plaintext); see
    /// [`Stream::peer_certificates`].
    pub fn peer_certificates(&self) -> Option<&[CertificateDer<'static>]> {
        self.stream.peer_certificates()
    }
}
