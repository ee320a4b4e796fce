//! The deployment PKI over real TLS on 127.0.0.1: every key type, TLS 1.2 and 1.3, and the
//! failures a person has to diagnose (untrusted CA, wrong host, expired, not yet valid).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use rustls::{ClientConfig, ServerConfig};
use serde::Deserialize;
use simulators::pki::{CertificateAuthority, HostIdentity, KeyType, Pki, PkiError, Validity};
use simulators::transport::{
    Accepted, ConnectError, Connector, FailureCategory, KxGroup, Listener, Negotiated, TlsSettings,
    TlsVersion,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::task::JoinHandle;

const HOST: &str = "recorder-1.vms.test";
const OTHER_HOST: &str = "recorder-2.vms.test";
const DAY: Duration = Duration::from_secs(86_400);

/// Sent by the client; large enough to span several TLS records.
fn request() -> Vec<u8> {
    (0..40_000u32).map(|i| (i % 251) as u8).collect()
}

const REPLY: &[u8] = b"stream 7: 1920x1080 H.264, 25 fps, from the recording server";

fn localhost() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 0))
}

fn ca(key: KeyType) -> CertificateAuthority {
    CertificateAuthority::generate("vmsbench test CA", key, Validity::days_from_now(30))
        .expect("CA generation")
}

fn issue(ca: &CertificateAuthority, key: KeyType, validity: Validity) -> HostIdentity {
    ca.issue(HOST, &[], key, validity).expect("issuing")
}

async fn listen(server: Arc<ServerConfig>) -> (Arc<Listener>, SocketAddr) {
    let listener = Listener::bind(localhost(), Some(server))
        .await
        .expect("bind 127.0.0.1:0");
    let addr = listener.local_addr().expect("local_addr");
    (Arc::new(listener), addr)
}

/// Accepts one connection and completes the server side of its handshake.
fn accept_one(listener: &Arc<Listener>) -> JoinHandle<Result<Accepted, ConnectError>> {
    let listener = listener.clone();
    tokio::spawn(async move {
        let incoming = listener.accept().await.expect("accept");
        incoming.handshake().await
    })
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
    let server = accept_one(listener);
    let err = match Connector::tls(client).connect(addr, host).await {
        Ok(c) => panic!(
            "connecting as {host} should fail, negotiated {:?}",
            c.negotiated
        ),
        Err(e) => e,
    };
    println!("client refused: [{}] {err}", err.category.as_str());
    let server_err = match server.await.expect("server task") {
        Ok(a) => panic!(
            "server handshake should fail, negotiated {:?}",
            a.negotiated
        ),
        Err(e) => e,
    };
    println!(
        "server saw: [{}] {server_err}",
        server_err.category.as_str()
    );
    err
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
    let tls = TlsSettings {
        versions: vec![TlsVersion::Tls12],
        groups: vec![KxGroup::X25519],
        ..Default::default()
    };
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

    // A client that trusts another CA.
    let err = refused(
        &listener,
        addr,
        stranger.client_config(&tls).expect("client config"),
        HOST,
    )
    .await;
    assert_eq!(err.category, FailureCategory::UntrustedCa);
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
