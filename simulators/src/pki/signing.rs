//! The keys a server signs its handshakes with: loaded by the crypto provider, by the rsa
//! crate for an RSA-1024 key ([`WeakRsaKey`]), or standing in for a key the server could
//! not read ([`UnreadableKey`]).

use std::sync::Arc;

use rustls::crypto::CryptoProvider;
use rustls::sign::{Signer, SigningKey};
use rustls::SignatureScheme;
use rustls_pki_types::PrivateKeyDer;

use crate::transport::Diagnosis;

use super::weak_rsa::WeakRsaKey;
use super::{HostKey, PkiError};

/// `key`, of kind `kind`, loaded by `provider`, or for an RSA-1024 key (which aws-lc-rs
/// refuses) by the rsa crate ([`WeakRsaKey`]).
pub(super) fn load_signing_key(
    provider: &CryptoProvider,
    kind: HostKey,
    key: &PrivateKeyDer<'_>,
) -> Result<Arc<dyn SigningKey>, PkiError> {
    match kind {
        HostKey::Rsa1024 => Ok(Arc::new(WeakRsaKey::from_pkcs8(key.secret_der())?)),
        HostKey::Offered(_) => provider
            .key_provider
            .load_private_key(key.clone_key())
            .map_err(|source| PkiError::Rustls {
                what: "server private key",
                source,
            }),
    }
}

/// The signing key of a server that could not read its private key
/// ([`HostIdentity::server_config_without_key`]): it chooses the scheme the real key would
/// have chosen, so that the handshake gets as far as signing, and every signature then fails
/// with its [`Diagnosis`] ([`FailureCategory::KeyUnreadable`]).
///
/// [`HostIdentity::server_config_without_key`]: super::HostIdentity::server_config_without_key
/// [`FailureCategory::KeyUnreadable`]: crate::transport::FailureCategory::KeyUnreadable
#[derive(Debug)]
pub(super) struct UnreadableKey {
    kind: HostKey,
    diagnosis: Diagnosis,
}

impl UnreadableKey {
    /// A key of `kind` whose every signature fails with `diagnosis`.
    pub(super) fn new(kind: HostKey, diagnosis: Diagnosis) -> Self {
        UnreadableKey { kind, diagnosis }
    }
}

impl SigningKey for UnreadableKey {
    fn choose_scheme(&self, offered: &[SignatureScheme]) -> Option<Box<dyn Signer>> {
        let scheme = self.kind.choose_scheme(offered)?;
        Some(Box::new(UnreadableSigner {
            scheme,
            diagnosis: self.diagnosis.clone(),
        }))
    }

    fn algorithm(&self) -> rustls::SignatureAlgorithm {
        self.kind.tls_algorithm()
    }
}

/// The signer of an [`UnreadableKey`]: every signature fails.
#[derive(Debug)]
struct UnreadableSigner {
    scheme: SignatureScheme,
    diagnosis: Diagnosis,
}

impl Signer for UnreadableSigner {
    fn sign(&self, _message: &[u8]) -> Result<Vec<u8>, rustls::Error> {
        Err(self.diagnosis.clone().into_rustls())
    }

    fn scheme(&self) -> SignatureScheme {
        self.scheme
    }
}
