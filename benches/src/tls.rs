//! TLS in memory: rustls client/server pairs built from the deployment's PKI and pinned
//! [`TlsSettings`], connected by moving bytes between them with `write_tls`/`read_tls`.
//! No sockets, so that time and instruction counts measure TLS alone.

use std::io::{IoSlice, Read, Write};
use std::sync::Arc;

use rustls::{ClientConfig, ClientConnection, ConnectionCommon, ServerConfig, ServerConnection};
use rustls_pki_types::ServerName;
use simulators::pki::{KeyType, Pki};
use simulators::transport::{Cipher, KxGroup, TlsSettings, TlsVersion};
use simulators::wire::{Header, HEADER_LEN, MAX_PAYLOAD};

use crate::BenchError;

/// The host name the benches' server certificate is issued for and the client dials.
pub const BENCH_HOST: &str = "recorder.bench.vms.test";

/// Days the benches' certificates are valid.
const CERT_DAYS: u32 = 7;

/// The cipher suites the record-layer benches measure, each pinned (one version, one
/// bulk cipher, one group) so that a comparison compares one thing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Suite {
    /// TLS 1.3, AES-128-GCM.
    Tls13Aes128Gcm,
    /// TLS 1.3, AES-256-GCM (the project's default).
    Tls13Aes256Gcm,
    /// TLS 1.3, ChaCha20-Poly1305.
    Tls13Chacha20Poly1305,
    /// TLS 1.2, ECDHE-RSA with AES-256-GCM.
    Tls12EcdheRsaAes256Gcm,
}

impl Suite {
    /// Every suite, in report order.
    pub const ALL: &'static [Suite] = &[
        Suite::Tls13Aes128Gcm,
        Suite::Tls13Aes256Gcm,
        Suite::Tls13Chacha20Poly1305,
        Suite::Tls12EcdheRsaAes256Gcm,
    ];

    /// The id used in scenario ids.
    pub fn id(self) -> &'static str {
        match self {
            Suite::Tls13Aes128Gcm => "tls13_aes128gcm",
            Suite::Tls13Aes256Gcm => "tls13_aes256gcm",
            Suite::Tls13Chacha20Poly1305 => "tls13_chacha20poly1305",
            Suite::Tls12EcdheRsaAes256Gcm => "tls12_ecdhe_rsa_aes256gcm",
        }
    }

    /// The settings that pin it. TLS 1.3 suites use the project's default group
    /// (X25519MLKEM768); TLS 1.2 cannot, so it uses X25519.
    pub fn settings(self) -> TlsSettings {
        let (version, cipher, group) = match self {
            Suite::Tls13Aes128Gcm => (
                TlsVersion::Tls13,
                Cipher::Aes128Gcm,
                KxGroup::X25519mlkem768,
            ),
            Suite::Tls13Aes256Gcm => (
                TlsVersion::Tls13,
                Cipher::Aes256Gcm,
                KxGroup::X25519mlkem768,
            ),
            Suite::Tls13Chacha20Poly1305 => (
                TlsVersion::Tls13,
                Cipher::Chacha20Poly1305,
                KxGroup::X25519mlkem768,
            ),
            Suite::Tls12EcdheRsaAes256Gcm => {
                (TlsVersion::Tls12, Cipher::Aes256Gcm, KxGroup::X25519)
            }
        };
        TlsSettings {
            versions: vec![version],
            ciphers: vec![cipher],
            groups: vec![group],
        }
    }

    /// The rustls name of the suite, as [`rustls::SupportedCipherSuite::suite`] prints it.
    pub fn rustls_name(self) -> &'static str {
        match self {
            Suite::Tls13Aes128Gcm => "TLS13_AES_128_GCM_SHA256",
            Suite::Tls13Aes256Gcm => "TLS13_AES_256_GCM_SHA384",
            Suite::Tls13Chacha20Poly1305 => "TLS13_CHACHA20_POLY1305_SHA256",
            Suite::Tls12EcdheRsaAes256Gcm => "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
        }
    }
}

