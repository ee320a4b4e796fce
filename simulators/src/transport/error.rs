//! Why a connection could not be set up: a [`FailureCategory`] a report can count and a
//! message a person can act on ([`ConnectError`], [`explain`]), including failures
//! vmsbench diagnosed itself ([`Diagnosis`], carried through rustls).

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;

use rustls::CertificateError;
use serde::{Deserialize, Serialize};

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
pub(crate) struct Diagnosis {
    /// The category to count it under.
    pub(crate) category: FailureCategory,
    /// What happened and what to do about it, for a person.
    pub(crate) message: String,
}

impl Diagnosis {
    /// A diagnosis of `category` with `message`.
    pub(crate) fn new(category: FailureCategory, message: impl Into<String>) -> Self {
        Diagnosis {
            category,
            message: message.into(),
        }
    }

    /// As a rustls error, to return from a verifier or signer.
    pub(crate) fn into_rustls(self) -> rustls::Error {
        rustls::Error::Other(rustls::OtherError(Arc::new(self)))
    }

    /// As a rustls certificate error, to return from a certificate verifier.
    pub(crate) fn into_certificate_error(self) -> rustls::Error {
        rustls::Error::InvalidCertificate(CertificateError::Other(rustls::OtherError(Arc::new(
            self,
        ))))
    }

    /// The diagnosis inside `err`, if it carries one.
    pub(crate) fn find(err: &rustls::Error) -> Option<&Diagnosis> {
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
    pub(super) fn new(
        host: &str,
        addr: SocketAddr,
        category: FailureCategory,
        message: String,
    ) -> Self {
        ConnectError {
            host: host.to_owned(),
            addr,
            category,
            message,
        }
    }

    pub(super) fn from_io(host: &str, addr: SocketAddr, err: io::Error) -> Self {
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
