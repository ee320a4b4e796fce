//! The client's check of the server certificate: rustls's own WebPKI verification, plus the
//! two diagnoses a deployment engineer cannot get from it directly.
//!
//! * A leaf with an RSA key below 2048 bits is reported as [`FailureCategory::WeakKey`],
//!   before any other diagnosis. Without this the chain would verify (the CA signed it
//!   with its own, strong key) and the handshake would fail later, on the server's
//!   signature, with an error that reads like an untrusted CA.
//!
//! Both diagnoses look at the certificate only once WebPKI has refused something, so a
//! handshake that succeeds costs what rustls's own verifier costs.
//! * A leaf whose issuer is unknown, sent without any intermediate certificate, is reported
//!   as [`FailureCategory::UnknownIssuer`] (a missing intermediate, or a CA the client
//!   lacks) when the client can see that its issuer is not one of the CAs it trusts; see
//!   [`client_config`] for exactly when.
//!
//! Every other outcome is WebPKI's, unchanged, so [`crate::transport::explain`] categorises
//! it as before.

use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::CryptoProvider;
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, DistinguishedName, RootCertStore,
    SignatureScheme,
};
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};
use x509_parser::public_key::PublicKey;

use crate::pki::PkiError;
use crate::transport::{Diagnosis, FailureCategory, TlsSettings};

/// The smallest RSA modulus, in bits, accepted in a server certificate.
const MIN_RSA_BITS: u32 = 2048;

/// A client configuration trusting exactly `roots`, checking the server's host name, with
/// the provider and protocol versions of `tls`, whose verifier diagnoses weak keys and
/// missing intermediate certificates.
///
/// The server's certificate is checked as rustls's WebPKI verifier checks it (chain to one
/// of `roots`, validity period, host name, serverAuth usage), with two additions:
///
/// * **Weak key**, diagnosed first: if the certificate check or the server's handshake
///   signature fails and the leaf's public key is RSA with a modulus below 2048 bits, the
///   failure is [`FailureCategory::WeakKey`], whatever else may be wrong with the
///   certificate.
/// * **Unknown issuer** (a missing intermediate, or a CA the client lacks): if WebPKI finds no trusted issuer
///   ([`CertificateError::UnknownIssuer`]), *and* the server sent the leaf alone (no
///   intermediate certificates), *and* the leaf is not self-issued (its issuer name differs
///   from its subject name), *and* its issuer name is not the subject name of any of
///   `roots`, the failure is [`FailureCategory::UnknownIssuer`], with a message naming
///   the issuer and the remedy for each of the two causes.
///
/// Every other failure is WebPKI's error unchanged (so an unknown issuer in any other
/// situation stays [`FailureCategory::UntrustedCa`] in [`crate::transport::explain`]).
///
/// The client cannot always tell a missing intermediate from an unknown CA. It only sees
/// the leaf's issuer *name*, and nothing distinguishes a leaf signed by an intermediate
/// whose certificate the server failed to send from a leaf signed directly by a root CA
/// this client does not trust: both are reported as an unknown issuer, and the message
/// gives the remedy for each. What the client can tell apart stays untrusted CA:
///
/// * the issuer name is that of a trusted root, but the root's key did not sign the leaf
///   (a different CA that happens to carry the same name, e.g. a CA regenerated under the
///   old name; WebPKI reports [`CertificateError::BadSignature`]);
/// * the server did send intermediates, but none leads to a trusted root;
/// * the leaf is self-signed (self-issued).
///
/// Fails if `roots` is empty, if one of them cannot be parsed, or if rustls refuses the
/// versions of `tls` with its provider.
pub fn client_config(
    roots: Vec<CertificateDer<'static>>,
    tls: &TlsSettings,
) -> Result<Arc<ClientConfig>, PkiError> {
    let provider = tls.provider()?;
    let verifier = Verifier::new(roots, &provider)?;
    let config = ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&tls.protocol_versions())
        .map_err(|source| PkiError::Rustls {
            what: "client configuration",
            source,
        })?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier))
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// WebPKI's server certificate verifier with the diagnoses of [`client_config`].
#[derive(Debug)]
struct Verifier {
    inner: Arc<WebPkiServerVerifier>,
    /// The DER subject names (outer SEQUENCE included) of the trusted roots.
    trusted_subjects: Vec<Vec<u8>>,
}

