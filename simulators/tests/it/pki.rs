//! The deployment PKI over real TLS on 127.0.0.1: every key type, TLS 1.2 and 1.3, and the
//! failures a person has to diagnose (untrusted CA, wrong host, expired, not yet valid).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use rustls::ClientConfig;
use serde::Deserialize;
use simulators::pki::{CertificateAuthority, HostIdentity, KeyType, Pki, PkiError, Validity};
use simulators::transport::{
    ConnectError, Connector, FailureCategory, Listener, Negotiated, TlsSettings,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::task::JoinHandle;

use crate::support::{accept_one, listen, tls12, try_handshake, HOST, OTHER_HOST};

const DAY: Duration = Duration::from_secs(86_400);

/// Sent by the client; large enough to span several TLS records.
fn request() -> Vec<u8> {
    (0..40_000u32).map(|i| (i % 251) as u8).collect()
}

const REPLY: &[u8] = b"stream 7: 1920x1080 H.264, 25 fps, from the recording server";

fn ca(key: KeyType) -> CertificateAuthority {
    CertificateAuthority::generate("vmsbench test CA", key, Validity::days_from_now(30))
        .expect("CA generation")
}

/// An intermediate CA under `root` with a `key` key, valid for 30 days.
fn intermediate(root: &CertificateAuthority, key: KeyType) -> CertificateAuthority {
    root.issue_intermediate(
        "vmsbench test intermediate",
        key,
        Validity::days_from_now(30),
    )
    .expect("intermediate")
}

fn issue(ca: &CertificateAuthority, key: KeyType, validity: Validity) -> HostIdentity {
    ca.issue(HOST, &[], key, validity).expect("issuing")
}

/// An identity for [`HOST`] with an RSA-1024 key, valid for a week.
fn rsa1024(ca: &CertificateAuthority) -> HostIdentity {
    ca.issue_flawed(
        HOST,
        KeyType::Rsa2048,
        Validity::days_from_now(7),
        Flaw::Rsa1024,
    )
    .expect("RSA-1024")
}

/// Accepts one connection, reads the request and answers it; returns what was negotiated.
fn serve_one(listener: &Arc<Listener>) -> JoinHandle<Negotiated> {
    let handshake = accept_one(listener);
    tokio::spawn(async move {
        let mut accepted = handshake
            .await
            .expect("server task")
            .expect("server handshake");
        let mut got = vec![0u8; request().len()];
        accepted
            .stream
            .read_exact(&mut got)
            .await
            .expect("server read");
        assert_eq!(got, request(), "server received the client's bytes intact");
        accepted
            .stream
            .write_all(REPLY)
            .await
            .expect("server write");
        accepted.stream.flush().await.expect("server flush");
        accepted
            .negotiated
            .expect("server side negotiated parameters")
    })
}

/// Connects as `host`, exchanges bytes both ways with [`serve_one`], returns what the client
/// and the server saw negotiated.
async fn round_trip(
    listener: &Arc<Listener>,
    addr: SocketAddr,
    client: Arc<ClientConfig>,
    host: &str,
) -> (Negotiated, Negotiated) {
    let server = serve_one(listener);
    let mut connected = Connector::tls(client)
        .connect(addr, host)
        .await
        .unwrap_or_else(|e| panic!("client connect as {host}: {e}"));
    connected
        .stream
        .write_all(&request())
        .await
        .expect("client write");
    connected.stream.flush().await.expect("client flush");
    let mut got = vec![0u8; REPLY.len()];
    connected
        .stream
        .read_exact(&mut got)
        .await
        .expect("client read");
    assert_eq!(got, REPLY, "client received the server's bytes intact");
    let server_side = server.await.expect("server task");
    let client_side = connected
        .negotiated
        .expect("client side negotiated parameters");
    (client_side, server_side)
}

/// Connects with a client that must be refused; returns the client's error after checking
/// that the server's handshake failed too.
async fn refused(
    listener: &Arc<Listener>,
    addr: SocketAddr,
    client: Arc<ClientConfig>,
    host: &str,
) -> ConnectError {
    refused_both(listener, addr, client, host).await.0
}

/// Like [`refused`], but returns the server's error too.
async fn refused_both(
    listener: &Arc<Listener>,
    addr: SocketAddr,
    client: Arc<ClientConfig>,
    host: &str,
) -> (ConnectError, ConnectError) {
    match try_handshake(listener, addr, client, host).await {
        Ok((connected, _)) => panic!(
            "connecting as {host} should fail, negotiated {:?}",
            connected.negotiated
        ),
        Err(both) => both,
    }
}

#[tokio::test]
async fn every_key_type_serves_tls13_with_pinned_parameters() {
    let tls = TlsSettings::default();
    for &key in KeyType::ALL {
        let ca = ca(key);
        let identity = issue(&ca, key, Validity::days_from_now(7));
        assert_eq!(identity.key_type(), key);
        assert_eq!(identity.host(), HOST);
        assert_eq!(identity.chain().len(), 1, "leaf only");
        let (listener, addr) = listen(identity.server_config(&tls).expect("server config")).await;
        let client = ca.client_config(&tls).expect("client config");
        let (client_side, server_side) = round_trip(&listener, addr, client, HOST).await;
        println!(
            "{key}: {} {} {} (serial {})",
            client_side.version,
            client_side.suite,
            client_side.group,
            identity.serial_hex()
        );
        assert_eq!(client_side.version, "TLSv1_3");
        assert_eq!(client_side.suite, "TLS13_AES_256_GCM_SHA384");
        assert_eq!(client_side.group, "X25519MLKEM768");
        assert!(!client_side.resumed);
        assert_eq!(client_side, server_side, "both ends agree");
    }
}

#[tokio::test]
async fn tls12_handshake_works_for_rsa_and_ecdsa() {
    let tls = tls12();
    for key in [KeyType::Rsa2048, KeyType::EcdsaP256, KeyType::EcdsaP384] {
        let ca = ca(key);
        let identity = issue(&ca, key, Validity::days_from_now(7));
        let (listener, addr) = listen(identity.server_config(&tls).expect("server config")).await;
        let client = ca.client_config(&tls).expect("client config");
        let (client_side, server_side) = round_trip(&listener, addr, client, HOST).await;
        println!(
            "{key}: {} {} {}",
            client_side.version, client_side.suite, client_side.group
        );
        assert_eq!(client_side.version, "TLSv1_2");
        let auth = if key.is_rsa() { "RSA" } else { "ECDSA" };
        assert_eq!(
            client_side.suite,
            format!("TLS_ECDHE_{auth}_WITH_AES_256_GCM_SHA384")
        );
        assert_eq!(client_side.group, "X25519");
        assert_eq!(client_side, server_side);
    }
}

#[tokio::test]
async fn refusals_are_categorised_and_the_listener_keeps_accepting() {
    let tls = TlsSettings::default();
    let key = KeyType::EcdsaP256;
    let ca = ca(key);
    let stranger =
        CertificateAuthority::generate("some other CA", key, Validity::days_from_now(30))
            .expect("second CA");
    let good = issue(&ca, key, Validity::days_from_now(7));
    let (listener, addr) = listen(good.server_config(&tls).expect("server config")).await;
    let client = ca.client_config(&tls).expect("client config");

    // A client that trusts another CA (of another name): from its side, the server's
    // issuer is simply unknown.
    let err = refused(
        &listener,
        addr,
        stranger.client_config(&tls).expect("client config"),
        HOST,
    )
    .await;
    assert_eq!(err.category, FailureCategory::UnknownIssuer);
    assert!(err.message.contains("CA"), "message: {}", err.message);
    assert_eq!(err.host, HOST);

    // The right CA but the wrong name.
    let err = refused(&listener, addr, client.clone(), OTHER_HOST).await;
    assert_eq!(err.category, FailureCategory::WrongHost);
    assert!(err.message.contains(OTHER_HOST), "message: {}", err.message);

    // After both failures the same listener still serves a good client.
    let (negotiated, _) = round_trip(&listener, addr, client.clone(), HOST).await;
    assert_eq!(negotiated.version, "TLSv1_3");

    // Certificates outside their validity window, served by their own listeners.
    let now = SystemTime::now();
    let expired = Validity {
        not_before: now - 30 * DAY,
        not_after: now - DAY,
    };
    let not_yet = Validity {
        not_before: now + DAY,
        not_after: now + 30 * DAY,
    };
    for (validity, category) in [
        (expired, FailureCategory::Expired),
        (not_yet, FailureCategory::NotYetValid),
    ] {
        let identity = issue(&ca, key, validity);
        let (listener, addr) = listen(identity.server_config(&tls).expect("server config")).await;
        let err = refused(&listener, addr, client.clone(), HOST).await;
        assert_eq!(err.category, category, "{err}");
    }
}

#[tokio::test]
async fn extra_sans_allow_ip_addresses_and_short_names() {
    let tls = TlsSettings::default();
    let key = KeyType::EcdsaP256;
    let ca = ca(key);
    let identity = ca
        .issue(
            HOST,
            &["127.0.0.1".to_owned(), "recorder-1".to_owned()],
            key,
            Validity::days_from_now(7),
        )
        .expect("issuing with extra SANs");
    assert_eq!(
        identity.subject_alt_names(),
        [HOST, "127.0.0.1", "recorder-1"]
    );
    let (listener, addr) = listen(identity.server_config(&tls).expect("server config")).await;
    let client = ca.client_config(&tls).expect("client config");
    for host in [HOST, "127.0.0.1", "recorder-1"] {
        let (negotiated, _) = round_trip(&listener, addr, client.clone(), host).await;
        println!("connected as {host}: {}", negotiated.version);
    }
    // A name that is not in the certificate is still refused.
    let err = refused(&listener, addr, client, "127.0.0.2").await;
    assert_eq!(err.category, FailureCategory::WrongHost);
}

#[test]
fn debug_output_never_shows_private_keys() {
    let ca = ca(KeyType::EcdsaP256);
    let identity = issue(&ca, KeyType::Rsa2048, Validity::days_from_now(7));
    let pki = Pki::generate(&[HOST], KeyType::EcdsaP256, 7).expect("pki");

    for (what, debug, key_pem, key_der) in [
        (
            "HostIdentity",
            format!("{identity:?} {:#?}", identity.clone()),
            identity.key_pem(),
            Some(identity.private_key().secret_der().to_vec()),
        ),
        (
            "CertificateAuthority",
            format!("{ca:?} {ca:#?}"),
            ca.key_pem(),
            None,
        ),
        (
            "Pki",
            format!("{pki:?}"),
            pki.host(HOST).expect("host").key_pem(),
            None,
        ),
    ] {
        println!("{what}: {debug}");
        assert!(key_pem.contains("BEGIN PRIVATE KEY"), "{what}: PKCS#8 PEM");
        assert!(
            !debug.contains("PRIVATE KEY"),
            "{what} Debug shows a PEM key"
        );
        // No line of the key's base64 body may appear.
        for line in key_pem.lines().filter(|l| !l.starts_with("-----")) {
            assert!(!debug.contains(line), "{what} Debug shows key material");
        }
        if let Some(der) = key_der {
            let bytes = format!("{:?}", &der[der.len() - 16..]);
            let inner = bytes.trim_start_matches('[').trim_end_matches(']');
            assert!(!debug.contains(inner), "{what} Debug shows key bytes");
        }
        assert!(
            debug.contains("redacted"),
            "{what} Debug says the key is hidden"
        );
    }
}

#[test]
fn names_serial_numbers_pem_and_errors() {
    // Key type names round-trip through FromStr, Display and serde.
    for &key in KeyType::ALL {
        assert_eq!(key.name().parse::<KeyType>(), Ok(key));
        assert_eq!(key.to_string(), key.name());
        let de = serde::de::value::StrDeserializer::<serde::de::value::Error>::new(key.name());
        assert_eq!(KeyType::deserialize(de).expect("serde name"), key);
    }
    assert_eq!(KeyType::default(), KeyType::Rsa2048);
    assert_eq!(" ECDSA-P384 ".parse::<KeyType>(), Ok(KeyType::EcdsaP384));
    let err = "rsa1024"
        .parse::<KeyType>()
        .expect_err("rsa1024 is not offered");
    assert!(
        err.contains("rsa2048") && err.contains("ecdsa-p384"),
        "{err}"
    );

    let pki = Pki::generate(&[HOST, OTHER_HOST, HOST], KeyType::EcdsaP256, 30).expect("pki");
    assert_eq!(pki.hosts().count(), 2);
    assert_eq!(pki.ca.common_name(), "vmsbench deployment CA");
    let a = pki.host(HOST).expect("host 1");
    let b = pki.host(OTHER_HOST).expect("host 2");
    assert_eq!(a.serial_hex().len(), 32);
    assert_ne!(a.serial_hex(), b.serial_hex(), "serial numbers are random");
    assert!(a.cert_pem().starts_with("-----BEGIN CERTIFICATE-----"));
    assert_eq!(a.chain_pem().matches("BEGIN CERTIFICATE").count(), 2);
    assert!(a.chain_pem().ends_with(&pki.ca.cert_pem()));
    assert_eq!(pki.ca.roots().len(), 1);

    let tls = TlsSettings::default();
    assert!(pki.server_config(HOST, &tls).is_ok());
    match pki.server_config("viewer-9.vms.test", &tls) {
        Err(e @ PkiError::UnknownHost { .. }) => {
            let msg = e.to_string();
            println!("{msg}");
            assert!(
                msg.contains("viewer-9.vms.test") && msg.contains(HOST),
                "{msg}"
            );
        }
        other => panic!("expected UnknownHost, got {other:?}"),
    }

    // Names and windows that cannot go into a certificate are refused before any work.
    match pki.ca.issue(
        "bad name!",
        &[],
        KeyType::EcdsaP256,
        Validity::days_from_now(1),
    ) {
        Err(e @ PkiError::InvalidName { .. }) => println!("{e}"),
        other => panic!("expected InvalidName, got {other:?}"),
    }
    let now = SystemTime::now();
    let backwards = Validity {
        not_before: now,
        not_after: now - DAY,
    };
    match pki.ca.issue(HOST, &[], KeyType::EcdsaP256, backwards) {
        Err(e @ PkiError::InvalidValidity(_)) => println!("{e}"),
        other => panic!("expected InvalidValidity, got {other:?}"),
    }
    let far = Validity {
        not_before: now,
        not_after: now + 10_000 * 366 * DAY,
    };
    assert!(matches!(
        CertificateAuthority::generate("x", KeyType::EcdsaP256, far),
        Err(PkiError::InvalidValidity(_))
    ));
    let empty = TlsSettings {
        versions: vec![],
        ..Default::default()
    };
    assert!(matches!(
        pki.client_config(&empty),
        Err(PkiError::Settings(_))
    ));

    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Pki>();
    assert_send_sync::<HostIdentity>();
}

// Staged certificate faults: flawed certificates, a missing intermediate, a server that cannot
// read its key, and identities read back from PEM.

use std::sync::Mutex;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::{CertificateError, DigitallySignedStruct, SignatureScheme};
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};
use simulators::pki::Flaw;
use x509_parser::prelude::{FromDer, X509Certificate};

