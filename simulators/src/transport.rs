//! The transport every link uses: TCP, either plaintext or wrapped in TLS (rustls with the
//! aws-lc-rs provider, always passed explicitly).
//!
//! [`TlsSettings`] pins what may be negotiated (versions, suites, key-exchange groups);
//! [`Negotiated`] records what actually was. A comparison of plaintext and TLS is only
//! meaningful when both are known, so every connection reports them.

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use rustls::crypto::aws_lc_rs::{self as provider, cipher_suite, kx_group};
use rustls::crypto::{CryptoProvider, SupportedKxGroup};
use rustls::{CertificateError, ClientConfig, ServerConfig, SupportedCipherSuite};
use rustls_pki_types::{CertificateDer, ServerName};
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::{TlsAcceptor, TlsConnector, TlsStream};

/// How long a TLS handshake may take before the connection is abandoned. A peer that
/// connects and then says nothing must not hold a server task forever.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Plaintext or TLS: the one switch every link has.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// Plain TCP.
    Plain,
    /// TLS over TCP.
    Tls,
}

impl Mode {
    /// The name used in reports and on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Plain => "plain",
            Mode::Tls => "tls",
        }
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A TLS protocol version that may be offered.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum TlsVersion {
    /// TLS 1.2.
    #[serde(rename = "1.2")]
    Tls12,
    /// TLS 1.3.
    #[serde(rename = "1.3")]
    Tls13,
}

/// A bulk cipher, named independently of the TLS version; it selects the TLS 1.3 suite
/// and the TLS 1.2 ECDHE suites (RSA and ECDSA) that use it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Cipher {
    /// AES-128 in GCM mode.
    Aes128Gcm,
    /// AES-256 in GCM mode.
    Aes256Gcm,
    /// ChaCha20-Poly1305.
    Chacha20Poly1305,
}

/// A key-exchange group that may be offered.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum KxGroup {
    /// Curve25519 ECDH.
    X25519,
    /// NIST P-256 ECDH.
    Secp256r1,
    /// NIST P-384 ECDH.
    Secp384r1,
    /// The hybrid post-quantum group X25519 + ML-KEM-768 (rustls's default first choice).
    X25519mlkem768,
}

macro_rules! cli_names {
    ($ty:ty { $($variant:path => $name:literal),+ $(,)? }) => {
        impl $ty {
            /// Every value, in the order they are listed to users.
            pub const ALL: &'static [$ty] = &[$($variant),+];

            /// The name used in scenario files, flags and reports.
            pub fn name(self) -> &'static str {
                match self { $($variant => $name),+ }
            }
        }

        impl std::str::FromStr for $ty {
            type Err = String;
            fn from_str(s: &str) -> Result<Self, String> {
                let wanted = s.trim().to_ascii_lowercase();
                Self::ALL.iter().copied().find(|v| v.name() == wanted).ok_or_else(|| {
                    let names: Vec<&str> = Self::ALL.iter().map(|v| v.name()).collect();
                    format!("unknown value {s:?}; expected one of: {}", names.join(", "))
                })
            }
        }

        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.name())
            }
        }
    };
}

cli_names!(TlsVersion { TlsVersion::Tls12 => "1.2", TlsVersion::Tls13 => "1.3" });
cli_names!(Cipher {
    Cipher::Aes128Gcm => "aes128-gcm",
    Cipher::Aes256Gcm => "aes256-gcm",
    Cipher::Chacha20Poly1305 => "chacha20-poly1305",
});
cli_names!(KxGroup {
    KxGroup::X25519 => "x25519",
    KxGroup::Secp256r1 => "secp256r1",
    KxGroup::Secp384r1 => "secp384r1",
    KxGroup::X25519mlkem768 => "x25519mlkem768",
});