impl Verifier {
    /// A verifier trusting exactly `roots`, verifying signatures with `provider`'s
    /// algorithms.
    fn new(
        roots: Vec<CertificateDer<'static>>,
        provider: &Arc<CryptoProvider>,
    ) -> Result<Self, PkiError> {
        let mut store = RootCertStore::empty();
        let mut trusted_subjects = Vec::with_capacity(roots.len());
        for root in roots {
            let subject = x509_parser::parse_x509_certificate(&root)
                .map(|(_, cert)| cert.subject().as_raw().to_vec())
                .map_err(|_| PkiError::Rustls {
                    what: "trusted CA certificate",
                    source: CertificateError::BadEncoding.into(),
                })?;
            store.add(root).map_err(|source| PkiError::Rustls {
                what: "trusted CA certificate",
                source,
            })?;
            trusted_subjects.push(subject);
        }
        let inner = WebPkiServerVerifier::builder_with_provider(Arc::new(store), provider.clone())
            .build()
            .map_err(|e| PkiError::Rustls {
                what: "certificate verifier",
                source: rustls::Error::Other(rustls::OtherError(Arc::new(e))),
            })?;
        Ok(Verifier {
            inner,
            trusted_subjects,
        })
    }

    /// The unknown-issuer diagnosis for a leaf sent alone that WebPKI found no
    /// trusted issuer for, if the leaf's issuer is not a trusted root and not itself.
    fn unknown_issuer(&self, leaf: &[u8], host: &str) -> Option<Diagnosis> {
        let (_, cert) = x509_parser::parse_x509_certificate(leaf).ok()?;
        let issuer = cert.issuer().as_raw();
        if issuer == cert.subject().as_raw() {
            return None;
        }
        if self.trusted_subjects.iter().any(|s| s.as_slice() == issuer) {
            return None;
        }
        let issuer = cert.issuer().to_string();
        Some(Diagnosis::new(
            FailureCategory::UnknownIssuer,
            format!(
                "the certificate presented for {host} was issued by \"{issuer}\", which is not \
                 a CA this client trusts, and the server sent no intermediate certificate; if \
                 \"{issuer}\" is an intermediate of your CA, install the full chain (leaf + \
                 intermediate) on the server; otherwise install its CA on the client"
            ),
        ))
    }
}

/// The weak-key diagnosis for `leaf` (DER) presented for `host`, if its key is RSA with a
/// modulus below [`MIN_RSA_BITS`]. A leaf that does not parse is left to WebPKI.
fn weak_key(leaf: &[u8], host: &str) -> Option<Diagnosis> {
    let (_, cert) = x509_parser::parse_x509_certificate(leaf).ok()?;
    let Ok(PublicKey::RSA(rsa)) = cert.public_key().parsed() else {
        return None;
    };
    let bits = bit_len(rsa.modulus);
    (bits < MIN_RSA_BITS).then(|| {
        Diagnosis::new(
            FailureCategory::WeakKey,
            format!(
                "the certificate presented for {host} has an RSA-{bits} key; clients refuse RSA \
                 keys below {MIN_RSA_BITS} bits; reissue it with an RSA key of {MIN_RSA_BITS} \
                 bits or more, or ECDSA P-256"
            ),
        )
    })
}

/// A failed handshake signature by a server whose certificate (trusted, otherwise sound)
/// carries a weak RSA key is reported as the weak key it is.
fn weak_signer(err: rustls::Error, cert: &CertificateDer<'_>) -> rustls::Error {
    match weak_key(cert, "the server") {
        Some(d) => d.into_certificate_error(),
        None => err,
    }
}

/// The number of significant bits of a big-endian unsigned integer (leading zero bytes,
/// such as DER's sign byte, do not count).
fn bit_len(bytes: &[u8]) -> u32 {
    match bytes.iter().position(|b| *b != 0) {
        None => 0,
        Some(i) => {
            let rest = u32::try_from(bytes.len() - i - 1).unwrap_or(u32::MAX / 16);
            rest * 8 + (8 - bytes[i].leading_zeros())
        }
    }
}

