//! Server certificates that can be replaced while the server runs
//! ([`ReloadableIdentity`], [`HostIdentity::server_config_reloadable`]).

use std::fmt;
use std::sync::{Arc, PoisonError, RwLock};

use rustls::crypto::CryptoProvider;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls::ServerConfig;

use crate::transport::TlsSettings;

use super::identity::{server_config_with, HostIdentity};
use super::{hex, PkiError, Validity};

impl HostIdentity {
    /// A server configuration presenting this identity through a [`ReloadableIdentity`],
    /// so that the certificate can be replaced while the server runs
    /// ([`ReloadableIdentity::replace`]): new handshakes present the new certificate,
    /// connections already established keep theirs. The provider and protocol versions
    /// come from `tls`, as for [`HostIdentity::server_config`].
    pub fn server_config_reloadable(
        &self,
        tls: &TlsSettings,
    ) -> Result<(Arc<ServerConfig>, Arc<ReloadableIdentity>), PkiError> {
        let provider = tls.provider()?;
        let identity = Arc::new(ReloadableIdentity::with_provider(self, provider.clone())?);
        let config = server_config_with(provider, tls, identity.clone())?;
        Ok((config, identity))
    }
}

/// A server certificate that can be replaced without restarting the server: the
/// certificate resolver of a configuration from [`HostIdentity::server_config_reloadable`].
///
/// rustls asks the resolver for a certificate at every full handshake, so after
/// [`ReloadableIdentity::replace`] every new connection is offered the new certificate,
/// while TLS sessions already established are untouched (their keys do not depend on the
/// certificate). A client resuming a session from before the replacement is not shown any
/// certificate: resumption skips certificate authentication.
///
/// The current certificate sits behind a [`RwLock`] holding an `Arc`: a handshake holds
/// the read lock only to clone the `Arc`, and a replacement (rare) swaps it, so there is
/// nothing for a lock-free cell such as `arc-swap` to improve here.
pub struct ReloadableIdentity {
    provider: Arc<CryptoProvider>,
    current: RwLock<Presented>,
}

/// What a [`ReloadableIdentity`] presents now.
struct Presented {
    key: Arc<CertifiedKey>,
    host: String,
    serial: Vec<u8>,
    validity: Validity,
    replacements: u64,
}

impl fmt::Debug for ReloadableIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let p = self.current.read().unwrap_or_else(PoisonError::into_inner);
        f.debug_struct("ReloadableIdentity")
            .field("host", &p.host)
            .field("serial", &hex(&p.serial))
            .field("validity", &p.validity)
            .field("replacements", &p.replacements)
            .field("key", &"[redacted]")
            .finish()
    }
}

impl ReloadableIdentity {
    /// A resolver presenting `identity`, loading keys with the provider of `tls`.
    pub fn new(identity: &HostIdentity, tls: &TlsSettings) -> Result<Self, PkiError> {
        Self::with_provider(identity, tls.provider()?)
    }

    /// A resolver presenting `identity`, loading keys with `provider`'s key loader.
    pub(crate) fn with_provider(
        identity: &HostIdentity,
        provider: Arc<CryptoProvider>,
    ) -> Result<Self, PkiError> {
        let key = identity.certified_key(&provider)?;
        Ok(ReloadableIdentity {
            provider,
            current: RwLock::new(Presented {
                key,
                host: identity.host.clone(),
                serial: identity.serial.clone(),
                validity: identity.validity,
                replacements: 0,
            }),
        })
    }

    /// Presents `identity` from the next handshake on. Connections already established
    /// keep the certificate they were shown.
    ///
    /// The new private key is loaded, and checked against the certificate, before
    /// anything changes: on error the old identity stays in place. The host name is not
    /// compared with the old one; presenting a certificate for another name is how a
    /// wrong-host incident is staged.
    pub fn replace(&self, identity: &HostIdentity) -> Result<(), PkiError> {
        let key = identity.certified_key(&self.provider)?;
        let mut p = self.current.write().unwrap_or_else(PoisonError::into_inner);
        *p = Presented {
            key,
            host: identity.host.clone(),
            serial: identity.serial.clone(),
            validity: identity.validity,
            replacements: p.replacements + 1,
        };
        Ok(())
    }

    /// The certificate chain and signing key new handshakes get.
    pub fn current(&self) -> Arc<CertifiedKey> {
        self.current
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .key
            .clone()
    }

    /// The serial number of the certificate presented now, lowercase hex (as
    /// [`HostIdentity::serial_hex`]).
    pub fn serial_hex(&self) -> String {
        hex(&self
            .current
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .serial)
    }

    /// The host name of the certificate presented now.
    pub fn host(&self) -> String {
        self.current
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .host
            .clone()
    }

    /// The validity window of the certificate presented now.
    pub fn validity(&self) -> Validity {
        self.current
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .validity
    }

    /// How many times the certificate has been replaced.
    pub fn replacements(&self) -> u64 {
        self.current
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .replacements
    }
}

impl ResolvesServerCert for ReloadableIdentity {
    fn resolve(&self, _client_hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current())
    }
}