impl Cipher {
    fn suites(self, version: TlsVersion) -> Vec<SupportedCipherSuite> {
        use cipher_suite::*;
        match (self, version) {
            (Cipher::Aes128Gcm, TlsVersion::Tls13) => vec![TLS13_AES_128_GCM_SHA256],
            (Cipher::Aes256Gcm, TlsVersion::Tls13) => vec![TLS13_AES_256_GCM_SHA384],
            (Cipher::Chacha20Poly1305, TlsVersion::Tls13) => vec![TLS13_CHACHA20_POLY1305_SHA256],
            (Cipher::Aes128Gcm, TlsVersion::Tls12) => vec![
                TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
                TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
            ],
            (Cipher::Aes256Gcm, TlsVersion::Tls12) => vec![
                TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
                TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
            ],
            (Cipher::Chacha20Poly1305, TlsVersion::Tls12) => vec![
                TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
                TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
            ],
        }
    }
}

impl KxGroup {
    fn group(self) -> &'static dyn SupportedKxGroup {
        match self {
            KxGroup::X25519 => kx_group::X25519,
            KxGroup::Secp256r1 => kx_group::SECP256R1,
            KxGroup::Secp384r1 => kx_group::SECP384R1,
            KxGroup::X25519mlkem768 => kx_group::X25519MLKEM768,
        }
    }
}

/// What a TLS endpoint may negotiate. Both ends of a link use the same settings, so what
/// is negotiated is exactly what was pinned (the first entry of each list wins).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsSettings {
    /// Protocol versions offered, most preferred first.
    pub versions: Vec<TlsVersion>,
    /// Bulk ciphers offered, most preferred first.
    pub ciphers: Vec<Cipher>,
    /// Key-exchange groups offered, most preferred first.
    pub groups: Vec<KxGroup>,
}

impl Default for TlsSettings {
    /// TLS 1.3 with AES-256-GCM and X25519MLKEM768: what rustls with aws-lc-rs negotiates
    /// between two of its own endpoints by default, pinned so that it cannot drift.
    fn default() -> Self {
        TlsSettings {
            versions: vec![TlsVersion::Tls13],
            ciphers: vec![Cipher::Aes256Gcm],
            groups: vec![KxGroup::X25519mlkem768],
        }
    }
}

/// Settings that cannot produce a working TLS configuration.
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    /// An empty list of versions, ciphers or groups.
    #[error("TLS settings list no {0}; name at least one")]
    Empty(&'static str),
    /// rustls refused the combination.
    #[error("rustls refused the TLS settings: {0}")]
    Rustls(#[from] rustls::Error),
}

impl TlsSettings {
    /// The aws-lc-rs provider reduced to the pinned ciphers and groups.
    pub fn provider(&self) -> Result<Arc<CryptoProvider>, SettingsError> {
        if self.versions.is_empty() {
            return Err(SettingsError::Empty("versions"));
        }
        if self.ciphers.is_empty() {
            return Err(SettingsError::Empty("ciphers"));
        }
        if self.groups.is_empty() {
            return Err(SettingsError::Empty("groups"));
        }
        let mut p = provider::default_provider();
        p.cipher_suites = self
            .ciphers
            .iter()
            .flat_map(|c| self.versions.iter().flat_map(|v| c.suites(*v)))
            .collect();
        p.kx_groups = self.groups.iter().map(|g| g.group()).collect();
        Ok(Arc::new(p))
    }

    /// The rustls protocol versions to enable.
    pub fn protocol_versions(&self) -> Vec<&'static rustls::SupportedProtocolVersion> {
        let mut out = Vec::new();
        for v in &self.versions {
            let pv = match v {
                TlsVersion::Tls12 => &rustls::version::TLS12,
                TlsVersion::Tls13 => &rustls::version::TLS13,
            };
            if !out
                .iter()
                .any(|o: &&rustls::SupportedProtocolVersion| o.version == pv.version)
            {
                out.push(pv);
            }
        }
        out
    }
}

/// What a TLS handshake actually settled on.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Negotiated {
    /// Protocol version, e.g. `TLSv1_3`.
    pub version: String,
    /// Cipher suite, e.g. `TLS13_AES_256_GCM_SHA384`.
    pub suite: String,
    /// Key-exchange group, e.g. `X25519MLKEM768`.
    pub group: String,
    /// Whether the session was resumed rather than fully negotiated.
    pub resumed: bool,
}