impl ServerCertVerifier for Verifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let result = self.inner.verify_server_cert(
            end_entity,
            intermediates,
            server_name,
            ocsp_response,
            now,
        );
        if result.is_ok() {
            // The diagnoses below parse the certificate; a handshake that succeeds does
            // not pay for them.
            return result;
        }
        let host = server_name.to_str();
        if let Some(d) = weak_key(end_entity, &host) {
            return Err(d.into_certificate_error());
        }
        match result {
            Err(rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer))
                if intermediates.is_empty() =>
            {
                match self.unknown_issuer(end_entity, &host) {
                    Some(d) => Err(d.into_certificate_error()),
                    None => result,
                }
            }
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner
            .verify_tls12_signature(message, cert, dss)
            .map_err(|e| weak_signer(e, cert))
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner
            .verify_tls13_signature(message, cert, dss)
            .map_err(|e| weak_signer(e, cert))
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }

    fn requires_raw_public_keys(&self) -> bool {
        self.inner.requires_raw_public_keys()
    }

    fn root_hint_subjects(&self) -> Option<&[DistinguishedName]> {
        self.inner.root_hint_subjects()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pki::{CertificateAuthority, KeyType, Validity};
    use crate::transport::explain;

    const HOST: &str = "recorder-1.vms.test";

    #[test]
    fn bit_len_ignores_leading_zeros() {
        assert_eq!(bit_len(&[]), 0);
        assert_eq!(bit_len(&[0, 0]), 0);
        assert_eq!(bit_len(&[1]), 1);
        assert_eq!(bit_len(&[0x00, 0x80, 0x00]), 16);
        assert_eq!(bit_len(&[0x7f, 0xff]), 15);
        let mut modulus = vec![0u8; 129];
        modulus[1] = 0xc3;
        assert_eq!(bit_len(&modulus), 1024);
    }

    #[test]
    fn strong_keys_are_not_weak() {
        let ca = CertificateAuthority::generate(
            "vmsbench test CA",
            KeyType::EcdsaP256,
            Validity::days_from_now(1),
        )
        .expect("CA generation");
        for key in [KeyType::Rsa2048, KeyType::EcdsaP256, KeyType::EcdsaP384] {
            let identity = ca
                .issue(HOST, &[], key, Validity::days_from_now(1))
                .expect("issuing");
            assert_eq!(weak_key(&identity.chain()[0], HOST), None, "{key}");
        }
        assert_eq!(weak_key(b"not a certificate", HOST), None);
    }

    /// An RSA-1024 self-signed certificate made by the system's openssl, DER; `None` (and a
    /// SKIPPING line) without /usr/bin/openssl.
    fn openssl_rsa1024_cert() -> Option<Vec<u8>> {
        let openssl = std::path::Path::new("/usr/bin/openssl");
        if !openssl.exists() {
            eprintln!("SKIPPING the RSA-1024 weak-key test: /usr/bin/openssl does not exist");
            return None;
        }
        let dir = tempfile::tempdir().expect("temporary directory");
        let key = dir.path().join("k");
        let cert = dir.path().join("c");
        let status = std::process::Command::new(openssl)
            .args(["req", "-x509", "-newkey", "rsa:1024", "-nodes", "-keyout"])
            .arg(&key)
            .arg("-out")
            .arg(&cert)
            .args(["-subj", "/CN=x", "-days", "1", "-outform", "DER"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .expect("run openssl");
        if !status.success() {
            eprintln!(
                "SKIPPING the RSA-1024 weak-key test: openssl could not make an RSA-1024 \
                 certificate ({status})"
            );
            return None;
        }
        Some(std::fs::read(&cert).expect("read the certificate openssl wrote"))
    }

    #[test]
    fn rsa1024_leaf_is_a_weak_key() {
        let Some(der) = openssl_rsa1024_cert() else {
            return;
        };
        let d = weak_key(&der, HOST).expect("an RSA-1024 key is weak");
        assert_eq!(d.category, FailureCategory::WeakKey);
        assert!(d.message.contains("RSA-1024"), "{}", d.message);
        assert!(d.message.contains(HOST), "{}", d.message);
        println!("{}", d.message);
    }

    /// The weak key is reported before WebPKI sees the certificate: this one is also
    /// self-signed, for another host, and untrusted, and still reads as a weak key.
    #[test]
    fn weak_key_comes_before_every_other_check() {
        let Some(der) = openssl_rsa1024_cert() else {
            return;
        };
        let ca = CertificateAuthority::generate(
            "vmsbench test CA",
            KeyType::EcdsaP256,
            Validity::days_from_now(1),
        )
        .expect("CA generation");
        let provider = TlsSettings::default().provider().expect("provider");
        let verifier =
            Verifier::new(vec![ca.root_cert_der().clone()], &provider).expect("verifier");
        let name = ServerName::try_from(HOST).expect("server name");
        let err = verifier
            .verify_server_cert(&CertificateDer::from(der), &[], &name, &[], UnixTime::now())
            .expect_err("a weak key is refused");
        let (category, message) = explain(&err, HOST);
        assert_eq!(category, FailureCategory::WeakKey, "{message}");
        assert!(message.starts_with(&format!(
            "the certificate presented for {HOST} has an RSA-1024 key"
        )));
    }

    #[test]
    fn no_roots_is_an_error() {
        let err = client_config(Vec::new(), &TlsSettings::default()).expect_err("no roots");
        assert!(err.to_string().contains("certificate verifier"), "{err}");
        let err = client_config(
            vec![CertificateDer::from(b"junk".to_vec())],
            &TlsSettings::default(),
        )
        .expect_err("junk root");
        assert!(err.to_string().contains("trusted CA certificate"), "{err}");
    }
}
