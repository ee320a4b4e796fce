//! The deployment's private PKI: one certificate authority (generated with rcgen, keys from
//! aws-lc-rs) that issues one server certificate per simulated host.
//!
//! [`Pki::generate`] is the usual entry point: a CA plus an identity for every host, all
//! with the same [`KeyType`]. [`CertificateAuthority::issue`] issues further (or
//! deliberately broken: expired, not yet valid, wrong names) certificates, and
//! [`CertificateAuthority::issue_intermediate`] puts an intermediate CA between the root and
//! the hosts.
//!
//! Faults are staged here too: [`CertificateAuthority::issue_flawed`] issues certificates
//! that clients must refuse ([`Flaw`]), [`HostIdentity::leaf_only`] is a server that forgot
//! its intermediate, and [`HostIdentity::server_config_without_key`] one that cannot read its
//! private key. [`HostIdentity::from_pem`] brings in certificates made elsewhere.
//!
//! rustls configurations built here always name their crypto provider explicitly
//! ([`TlsSettings::provider`]), so nothing depends on a process-wide default provider.
//!
//! Private keys never appear in `Debug` output; only [`HostIdentity::key_pem`] and
//! [`CertificateAuthority::key_pem`] hand them out, for export.

use std::collections::BTreeMap;
use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;
use std::sync::{Arc, PoisonError, RwLock};
use std::time::{Duration, SystemTime};

use base64::Engine as _;
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose, PublicKeyData, RsaKeySize, SanType, SerialNumber, SignatureAlgorithm,
};
use rsa::pkcs1::EncodeRsaPublicKey as _;
use rsa::pkcs8::{DecodePrivateKey as _, EncodePrivateKey as _};
use rsa::traits::PublicKeyParts as _;
use rustls::crypto::{CryptoProvider, SecureRandom};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::{CertifiedKey, Signer, SigningKey, SingleCertAndKey};
use rustls::{ClientConfig, RootCertStore, ServerConfig, SignatureScheme};
use rustls_pki_types::pem::{self, PemObject as _};
use rustls_pki_types::{
    alg_id, AlgorithmIdentifier, CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer,
    SubjectPublicKeyInfoDer,
};
use serde::{Deserialize, Serialize};
use x509_parser::certificate::X509Certificate;
use x509_parser::extensions::GeneralName;
use x509_parser::prelude::FromDer as _;
use x509_parser::public_key::PublicKey;

use crate::transport::{Diagnosis, FailureCategory, SettingsError, TlsSettings};

/// The common name of the CA that [`Pki::generate`] creates.
pub const DEFAULT_CA_NAME: &str = "vmsbench deployment CA";

/// Length in bytes of the random serial numbers given to certificates (RFC 5280 allows at
/// most 20; 16 random bytes make collisions negligible).
const SERIAL_LEN: usize = 16;

/// How far back [`Validity::days_from_now`] starts, to tolerate clocks that are slightly
/// behind the one that issued the certificate.
const CLOCK_SKEW: Duration = Duration::from_secs(3600);

/// The earliest time accepted in a validity window: 1950-01-01T00:00:00Z.
const EARLIEST_UNIX_SECS: i64 = -631_152_000;
/// The latest time accepted in a validity window: 9999-12-31T23:59:59Z.
const LATEST_UNIX_SECS: i64 = 253_402_300_799;

/// Key algorithm and size of a certificate's key.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize,
)]
pub enum KeyType {
    /// RSA with a 2048-bit modulus (signatures: PKCS#1 v1.5 with SHA-256).
    #[default]
    #[serde(rename = "rsa2048")]
    Rsa2048,
    /// RSA with a 3072-bit modulus (signatures: PKCS#1 v1.5 with SHA-256).
    #[serde(rename = "rsa3072")]
    Rsa3072,
    /// RSA with a 4096-bit modulus (signatures: PKCS#1 v1.5 with SHA-256). Generating such
    /// a key takes around a second.
    #[serde(rename = "rsa4096")]
    Rsa4096,
    /// ECDSA on NIST P-256 (signatures with SHA-256).
    #[serde(rename = "ecdsa-p256")]
    EcdsaP256,
    /// ECDSA on NIST P-384 (signatures with SHA-384).
    #[serde(rename = "ecdsa-p384")]
    EcdsaP384,
}

impl KeyType {
    /// Every key type, in the order they are listed to users.
    pub const ALL: &'static [KeyType] = &[
        KeyType::Rsa2048,
        KeyType::Rsa3072,
        KeyType::Rsa4096,
        KeyType::EcdsaP256,
        KeyType::EcdsaP384,
    ];

    /// The name used in scenario files, flags and reports (the same as the serde name).
    pub fn name(self) -> &'static str {
        match self {
            KeyType::Rsa2048 => "rsa2048",
            KeyType::Rsa3072 => "rsa3072",
            KeyType::Rsa4096 => "rsa4096",
            KeyType::EcdsaP256 => "ecdsa-p256",
            KeyType::EcdsaP384 => "ecdsa-p384",
        }
    }

    /// Whether this is an RSA key.
    pub fn is_rsa(self) -> bool {
        matches!(self, KeyType::Rsa2048 | KeyType::Rsa3072 | KeyType::Rsa4096)
    }

    /// The size of the key in bits (the modulus for RSA, the curve for ECDSA).
    pub fn bits(self) -> u32 {
        match self {
            KeyType::Rsa2048 => 2048,
            KeyType::Rsa3072 => 3072,
            KeyType::Rsa4096 => 4096,
            KeyType::EcdsaP256 => 256,
            KeyType::EcdsaP384 => 384,
        }
    }

    /// The algorithm with which a key of this type signs certificates.
    fn signature_algorithm(self) -> &'static SignatureAlgorithm {
        match self {
            KeyType::Rsa2048 | KeyType::Rsa3072 | KeyType::Rsa4096 => &rcgen::PKCS_RSA_SHA256,
            KeyType::EcdsaP256 => &rcgen::PKCS_ECDSA_P256_SHA256,
            KeyType::EcdsaP384 => &rcgen::PKCS_ECDSA_P384_SHA384,
        }
    }

    /// Generates a fresh key pair of this type (aws-lc-rs underneath).
    fn generate(self) -> Result<KeyPair, PkiError> {
        let alg = self.signature_algorithm();
        let result = match self {
            KeyType::Rsa2048 => KeyPair::generate_rsa_for(alg, RsaKeySize::_2048),
            KeyType::Rsa3072 => KeyPair::generate_rsa_for(alg, RsaKeySize::_3072),
            KeyType::Rsa4096 => KeyPair::generate_rsa_for(alg, RsaKeySize::_4096),
            KeyType::EcdsaP256 | KeyType::EcdsaP384 => KeyPair::generate_for(alg),
        };
        result.map_err(|source| PkiError::KeyGeneration { key: self, source })
    }
}

impl fmt::Display for KeyType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for KeyType {
    type Err = String;