/// A client that verifies like rustls's own WebPKI verifier and nothing more: what
/// `CertificateAuthority::client_config` was before vmsbench had a verifier of its own, so
/// that the tests can show the errors rustls itself reports.
fn webpki_client(ca: &CertificateAuthority, tls: &TlsSettings) -> Arc<ClientConfig> {
    let config = ClientConfig::builder_with_provider(tls.provider().expect("provider"))
        .with_protocol_versions(&tls.protocol_versions())
        .expect("protocol versions")
        .with_root_certificates(ca.roots())
        .with_no_client_auth();
    Arc::new(config)
}

/// The rustls error a client handshake fails with, as rustls reports it (not categorised).
async fn rustls_error(
    listener: &Arc<Listener>,
    addr: SocketAddr,
    client: Arc<ClientConfig>,
    host: &str,
) -> rustls::Error {
    let server = accept_one(listener);
    let tcp = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let name = ServerName::try_from(host.to_owned()).expect("server name");
    let err = match tokio_rustls::TlsConnector::from(client)
        .connect(name, tcp)
        .await
    {
        Ok(_) => panic!("the handshake as {host} should fail"),
        Err(e) => e,
    };
    let _ = server.await.expect("server task");
    let err = err
        .get_ref()
        .and_then(|e| e.downcast_ref::<rustls::Error>())
        .cloned()
        .unwrap_or_else(|| panic!("not a rustls error: {err}"));
    println!("rustls error: {err:?}");
    err
}