impl Negotiated {
    fn from_common(c: &rustls::CommonState) -> Self {
        let opt = |s: Option<String>| s.unwrap_or_else(|| "unknown".to_owned());
        Negotiated {
            version: opt(c.protocol_version().map(|v| format!("{v:?}"))),
            suite: opt(c
                .negotiated_cipher_suite()
                .map(|s| format!("{:?}", s.suite()))),
            group: opt(c
                .negotiated_key_exchange_group()
                .map(|g| format!("{:?}", g.name()))),
            resumed: matches!(c.handshake_kind(), Some(rustls::HandshakeKind::Resumed)),
        }
    }
}

/// Why a connection could not be set up, in categories a report can count.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord)]
#[serde(rename_all = "snake_case")]
pub enum FailureCategory {
    /// The TCP connection was refused or failed.
    Connect,
    /// The peer's certificate does not chain to a trusted CA.
    UntrustedCa,
    /// The certificate is not valid for the host name that was dialled.
    WrongHost,
    /// The certificate has expired.
    Expired,
    /// The certificate is not yet valid.
    NotYetValid,
    /// The certificate may not be used for this purpose (e.g. no serverAuth EKU).
    BadUsage,
    /// The peer rejected our certificate or our handshake with an alert.
    PeerRejected,
    /// No common protocol version, cipher or group.
    NoCommonParameters,
    /// The handshake did not finish in time.
    Timeout,
    /// The peer closed or reset the connection during the handshake.
    Reset,
    /// The peer sent something that is not TLS, or TLS where plaintext was expected.
    Protocol,
    /// The certificate's issuer is not a CA the client trusts, and the server sent no
    /// intermediate certificate: either the server lacks its intermediate CA certificate,
    /// or the client lacks the CA. From the client's side the two look alike.
    UnknownIssuer,
    /// The certificate's key is too weak to be accepted (an RSA key below 2048 bits).
    WeakKey,
    /// The server could not read its own private key, so it cannot complete a handshake.
    KeyUnreadable,
    /// Anything else.
    Other,
}

impl FailureCategory {
    /// The snake_case name used in reports.
    pub fn as_str(self) -> &'static str {
        match self {
            FailureCategory::Connect => "connect",
            FailureCategory::UntrustedCa => "untrusted_ca",
            FailureCategory::WrongHost => "wrong_host",
            FailureCategory::Expired => "expired",
            FailureCategory::NotYetValid => "not_yet_valid",
            FailureCategory::BadUsage => "bad_usage",
            FailureCategory::PeerRejected => "peer_rejected",
            FailureCategory::NoCommonParameters => "no_common_parameters",
            FailureCategory::Timeout => "timeout",
            FailureCategory::Reset => "reset",
            FailureCategory::Protocol => "protocol",
            FailureCategory::UnknownIssuer => "unknown_issuer",
            FailureCategory::WeakKey => "weak_key",
            FailureCategory::KeyUnreadable => "key_unreadable",
            FailureCategory::Other => "other",
        }
    }
}

/// A failure vmsbench itself diagnosed (a certificate check of its own, a server that
/// cannot read its key), carried through rustls as an [`rustls::OtherError`] so that
/// [`explain`] can report its category and message unchanged.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct Diagnosis {
    /// The category to count it under.
    pub category: FailureCategory,
    /// What happened and what to do about it, for a person.
    pub message: String,
}

impl Diagnosis {
    /// A diagnosis of `category` with `message`.
    pub fn new(category: FailureCategory, message: impl Into<String>) -> Self {
        Diagnosis {
            category,
            message: message.into(),
        }
    }

    /// As a rustls error, to return from a verifier or signer.
    pub fn into_rustls(self) -> rustls::Error {
        rustls::Error::Other(rustls::OtherError(Arc::new(self)))
    }

    /// As a rustls certificate error, to return from a certificate verifier.
    pub fn into_certificate_error(self) -> rustls::Error {
        rustls::Error::InvalidCertificate(CertificateError::Other(rustls::OtherError(Arc::new(
            self,
        ))))
    }

    /// The diagnosis inside `err`, if it carries one.
    pub fn find(err: &rustls::Error) -> Option<&Diagnosis> {
        let other = match err {
            rustls::Error::Other(o) => o,
            rustls::Error::InvalidCertificate(CertificateError::Other(o)) => o,
            _ => return None,
        };
        other.0.downcast_ref::<Diagnosis>()
    }
}

