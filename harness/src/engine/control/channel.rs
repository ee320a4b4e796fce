//! The control connection between the coordinator and one agent: TLS, authenticated both
//! ways by a token both sides were given, carrying length-prefixed JSON messages.
//!
//! The agent does not know the coordinator's certificate in advance (the coordinator makes
//! one for the run), so the TLS handshake alone proves nothing about who is at either end.
//! What does: each side sends an HMAC-SHA256, keyed with the token, of the session's
//! exported keying material (RFC 5705/8446 exporter) and its own role. A peer without the
//! token cannot compute it, and a relay in the middle holds two sessions with different
//! keying material, so neither proof would verify.

use std::sync::Arc;

use anyhow::{anyhow, bail, Context as _};
use hmac::{KeyInit as _, Mac as _};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, ServerConfig, SignatureScheme};
use serde::de::DeserializeOwned;
use serde::Serialize;
use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _};
use tokio::net::TcpStream;
use tokio::sync::mpsc;

/// Largest message either side accepts, bytes: a final result with every histogram of a
/// large share is a few MiB.
const MAX_MESSAGE: usize = 256 << 20;

/// The label of the keying material both proofs are made from.
const EXPORTER_LABEL: &[u8] = b"EXPORTER-vmsbench-control";

/// Which end of the control connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Side {
    Coordinator,
    Agent,
}

impl Side {
    fn label(self) -> &'static [u8] {
        match self {
            Side::Coordinator => b"coordinator",
            Side::Agent => b"agent",
        }
    }
}

/// A TLS stream of either end.
pub(crate) type ControlStream = tokio_rustls::TlsStream<TcpStream>;

/// The proof `side` sends on the session of `stream`: HMAC-SHA256(token, side ‖ exporter).
pub(crate) fn proof(stream: &ControlStream, token: &str, side: Side) -> anyhow::Result<String> {
    let mut exported = [0u8; 32];
    match stream {
        ControlStream::Client(c) => {
            c.get_ref()
                .1
                .export_keying_material(&mut exported, EXPORTER_LABEL, None)
        }
        ControlStream::Server(s) => {
            s.get_ref()
                .1
                .export_keying_material(&mut exported, EXPORTER_LABEL, None)
        }
    }
    .map_err(|e| anyhow!("exporting the control session's keying material: {e}"))?;
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(token.as_bytes())
        .map_err(|e| anyhow!("the token cannot key an HMAC: {e}"))?;
    mac.update(side.label());
    mac.update(&exported);
    Ok(hex(&mac.finalize().into_bytes()))
}