    /// Parses a name from [`KeyType::name`], ignoring case and surrounding blanks.
    fn from_str(s: &str) -> Result<Self, String> {
        let wanted = s.trim().to_ascii_lowercase();
        Self::ALL
            .iter()
            .copied()
            .find(|k| k.name() == wanted)
            .ok_or_else(|| {
                let names: Vec<&str> = Self::ALL.iter().map(|k| k.name()).collect();
                format!(
                    "unknown key type {s:?}; expected one of: {}",
                    names.join(", ")
                )
            })
    }
}

/// A deliberate defect in a server certificate, for staging the failures clients must
/// report; see [`CertificateAuthority::issue_flawed`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Flaw {
    /// The extended key usage is clientAuth only, without serverAuth: WebPKI refuses the
    /// certificate as a server's ([`rustls::CertificateError::InvalidPurpose`], reported as
    /// [`FailureCategory::BadUsage`]).
    NoServerAuthEku,
    /// The key is RSA with a 1024-bit modulus, whatever key type was asked for. The server
    /// presents it and really signs its handshakes with it; clients refuse it.
    Rsa1024,
}

/// The modulus size of the weak RSA keys of [`Flaw::Rsa1024`].
const WEAK_RSA_BITS: usize = 1024;

/// The algorithm and size of a host's key: one of the [`KeyType`]s offered to users, or the
/// RSA-1024 key of [`Flaw::Rsa1024`] (which is deliberately not a [`KeyType`]: nobody may
/// choose it for a deployment).
#[derive(Clone, Copy, PartialEq, Eq)]
enum HostKey {
    /// A key of an offered type, loaded and used by aws-lc-rs.
    Offered(KeyType),
    /// An RSA key with a 1024-bit modulus, which aws-lc-rs neither generates nor loads:
    /// generated by, and signing with, the rsa crate ([`WeakRsaKey`]).
    Rsa1024,
}

impl HostKey {
    /// The size of the key in bits (the modulus for RSA, the curve for ECDSA).
    fn bits(self) -> u32 {
        match self {
            HostKey::Offered(key) => key.bits(),
            // Lossless: the constant is 1024.
            HostKey::Rsa1024 => WEAK_RSA_BITS as u32,
        }
    }

    fn is_rsa(self) -> bool {
        match self {
            HostKey::Offered(key) => key.is_rsa(),
            HostKey::Rsa1024 => true,
        }
    }

    /// The TLS signature schemes such a key signs with, preferred first: those aws-lc-rs
    /// offers for the type, or for RSA-1024 the two [`WeakRsaKey`] implements.
    fn signature_schemes(self) -> &'static [SignatureScheme] {
        use SignatureScheme as S;
        match self {
            HostKey::Offered(KeyType::Rsa2048 | KeyType::Rsa3072 | KeyType::Rsa4096) => &[
                S::RSA_PSS_SHA512,
                S::RSA_PSS_SHA384,
                S::RSA_PSS_SHA256,
                S::RSA_PKCS1_SHA512,
                S::RSA_PKCS1_SHA384,
                S::RSA_PKCS1_SHA256,
            ],
            HostKey::Offered(KeyType::EcdsaP256) => &[S::ECDSA_NISTP256_SHA256],
            HostKey::Offered(KeyType::EcdsaP384) => &[S::ECDSA_NISTP384_SHA384],
            HostKey::Rsa1024 => &[S::RSA_PSS_SHA256, S::RSA_PKCS1_SHA256],
        }
    }

    /// The first of [`HostKey::signature_schemes`] that the peer offered.
    fn choose_scheme(self, offered: &[SignatureScheme]) -> Option<SignatureScheme> {
        self.signature_schemes()
            .iter()
            .copied()
            .find(|scheme| offered.contains(scheme))
    }

    /// The TLS signature algorithm of the key.
    fn tls_algorithm(self) -> rustls::SignatureAlgorithm {
        if self.is_rsa() {
            rustls::SignatureAlgorithm::RSA
        } else {
            rustls::SignatureAlgorithm::ECDSA
        }
    }
}

impl fmt::Debug for HostKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HostKey::Offered(key) => fmt::Debug::fmt(key, f),
            HostKey::Rsa1024 => f.write_str("Rsa1024"),
        }
    }
}

/// The window in which a certificate is valid.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Validity {
    /// The certificate is not valid before this instant.
    pub not_before: SystemTime,
    /// The certificate is not valid after this instant.
    pub not_after: SystemTime,
}

impl Validity {
    /// Valid from an hour ago (to tolerate clock skew between hosts) until `days` days from
    /// now.
    pub fn days_from_now(days: u32) -> Self {
        let now = SystemTime::now();
        let not_before = now.checked_sub(CLOCK_SKEW).unwrap_or(now);
        // Cannot overflow on any real platform (u32::MAX days is about 11.8 million years);
        // should it, the window ends before it starts and issuing reports that.
        let not_after = now
            .checked_add(Duration::from_secs(u64::from(days) * 86_400))
            .unwrap_or(SystemTime::UNIX_EPOCH);
        Validity {
            not_before,
            not_after,
        }
    }

    /// Checks that the window is non-empty and representable in a certificate.
    fn check(&self) -> Result<(), PkiError> {
        check_time(self.not_before, "not_before")?;
        check_time(self.not_after, "not_after")?;
        if self.not_after <= self.not_before {
            return Err(PkiError::InvalidValidity(format!(
                "not_after ({}) is not later than not_before ({}); a certificate must be valid \
                 for some time",
                unix_secs_display(self.not_after),
                unix_secs_display(self.not_before),
            )));
        }
        Ok(())
    }

    /// Writes the window into certificate parameters. [`Validity::check`] must have passed
    /// (the conversion into rcgen's time type panics out of its range).
    fn apply(&self, params: &mut CertificateParams) {
        params.not_before = self.not_before.into();
        params.not_after = self.not_after.into();
    }
}

/// Seconds since the Unix epoch (negative before it).
fn unix_secs(t: SystemTime) -> i128 {
    match t.duration_since(SystemTime::UNIX_EPOCH) {
        Ok(d) => i128::from(d.as_secs()),
        Err(e) => -i128::from(e.duration().as_secs()),
    }
}

fn unix_secs_display(t: SystemTime) -> String {
    format!("{} s since the Unix epoch", unix_secs(t))
}

fn check_time(t: SystemTime, which: &str) -> Result<(), PkiError> {
    let secs = unix_secs(t);
    if secs < i128::from(EARLIEST_UNIX_SECS) || secs > i128::from(LATEST_UNIX_SECS) {
        return Err(PkiError::InvalidValidity(format!(
            "{which} ({}) is outside the years 1950 to 9999 that certificates here may use",
            unix_secs_display(t)
        )));
    }
    Ok(())
}