/// The modulus size of a certificate's RSA key, read with x509-parser.
fn rsa_bits(cert: &[u8]) -> u32 {
    let (_, cert) = X509Certificate::from_der(cert).expect("X.509");
    match cert.public_key().parsed().expect("public key") {
        x509_parser::public_key::PublicKey::RSA(rsa) => {
            let modulus = rsa.modulus;
            let zeros = modulus.iter().take_while(|b| **b == 0).count();
            let first = modulus[zeros];
            (modulus.len() - zeros - 1) as u32 * 8 + (8 - first.leading_zeros())
        }
        other => panic!("not an RSA key: {other:?}"),
    }
}

/// A client that checks the chain as WebPKI does but accepts handshake signatures by RSA
/// keys below 2048 bits, checking them with the rsa crate: it proves that a server with an
/// RSA-1024 key really signs with it. It records what it was shown.
#[derive(Debug)]
struct WeakKeyClient {
    webpki: Arc<WebPkiServerVerifier>,
    schemes: Vec<SignatureScheme>,
    leaf: Mutex<Option<CertificateDer<'static>>>,
    signed_with: Mutex<Option<SignatureScheme>>,
}

impl WeakKeyClient {
    /// A client trusting `ca`'s root that offers `schemes` (WebPKI's if empty).
    fn new(ca: &CertificateAuthority, tls: &TlsSettings, schemes: &[SignatureScheme]) -> Arc<Self> {
        let webpki = WebPkiServerVerifier::builder_with_provider(
            Arc::new(ca.roots()),
            tls.provider().expect("provider"),
        )
        .build()
        .expect("WebPKI verifier");
        let schemes = if schemes.is_empty() {
            webpki.supported_verify_schemes()
        } else {
            schemes.to_vec()
        };
        Arc::new(WeakKeyClient {
            webpki,
            schemes,
            leaf: Mutex::new(None),
            signed_with: Mutex::new(None),
        })
    }