/// A connection that could not be set up.
#[derive(Debug, thiserror::Error)]
#[error("{host} ({addr}): {message}")]
pub struct ConnectError {
    /// The host name dialled (or the peer, on the server side).
    pub host: String,
    /// The socket address.
    pub addr: SocketAddr,
    /// What kind of failure it was.
    pub category: FailureCategory,
    /// What happened and what to do about it, for a person.
    pub message: String,
}

impl ConnectError {
    fn new(host: &str, addr: SocketAddr, category: FailureCategory, message: String) -> Self {
        ConnectError {
            host: host.to_owned(),
            addr,
            category,
            message,
        }
    }

    fn from_io(host: &str, addr: SocketAddr, err: io::Error) -> Self {
        let rustls_err = err
            .get_ref()
            .and_then(|e| e.downcast_ref::<rustls::Error>());
        match rustls_err {
            Some(e) => {
                let (category, message) = explain(e, host);
                ConnectError::new(host, addr, category, message)
            }
            None => match err.kind() {
                io::ErrorKind::ConnectionReset
                | io::ErrorKind::ConnectionAborted
                | io::ErrorKind::BrokenPipe
                | io::ErrorKind::UnexpectedEof => ConnectError::new(
                    host,
                    addr,
                    FailureCategory::Reset,
                    format!(
                        "the peer closed the connection during the TLS handshake ({err}); \
                         is it overloaded or stopping, can it not read its own private key, \
                         or does it not speak TLS on this port?"
                    ),
                ),
                _ => ConnectError::new(
                    host,
                    addr,
                    FailureCategory::Protocol,
                    format!("TLS handshake failed: {err} (is the peer speaking TLS?)"),
                ),
            },
        }
    }
}

/// Turns a rustls error into a category and a sentence a person can act on.
pub fn explain(err: &rustls::Error, host: &str) -> (FailureCategory, String) {
    use rustls::Error as E;
    if let Some(d) = Diagnosis::find(err) {
        return (d.category, d.message.clone());
    }
    match err {
        E::InvalidCertificate(cert) => match cert {
            CertificateError::UnknownIssuer | CertificateError::BadSignature => (
                FailureCategory::UntrustedCa,
                format!(
                    "the certificate presented for {host} was not issued by a CA this client \
                     trusts ({cert:?}); install the deployment's CA certificate on the client \
                     or reissue the server certificate from it"
                ),
            ),
            CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. } => {
                (
                    FailureCategory::WrongHost,
                    format!(
                        "the certificate presented is not valid for the host name {host:?}; \
                     reissue it with {host:?} in its subject alternative names, or dial the \
                     name the certificate carries"
                    ),
                )
            }
            CertificateError::Expired | CertificateError::ExpiredContext { .. } => (
                FailureCategory::Expired,
                format!(
                    "the certificate presented for {host} has expired ({cert:?}); renew it \
                     from the deployment's CA and restart the service presenting it"
                ),
            ),
            CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => (
                FailureCategory::NotYetValid,
                format!(
                    "the certificate presented for {host} is not valid yet ({cert:?}); check \
                     the clocks of both hosts and the certificate's not-before date"
                ),
            ),
            CertificateError::InvalidPurpose | CertificateError::InvalidPurposeContext { .. } => (
                FailureCategory::BadUsage,
                format!(
                    "the certificate presented for {host} may not be used to identify a \
                     server ({cert:?}); reissue it with extended key usage serverAuth"
                ),
            ),
            other => (
                FailureCategory::Other,
                format!("the certificate presented for {host} was rejected: {other:?}"),
            ),
        },
        E::AlertReceived(alert) => (
            FailureCategory::PeerRejected,
            format!("the peer ended the handshake with alert {alert:?}"),
        ),
        E::PeerIncompatible(rustls::PeerIncompatible::SignatureAlgorithmsExtensionRequired) => (
            FailureCategory::NoCommonParameters,
            "the client offered no signature algorithms, as clients of TLS 1.1 and older do: \
             it cannot speak TLS 1.2 or later; upgrade the client or its TLS library"
                .to_owned(),
        ),
        E::PeerIncompatible(why) => (
            FailureCategory::NoCommonParameters,
            format!("no TLS version, cipher suite or group in common with the peer: {why:?}"),
        ),
        E::InvalidMessage(_) | E::InappropriateMessage { .. } => (
            FailureCategory::Protocol,
            format!("the peer did not speak TLS as expected: {err}"),
        ),
        other => (FailureCategory::Other, format!("TLS failed: {other}")),
    }
}

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
/// checked against the kernel's own count ([`ByteCounter`]). One relaxed atomic add per read.
#[derive(Debug)]
pub struct CountedTcp {
    tcp: TcpStream,
    read: Arc<AtomicU64>,
}

