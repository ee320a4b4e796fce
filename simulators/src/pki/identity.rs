//! A host's identity: its certificate chain and private key, and the server configurations
//! that present it (including one whose key cannot be read).

use std::fmt;
use std::sync::Arc;

use rustls::crypto::CryptoProvider;
use rustls::server::ResolvesServerCert;
use rustls::sign::{CertifiedKey, SigningKey, SingleCertAndKey};
use rustls::ServerConfig;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use crate::transport::{Diagnosis, FailureCategory, TlsSettings};

use super::signing::{load_signing_key, UnreadableKey};
use super::{hex, HostKey, KeyType, PkiError, Validity};

/// One host's certificate (issued by the deployment's CA, or read with
/// [`HostIdentity::from_pem`]) and private key.
pub struct HostIdentity {
    /// The host name the certificate was issued for (its CN and first SAN).
    pub host: String,
    pub(super) sans: Vec<String>,
    pub(super) key_kind: HostKey,
    pub(super) validity: Validity,
    pub(super) serial: Vec<u8>,
    /// The leaf, then any intermediate CA certificates (not the root).
    pub(super) chain: Vec<CertificateDer<'static>>,
    pub(super) cert_pem: String,
    /// The intermediate CA certificates presented after the leaf (if any), PEM.
    pub(super) intermediates_pem: String,
    /// The root CA certificate above them, PEM: exported, never presented.
    pub(super) root_pem: String,
    /// PKCS#8.
    pub(super) key: PrivateKeyDer<'static>,
    pub(super) key_pem: String,
}

impl Clone for HostIdentity {
    fn clone(&self) -> Self {
        HostIdentity {
            host: self.host.clone(),
            sans: self.sans.clone(),
            key_kind: self.key_kind,
            validity: self.validity,
            serial: self.serial.clone(),
            chain: self.chain.clone(),
            cert_pem: self.cert_pem.clone(),
            intermediates_pem: self.intermediates_pem.clone(),
            root_pem: self.root_pem.clone(),
            key: self.key.clone_key(),
            key_pem: self.key_pem.clone(),
        }
    }
}

impl fmt::Debug for HostIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HostIdentity")
            .field("host", &self.host)
            .field("subject_alt_names", &self.sans)
            .field("key_type", &self.key_kind)
            .field("serial", &hex(&self.serial))
            .field("validity", &self.validity)
            .field("chain", &self.chain.len())
            .field("key", &"[redacted]")
            .finish()
    }
}

impl HostIdentity {
    /// The host name the certificate was issued for.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The subject alternative names (DNS names and IP addresses), in certificate order:
    /// the host first for a certificate issued here.
    pub fn subject_alt_names(&self) -> &[String] {
        &self.sans
    }

    /// The chain the server presents: the leaf certificate, followed by the intermediate CA
    /// certificates if it was issued by an intermediate (clients hold the root).
    pub fn chain(&self) -> &[CertificateDer<'static>] {
        &self.chain
    }

    /// The leaf certificate's serial number, lowercase hex without separators.
    pub fn serial_hex(&self) -> String {
        hex(&self.serial)
    }

    /// The leaf certificate, PEM.
    pub fn cert_pem(&self) -> String {
        self.cert_pem.clone()
    }

    /// The leaf followed by the intermediate CA certificates it presents (if any) and the
    /// root CA certificate, PEM: the full chain for export to servers that want one file.
    pub fn chain_pem(&self) -> String {
        format!(
            "{}{}{}",
            self.cert_pem, self.intermediates_pem, self.root_pem
        )
    }

    /// The private key as PKCS#8 PEM (also for a key read from PKCS#1 or SEC1 by
    /// [`HostIdentity::from_pem`]). Never log it.
    pub fn key_pem(&self) -> String {
        self.key_pem.clone()
    }