    fn config(self: &Arc<Self>, tls: &TlsSettings) -> Arc<ClientConfig> {
        let config = ClientConfig::builder_with_provider(tls.provider().expect("provider"))
            .with_protocol_versions(&tls.protocol_versions())
            .expect("protocol versions")
            .dangerous()
            .with_custom_certificate_verifier(self.clone())
            .with_no_client_auth();
        Arc::new(config)
    }

    fn check_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        use rsa::pkcs8::DecodePublicKey;
        use rsa::sha2::Sha256;
        let (_, x509) = X509Certificate::from_der(cert).expect("X.509");
        let key =
            rsa::PublicKey::from_public_key_der(x509.public_key().raw).expect("an RSA public key");
        let checked = match dss.scheme {
            SignatureScheme::RSA_PSS_SHA256 => key.pss_verify::<Sha256>(message, dss.signature()),
            SignatureScheme::RSA_PKCS1_SHA256 => {
                key.pkcs1v15_verify::<Sha256>(message, dss.signature())
            }
            other => panic!("unexpected scheme {other:?}"),
        };
        checked.map_err(|e| rustls::Error::General(format!("bad RSA signature: {e}")))?;
        *self.signed_with.lock().expect("lock") = Some(dss.scheme);
        Ok(HandshakeSignatureValid::assertion())
    }
}