/// A PKI for the benches: a CA and one certificate for [`BENCH_HOST`] with `key` keys.
pub fn bench_pki(key: KeyType) -> Result<Pki, BenchError> {
    Ok(Pki::generate(&[BENCH_HOST], key, CERT_DAYS)?)
}

/// A client and a server configuration that can talk to each other.
#[derive(Clone, Debug)]
pub struct Endpoints {
    /// The client side (trusts the PKI's CA).
    pub client: Arc<ClientConfig>,
    /// The server side (presents [`BENCH_HOST`]'s certificate).
    pub server: Arc<ServerConfig>,
}

impl Endpoints {
    /// The configurations the deployment itself builds from `pki` and `settings`
    /// ([`Pki::client_config`], [`Pki::server_config`]).
    pub fn new(pki: &Pki, settings: &TlsSettings) -> Result<Self, BenchError> {
        Ok(Endpoints {
            client: pki.client_config(settings)?,
            server: pki.server_config(BENCH_HOST, settings)?,
        })
    }

    /// The same, with resumption disabled on the client: every handshake is a full one.
    pub fn full_handshakes_only(mut self) -> Self {
        let mut client = (*self.client).clone();
        client.resumption = rustls::client::Resumption::disabled();
        self.client = Arc::new(client);
        self
    }

    /// The same, with the server issuing stateless TLS 1.3 session tickets (aws-lc-rs
    /// ticketer) that the client keeps in memory and resumes with.
    pub fn with_tickets(mut self) -> Result<Self, BenchError> {
        let mut server = (*self.server).clone();
        server.ticketer = rustls::crypto::aws_lc_rs::Ticketer::new()?;
        self.server = Arc::new(server);
        Ok(self)
    }
}

/// Moves everything `from` has to send into `to`, processing it as it arrives. Returns the
/// number of bytes moved. `buf` is scratch space.
fn transfer<A, B>(
    from: &mut ConnectionCommon<A>,
    to: &mut ConnectionCommon<B>,
    buf: &mut Vec<u8>,
) -> Result<usize, BenchError> {
    buf.clear();
    while from.wants_write() {
        from.write_tls(buf)?;
    }
    let mut rd = &buf[..];
    while !rd.is_empty() {
        to.read_tls(&mut rd)?;
        to.process_new_packets()?;
    }
    Ok(buf.len())
}

/// A connected client and server, each with its own state, and the bytes between them
/// held in memory.
#[derive(Debug)]
pub struct TlsPair {
    /// The client side (the viewer in the deployment).
    pub client: ClientConnection,
    /// The server side (the recording server).
    pub server: ServerConnection,
    scratch: Vec<u8>,
}

impl TlsPair {
    /// New connections from `endpoints`, handshaken: both sides complete and every
    /// post-handshake message (session tickets) delivered.
    pub fn connect(endpoints: &Endpoints) -> Result<Self, BenchError> {
        let name = ServerName::try_from(BENCH_HOST)
            .map_err(|e| BenchError::Check(format!("{BENCH_HOST:?}: {e}")))?;
        let mut client = ClientConnection::new(endpoints.client.clone(), name)?;
        // No limit on buffered records: a 4K I-frame is more than rustls's default 64 KiB,
        // and the benches write a whole frame before collecting its records.
        client.set_buffer_limit(None);
        let server = ServerConnection::new(endpoints.server.clone())?;
        let mut pair = TlsPair {
            client,
            server,
            scratch: Vec::with_capacity(16 * 1024),
        };
        pair.handshake()?;
        Ok(pair)
    }