/// Why a certificate, key or TLS configuration could not be produced.
#[derive(Debug, thiserror::Error)]
pub enum PkiError {
    /// The key generator failed.
    #[error("could not generate a {key} key: {source}")]
    KeyGeneration {
        /// The kind of key asked for.
        key: KeyType,
        /// What rcgen (aws-lc-rs) reported.
        source: rcgen::Error,
    },
    /// The certificate could not be assembled or signed.
    #[error("could not create the certificate for {subject:?}: {source}")]
    Certificate {
        /// The certificate's common name.
        subject: String,
        /// What rcgen reported.
        source: rcgen::Error,
    },
    /// A host name or subject alternative name that cannot go into a certificate.
    #[error(
        "{name:?} cannot be put in a certificate: {reason}; use a DNS name (letters, digits, \
         '-' and '.') or an IP address"
    )]
    InvalidName {
        /// The offending name.
        name: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A validity window that is empty or cannot be encoded.
    #[error("invalid certificate validity: {0}")]
    InvalidValidity(String),
    /// [`Pki::server_config`] was asked for a host it has no certificate for.
    #[error(
        "no certificate was issued for host {host:?}; the PKI has certificates for: {}; add the \
         host to the list the PKI is generated for",
        if .known.is_empty() { "no host".to_owned() } else { .known.join(", ") }
    )]
    UnknownHost {
        /// The host asked for.
        host: String,
        /// The hosts the PKI does have certificates for.
        known: Vec<String>,
    },
    /// The system's random number generator failed.
    #[error("could not draw random bytes for a certificate serial number")]
    Random,
    /// The TLS settings cannot produce a configuration.
    #[error(transparent)]
    Settings(#[from] SettingsError),
    /// rustls refused to build a configuration.
    #[error("rustls refused the {what}: {source}")]
    Rustls {
        /// Which configuration was being built.
        what: &'static str,
        /// What rustls reported.
        source: rustls::Error,
    },
    /// An RSA-1024 key ([`Flaw::Rsa1024`]) could not be generated, encoded or loaded.
    #[error("could not {action} the RSA-1024 key: {reason}")]
    WeakRsa {
        /// What was being done: "generate", "encode" or "load".
        action: &'static str,
        /// What the rsa crate reported (never key material).
        reason: String,
    },
    /// [`HostIdentity::from_pem`] found no certificate in the certificate PEM.
    #[error(
        "no certificate for {host:?}: the certificate PEM holds no -----BEGIN CERTIFICATE----- \
         block; give the server's certificate first, then any intermediate CA certificates"
    )]
    NoCertificate {
        /// The host the identity was for.
        host: String,
    },
    /// [`HostIdentity::from_pem`] found no private key in the key PEM.
    #[error("no private key for {host:?}: {hint}")]
    NoPrivateKey {
        /// The host the identity was for.
        host: String,
        /// What the key PEM held instead, and what is expected.
        hint: String,
    },
    /// The private key does not belong to the certificate.
    #[error(
        "the private key given for {host:?} does not match its certificate (serial {serial}); \
         the key file belongs to another certificate"
    )]
    KeyMismatch {
        /// The host the identity was for.
        host: String,
        /// The certificate's serial number, lowercase hex.
        serial: String,
    },
    /// The certificate's key is of a type or size that cannot be served here.
    #[error(
        "the certificate for {host:?} has a key vmsbench cannot serve: {key}; supported are \
         rsa2048, rsa3072, rsa4096, ecdsa-p256, ecdsa-p384 (and RSA-1024, to stage a weak key)"
    )]
    UnsupportedKey {
        /// The host the identity was for.
        host: String,
        /// The key's algorithm and size, e.g. `RSA-2560` or `Ed25519`.
        key: String,
    },
    /// A PEM file or a certificate in it could not be read.
    #[error("could not read the {what} for {host:?}: {reason}")]
    InvalidPem {
        /// The host the identity was for.
        host: String,
        /// Which input: "certificate chain" or "private key".
        what: &'static str,
        /// What is wrong (for the private key, never its contents).
        reason: String,
    },
}

/// A random, positive, fixed-length serial number from the provider's secure RNG.
fn random_serial() -> Result<Vec<u8>, PkiError> {
    let mut serial = vec![0u8; SERIAL_LEN];
    rustls::crypto::aws_lc_rs::default_provider()
        .secure_random
        .fill(&mut serial)
        .map_err(|_| PkiError::Random)?;
    // Positive (top bit clear) and without a leading zero byte, so that the DER encoding
    // has exactly SERIAL_LEN bytes and `serial_hex` matches what tools print.
    serial[0] = (serial[0] & 0x7f) | 0x40;
    Ok(serial)
}

fn hex(bytes: &[u8]) -> String {
    use fmt::Write;
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        // Writing to a String cannot fail.
        let _ = write!(out, "{b:02x}");
    }
    out
}

/// One subject alternative name: an IP address if it parses as one, else a DNS name.
fn san(name: &str) -> Result<SanType, PkiError> {
    let invalid = |reason: String| PkiError::InvalidName {
        name: name.to_owned(),
        reason,
    };
    if let Ok(ip) = name.parse::<IpAddr>() {
        return Ok(SanType::IpAddress(ip));
    }
    // The same rules rustls applies to the name a client dials, so a name accepted here
    // can also be connected to.
    rustls_pki_types::DnsName::try_from(name)
        .map_err(|e| invalid(format!("not a valid DNS name ({e})")))?;
    let ia5 = rcgen::string::Ia5String::try_from(name)
        .map_err(|e| invalid(format!("not an ASCII string ({e})")))?;
    Ok(SanType::DnsName(ia5))
}

/// What varies between the leaf certificates a CA issues.
#[derive(Clone, Copy, Debug)]
struct Leaf {
    /// The key to generate.
    key: HostKey,
    /// Extended key usage serverAuth if true, else clientAuth only ([`Flaw::NoServerAuthEku`]).
    server_auth: bool,
}

/// A freshly generated leaf key pair.
enum LeafKey {
    /// Generated by rcgen (aws-lc-rs): every [`KeyType`].
    Rcgen(KeyPair),
    /// An RSA-1024 key, generated by the rsa crate (aws-lc-rs makes no RSA key below 2048
    /// bits).
    Rsa1024 {
        /// The RSAPublicKey (PKCS#1): the certificate's subjectPublicKey.
        public_pkcs1: Vec<u8>,
        /// The private key, PKCS#8 DER.
        pkcs8: Vec<u8>,
    },
}

impl LeafKey {
    fn generate(key: HostKey) -> Result<Self, PkiError> {
        match key {
            HostKey::Offered(key) => key.generate().map(LeafKey::Rcgen),
            HostKey::Rsa1024 => {
                let failed = |action, e: &dyn fmt::Display| PkiError::WeakRsa {
                    action,
                    reason: e.to_string(),
                };
                let private = rsa::PrivateKey::new(&mut ProviderRng::new(), WEAK_RSA_BITS)
                    .map_err(|e| failed("generate", &e))?;
                let public_pkcs1 = private
                    .to_public_key()
                    .to_pkcs1_der()
                    .map_err(|e| failed("encode", &e))?
                    .into_vec();
                let pkcs8 = private
                    .to_pkcs8_der()
                    .map_err(|e| failed("encode", &e))?
                    .as_bytes()
                    .to_vec();
                Ok(LeafKey::Rsa1024 {
                    public_pkcs1,
                    pkcs8,
                })
            }
        }
    }