impl ServerCertVerifier for WeakKeyClient {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        *self.leaf.lock().expect("lock") = Some(end_entity.clone().into_owned());
        self.webpki
            .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.check_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.check_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.schemes.clone()
    }
}

/// Asserts that no line of `key_pem`'s base64 body appears in `text`.
fn assert_no_key_material(text: &str, key_pem: &str) {
    for line in key_pem.lines().filter(|l| !l.starts_with("-----")) {
        assert!(!text.contains(line), "key material in: {text}");
    }
}

#[tokio::test]
async fn no_server_auth_eku_is_refused_as_bad_usage() {
    let tls = TlsSettings::default();
    let key = KeyType::EcdsaP256;
    let ca = ca(key);
    let identity = ca
        .issue_flawed(HOST, key, Validity::days_from_now(7), Flaw::NoServerAuthEku)
        .expect("issuing without serverAuth");
    assert_eq!(identity.key_type(), key);
    let (listener, addr) = listen(identity.server_config(&tls).expect("server config")).await;

    let err = rustls_error(&listener, addr, webpki_client(&ca, &tls), HOST).await;
    assert!(
        matches!(
            err,
            rustls::Error::InvalidCertificate(
                CertificateError::InvalidPurpose | CertificateError::InvalidPurposeContext { .. }
            )
        ),
        "{err:?}"
    );
    let client = ca.client_config(&tls).expect("client config");
    let (err, _) = refused_both(&listener, addr, client, HOST).await;
    assert_eq!(err.category, FailureCategory::BadUsage, "{err}");
}

