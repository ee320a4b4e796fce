//! RSA-1024 keys, which aws-lc-rs neither generates nor loads: randomness for the rsa crate
//! and a rustls signing key backed by it.
//!
//! They exist only to stage the `rsa1024` fault: a server presents one so that its clients
//! can be seen refusing it. Nothing of value is ever signed with them, so the rsa crate's
//! side-channel properties (it is not the hardened aws-lc-rs code) do not matter here; do
//! not use this signer for anything else.

use std::fmt;
use std::sync::Arc;

use rsa::pkcs1::EncodeRsaPublicKey as _;
use rsa::pkcs8::DecodePrivateKey as _;
use rsa::traits::PublicKeyParts as _;
use rustls::crypto::SecureRandom;
use rustls::sign::{Signer, SigningKey};
use rustls::SignatureScheme;
use rustls_pki_types::{alg_id, SubjectPublicKeyInfoDer};

use super::{HostKey, PkiError};

/// The rsa crate's randomness, drawn from aws-lc-rs's secure RNG like every other key and
/// serial number here.
pub(super) struct ProviderRng(&'static dyn SecureRandom);

impl ProviderRng {
    pub(super) fn new() -> Self {
        ProviderRng(rustls::crypto::aws_lc_rs::default_provider().secure_random)
    }
}

/// aws-lc-rs's RNG failed.
#[derive(Debug)]
pub(super) struct RandomFailed;

impl fmt::Display for RandomFailed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the secure random number generator failed")
    }
}

impl std::error::Error for RandomFailed {}

impl rsa::rand_core::TryRng for ProviderRng {
    type Error = RandomFailed;

    fn try_next_u32(&mut self) -> Result<u32, RandomFailed> {
        let mut bytes = [0u8; 4];
        self.try_fill_bytes(&mut bytes)?;
        Ok(u32::from_le_bytes(bytes))
    }

    fn try_next_u64(&mut self) -> Result<u64, RandomFailed> {
        let mut bytes = [0u8; 8];
        self.try_fill_bytes(&mut bytes)?;
        Ok(u64::from_le_bytes(bytes))
    }

    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), RandomFailed> {
        self.0.fill(dst).map_err(|_| RandomFailed)
    }
}

impl rsa::rand_core::TryCryptoRng for ProviderRng {}

/// The signing key of an RSA-1024 identity: aws-lc-rs refuses to load RSA keys below 2048
/// bits, so the rsa crate signs. It offers RSA-PSS with SHA-256 (TLS 1.3 and 1.2) and
/// PKCS#1 v1.5 with SHA-256 (TLS 1.2), and knows its public key, so that
/// [`CertifiedKey::keys_match`] can check it against the certificate.
///
/// [`CertifiedKey::keys_match`]: rustls::sign::CertifiedKey::keys_match
pub(super) struct WeakRsaKey {
    key: Arc<rsa::PrivateKey>,
    spki: SubjectPublicKeyInfoDer<'static>,
}

impl WeakRsaKey {
    /// Loads a PKCS#8 RSA private key.
    pub(super) fn from_pkcs8(der: &[u8]) -> Result<Self, PkiError> {
        let key = rsa::PrivateKey::from_pkcs8_der(der).map_err(|e| PkiError::WeakRsa {
            action: "load",
            reason: format!("not an RSA private key in PKCS#8 ({e})"),
        })?;
        let public = key
            .to_public_key()
            .to_pkcs1_der()
            .map_err(|e| PkiError::WeakRsa {
                action: "encode",
                reason: e.to_string(),
            })?;
        let spki = rustls::sign::public_key_to_spki(&alg_id::RSA_ENCRYPTION, public.as_bytes());
        Ok(WeakRsaKey {
            key: Arc::new(key),
            spki,
        })
    }
}

impl fmt::Debug for WeakRsaKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WeakRsaKey")
            .field("bits", &(self.key.size() * 8))
            .field("key", &"[redacted]")
            .finish()
    }
}

impl SigningKey for WeakRsaKey {
    fn choose_scheme(&self, offered: &[SignatureScheme]) -> Option<Box<dyn Signer>> {
        let scheme = HostKey::Rsa1024.choose_scheme(offered)?;
        Some(Box::new(WeakRsaSigner {
            key: self.key.clone(),
            scheme,
        }))
    }

    fn public_key(&self) -> Option<SubjectPublicKeyInfoDer<'_>> {
        Some(self.spki.clone())
    }

    fn algorithm(&self) -> rustls::SignatureAlgorithm {
        rustls::SignatureAlgorithm::RSA
    }
}

/// Signs with a [`WeakRsaKey`] in one scheme (RSA-PSS or PKCS#1 v1.5, SHA-256).
struct WeakRsaSigner {
    key: Arc<rsa::PrivateKey>,
    scheme: SignatureScheme,
}

impl fmt::Debug for WeakRsaSigner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WeakRsaSigner")
            .field("scheme", &self.scheme)
            .field("key", &"[redacted]")
            .finish()
    }
}

impl Signer for WeakRsaSigner {
    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, rustls::Error> {
        use rsa::sha2::Sha256;
        let mut rng = ProviderRng::new();
        let signature = if self.scheme == SignatureScheme::RSA_PSS_SHA256 {
            // Salt as long as the hash, as TLS requires.
            self.key.pss_sign_with_rng::<Sha256, _>(&mut rng, message)
        } else {
            self.key
                .pkcs1v15_sign_with_rng::<Sha256, _>(&mut rng, message)
        };
        signature.map_err(|e| {
            rustls::Error::General(format!("signing with the RSA-1024 key failed: {e}"))
        })
    }

    fn scheme(&self) -> SignatureScheme {
        self.scheme
    }
}