    /// The private key, PKCS#8 DER.
    fn pkcs8_der(&self) -> Vec<u8> {
        match self {
            LeafKey::Rcgen(key) => key.serialize_der(),
            LeafKey::Rsa1024 { pkcs8, .. } => pkcs8.clone(),
        }
    }

    /// The private key, PKCS#8 PEM.
    fn pkcs8_pem(&self) -> String {
        match self {
            LeafKey::Rcgen(key) => key.serialize_pem(),
            LeafKey::Rsa1024 { pkcs8, .. } => pem_encode("PRIVATE KEY", pkcs8),
        }
    }
}

impl PublicKeyData for LeafKey {
    fn der_bytes(&self) -> &[u8] {
        match self {
            LeafKey::Rcgen(key) => key.der_bytes(),
            LeafKey::Rsa1024 { public_pkcs1, .. } => public_pkcs1,
        }
    }

    fn algorithm(&self) -> &'static SignatureAlgorithm {
        match self {
            LeafKey::Rcgen(key) => key.algorithm(),
            // Writes rsaEncryption as the key's algorithm, as for any RSA key.
            LeafKey::Rsa1024 { .. } => &rcgen::PKCS_RSA_SHA256,
        }
    }
}

/// The rsa crate's randomness, drawn from aws-lc-rs's secure RNG like every other key and
/// serial number here.
struct ProviderRng(&'static dyn SecureRandom);

impl ProviderRng {
    fn new() -> Self {
        ProviderRng(rustls::crypto::aws_lc_rs::default_provider().secure_random)
    }
}

/// aws-lc-rs's RNG failed.
#[derive(Debug)]
struct RandomFailed;

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
struct WeakRsaKey {
    key: Arc<rsa::PrivateKey>,
    spki: SubjectPublicKeyInfoDer<'static>,
}

impl WeakRsaKey {
    /// Loads a PKCS#8 RSA private key.
    fn from_pkcs8(der: &[u8]) -> Result<Self, PkiError> {
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

/// The signing key of a server that could not read its private key
/// ([`HostIdentity::server_config_without_key`]): it chooses the scheme the real key would
/// have chosen, so that the handshake gets as far as signing, and every signature then fails
/// with its [`Diagnosis`] ([`FailureCategory::KeyUnreadable`]).
#[derive(Debug)]
struct UnreadableKey {
    kind: HostKey,
    diagnosis: Diagnosis,
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

/// `der` as a PEM block with `label` (64 base64 characters a line, LF line ends).
fn pem_encode(label: &str, der: &[u8]) -> String {
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = String::with_capacity(b64.len() + b64.len() / 64 + 2 * label.len() + 40);
    out.push_str("-----BEGIN ");
    out.push_str(label);
    out.push_str("-----\n");
    // Base64 is ASCII, so every 64-byte chunk is valid UTF-8.
    for line in b64.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(line).unwrap_or_default());
        out.push('\n');
    }
    out.push_str("-----END ");
    out.push_str(label);
    out.push_str("-----\n");
    out
}

/// One DER element: `tag`, the definite length of `contents`, `contents`.
fn der_element(tag: u8, contents: &[u8]) -> Vec<u8> {
    let len = contents.len();
    let mut out = Vec::with_capacity(len + 10);
    out.push(tag);
    // Both casts are lossless: a short length is below 0x80, and a long one takes at most
    // size_of::<usize>() bytes.
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes = len.to_be_bytes();
        let skip = bytes.iter().take_while(|b| **b == 0).count();
        out.push(0x80 | (bytes.len() - skip) as u8);
        out.extend_from_slice(&bytes[skip..]);
    }
    out.extend_from_slice(contents);
    out
}

/// A PKCS#1 or SEC1 private key wrapped as a PKCS#8 PrivateKeyInfo (RFC 5208): version 0,
/// the key's `algorithm`, the key as an OCTET STRING.
fn pkcs8_wrap(algorithm: &AlgorithmIdentifier, key: &[u8]) -> Vec<u8> {
    const SEQUENCE: u8 = 0x30;
    const OCTET_STRING: u8 = 0x04;
    const VERSION_0: [u8; 3] = [0x02, 0x01, 0x00];
    let mut info = VERSION_0.to_vec();
    info.extend(der_element(SEQUENCE, algorithm.as_ref()));
    info.extend(der_element(OCTET_STRING, key));
    der_element(SEQUENCE, &info)
}

/// The deployment's certificate authority: a self-signed CA certificate and its key, or an
/// intermediate CA (see [`CertificateAuthority::issue_intermediate`]) that remembers the
/// certificates between it and the root.
pub struct CertificateAuthority {
    issuer: CertifiedIssuer<'static, KeyPair>,
    common_name: String,
    key_type: KeyType,
    validity: Validity,
    serial: Vec<u8>,
    /// This CA's certificate and every CA certificate above it, excluding the root (the
    /// issuer first); empty for a root.
    intermediates: Vec<CertificateDer<'static>>,
    /// `intermediates` as concatenated PEM, in the same order.
    intermediates_pem: String,
    /// The self-signed root at the top of the chain (this CA's own certificate for a root).
    root_der: CertificateDer<'static>,
    /// `root_der` as PEM.
    root_pem: String,
}

impl fmt::Debug for CertificateAuthority {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CertificateAuthority")
            .field("common_name", &self.common_name)
            .field("key_type", &self.key_type)
            .field("serial", &hex(&self.serial))
            .field("validity", &self.validity)
            .field("intermediates", &self.intermediates.len())
            .field("key", &"[redacted]")
            .finish()
    }
}