#[tokio::test]
async fn rsa1024_is_served_and_signed_with_and_the_client_refuses_it() {
    let ca = ca(KeyType::Rsa2048);
    // The key type asked for is ignored: the flaw decides the key.
    let identity = ca
        .issue_flawed(
            HOST,
            KeyType::EcdsaP384,
            Validity::days_from_now(7),
            Flaw::Rsa1024,
        )
        .expect("issuing with an RSA-1024 key");
    assert_eq!(identity.key_bits(), 1024);
    assert_eq!(identity.key_type(), KeyType::Rsa2048);
    assert_eq!(rsa_bits(&identity.chain()[0]), 1024);
    let debug = format!("{identity:?}");
    assert!(debug.contains("Rsa1024"), "{debug}");
    assert!(identity
        .key_pem()
        .starts_with("-----BEGIN PRIVATE KEY-----"));
    assert_no_key_material(&debug, &identity.key_pem());

    let tls13 = TlsSettings::default();
    let tls12 = tls12();
    for (tls, schemes, expected) in [
        (
            &tls13,
            vec![SignatureScheme::RSA_PSS_SHA256],
            SignatureScheme::RSA_PSS_SHA256,
        ),
        (
            &tls12,
            vec![SignatureScheme::RSA_PKCS1_SHA256],
            SignatureScheme::RSA_PKCS1_SHA256,
        ),
        (
            &tls12,
            vec![SignatureScheme::RSA_PSS_SHA256],
            SignatureScheme::RSA_PSS_SHA256,
        ),
    ] {
        for reloadable in [false, true] {
            let server = if reloadable {
                identity
                    .server_config_reloadable(tls)
                    .expect("reloadable")
                    .0
            } else {
                identity.server_config(tls).expect("server config")
            };
            let (listener, addr) = listen(server).await;

            // A client that accepts the weak key completes the handshake: the server
            // presented the 1024-bit key and signed with it.
            let weak = WeakKeyClient::new(&ca, tls, &schemes);
            let (negotiated, _) = round_trip(&listener, addr, weak.config(tls), HOST).await;
            let leaf = weak.leaf.lock().expect("lock").clone().expect("leaf shown");
            assert_eq!(rsa_bits(&leaf), 1024);
            assert_eq!(*weak.signed_with.lock().expect("lock"), Some(expected));
            println!(
                "{} {}, reloadable {reloadable}: signed with {expected:?}",
                negotiated.version, negotiated.suite
            );

            // rustls's own verifier refuses it, and so does the deployment's client.
            let err = rustls_error(&listener, addr, webpki_client(&ca, tls), HOST).await;
            println!("  WebPKI client: {err:?}");
            let client = ca.client_config(tls).expect("client config");
            let (err, _) = refused_both(&listener, addr, client, HOST).await;
            println!("  client_config: [{}] {err}", err.category.as_str());
        }
    }
}

#[tokio::test]
async fn leaf_only_lacks_the_intermediate_and_is_refused() {
    let tls = TlsSettings::default();
    let key = KeyType::EcdsaP256;
    let root = ca(key);
    let intermediate = intermediate(&root, key);
    let identity = issue(&intermediate, key, Validity::days_from_now(7));
    assert_eq!(identity.chain().len(), 2);
    assert_eq!(identity.chain_pem().matches("BEGIN CERTIFICATE").count(), 3);
    let client = root.client_config(&tls).expect("client config");

    // With its intermediate, the identity is accepted.
    let (listener, addr) = listen(identity.server_config(&tls).expect("server config")).await;
    round_trip(&listener, addr, client.clone(), HOST).await;

    let leaf_only = identity.leaf_only();
    assert_eq!(leaf_only.chain(), &identity.chain()[..1]);
    assert_eq!(leaf_only.serial_hex(), identity.serial_hex());
    assert_eq!(
        leaf_only.chain_pem(),
        format!("{}{}", identity.cert_pem(), root.root_cert_pem())
    );
    let (listener, addr) = listen(leaf_only.server_config(&tls).expect("server config")).await;
    let err = rustls_error(&listener, addr, webpki_client(&root, &tls), HOST).await;
    assert!(
        matches!(
            err,
            rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer)
        ),
        "{err:?}"
    );
    let (err, _) = refused_both(&listener, addr, client, HOST).await;
    println!("client_config: [{}] {err}", err.category.as_str());

    // Reloading the full identity into a leaf-only server repairs it.
    let (server, reloadable) = leaf_only
        .server_config_reloadable(&tls)
        .expect("reloadable");
    let (listener, addr) = listen(server).await;
    refused_both(
        &listener,
        addr,
        root.client_config(&tls).expect("client config"),
        HOST,
    )
    .await;
    reloadable.replace(&identity).expect("replace");
    round_trip(
        &listener,
        addr,
        root.client_config(&tls).expect("client config"),
        HOST,
    )
    .await;
}

/// `der`'s PKCS#8 private key re-encoded as the PEM `label` of its inner key (PKCS#1 or
/// SEC1), as `openssl` writes them in their traditional formats.
fn traditional_key_pem(pkcs8_der: &[u8], label: &str) -> String {
    use base64::Engine;
    use x509_parser::der_parser::parse_der;
    let (_, info) = parse_der(pkcs8_der).expect("PKCS#8 DER");
    let inner = info.as_sequence().expect("PrivateKeyInfo")[2]
        .as_slice()
        .expect("privateKey OCTET STRING");
    let b64 = base64::engine::general_purpose::STANDARD.encode(inner);
    let mut pem = format!("-----BEGIN {label}-----\n");
    for line in b64.as_bytes().chunks(64) {
        pem.push_str(std::str::from_utf8(line).expect("base64"));
        pem.push('\n');
    }
    pem.push_str(&format!("-----END {label}-----\n"));
    pem
}