    /// Moves bytes both ways until neither side has anything left to say.
    fn handshake(&mut self) -> Result<(), BenchError> {
        // A TLS 1.3 handshake takes 2 flights each way plus tickets; 16 rounds is plenty,
        // and a bound keeps a broken configuration from spinning forever.
        for _ in 0..16 {
            let moved = transfer(&mut self.client, &mut self.server, &mut self.scratch)?
                + transfer(&mut self.server, &mut self.client, &mut self.scratch)?;
            if moved == 0 && !self.client.is_handshaking() && !self.server.is_handshaking() {
                return Ok(());
            }
        }
        Err(BenchError::Check(
            "the in-memory handshake did not finish in 16 rounds".into(),
        ))
    }

    /// Whether the client resumed a session rather than doing a full handshake.
    pub fn resumed(&self) -> bool {
        matches!(
            self.client.handshake_kind(),
            Some(rustls::HandshakeKind::Resumed)
        )
    }

    /// Checks that `suite` is what was negotiated.
    pub fn expect_suite(&self, suite: Suite) -> Result<(), BenchError> {
        let got = self
            .client
            .negotiated_cipher_suite()
            .map(|s| format!("{:?}", s.suite()));
        if got.as_deref() == Some(suite.rustls_name()) {
            Ok(())
        } else {
            Err(BenchError::Check(format!(
                "negotiated {got:?}, expected {}",
                suite.rustls_name()
            )))
        }
    }

    /// The TLS send path of one frame (client → server direction of the deployment's
    /// recording-server → viewer link, played by the client here): header and payload
    /// written as one plaintext (as the link's write buffer coalesces them), encrypted into
    /// records, and the records copied into `out` (what TLS hands to the socket).
    pub fn send(
        &mut self,
        header: &Header,
        payload: &[u8],
        out: &mut Vec<u8>,
    ) -> Result<(), BenchError> {
        let head = header.encode();
        let total = HEADER_LEN + payload.len();
        let mut writer = self.client.writer();
        let written = writer.write_vectored(&[IoSlice::new(&head), IoSlice::new(payload)])?;
        if written < HEADER_LEN {
            writer.write_all(&head[written..])?;
            writer.write_all(payload)?;
        } else if written < total {
            writer.write_all(&payload[written - HEADER_LEN..])?;
        }
        out.clear();
        while self.client.wants_write() {
            self.client.write_tls(out)?;
        }
        Ok(())
    }

    /// The TLS receive path of one frame: the records in `wire` read and decrypted, the
    /// header decoded, the payload copied out of rustls into `out`.
    pub fn recv(&mut self, wire: &[u8], out: &mut Vec<u8>) -> Result<Header, BenchError> {
        let mut rd = wire;
        let mut head = [0u8; HEADER_LEN];
        let mut head_filled = 0;
        let mut header: Option<Header> = None;
        let mut filled = 0;
        out.clear();
        loop {
            // Drain what is decrypted so far.
            loop {
                let buf: &mut [u8] = match &header {
                    None => &mut head[head_filled..],
                    Some(h) if filled < h.payload_len as usize => &mut out[filled..],
                    Some(h) => return Ok(*h),
                };
                match self.server.reader().read(buf) {
                    Ok(0) => return Err(BenchError::Wire(simulators::wire::WireError::Truncated)),
                    Ok(n) if header.is_none() => {
                        head_filled += n;
                        if head_filled == HEADER_LEN {
                            let h = Header::decode(&head, MAX_PAYLOAD)?;
                            out.resize(h.payload_len as usize, 0);
                            header = Some(h);
                        }
                    }
                    Ok(n) => filled += n,
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                    Err(e) => return Err(e.into()),
                }
            }
            if rd.is_empty() {
                return Err(BenchError::Wire(simulators::wire::WireError::Truncated));
            }
            self.server.read_tls(&mut rd)?;
            self.server.process_new_packets()?;
        }
    }
}

/// One handshake case: key type × key exchange × full or resumed, always TLS 1.3 with the
/// project's default bulk cipher (AES-256-GCM).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HandshakeCase {
    /// The server certificate's key.
    pub key: KeyType,
    /// The key-exchange group.
    pub group: KxGroup,
    /// Resume a TLS 1.3 session (ticket) instead of a full handshake.
    pub resumed: bool,
}