impl CertificateAuthority {
    /// Generates a CA: a fresh key of type `key` and a self-signed certificate with
    /// `common_name` as its CN, basicConstraints CA:TRUE without a path length limit, key
    /// usage keyCertSign + cRLSign + digitalSignature and a random serial number.
    ///
    /// The CA's key type decides the signature algorithm of every certificate it issues
    /// (RSA: SHA-256 with RSA; P-256: ECDSA with SHA-256; P-384: ECDSA with SHA-384).
    pub fn generate(common_name: &str, key: KeyType, validity: Validity) -> Result<Self, PkiError> {
        validity.check()?;
        let serial = random_serial()?;
        let mut params = CertificateParams::default();
        params.distinguished_name = rcgen::DistinguishedName::new();
        params
            .distinguished_name
            .push(DnType::CommonName, common_name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        params.serial_number = Some(SerialNumber::from_slice(&serial));
        validity.apply(&mut params);
        let key_pair = key.generate()?;
        let issuer = CertifiedIssuer::self_signed(params, key_pair).map_err(|source| {
            PkiError::Certificate {
                subject: common_name.to_owned(),
                source,
            }
        })?;
        let root_der = issuer.der().clone();
        let root_pem = issuer.pem();
        Ok(CertificateAuthority {
            issuer,
            common_name: common_name.to_owned(),
            key_type: key,
            validity,
            serial,
            intermediates: Vec::new(),
            intermediates_pem: String::new(),
            root_der,
            root_pem,
        })
    }

    /// Issues an intermediate CA signed by this one: a fresh key of type `key` and a
    /// certificate with `common_name` as its CN, basicConstraints CA:TRUE with path length 0
    /// (so it may issue server certificates but no further CAs), key usage keyCertSign +
    /// cRLSign + digitalSignature, an authority key identifier and a random serial number.
    ///
    /// The validity is not checked against this CA's. The returned CA remembers the chain
    /// up to the root: the [`HostIdentity`] it issues presents the intermediate(s) after the
    /// leaf ([`HostIdentity::chain`]), and [`CertificateAuthority::roots`] /
    /// [`CertificateAuthority::client_config`] trust the root, not the intermediate. An
    /// intermediate issued by an intermediate gets a certificate, but since the path length
    /// of the first is 0 no verifier accepts chains through it.
    pub fn issue_intermediate(
        &self,
        common_name: &str,
        key: KeyType,
        validity: Validity,
    ) -> Result<CertificateAuthority, PkiError> {
        validity.check()?;
        let serial = random_serial()?;
        let mut params = CertificateParams::default();
        params.distinguished_name = rcgen::DistinguishedName::new();
        params
            .distinguished_name
            .push(DnType::CommonName, common_name);
        params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        params.use_authority_key_identifier_extension = true;
        params.serial_number = Some(SerialNumber::from_slice(&serial));
        validity.apply(&mut params);
        let key_pair = key.generate()?;
        let issuer =
            CertifiedIssuer::signed_by(params, key_pair, &*self.issuer).map_err(|source| {
                PkiError::Certificate {
                    subject: common_name.to_owned(),
                    source,
                }
            })?;
        let mut intermediates = Vec::with_capacity(1 + self.intermediates.len());
        intermediates.push(issuer.der().clone());
        intermediates.extend(self.intermediates.iter().cloned());
        let intermediates_pem = format!("{}{}", issuer.pem(), self.intermediates_pem);
        Ok(CertificateAuthority {
            issuer,
            common_name: common_name.to_owned(),
            key_type: key,
            validity,
            serial,
            intermediates,
            intermediates_pem,
            root_der: self.root_der.clone(),
            root_pem: self.root_pem.clone(),
        })
    }

    /// Whether this is a self-signed root (not an intermediate).
    pub fn is_root(&self) -> bool {
        self.intermediates.is_empty()
    }

    /// This CA's certificate and every CA certificate above it up to, but excluding, the
    /// root, the issuer of each following it; empty for a root.
    pub fn intermediates(&self) -> &[CertificateDer<'static>] {
        &self.intermediates
    }

    /// The root CA certificate, DER (this CA's own certificate for a root).
    pub fn root_cert_der(&self) -> &CertificateDer<'static> {
        &self.root_der
    }

    /// The root CA certificate, PEM: what clients need to trust (this CA's own certificate
    /// for a root).
    pub fn root_cert_pem(&self) -> String {
        self.root_pem.clone()
    }

    /// The CA certificate, DER.
    pub fn cert_der(&self) -> &CertificateDer<'static> {
        self.issuer.der()
    }

    /// The CA certificate, PEM: for a root, what clients outside this process need to
    /// trust (for an intermediate see [`CertificateAuthority::root_cert_pem`]).
    pub fn cert_pem(&self) -> String {
        self.issuer.pem()
    }

    /// The CA's private key as PKCS#8 PEM, for exporting the PKI (e.g. to issue more
    /// certificates with another tool). Never log it.
    pub fn key_pem(&self) -> String {
        self.issuer.key().serialize_pem()
    }

    /// The CA's common name.
    pub fn common_name(&self) -> &str {
        &self.common_name
    }

    /// The CA's key type.
    pub fn key_type(&self) -> KeyType {
        self.key_type
    }

    /// The CA certificate's validity window.
    pub fn validity(&self) -> Validity {
        self.validity
    }

    /// The CA certificate's serial number, lowercase hex.
    pub fn serial_hex(&self) -> String {
        hex(&self.serial)
    }

    /// Issues a server certificate for `host` with a fresh key of type `key`.
    ///
    /// `host` is the subject CN and the first subject alternative name; each of
    /// `extra_sans` follows, as an IP address SAN if it parses as one, else as a DNS name
    /// SAN (duplicates are dropped). The certificate has extended key usage serverAuth, key
    /// usage digitalSignature (plus keyEncipherment for RSA keys), an authority key
    /// identifier, a random serial number and exactly the given validity, which is not
    /// checked against the CA's (so that expired or not-yet-valid certificates can be made
    /// on purpose).
    ///
    /// If this CA is an intermediate, the identity's chain carries the intermediate
    /// certificates after the leaf, and its [`HostIdentity::chain_pem`] ends with the root.
    pub fn issue(
        &self,
        host: &str,
        extra_sans: &[String],
        key: KeyType,
        validity: Validity,
    ) -> Result<HostIdentity, PkiError> {
        let leaf = Leaf {
            key: HostKey::Offered(key),
            server_auth: true,
        };
        self.issue_leaf(host, extra_sans, leaf, validity)
    }

    /// Issues a server certificate for `host` as [`CertificateAuthority::issue`] does (no
    /// extra names), but with `flaw`, so that clients refuse it:
    ///
    /// * [`Flaw::NoServerAuthEku`]: a `key` key, and extended key usage clientAuth instead
    ///   of serverAuth.
    /// * [`Flaw::Rsa1024`]: an RSA-1024 key (`key` is ignored), which the server loads and
    ///   signs its handshakes with like any other ([`HostIdentity::server_config`],
    ///   [`HostIdentity::server_config_reloadable`]). The identity's
    ///   [`HostIdentity::key_bits`] is 1024; see [`HostIdentity::key_type`].
    pub fn issue_flawed(
        &self,
        host: &str,
        key: KeyType,
        validity: Validity,
        flaw: Flaw,
    ) -> Result<HostIdentity, PkiError> {
        let leaf = match flaw {
            Flaw::NoServerAuthEku => Leaf {
                key: HostKey::Offered(key),
                server_auth: false,
            },
            Flaw::Rsa1024 => Leaf {
                key: HostKey::Rsa1024,
                server_auth: true,
            },
        };
        self.issue_leaf(host, &[], leaf, validity)
    }

    /// What [`CertificateAuthority::issue`] and [`CertificateAuthority::issue_flawed`]
    /// share: everything but the choices in `leaf`.
    fn issue_leaf(
        &self,
        host: &str,
        extra_sans: &[String],
        leaf: Leaf,
        validity: Validity,
    ) -> Result<HostIdentity, PkiError> {
        validity.check()?;
        let mut names: Vec<String> = Vec::with_capacity(1 + extra_sans.len());
        for name in std::iter::once(host).chain(extra_sans.iter().map(String::as_str)) {
            if !names.iter().any(|n| n.eq_ignore_ascii_case(name)) {
                names.push(name.to_owned());
            }
        }
        let sans = names
            .iter()
            .map(|n| san(n))
            .collect::<Result<Vec<_>, _>>()?;

        let serial = random_serial()?;
        let mut params = CertificateParams::default();
        params.distinguished_name = rcgen::DistinguishedName::new();
        params.distinguished_name.push(DnType::CommonName, host);
        params.subject_alt_names = sans;
        params.is_ca = IsCa::ExplicitNoCa;
        params.key_usages = if leaf.key.is_rsa() {
            vec![
                KeyUsagePurpose::DigitalSignature,
                KeyUsagePurpose::KeyEncipherment,
            ]
        } else {
            vec![KeyUsagePurpose::DigitalSignature]
        };
        params.extended_key_usages = vec![if leaf.server_auth {
            ExtendedKeyUsagePurpose::ServerAuth
        } else {
            ExtendedKeyUsagePurpose::ClientAuth
        }];
        params.use_authority_key_identifier_extension = true;
        params.serial_number = Some(SerialNumber::from_slice(&serial));
        validity.apply(&mut params);

        let key_pair = LeafKey::generate(leaf.key)?;
        let cert = params
            .signed_by(&key_pair, &*self.issuer)
            .map_err(|source| PkiError::Certificate {
                subject: host.to_owned(),
                source,
            })?;
        let key_pem = key_pair.pkcs8_pem();
        let private_key = PrivatePkcs8KeyDer::from(key_pair.pkcs8_der());
        let mut chain = Vec::with_capacity(1 + self.intermediates.len());
        chain.push(cert.der().clone());
        chain.extend(self.intermediates.iter().cloned());
        Ok(HostIdentity {
            host: host.to_owned(),
            sans: names,
            key_kind: leaf.key,
            validity,
            serial,
            cert_pem: cert.pem(),
            chain,
            intermediates_pem: self.intermediates_pem.clone(),
            root_pem: self.root_pem.clone(),
            key: PrivateKeyDer::Pkcs8(private_key),
            key_pem,
        })
    }

    /// A root store holding only this CA's root (this CA itself unless it is an
    /// intermediate).
    pub fn roots(&self) -> RootCertStore {
        let mut roots = RootCertStore::empty();
        // A certificate we just generated always parses; should it not, the store is
        // empty and every handshake fails with an untrusted-CA error that says so.
        let _ = roots.add(self.root_der.clone());
        roots
    }

    /// A client configuration that trusts only this CA's root and checks that the server's
    /// certificate names the host dialled. The provider and protocol versions come from
    /// `tls`.
    pub fn client_config(&self, tls: &TlsSettings) -> Result<Arc<ClientConfig>, PkiError> {
        crate::verify::client_config(vec![self.root_cert_der().clone()], tls)
    }
}

