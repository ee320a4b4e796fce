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
//!
//! One file per part; each imports only the parts listed above it:
//!
//! - `mod.rs`: [`KeyType`], [`Validity`], [`PkiError`] and what every part shares.
//! - `weak_rsa`: RSA-1024 keys, which aws-lc-rs neither generates nor loads.
//! - `signing`: the keys a server signs with (loaded, RSA-1024, or unreadable).
//! - `identity`: [`HostIdentity`] and the server configurations presenting it.
//! - `reloadable`: [`ReloadableIdentity`], a certificate replaced while the server runs.
//! - `pem`: identities read from PEM files ([`HostIdentity::from_pem`]), PEM encoding.
//! - `authority`: [`CertificateAuthority`] and the (possibly [`Flaw`]ed) certificates it issues.
//! - `deployment`: [`Pki`], a CA plus one identity per host.
//!
//! [`TlsSettings::provider`]: crate::transport::TlsSettings::provider

mod authority;
mod deployment;
mod identity;
mod pem;
mod reloadable;
mod signing;
mod weak_rsa;

pub use authority::{CertificateAuthority, Flaw};
pub use deployment::Pki;
pub use identity::HostIdentity;
pub use pem::certificates_pem;
pub use reloadable::ReloadableIdentity;

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;
use std::time::{Duration, SystemTime};

use rcgen::{CertificateParams, KeyPair, RsaKeySize, SanType, SignatureAlgorithm};
use rustls::SignatureScheme;
use serde::{Deserialize, Serialize};

use crate::transport::SettingsError;

/// The common name of the CA that [`Pki::generate`] creates.
pub const DEFAULT_CA_NAME: &str = "vmsbench deployment CA";

/// The modulus size of the weak RSA keys of [`Flaw::Rsa1024`].
const WEAK_RSA_BITS: usize = 1024;

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

/// The algorithm and size of a host's key: one of the [`KeyType`]s offered to users, or the
/// RSA-1024 key of [`Flaw::Rsa1024`] (which is deliberately not a [`KeyType`]: nobody may
/// choose it for a deployment).
#[derive(Clone, Copy, PartialEq, Eq)]
enum HostKey {
    /// A key of an offered type, loaded and used by aws-lc-rs.
    Offered(KeyType),
    /// An RSA key with a 1024-bit modulus, which aws-lc-rs neither generates nor loads:
    /// generated by, and signing with, the rsa crate ([`WeakRsaKey`]).
    ///
    /// [`WeakRsaKey`]: weak_rsa::WeakRsaKey
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
    ///
    /// [`WeakRsaKey`]: weak_rsa::WeakRsaKey
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