fn unix_secs(t: SystemTime) -> u64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .expect("after 1970")
        .as_secs()
}

#[tokio::test]
async fn from_pem_reads_back_what_was_issued_and_serves_it() {
    let tls = TlsSettings::default();
    let sans = ["127.0.0.1".to_owned(), "recorder-1".to_owned()];
    for (key, traditional) in [
        (KeyType::Rsa2048, "RSA PRIVATE KEY"),
        (KeyType::EcdsaP256, "EC PRIVATE KEY"),
        (KeyType::EcdsaP384, "EC PRIVATE KEY"),
    ] {
        let root = ca(KeyType::EcdsaP256);
        let intermediate = intermediate(&root, key);
        let issued = intermediate
            .issue(HOST, &sans, key, Validity::days_from_now(7))
            .expect("issuing");
        let pkcs8 = issued.private_key().secret_der().to_vec();
        for key_pem in [issued.key_pem(), traditional_key_pem(&pkcs8, traditional)] {
            let read = HostIdentity::from_pem(HOST, &issued.chain_pem(), &key_pem)
                .unwrap_or_else(|e| panic!("{key}: from_pem: {e}"));
            println!("{key} ({}): {read:?}", key_pem.lines().next().unwrap_or(""));
            assert_eq!(read.host(), HOST);
            assert_eq!(read.serial_hex(), issued.serial_hex());
            assert_eq!(read.subject_alt_names(), issued.subject_alt_names());
            assert_eq!(read.key_type(), key);
            assert_eq!(read.key_bits(), key.bits());
            assert_eq!(
                unix_secs(read.validity().not_before),
                unix_secs(issued.validity().not_before)
            );
            assert_eq!(
                unix_secs(read.validity().not_after),
                unix_secs(issued.validity().not_after)
            );
            // The intermediate is presented, the root is not but stays in the chain file.
            assert_eq!(read.chain(), issued.chain());
            assert_eq!(
                read.chain_pem().replace("\r\n", "\n"),
                issued.chain_pem().replace("\r\n", "\n")
            );
            assert_eq!(
                read.cert_pem().replace("\r\n", "\n"),
                issued.cert_pem().replace("\r\n", "\n")
            );
            // Whatever the format read, the key is kept as PKCS#8.
            assert_eq!(read.private_key().secret_der(), &pkcs8[..]);
            assert_eq!(
                read.key_pem().replace("\r\n", "\n"),
                issued.key_pem().replace("\r\n", "\n")
            );

            let (listener, addr) = listen(read.server_config(&tls).expect("server config")).await;
            let client = root.client_config(&tls).expect("client config");
            for host in [HOST, "127.0.0.1"] {
                round_trip(&listener, addr, client.clone(), host).await;
            }
        }
    }

    // A leaf alone, and an RSA-1024 identity, read back too.
    let root = ca(KeyType::Rsa2048);
    let weak = rsa1024(&root);
    let pkcs1 = traditional_key_pem(weak.private_key().secret_der(), "RSA PRIVATE KEY");
    let read = HostIdentity::from_pem(OTHER_HOST, &weak.cert_pem(), &pkcs1).expect("from_pem");
    assert_eq!(read.host(), OTHER_HOST);
    assert_eq!(read.subject_alt_names(), [HOST]);
    assert_eq!(read.key_bits(), 1024);
    assert_eq!(read.chain().len(), 1);
    assert_eq!(read.chain_pem().matches("BEGIN CERTIFICATE").count(), 1);
    assert!(read.server_config(&tls).is_ok());
}