/// One host's certificate (issued by the deployment's CA, or read with
/// [`HostIdentity::from_pem`]) and private key.
pub struct HostIdentity {
    /// The host name the certificate was issued for (its CN and first SAN).
    pub host: String,
    sans: Vec<String>,
    key_kind: HostKey,
    validity: Validity,
    serial: Vec<u8>,
    /// The leaf, then any intermediate CA certificates (not the root).
    chain: Vec<CertificateDer<'static>>,
    cert_pem: String,
    /// The intermediate CA certificates presented after the leaf (if any), PEM.
    intermediates_pem: String,
    /// The root CA certificate above them, PEM: exported, never presented.
    root_pem: String,
    /// PKCS#8.
    key: PrivateKeyDer<'static>,
    key_pem: String,
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
        let key = certified_key(&provider, self)?;
        let config = ServerConfig::builder_with_provider(provider)
            .with_protocol_versions(&tls.protocol_versions())
            .map_err(|source| PkiError::Rustls {
                what: "server configuration",
                source,
            })?
            .with_no_client_auth()
            .with_cert_resolver(Arc::new(SingleCertAndKey::from(key)));
        Ok(Arc::new(config))
    }

    /// A server configuration for a server that has its certificate but could not read its
    /// private key (e.g. the key file is unreadable: `reason` says why). It accepts
    /// connections and answers with this identity's chain, but its handshakes fail when it
    /// has to sign: the server side's handshake error is a [`Diagnosis`] of category
    /// [`FailureCategory::KeyUnreadable`] whose message names `reason` (see
    /// [`crate::transport::Incoming::handshake`]).
    ///
    /// The signature is part of the server's first flight, so nothing of it reaches the
    /// client, not even the certificate: rustls sends no alert for a failed signature, and
    /// the client sees the connection closed during the handshake
    /// ([`FailureCategory::Reset`]).
    pub fn server_config_without_key(
        &self,
        tls: &TlsSettings,
        reason: &str,
    ) -> Result<Arc<ServerConfig>, PkiError> {
        let key = UnreadableKey {
            kind: self.key_kind,
            diagnosis: Diagnosis::new(
                FailureCategory::KeyUnreadable,
                format!(
                    "the server for {} presents its certificate (serial {}) but cannot read \
                     its private key: {reason}; check the key file's path, permissions and \
                     format",
                    self.host,
                    self.serial_hex()
                ),
            ),
        };
        let key = CertifiedKey::new(self.chain.clone(), Arc::new(key));
        let config = ServerConfig::builder_with_provider(tls.provider()?)
            .with_protocol_versions(&tls.protocol_versions())
            .map_err(|source| PkiError::Rustls {
                what: "server configuration",
                source,
            })?
            .with_no_client_auth()
            .with_cert_resolver(Arc::new(SingleCertAndKey::from(key)));
        Ok(Arc::new(config))
    }
}

impl HostIdentity {
    /// An identity from certificate and key files made elsewhere (by `vmsbench certs
    /// generate` or for a real deployment), for `host`: the name it is served as, which
    /// is not checked against the certificate (presenting a certificate for another name
    /// is how a wrong-host incident is staged).
    ///
    /// `chain_pem` holds the server's certificate first, then any further certificates:
    /// those that are not self-signed are presented after the leaf as intermediates, a
    /// self-signed root (normally last) is not presented (clients hold it) but stays in
    /// [`HostIdentity::chain_pem`]. `key_pem` holds the private key as PKCS#8 (`BEGIN
    /// PRIVATE KEY`), PKCS#1 (`BEGIN RSA PRIVATE KEY`) or SEC1 (`BEGIN EC PRIVATE KEY`),
    /// unencrypted; it is kept as PKCS#8.
    ///
    /// The serial number, validity window, subject alternative names (DNS names and IP
    /// addresses) and key type come from the leaf. Keys of the [`KeyType`]s are supported,
    /// and RSA-1024 (see [`HostIdentity::key_type`]); any other is
    /// [`PkiError::UnsupportedKey`]. The key must belong to the leaf
    /// ([`PkiError::KeyMismatch`]). No error message contains any of the key.
    pub fn from_pem(host: &str, chain_pem: &str, key_pem: &str) -> Result<HostIdentity, PkiError> {
        let invalid = |what, reason: String| PkiError::InvalidPem {
            host: host.to_owned(),
            what,
            reason,
        };
        let certs = CertificateDer::pem_slice_iter(chain_pem.as_bytes())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| invalid("certificate chain", e.to_string()))?;
        let Some(leaf_der) = certs.first() else {
            return Err(PkiError::NoCertificate {
                host: host.to_owned(),
            });
        };
        let (_, leaf) = X509Certificate::from_der(leaf_der).map_err(|e| {
            invalid(
                "certificate chain",
                format!("its first certificate is not valid X.509: {e}"),
            )
        })?;
        let key_kind = host_key_of(&leaf).map_err(|key| PkiError::UnsupportedKey {
            host: host.to_owned(),
            key,
        })?;
        let sans = leaf_sans(&leaf).map_err(|e| {
            invalid(
                "certificate chain",
                format!("the leaf's subject alternative names cannot be read: {e}"),
            )
        })?;
        let time = |t: &x509_parser::time::ASN1Time| {
            system_time(t.timestamp()).ok_or_else(|| {
                invalid(
                    "certificate chain",
                    format!("the leaf's validity ({t}) is out of this system's time range"),
                )
            })
        };
        let validity = Validity {
            not_before: time(&leaf.validity().not_before)?,
            not_after: time(&leaf.validity().not_after)?,
        };
        // The DER INTEGER's content, less the zero byte that keeps a serial with its top bit
        // set positive: the serial as tools print it.
        let raw_serial = leaf.raw_serial();
        let zeros = raw_serial.iter().take_while(|b| **b == 0).count();
        let serial = raw_serial[zeros.min(raw_serial.len().saturating_sub(1))..].to_vec();

