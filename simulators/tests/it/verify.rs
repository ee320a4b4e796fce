//! The client's certificate diagnoses over real TLS on 127.0.0.1: a server that forgets its
//! intermediate certificate, certificates from foreign CAs (which the client cannot always
//! tell from a missing intermediate), and the ordinary failures that must read as before.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use rustls::ServerConfig;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use simulators::pki::{CertificateAuthority, HostIdentity, KeyType, Validity};
use simulators::transport::{ConnectError, FailureCategory, TlsSettings};

use crate::support::{listen, tls12, try_handshake, HOST, OTHER_HOST};

const CA_NAME: &str = "vmsbench test CA";
const INTERMEDIATE_NAME: &str = "vmsbench test intermediate CA";
const DAY: Duration = Duration::from_secs(86_400);

fn root(name: &str) -> CertificateAuthority {
    CertificateAuthority::generate(name, KeyType::EcdsaP256, Validity::days_from_now(30))
        .expect("CA generation")
}

fn intermediate(root: &CertificateAuthority) -> CertificateAuthority {
    root.issue_intermediate(
        INTERMEDIATE_NAME,
        KeyType::EcdsaP256,
        Validity::days_from_now(30),
    )
    .expect("intermediate CA")
}

fn issue(ca: &CertificateAuthority, validity: Validity) -> HostIdentity {
    ca.issue(HOST, &[], KeyType::EcdsaP256, validity)
        .expect("issuing")
}

/// Valid from ten days ago until yesterday.
fn expired() -> Validity {
    let now = SystemTime::now();
    Validity {
        not_before: now - 10 * DAY,
        not_after: now - DAY,
    }
}

/// A server configuration presenting `chain` (as given, however incomplete) with `key`.
fn serving(
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
    tls: &TlsSettings,
) -> Arc<ServerConfig> {
    let config = ServerConfig::builder_with_provider(tls.provider().expect("provider"))
        .with_protocol_versions(&tls.protocol_versions())
        .expect("protocol versions")
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .expect("certificate and key");
    Arc::new(config)
}

/// A server configuration presenting `identity`'s leaf without its intermediates.
fn leaf_only(identity: &HostIdentity, tls: &TlsSettings) -> Arc<ServerConfig> {
    serving(
        vec![identity.chain()[0].clone()],
        identity.private_key(),
        tls,
    )
}

/// Serves one handshake with `server` to a client trusting `ca`'s root, dialling `host`;
/// returns the client's error, or `None` if both ends completed the handshake.
async fn handshake(
    server: Arc<ServerConfig>,
    ca: &CertificateAuthority,
    tls: &TlsSettings,
    host: &str,
) -> Option<ConnectError> {
    let (listener, addr) = listen(server).await;
    let client = ca.client_config(tls).expect("client config");
    match try_handshake(&listener, addr, client, host).await {
        Ok((connected, accepted)) => {
            assert_eq!(connected.negotiated, accepted.negotiated);
            None
        }
        Err((client_err, _)) => Some(client_err),
    }
}

async fn refused(
    server: Arc<ServerConfig>,
    ca: &CertificateAuthority,
    tls: &TlsSettings,
    host: &str,
) -> ConnectError {
    handshake(server, ca, tls, host)
        .await
        .expect("the client must refuse the server's certificate")
}

fn versions() -> [TlsSettings; 2] {
    [TlsSettings::default(), tls12()]
}

#[tokio::test]
async fn leaf_served_without_its_intermediate_is_an_unknown_issuer() {
    let root = root(CA_NAME);
    let intermediate = intermediate(&root);
    let identity = issue(&intermediate, Validity::days_from_now(7));
    assert_eq!(identity.chain().len(), 2, "leaf + intermediate");
    for tls in versions() {
        let err = refused(leaf_only(&identity, &tls), &root, &tls, HOST).await;
        assert_eq!(err.category, FailureCategory::UnknownIssuer, "{err}");
        assert!(
            err.message.starts_with(&format!(
                "the certificate presented for {HOST} was issued by \"CN={INTERMEDIATE_NAME}\", \
                 which is not a CA this client trusts, and the server sent no intermediate"
            )),
            "{err}"
        );
        assert!(err.message.contains("install the full chain"), "{err}");

        // The same identity with its chain: the client (also when configured from the
        // intermediate, which trusts the root above it) accepts it.
        let full = identity.server_config(&tls).expect("server config");
        assert!(handshake(full.clone(), &root, &tls, HOST).await.is_none());
        assert!(handshake(full, &intermediate, &tls, HOST).await.is_none());
    }
}

