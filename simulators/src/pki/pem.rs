//! Identities from PEM files made elsewhere ([`HostIdentity::from_pem`]), and the PEM and DER
//! encoding helpers used here.

use std::net::IpAddr;
use std::time::{Duration, SystemTime};

use base64::Engine as _;
use rustls_pki_types::pem::{self, PemObject as _};
use rustls_pki_types::{alg_id, AlgorithmIdentifier, CertificateDer, PrivateKeyDer};
use x509_parser::certificate::X509Certificate;
use x509_parser::extensions::GeneralName;
use x509_parser::prelude::FromDer as _;
use x509_parser::public_key::PublicKey;

use super::identity::HostIdentity;
use super::signing::load_signing_key;
use super::{hex, HostKey, KeyType, PkiError, Validity};

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
            Ok(signing_key) => identity.certify(signing_key)?,
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

/// Certificates as PEM, one block after another: what a CA file or a chain file holds.
pub fn certificates_pem(certs: &[rustls_pki_types::CertificateDer<'_>]) -> String {
    certs
        .iter()
        .map(|c| pem_encode("CERTIFICATE", c.as_ref()))
        .collect()
}

/// `der` as a PEM block with `label` (64 base64 characters a line, LF line ends).
pub(super) fn pem_encode(label: &str, der: &[u8]) -> String {
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