        let mut chain = vec![leaf_der.clone()];
        let mut intermediates_pem = String::new();
        let mut root_pem = String::new();
        for (i, der) in certs.iter().enumerate().skip(1) {
            let (_, cert) = X509Certificate::from_der(der).map_err(|e| {
                invalid(
                    "certificate chain",
                    format!("certificate {} is not valid X.509: {e}", i + 1),
                )
            })?;
            if cert.subject().as_raw() == cert.issuer().as_raw() {
                root_pem.push_str(&pem_encode("CERTIFICATE", der));
            } else {
                intermediates_pem.push_str(&pem_encode("CERTIFICATE", der));
                chain.push(der.clone());
            }
        }

        let serial_hex = hex(&serial);
        let mismatch = || PkiError::KeyMismatch {
            host: host.to_owned(),
            serial: serial_hex.clone(),
        };
        let pkcs8 = match PrivateKeyDer::from_pem_slice(key_pem.as_bytes()) {
            Ok(PrivateKeyDer::Pkcs8(key)) => key.secret_pkcs8_der().to_vec(),
            Ok(PrivateKeyDer::Pkcs1(key)) => {
                pkcs8_wrap(&alg_id::RSA_ENCRYPTION, key.secret_pkcs1_der())
            }
            // SEC1 need not name its curve: take the certificate's.
            Ok(PrivateKeyDer::Sec1(key)) => match key_kind {
                HostKey::Offered(KeyType::EcdsaP256) => {
                    pkcs8_wrap(&alg_id::ECDSA_P256, key.secret_sec1_der())
                }
                HostKey::Offered(KeyType::EcdsaP384) => {
                    pkcs8_wrap(&alg_id::ECDSA_P384, key.secret_sec1_der())
                }
                _ => return Err(mismatch()),
            },
            Ok(_) => {
                return Err(invalid(
                    "private key",
                    "the key is in a format other than PKCS#8, PKCS#1 or SEC1".to_owned(),
                ))
            }
            Err(pem::Error::NoItemsFound) => {
                return Err(PkiError::NoPrivateKey {
                    host: host.to_owned(),
                    hint: no_key_hint(key_pem),
                })
            }
            Err(e) => return Err(invalid("private key", pem_problem(&e))),
        };

        let identity = HostIdentity {
            host: host.to_owned(),
            sans,
            key_kind,
            validity,
            serial,
            cert_pem: pem_encode("CERTIFICATE", leaf_der),
            chain,
            intermediates_pem,
            root_pem,
            key_pem: pem_encode("PRIVATE KEY", &pkcs8),
            key: PrivateKeyDer::Pkcs8(pkcs8.into()),
        };
        // Loads the key as a server would and checks it against the leaf. A key that cannot
        // be loaded as the leaf's kind but can as the other (RSA-1024 for a leaf with another
        // key, or the reverse) is a valid key of another certificate.
        let provider = rustls::crypto::aws_lc_rs::default_provider();
        let other_kind = match key_kind {
            HostKey::Offered(_) => HostKey::Rsa1024,
            HostKey::Rsa1024 => HostKey::Offered(KeyType::Rsa2048),
        };
        match load_signing_key(&provider, key_kind, &identity.key) {
            Ok(signing_key) => certify(&identity, signing_key)?,
            Err(_) if load_signing_key(&provider, other_kind, &identity.key).is_ok() => {
                return Err(mismatch())
            }
            Err(e) => return Err(e),
        };
        Ok(identity)
    }
}

/// The [`HostKey`] of a certificate's public key, or a description of a key that is none.
fn host_key_of(cert: &X509Certificate<'_>) -> Result<HostKey, String> {
    const P256: &str = "1.2.840.10045.3.1.7";
    const P384: &str = "1.3.132.0.34";
    const P521: &str = "1.3.132.0.35";
    const ED25519: &str = "1.3.101.112";
    const ED448: &str = "1.3.101.113";
    let spki = cert.public_key();
    match spki.parsed() {
        Ok(PublicKey::RSA(rsa)) => match bit_len(rsa.modulus) {
            2048 => Ok(HostKey::Offered(KeyType::Rsa2048)),
            3072 => Ok(HostKey::Offered(KeyType::Rsa3072)),
            4096 => Ok(HostKey::Offered(KeyType::Rsa4096)),
            1024 => Ok(HostKey::Rsa1024),
            bits => Err(format!("RSA-{bits}")),
        },
        Ok(PublicKey::EC(_)) => {
            let curve = spki
                .algorithm
                .parameters
                .as_ref()
                .and_then(|p| p.as_oid().ok())
                .map(|oid| oid.to_id_string());
            match curve.as_deref() {
                Some(P256) => Ok(HostKey::Offered(KeyType::EcdsaP256)),
                Some(P384) => Ok(HostKey::Offered(KeyType::EcdsaP384)),
                Some(P521) => Err("ECDSA P-521".to_owned()),
                Some(other) => Err(format!("ECDSA on the curve {other}")),
                None => Err("ECDSA on an unnamed curve".to_owned()),
            }
        }
        _ => match spki.algorithm.algorithm.to_id_string().as_str() {
            ED25519 => Err("Ed25519".to_owned()),
            ED448 => Err("Ed448".to_owned()),
            other => Err(format!("a key of algorithm {other}")),
        },
    }
}

/// The number of significant bits of a big-endian unsigned integer.
fn bit_len(bytes: &[u8]) -> u32 {
    match bytes.iter().position(|b| *b != 0) {
        None => 0,
        Some(i) => {
            let rest = u32::try_from(bytes.len() - i - 1)
                .unwrap_or(u32::MAX / 8)
                .saturating_mul(8);
            rest + (8 - bytes[i].leading_zeros())
        }
    }
}