/// Whether `claimed` is the proof `side` must send on this session (compared in constant
/// time).
pub(crate) fn verify(
    stream: &ControlStream,
    token: &str,
    side: Side,
    claimed: &str,
) -> anyhow::Result<bool> {
    let expected = proof(stream, token, side)?;
    let (a, b) = (expected.as_bytes(), claimed.as_bytes());
    Ok(a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A random token (128 bits, hex) for a coordinator not given one.
pub(crate) fn random_token() -> anyhow::Result<String> {
    let mut bytes = [0u8; 16];
    rustls::crypto::aws_lc_rs::default_provider()
        .secure_random
        .fill(&mut bytes)
        .map_err(|_| anyhow!("the system's random number generator failed"))?;
    Ok(hex(&bytes))
}

/// The coordinator's TLS configuration: a certificate made for this run.
pub(crate) fn coordinator_config() -> anyhow::Result<Arc<ServerConfig>> {
    let key = rcgen::KeyPair::generate().context("generating the control channel's key")?;
    let params = rcgen::CertificateParams::new(vec!["vmsbench-coordinator".to_owned()])
        .context("the control channel's certificate")?;
    let cert = params
        .self_signed(&key)
        .context("signing the control channel's certificate")?;
    let config = ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_protocol_versions(&[&rustls::version::TLS13])
    .context("TLS 1.3 for the control channel")?
    .with_no_client_auth()
    .with_single_cert(
        vec![cert.der().clone()],
        PrivateKeyDer::Pkcs8(key.serialize_der().into()),
    )
    .context("the control channel's certificate")?;
    Ok(Arc::new(config))
}

/// The agent's TLS configuration: any certificate is accepted (the handshake's signature
/// is still checked), since the token proof, not the certificate, says who the peer is.
pub(crate) fn agent_config() -> anyhow::Result<Arc<ClientConfig>> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = ClientConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .context("TLS 1.3 for the control channel")?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(TokenBound(provider)))
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// Accepts the coordinator's certificate whatever it is; see the module's documentation.
#[derive(Debug)]
struct TokenBound(Arc<rustls::crypto::CryptoProvider>);

impl ServerCertVerifier for TokenBound {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// Writes `msg` as one frame: a 4-byte big-endian length, then JSON.
pub(crate) async fn write_message<W, T>(w: &mut W, msg: &T) -> anyhow::Result<()>
where
    W: AsyncWrite + Unpin,
    T: Serialize,
{
    let body = serde_json::to_vec(msg).context("encoding a control message")?;
    let len = u32::try_from(body.len()).context("a control message over 4 GiB")?;
    w.write_all(&len.to_be_bytes()).await?;
    w.write_all(&body).await?;
    w.flush().await?;
    Ok(())
}

/// Reads one frame written by [`write_message`]; `None` when the peer closed the
/// connection between messages.
pub(crate) async fn read_message<R, T>(r: &mut R) -> anyhow::Result<Option<T>>
where
    R: AsyncRead + Unpin,
    T: DeserializeOwned,
{
    read_message_within(r, MAX_MESSAGE).await
}

/// The same, accepting messages of at most `max` bytes: a peer that has not proved that it
/// knows the token yet gets no more room than its hello needs.
pub(crate) async fn read_message_within<R, T>(r: &mut R, max: usize) -> anyhow::Result<Option<T>>
where
    R: AsyncRead + Unpin,
    T: DeserializeOwned,
{
    let mut len = [0u8; 4];
    match r.read_exact(&mut len).await {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e).context("reading from the control connection"),
    }
    let len = u32::from_be_bytes(len) as usize;
    if len > max {
        bail!("a control message of {len} bytes (at most {max} are accepted)");
    }
    // The buffer grows as bytes arrive, never to a length the peer only claims: the hello
    // comes before the peer has proved that it knows the token.
    let mut body = Vec::new();
    r.take(len as u64)
        .read_to_end(&mut body)
        .await
        .context("reading a control message")?;
    if body.len() < len {
        bail!(
            "the control connection closed in the middle of a message ({} of {len} bytes)",
            body.len()
        );
    }
    let msg = serde_json::from_slice(&body).context("decoding a control message")?;
    Ok(Some(msg))
}

/// The sending half of a control connection: cheap to clone, usable from any task; a
/// writer task owns the stream.
#[derive(Clone, Debug)]
pub(crate) struct Sender {
    tx: mpsc::UnboundedSender<Outgoing>,
}

/// A message for the writer task, and whom to tell once it is on the wire.
type Outgoing = (Vec<u8>, Option<tokio::sync::oneshot::Sender<()>>);

impl Sender {
    /// Queues `msg`; false when the connection is gone.
    pub(crate) fn send<T: Serialize>(&self, msg: &T) -> bool {
        match serde_json::to_vec(msg) {
            Ok(body) => self.tx.send((body, None)).is_ok(),
            Err(_) => false,
        }
    }

    /// Sends `msg` and waits until it is written and flushed (or the connection failed):
    /// for a last word before the process exits.
    pub(crate) async fn send_flushed<T: Serialize>(&self, msg: &T) {
        let Ok(body) = serde_json::to_vec(msg) else {
            return;
        };
        let (done, written) = tokio::sync::oneshot::channel();
        if self.tx.send((body, Some(done))).is_ok() {
            let _ = written.await;
        }
    }
}

/// The receiving half.
#[derive(Debug)]
pub(crate) struct Receiver {
    read: tokio::io::ReadHalf<ControlStream>,
}

impl Receiver {
    /// The next message; `None` when the peer closed the connection.
    pub(crate) async fn recv<T: DeserializeOwned>(&mut self) -> anyhow::Result<Option<T>> {
        read_message(&mut self.read).await
    }
}

/// Splits an authenticated stream into its halves; the writer task ends when every
/// [`Sender`] is dropped or the connection fails.
pub(crate) fn split(stream: ControlStream) -> (Sender, Receiver) {
    let (read, mut write) = tokio::io::split(stream);
    let (tx, mut rx) = mpsc::unbounded_channel::<Outgoing>();
    tokio::spawn(async move {
        while let Some((body, done)) = rx.recv().await {
            let Ok(len) = u32::try_from(body.len()) else {
                break;
            };
            if write.write_all(&len.to_be_bytes()).await.is_err()
                || write.write_all(&body).await.is_err()
                || write.flush().await.is_err()
            {
                break;
            }
            if let Some(done) = done {
                let _ = done.send(());
            }
        }
        let _ = write.shutdown().await;
    });
    (Sender { tx }, Receiver { read })
}

#[cfg(test)]
mod tests {
    use tokio::net::TcpListener;

    use super::*;

    /// A real TLS session between the two ends' configurations on loopback.
    async fn session() -> (ControlStream, ControlStream) {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let acceptor = tokio_rustls::TlsAcceptor::from(coordinator_config().expect("config"));
        let server = tokio::spawn(async move {
            let (tcp, _) = listener.accept().await.expect("accept");
            acceptor.accept(tcp).await.expect("server handshake")
        });
        let connector = tokio_rustls::TlsConnector::from(agent_config().expect("config"));
        let tcp = TcpStream::connect(addr).await.expect("connect");
        let name = ServerName::try_from("vmsbench-coordinator").expect("name");
        let client = connector
            .connect(name, tcp)
            .await
            .expect("client handshake");
        let server = server.await.expect("join");
        (ControlStream::Client(client), ControlStream::Server(server))
    }

    #[tokio::test]
    async fn each_end_verifies_the_others_proof_only_with_the_same_token_and_session() {
        let (agent, coordinator) = session().await;
        let from_agent = proof(&agent, "token", Side::Agent).expect("proof");
        assert!(verify(&coordinator, "token", Side::Agent, &from_agent).expect("verify"));
        assert!(!verify(&coordinator, "other", Side::Agent, &from_agent).expect("verify"));
        // A proof is bound to its side and to its session.
        assert!(!verify(&coordinator, "token", Side::Coordinator, &from_agent).expect("verify"));
        let (_, elsewhere) = session().await;
        assert!(!verify(&elsewhere, "token", Side::Agent, &from_agent).expect("verify"));
        let from_coordinator = proof(&coordinator, "token", Side::Coordinator).expect("proof");
        assert!(verify(&agent, "token", Side::Coordinator, &from_coordinator).expect("verify"));
    }

    /// A frame announcing 200 MiB and bringing 3 bytes: the reader used to allocate the
    /// whole length before reading a byte, also before the peer's token proof.
    #[tokio::test]
    async fn a_claimed_length_is_not_allocated_before_its_bytes_arrive() {
        let mut frame = (200u32 << 20).to_be_bytes().to_vec();
        frame.extend_from_slice(b"{}x");
        let e = read_message::<_, serde_json::Value>(&mut &frame[..])
            .await
            .expect_err("truncated");
        assert!(e.to_string().contains("3 of 209715200 bytes"), "{e}");
    }

    #[tokio::test]
    async fn messages_travel_whole_and_an_oversized_length_is_refused() {
        let (mut a, mut b) = tokio::io::duplex(1 << 16);
        let msg = serde_json::json!({"type": "hello", "n": [1, 2, 3]});
        write_message(&mut a, &msg).await.expect("write");
        let back: Option<serde_json::Value> = read_message(&mut b).await.expect("read");
        assert_eq!(back, Some(msg));
        a.write_all(&u32::MAX.to_be_bytes()).await.expect("write");
        let e = read_message::<_, serde_json::Value>(&mut b)
            .await
            .expect_err("too long");
        assert!(e.to_string().contains("at most"), "{e}");
        drop(a);
        let end: Option<serde_json::Value> = read_message(&mut b).await.expect("eof");
        assert!(end.is_none());
    }
}