impl HandshakeCase {
    /// The matrix the benches run: {rsa2048, ecdsa-p256} × {x25519, x25519mlkem768} ×
    /// {full, resumed}.
    pub fn matrix() -> Vec<HandshakeCase> {
        let mut out = Vec::new();
        for key in [KeyType::Rsa2048, KeyType::EcdsaP256] {
            for group in [KxGroup::X25519, KxGroup::X25519mlkem768] {
                for resumed in [false, true] {
                    out.push(HandshakeCase {
                        key,
                        group,
                        resumed,
                    });
                }
            }
        }
        out
    }

    /// Stable id without the `handshake/` prefix, e.g. `tls13_ecdsap256_x25519/resumed`.
    pub fn id(&self) -> String {
        format!(
            "tls13_{}_{}/{}",
            self.key.name().replace('-', ""),
            self.group.name(),
            if self.resumed { "resumed" } else { "full" }
        )
    }

    /// The settings: TLS 1.3, AES-256-GCM, this case's group.
    pub fn settings(&self) -> TlsSettings {
        TlsSettings {
            versions: vec![TlsVersion::Tls13],
            ciphers: vec![Cipher::Aes256Gcm],
            groups: vec![self.group],
        }
    }

    /// Endpoints ready for this case from `pki` (whose key must be `self.key`). For a
    /// resumed case the client already holds tickets from one full handshake.
    pub fn endpoints(&self, pki: &Pki) -> Result<Endpoints, BenchError> {
        let base = Endpoints::new(pki, &self.settings())?;
        if !self.resumed {
            return Ok(base.full_handshakes_only());
        }
        let e = base.with_tickets()?;
        let first = TlsPair::connect(&e)?;
        if first.resumed() {
            return Err(BenchError::Check("the priming handshake resumed".into()));
        }
        let second = TlsPair::connect(&e)?;
        if !second.resumed() {
            return Err(BenchError::Check(format!(
                "{}: the client did not resume with the server's ticket",
                self.id()
            )));
        }
        Ok(e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frames::{frame_header, payload, plain_send};

    #[test]
    fn every_suite_negotiates_and_carries_a_frame_both_ways() {
        let pki = bench_pki(KeyType::Rsa2048).expect("pki");
        let p = payload(200_000);
        for suite in Suite::ALL {
            let mut pair = TlsPair::connect(&Endpoints::new(&pki, &suite.settings()).expect("e"))
                .expect("handshake");
            pair.expect_suite(*suite).expect("pinned suite");
            let (mut wire, mut out) = (Vec::new(), Vec::new());
            for seq in 0..3 {
                let h = frame_header(seq, p.len()).expect("header");
                pair.send(&h, &p, &mut wire).expect("send");
                let mut plain = Vec::new();
                plain_send(&h, &p, &mut plain);
                assert!(wire.len() > plain.len(), "records add overhead");
                assert_eq!(pair.recv(&wire, &mut out).expect("recv"), h);
                assert_eq!(out, &p[..]);
            }
            assert!(pair.recv(&[], &mut out).is_err(), "nothing to read");
        }
    }

    #[test]
    fn handshake_cases_full_and_resumed() {
        let pki = bench_pki(KeyType::EcdsaP256).expect("pki");
        for resumed in [false, true] {
            let case = HandshakeCase {
                key: KeyType::EcdsaP256,
                group: KxGroup::X25519,
                resumed,
            };
            let e = case.endpoints(&pki).expect("endpoints");
            for _ in 0..4 {
                let pair = TlsPair::connect(&e).expect("handshake");
                assert_eq!(pair.resumed(), resumed, "{}", case.id());
            }
        }
        assert_eq!(HandshakeCase::matrix().len(), 8);
        assert_eq!(
            HandshakeCase::matrix()[0].id(),
            "tls13_rsa2048_x25519/full".to_owned()
        );
    }
}