#[test]
fn from_pem_errors_are_clear_and_never_show_the_key() {
    let ca = ca(KeyType::EcdsaP256);
    let a = issue(&ca, KeyType::EcdsaP256, Validity::days_from_now(7));
    let b = issue(&ca, KeyType::EcdsaP256, Validity::days_from_now(7));
    let rsa = issue(&ca, KeyType::Rsa2048, Validity::days_from_now(7));
    let check = |result: Result<HostIdentity, PkiError>, key_pem: &str| -> PkiError {
        let err = result.expect_err("from_pem should fail");
        let msg = err.to_string();
        println!("{msg}");
        assert!(msg.contains(HOST), "{msg}");
        assert_no_key_material(&msg, key_pem);
        assert_no_key_material(&format!("{err:?}"), key_pem);
        err
    };

    // No certificate: nothing, or a key where the chain should be.
    for chain in ["", a.key_pem().as_str()] {
        let err = check(
            HostIdentity::from_pem(HOST, chain, &a.key_pem()),
            &a.key_pem(),
        );
        assert!(matches!(err, PkiError::NoCertificate { .. }), "{err:?}");
    }

    // No key: nothing, the certificate given as the key, an encrypted key.
    for (key_pem, hint) in [
        ("", "BEGIN PRIVATE KEY"),
        (a.chain_pem().as_str(), "certificate file given as the key"),
        (
            "-----BEGIN ENCRYPTED PRIVATE KEY-----\nMIIB\n-----END ENCRYPTED PRIVATE KEY-----\n",
            "openssl pkey",
        ),
    ] {
        let err = check(HostIdentity::from_pem(HOST, &a.chain_pem(), key_pem), "");
        match &err {
            PkiError::NoPrivateKey { .. } => assert!(err.to_string().contains(hint), "{err}"),
            other => panic!("expected NoPrivateKey, got {other:?}"),
        }
    }

    // Another certificate's key: of the same type, or of another type, size and format
    // (RSA-1024 keys are loaded by other code than the rest, and are told apart too).
    let weak = rsa1024(&ca);
    let rsa_pkcs1 = traditional_key_pem(rsa.private_key().secret_der(), "RSA PRIVATE KEY");
    let b_sec1 = traditional_key_pem(b.private_key().secret_der(), "EC PRIVATE KEY");
    for (owner, key_pem) in [
        (&a, b.key_pem()),
        (&a, rsa.key_pem()),
        (&a, rsa_pkcs1.clone()),
        (&a, b_sec1.clone()),
        (&rsa, b_sec1),
        (&rsa, a.key_pem()),
        (&rsa, weak.key_pem()),
        (&a, weak.key_pem()),
        (&weak, rsa_pkcs1),
        (&weak, a.key_pem()),
    ] {
        let err = check(
            HostIdentity::from_pem(HOST, &owner.chain_pem(), &key_pem),
            &key_pem,
        );
        assert!(matches!(err, PkiError::KeyMismatch { .. }), "{err:?}");
        assert!(err.to_string().contains(&owner.serial_hex()), "{err}");
    }

    // A damaged key: the message says what is wrong, not what the key holds.
    let mut damaged = a.key_pem();
    damaged.insert_str(damaged.find('\n').expect("newline") + 5, "!!");
    let err = check(
        HostIdentity::from_pem(HOST, &a.chain_pem(), &damaged),
        &a.key_pem(),
    );
    assert!(
        matches!(
            err,
            PkiError::InvalidPem {
                what: "private key",
                ..
            }
        ),
        "{err:?}"
    );

    // A key type that cannot be served.
    let ed_key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ED25519).expect("Ed25519 key");
    let ed_cert = rcgen::CertificateParams::new(vec![HOST.to_owned()])
        .expect("params")
        .self_signed(&ed_key)
        .expect("Ed25519 certificate");
    let err = check(
        HostIdentity::from_pem(HOST, &ed_cert.pem(), &ed_key.serialize_pem()),
        &ed_key.serialize_pem(),
    );
    match &err {
        PkiError::UnsupportedKey { key, .. } => assert_eq!(key, "Ed25519"),
        other => panic!("expected UnsupportedKey, got {other:?}"),
    }
}

#[tokio::test]
async fn a_server_without_its_key_fails_as_key_unreadable() {
    let reason = "permission denied reading /etc/vms/recorder-1.key.pem";
    let tls13 = TlsSettings::default();
    let tls12 = tls12();
    for key in [KeyType::Rsa2048, KeyType::EcdsaP384] {
        let ca = ca(key);
        let identity = issue(&ca, key, Validity::days_from_now(7));
        for tls in [&tls13, &tls12] {
            let server = identity
                .server_config_without_key(tls, reason)
                .expect("server config");
            let (listener, addr) = listen(server).await;
            let client = ca.client_config(tls).expect("client config");
            let (client_err, server_err) = refused_both(&listener, addr, client, HOST).await;
            assert_eq!(server_err.category, FailureCategory::KeyUnreadable);
            assert!(server_err.message.contains(reason), "{server_err}");
            assert!(
                server_err.message.contains(&identity.serial_hex()),
                "{server_err}"
            );
            println!(
                "{key} {:?}: client sees [{}] {client_err}",
                tls.versions,
                client_err.category.as_str()
            );
            // The server fails while building its first flight, so the client is shown
            // nothing, not even the certificate.
            let recorder = WeakKeyClient::new(&ca, tls, &[]);
            refused_both(&listener, addr, recorder.config(tls), HOST).await;
            println!(
                "  certificate shown to the client: {}",
                recorder.leaf.lock().expect("lock").is_some()
            );
        }
    }
}