impl From<TcpStream> for CountedTcp {
    fn from(tcp: TcpStream) -> Self {
        CountedTcp {
            tcp,
            read: Arc::new(AtomicU64::new(0)),
        }
    }
}

impl CountedTcp {
    /// The TCP stream inside.
    pub fn get_ref(&self) -> &TcpStream {
        &self.tcp
    }
}

impl AsyncRead for CountedTcp {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let me = self.get_mut();
        let before = buf.filled().len();
        let r = Pin::new(&mut me.tcp).poll_read(cx, buf);
        let n = buf.filled().len().saturating_sub(before);
        if n > 0 {
            me.read.fetch_add(n as u64, Ordering::Relaxed);
        }
        r
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

/// Reads a connection's byte counts, also after its stream has been split into halves:
/// the bytes the application read from the socket and the bytes the kernel's TCP stack
/// received. Valid while the stream it came from is open (it refers to its descriptor).
#[derive(Clone, Debug)]
pub struct ByteCounter {
    #[cfg(unix)]
    fd: std::os::fd::RawFd,
    read: Arc<AtomicU64>,
}

impl ByteCounter {
    /// Bytes read from the socket so far (below TLS).
    pub fn bytes_read(&self) -> u64 {
        self.read.load(Ordering::Relaxed)
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

    /// Bytes the kernel has handed to the application: received minus still queued.
    /// Compared with [`ByteCounter::bytes_read`] at the same instant, this checks the
    /// application's own count against the kernel's.
    pub fn bytes_delivered_by_kernel(&self) -> Option<u64> {
        let received = self.bytes_received_by_kernel()?;
        Some(received.saturating_sub(self.bytes_queued_in_kernel()?))
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
            read: tcp.read.clone(),
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

impl Connected {
    /// The certificate chain the server presented, leaf first (`None` for plaintext); see
    /// [`Stream::peer_certificates`].
    pub fn peer_certificates(&self) -> Option<&[CertificateDer<'static>]> {
        self.stream.peer_certificates()
    }
}

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

    /// Completes the TLS handshake (a no-op for plaintext).
    pub async fn handshake(self) -> Result<Accepted, ConnectError> {
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
        let tls = match tokio::time::timeout(
            HANDSHAKE_TIMEOUT,
            TlsAcceptor::from(config).accept(CountedTcp::from(self.tcp)),
        )
        .await
        {
            Ok(Ok(s)) => s,
            Ok(Err(e)) => return Err(ConnectError::from_io(&name, peer, e)),
            Err(_) => return Err(timeout_error(&name, peer)),
        };
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

fn timeout_error(host: &str, addr: SocketAddr) -> ConnectError {
    ConnectError::new(
        host,
        addr,
        FailureCategory::Timeout,
        format!("the TLS handshake did not finish within {HANDSHAKE_TIMEOUT:?}"),
    )
}

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

    /// A connector that offers only TLS 1.1 (see [`crate::legacy`]): every connection
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
            return Err(crate::legacy::offer_tls11(tcp, host, addr).await);
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
        let tls = match tokio::time::timeout(
            HANDSHAKE_TIMEOUT,
            TlsConnector::from(config.clone()).connect(name, CountedTcp::from(tcp)),
        )
        .await
        {
            Ok(Ok(s)) => s,
            Ok(Err(e)) => return Err(ConnectError::from_io(host, addr, e)),
            Err(_) => return Err(timeout_error(host, addr)),
        };
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