    /// The private key, DER (PKCS#8). Never log it.
    pub fn private_key(&self) -> PrivateKeyDer<'static> {
        self.key.clone_key()
    }

    /// The type of the private key.
    ///
    /// An RSA-1024 key ([`Flaw::Rsa1024`], or read by [`HostIdentity::from_pem`]) is no
    /// [`KeyType`]: it is reported as [`KeyType::Rsa2048`], the smallest RSA type offered,
    /// and [`HostIdentity::key_bits`] tells the real size (as does `Debug`, which shows
    /// `Rsa1024`).
    ///
    /// [`Flaw::Rsa1024`]: super::Flaw::Rsa1024
    pub fn key_type(&self) -> KeyType {
        match self.key_kind {
            HostKey::Offered(key) => key,
            HostKey::Rsa1024 => KeyType::Rsa2048,
        }
    }

    /// The size of the key in bits (the modulus for RSA, the curve for ECDSA): the
    /// [`KeyType::bits`] of [`HostIdentity::key_type`], except 1024 for an RSA-1024 key.
    pub fn key_bits(&self) -> u32 {
        self.key_kind.bits()
    }

    /// The certificate's validity window.
    pub fn validity(&self) -> Validity {
        self.validity
    }

    /// The same identity presenting only its leaf certificate, without the intermediate CA
    /// certificates: a server whose chain file lacks its intermediate. Clients that trust
    /// only the root cannot build a path to it. Its [`HostIdentity::chain_pem`] lacks the
    /// intermediates too. For a certificate issued by a root, a plain copy.
    pub fn leaf_only(&self) -> HostIdentity {
        let mut identity = self.clone();
        identity.chain.truncate(1);
        identity.intermediates_pem.clear();
        identity
    }

    /// A server configuration presenting this identity, without client authentication.
    /// The provider and protocol versions come from `tls`.
    pub fn server_config(&self, tls: &TlsSettings) -> Result<Arc<ServerConfig>, PkiError> {
        let provider = tls.provider()?;
        let key = self.certified_key(&provider)?;
        server_config_with(provider, tls, Arc::new(SingleCertAndKey::from(key)))
    }

    /// A server configuration for a server that has its certificate but could not read its
    /// private key (e.g. the key file is unreadable: `reason` says why). It accepts
    /// connections and answers with this identity's chain, but its handshakes fail when it
    /// has to sign: the server side's handshake error
    /// ([`crate::transport::Incoming::handshake`]) is a [`ConnectError`] of category
    /// [`FailureCategory::KeyUnreadable`] whose message names `reason`.
    ///
    /// The signature is part of the server's first flight, so nothing of it reaches the
    /// client, not even the certificate: rustls sends no alert for a failed signature, and
    /// the client sees the connection closed during the handshake
    /// ([`FailureCategory::Reset`]).
    ///
    /// [`ConnectError`]: crate::transport::ConnectError
    pub fn server_config_without_key(
        &self,
        tls: &TlsSettings,
        reason: &str,
    ) -> Result<Arc<ServerConfig>, PkiError> {
        let diagnosis = Diagnosis::new(
            FailureCategory::KeyUnreadable,
            format!(
                "the server for {} presents its certificate (serial {}) but cannot read its \
                 private key: {reason}; check the key file's path, permissions and format",
                self.host,
                self.serial_hex()
            ),
        );
        let key = UnreadableKey::new(self.key_kind, diagnosis);
        let key = CertifiedKey::new(self.chain.clone(), Arc::new(key));
        server_config_with(tls.provider()?, tls, Arc::new(SingleCertAndKey::from(key)))
    }
}

impl HostIdentity {
    /// This identity's chain with its key loaded by `provider`, checked to belong together.
    pub(super) fn certified_key(
        &self,
        provider: &CryptoProvider,
    ) -> Result<Arc<CertifiedKey>, PkiError> {
        let signing_key = load_signing_key(provider, self.key_kind, &self.key)?;
        self.certify(signing_key)
    }

    /// This identity's chain with `signing_key`, checked to belong together.
    pub(super) fn certify(
        &self,
        signing_key: Arc<dyn SigningKey>,
    ) -> Result<Arc<CertifiedKey>, PkiError> {
        let key = CertifiedKey::new(self.chain.clone(), signing_key);
        match key.keys_match() {
            // A key whose public half the provider cannot tell is accepted, as rustls's own
            // `with_single_cert` does.
            Ok(()) | Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::Unknown)) => {}
            Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::KeyMismatch)) => {
                return Err(PkiError::KeyMismatch {
                    host: self.host.clone(),
                    serial: self.serial_hex(),
                })
            }
            Err(source) => {
                return Err(PkiError::Rustls {
                    what: "server certificate and key",
                    source,
                })
            }
        }
        Ok(Arc::new(key))
    }
}

/// A server configuration with `provider` and the protocol versions of `tls`, without
/// client authentication, whose certificate comes from `resolver`.
pub(super) fn server_config_with(
    provider: Arc<CryptoProvider>,
    tls: &TlsSettings,
    resolver: Arc<dyn ResolvesServerCert>,
) -> Result<Arc<ServerConfig>, PkiError> {
    let config = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&tls.protocol_versions())
        .map_err(|source| PkiError::Rustls {
            what: "server configuration",
            source,
        })?
        .with_no_client_auth()
        .with_cert_resolver(resolver);
    Ok(Arc::new(config))
}
