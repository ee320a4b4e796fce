//! The deployment's private PKI: one certificate authority (generated with rcgen, keys from
//! aws-lc-rs) that issues one server certificate per simulated host.
//!
//! [`Pki::generate`] is the usual entry point: a CA plus an identity for every host, all
//! with the same [`KeyType`]. [`CertificateAuthority::issue`] issues further (or
//! deliberately broken: expired, not yet valid, wrong names) certificates, and
//! [`CertificateAuthority::issue_intermediate`] puts an intermediate CA between the root and
//! the hosts.
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

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose, RsaKeySize, SanType, SerialNumber, SignatureAlgorithm,
};
use rustls::crypto::CryptoProvider;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls::{ClientConfig, RootCertStore, ServerConfig};
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use serde::{Deserialize, Serialize};

use crate::transport::{SettingsError, TlsSettings};

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
        params.key_usages = if key.is_rsa() {
            vec![
                KeyUsagePurpose::DigitalSignature,
                KeyUsagePurpose::KeyEncipherment,
            ]
        } else {
            vec![KeyUsagePurpose::DigitalSignature]
        };
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        params.use_authority_key_identifier_extension = true;
        params.serial_number = Some(SerialNumber::from_slice(&serial));
        validity.apply(&mut params);

        let key_pair = key.generate()?;
        let cert = params
            .signed_by(&key_pair, &*self.issuer)
            .map_err(|source| PkiError::Certificate {
                subject: host.to_owned(),
                source,
            })?;
        let key_pem = key_pair.serialize_pem();
        let private_key = PrivatePkcs8KeyDer::from(key_pair.serialize_der());
        let mut chain = Vec::with_capacity(1 + self.intermediates.len());
        chain.push(cert.der().clone());
        chain.extend(self.intermediates.iter().cloned());
        Ok(HostIdentity {
            host: host.to_owned(),
            sans: names,
            key_type: key,
            validity,
            serial,
            cert_pem: cert.pem(),
            chain,
            ca_pem: format!("{}{}", self.intermediates_pem, self.root_pem),
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
        let config = ClientConfig::builder_with_provider(tls.provider()?)
            .with_protocol_versions(&tls.protocol_versions())
            .map_err(|source| PkiError::Rustls {
                what: "client configuration",
                source,
            })?
            .with_root_certificates(self.roots())
            .with_no_client_auth();
        Ok(Arc::new(config))
    }
}

/// One host's certificate (issued by the deployment's CA) and private key.
pub struct HostIdentity {
    /// The host name the certificate was issued for (its CN and first SAN).
    pub host: String,
    sans: Vec<String>,
    key_type: KeyType,
    validity: Validity,
    serial: Vec<u8>,
    /// The leaf, then any intermediate CA certificates (not the root).
    chain: Vec<CertificateDer<'static>>,
    cert_pem: String,
    /// The intermediate CA certificates (if any), then the root, PEM.
    ca_pem: String,
    key: PrivateKeyDer<'static>,
    key_pem: String,
}

impl Clone for HostIdentity {
    fn clone(&self) -> Self {
        HostIdentity {
            host: self.host.clone(),
            sans: self.sans.clone(),
            key_type: self.key_type,
            validity: self.validity,
            serial: self.serial.clone(),
            chain: self.chain.clone(),
            cert_pem: self.cert_pem.clone(),
            ca_pem: self.ca_pem.clone(),
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
            .field("key_type", &self.key_type)
            .field("serial", &hex(&self.serial))
            .field("validity", &self.validity)
            .field("key", &"[redacted]")
            .finish()
    }
}

impl HostIdentity {
    /// The host name the certificate was issued for.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The subject alternative names, in certificate order (the host first).
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

    /// The leaf followed by any intermediate CA certificates and the root CA certificate,
    /// PEM: the full chain for export to servers that want one file.
    pub fn chain_pem(&self) -> String {
        format!("{}{}", self.cert_pem, self.ca_pem)
    }

    /// The private key as PKCS#8 PEM. Never log it.
    pub fn key_pem(&self) -> String {
        self.key_pem.clone()
    }

    /// The private key, DER (PKCS#8). Never log it.
    pub fn private_key(&self) -> PrivateKeyDer<'static> {
        self.key.clone_key()
    }

    /// The type of the private key.
    pub fn key_type(&self) -> KeyType {
        self.key_type
    }

    /// The certificate's validity window.
    pub fn validity(&self) -> Validity {
        self.validity
    }

    /// A server configuration presenting this identity, without client authentication.
    /// The provider and protocol versions come from `tls`.
    pub fn server_config(&self, tls: &TlsSettings) -> Result<Arc<ServerConfig>, PkiError> {
        let config = ServerConfig::builder_with_provider(tls.provider()?)
            .with_protocol_versions(&tls.protocol_versions())
            .map_err(|source| PkiError::Rustls {
                what: "server configuration",
                source,
            })?
            .with_no_client_auth()
            .with_single_cert(self.chain.clone(), self.key.clone_key())
            .map_err(|source| PkiError::Rustls {
                what: "server certificate and key",
                source,
            })?;
        Ok(Arc::new(config))
    }
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
    let signing_key = provider
        .key_provider
        .load_private_key(identity.private_key())
        .map_err(|source| PkiError::Rustls {
            what: "server private key",
            source,
        })?;
    let key = CertifiedKey::new(identity.chain.clone(), signing_key);
    match key.keys_match() {
        // A key whose public half the provider cannot tell is accepted, as rustls's own
        // `with_single_cert` does.
        Ok(()) | Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::Unknown)) => {}
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
