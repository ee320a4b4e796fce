//! TLS in memory: rustls client/server pairs built from the deployment's PKI and pinned
//! [`TlsSettings`], connected by moving bytes between them with `write_tls`/`read_tls`.
//! No sockets, so that time and instruction counts measure TLS alone.

use std::sync::Arc;

use rustls::{ClientConfig, ServerConfig};
use simulators::pki::{KeyType, Pki};
use simulators::transport::{Cipher, KxGroup, TlsSettings, TlsVersion};

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

/// The in-memory pair every bench drives (see [`simulators::transport::memory`]).
pub use simulators::transport::memory::TlsPair;

impl Endpoints {
    /// A new pair from these configurations, handshaken in memory.
    pub fn connect(&self) -> Result<TlsPair, BenchError> {
        Ok(TlsPair::connect(
            self.client.clone(),
            self.server.clone(),
            BENCH_HOST,
        )?)
    }
}

impl Suite {
    /// Checks that this suite is what `pair` negotiated.
    pub fn expect(self, pair: &TlsPair) -> Result<(), BenchError> {
        let got = pair.suite_name();
        if got.as_deref() == Some(self.rustls_name()) {
            Ok(())
        } else {
            Err(BenchError::Check(format!(
                "negotiated {got:?}, expected {}",
                self.rustls_name()
            )))
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
        let first = e.connect()?;
        if first.resumed() {
            return Err(BenchError::Check("the priming handshake resumed".into()));
        }
        let second = e.connect()?;
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
            let mut pair = Endpoints::new(&pki, &suite.settings())
                .expect("e")
                .connect()
                .expect("handshake");
            suite.expect(&pair).expect("pinned suite");
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
                let pair = e.connect().expect("handshake");
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