/// The DNS names and IP addresses among a certificate's subject alternative names.
fn leaf_sans(cert: &X509Certificate<'_>) -> Result<Vec<String>, x509_parser::error::X509Error> {
    let Some(ext) = cert.subject_alternative_name()? else {
        return Ok(Vec::new());
    };
    Ok(ext
        .value
        .general_names
        .iter()
        .filter_map(|name| match name {
            GeneralName::DNSName(dns) => Some((*dns).to_owned()),
            GeneralName::IPAddress(bytes) => match bytes.len() {
                4 => <[u8; 4]>::try_from(*bytes)
                    .ok()
                    .map(|b| IpAddr::from(b).to_string()),
                16 => <[u8; 16]>::try_from(*bytes)
                    .ok()
                    .map(|b| IpAddr::from(b).to_string()),
                _ => None,
            },
            _ => None,
        })
        .collect())
}

/// Seconds since the Unix epoch (negative before it) as a [`SystemTime`], if representable.
fn system_time(secs: i64) -> Option<SystemTime> {
    let d = Duration::from_secs(secs.unsigned_abs());
    if secs >= 0 {
        SystemTime::UNIX_EPOCH.checked_add(d)
    } else {
        SystemTime::UNIX_EPOCH.checked_sub(d)
    }
}

/// Why a key PEM holds no key that can be read, and what would.
fn no_key_hint(key_pem: &str) -> String {
    if key_pem.contains("-----BEGIN ENCRYPTED PRIVATE KEY-----") {
        "the key is encrypted (ENCRYPTED PRIVATE KEY), which is not supported; decrypt it \
         first, e.g. with `openssl pkey -in key.pem -out key.plain.pem`"
            .to_owned()
    } else if key_pem.contains("-----BEGIN CERTIFICATE-----") {
        "the key PEM holds certificates but no private key; was the certificate file given \
         as the key?"
            .to_owned()
    } else {
        "the key PEM holds no PKCS#8 (BEGIN PRIVATE KEY), PKCS#1 (BEGIN RSA PRIVATE KEY) or \
         SEC1 (BEGIN EC PRIVATE KEY) block"
            .to_owned()
    }
}

/// What is wrong with a private key's PEM, without any of its contents.
fn pem_problem(e: &pem::Error) -> String {
    match e {
        pem::Error::MissingSectionEnd { .. } => "a PEM block has no END line (truncated file?)",
        pem::Error::IllegalSectionStart { .. } => "a PEM BEGIN line is malformed",
        pem::Error::Base64Decode(_) => "a PEM block is not valid base64",
        pem::Error::SectionTooLarge => "a PEM block is too large",
        _ => "the PEM cannot be read",
    }
    .to_owned()
}

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
        let config = ServerConfig::builder_with_provider(provider)
            .with_protocol_versions(&tls.protocol_versions())
            .map_err(|source| PkiError::Rustls {
                what: "server configuration",
                source,
            })?
            .with_no_client_auth()
            .with_cert_resolver(identity.clone());
        Ok((Arc::new(config), identity))
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
    pub fn with_provider(
        identity: &HostIdentity,
        provider: Arc<CryptoProvider>,
    ) -> Result<Self, PkiError> {
        let key = certified_key(&provider, identity)?;
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
        let key = certified_key(&self.provider, identity)?;
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

/// `identity`'s chain with its key loaded by `provider`, checked to belong together.
fn certified_key(
    provider: &CryptoProvider,
    identity: &HostIdentity,
) -> Result<Arc<CertifiedKey>, PkiError> {
    let signing_key = load_signing_key(provider, identity.key_kind, &identity.key)?;
    certify(identity, signing_key)
}

/// `key`, of kind `kind`, loaded by `provider`, or for an RSA-1024 key (which aws-lc-rs
/// refuses) by the rsa crate ([`WeakRsaKey`]).
fn load_signing_key(
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

/// `identity`'s chain with `signing_key`, checked to belong together.
fn certify(
    identity: &HostIdentity,
    signing_key: Arc<dyn SigningKey>,
) -> Result<Arc<CertifiedKey>, PkiError> {
    let key = CertifiedKey::new(identity.chain.clone(), signing_key);
    match key.keys_match() {
        // A key whose public half the provider cannot tell is accepted, as rustls's own
        // `with_single_cert` does.
        Ok(()) | Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::Unknown)) => {}
        Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::KeyMismatch)) => {
            return Err(PkiError::KeyMismatch {
                host: identity.host.clone(),
                serial: identity.serial_hex(),
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

/// A CA plus one identity per host, all with the same key type.
#[derive(Debug)]
pub struct Pki {
    /// The certificate authority that issued every host's certificate.
    pub ca: CertificateAuthority,
    hosts: BTreeMap<String, HostIdentity>,
}

impl Pki {
    /// Generates a CA named [`DEFAULT_CA_NAME`] and a certificate for each of `hosts`
    /// (duplicates issued once), all with `key` keys and valid from an hour ago until
    /// `days` days from now.
    pub fn generate(hosts: &[&str], key: KeyType, days: u32) -> Result<Self, PkiError> {
        let validity = Validity::days_from_now(days);
        let ca = CertificateAuthority::generate(DEFAULT_CA_NAME, key, validity)?;
        let mut map = BTreeMap::new();
        for host in hosts {
            if !map.contains_key(*host) {
                let identity = ca.issue(host, &[], key, validity)?;
                map.insert((*host).to_owned(), identity);
            }
        }
        Ok(Pki { ca, hosts: map })
    }

    /// The identity issued for `name`, if any.
    pub fn host(&self, name: &str) -> Option<&HostIdentity> {
        self.hosts.get(name)
    }

    /// Every identity, by host name.
    pub fn hosts(&self) -> impl Iterator<Item = &HostIdentity> {
        self.hosts.values()
    }

    /// A client configuration trusting only this PKI's CA; see
    /// [`CertificateAuthority::client_config`].
    pub fn client_config(&self, tls: &TlsSettings) -> Result<Arc<ClientConfig>, PkiError> {
        self.ca.client_config(tls)
    }

    /// A server configuration presenting `host`'s identity, or [`PkiError::UnknownHost`] if
    /// no certificate was issued for it.
    pub fn server_config(
        &self,
        host: &str,
        tls: &TlsSettings,
    ) -> Result<Arc<ServerConfig>, PkiError> {
        match self.hosts.get(host) {
            Some(identity) => identity.server_config(tls),
            None => Err(PkiError::UnknownHost {
                host: host.to_owned(),
                known: self.hosts.keys().cloned().collect(),
            }),
        }
    }
}

impl Pki {
    /// A server configuration presenting `host`'s identity through a
    /// [`ReloadableIdentity`] (see [`HostIdentity::server_config_reloadable`]), or
    /// [`PkiError::UnknownHost`] if no certificate was issued for it.
    pub fn server_config_reloadable(
        &self,
        host: &str,
        tls: &TlsSettings,
    ) -> Result<(Arc<ServerConfig>, Arc<ReloadableIdentity>), PkiError> {
        match self.hosts.get(host) {
            Some(identity) => identity.server_config_reloadable(tls),
            None => Err(PkiError::UnknownHost {
                host: host.to_owned(),
                known: self.hosts.keys().cloned().collect(),
            }),
        }
    }
}