#[tokio::test]
async fn leaf_issued_directly_by_the_trusted_root_still_works() {
    let root = root(CA_NAME);
    let identity = issue(&root, Validity::days_from_now(7));
    for tls in versions() {
        let server = identity.server_config(&tls).expect("server config");
        assert!(handshake(server, &root, &tls, HOST).await.is_none());
    }
}

/// A different CA that carries the trusted root's name: the leaf's issuer name is a trusted
/// root's, so the client knows it is not a missing intermediate; WebPKI's verdict stands.
#[tokio::test]
async fn leaf_from_another_ca_with_the_same_name_is_untrusted_ca() {
    let trusted = root(CA_NAME);
    let impostor = root(CA_NAME);
    let identity = issue(&impostor, Validity::days_from_now(7));
    let tls = TlsSettings::default();
    let err = refused(leaf_only(&identity, &tls), &trusted, &tls, HOST).await;
    assert_eq!(err.category, FailureCategory::UntrustedCa, "{err}");
}

/// A different CA with another name: the client sees a leaf whose issuer it does not know
/// and no intermediate, exactly what a forgotten intermediate looks like, so it says so and
/// names both remedies.
#[tokio::test]
async fn leaf_from_another_ca_with_another_name_is_an_unknown_issuer() {
    let trusted = root(CA_NAME);
    let foreign = root("some other CA");
    let identity = issue(&foreign, Validity::days_from_now(7));
    let tls = TlsSettings::default();
    let err = refused(leaf_only(&identity, &tls), &trusted, &tls, HOST).await;
    assert_eq!(err.category, FailureCategory::UnknownIssuer, "{err}");
    assert!(
        err.message.contains("issued by \"CN=some other CA\""),
        "{err}"
    );
    assert!(
        err.message
            .contains("otherwise install its CA on the client"),
        "{err}"
    );
}

/// The server sent an intermediate, but one from another CA: not a missing intermediate.
#[tokio::test]
async fn leaf_with_a_foreign_intermediate_is_untrusted_ca() {
    let trusted = root(CA_NAME);
    let foreign = root("some other CA");
    let identity = issue(&intermediate(&foreign), Validity::days_from_now(7));
    let tls = TlsSettings::default();
    let server = identity.server_config(&tls).expect("server config");
    let err = refused(server, &trusted, &tls, HOST).await;
    assert_eq!(err.category, FailureCategory::UntrustedCa, "{err}");
}

/// A self-signed leaf is its own issuer: the client can tell that no intermediate is missing.
#[tokio::test]
async fn self_signed_leaf_is_untrusted_ca() {
    let trusted = root(CA_NAME);
    let self_signed =
        rcgen::generate_simple_self_signed(vec![HOST.to_owned()]).expect("self-signed cert");
    let key = PrivatePkcs8KeyDer::from(self_signed.signing_key.serialize_der());
    let tls = TlsSettings::default();
    let server = serving(
        vec![self_signed.cert.der().clone()],
        PrivateKeyDer::Pkcs8(key),
        &tls,
    );
    let err = refused(server, &trusted, &tls, HOST).await;
    assert_eq!(err.category, FailureCategory::UntrustedCa, "{err}");
}

#[tokio::test]
async fn expired_and_wrong_host_read_as_before() {
    let root = root(CA_NAME);
    let intermediate = intermediate(&root);
    let tls = TlsSettings::default();
    // Issued by the root, and through an intermediate (sent): the same verdicts.
    for issuer in [&root, &intermediate] {
        for (validity, host, category) in [
            (expired(), HOST, FailureCategory::Expired),
            (
                Validity::days_from_now(7),
                OTHER_HOST,
                FailureCategory::WrongHost,
            ),
        ] {
            let identity = issue(issuer, validity);
            let server = identity.server_config(&tls).expect("server config");
            let err = refused(server, &root, &tls, host).await;
            assert_eq!(err.category, category, "{err}");
        }
    }
}

/// An expired leaf sent without its intermediate: WebPKI checks the leaf's own validity
/// before it looks for the issuer, so the expiry is what the client reports.
#[tokio::test]
async fn expired_leaf_without_its_intermediate_reads_as_expired() {
    let root = root(CA_NAME);
    let identity = issue(&intermediate(&root), expired());
    let tls = TlsSettings::default();
    let err = refused(leaf_only(&identity, &tls), &root, &tls, HOST).await;
    assert_eq!(err.category, FailureCategory::Expired, "{err}");
}
