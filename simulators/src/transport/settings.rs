//! What a link speaks: [`Mode`] (plaintext or TLS), what a TLS endpoint may negotiate
//! ([`TlsSettings`]: versions, ciphers, key-exchange groups) and what it did ([`Negotiated`]).

use std::fmt;
use std::sync::Arc;

use rustls::crypto::aws_lc_rs::{self as provider, cipher_suite, kx_group};
use rustls::crypto::{CryptoProvider, SupportedKxGroup};
use rustls::SupportedCipherSuite;
use serde::{Deserialize, Serialize};

/// Plaintext or TLS: the one switch every link has.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// Plain TCP.
    Plain,
    /// TLS over TCP.
    Tls,
}

impl Mode {
    /// The name used in reports and on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Plain => "plain",
            Mode::Tls => "tls",
        }
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A TLS protocol version that may be offered.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum TlsVersion {
    /// TLS 1.2.
    #[serde(rename = "1.2")]
    Tls12,
    /// TLS 1.3.
    #[serde(rename = "1.3")]
    Tls13,
}

/// A bulk cipher, named independently of the TLS version; it selects the TLS 1.3 suite
/// and the TLS 1.2 ECDHE suites (RSA and ECDSA) that use it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Cipher {
    /// AES-128 in GCM mode.
    Aes128Gcm,
    /// AES-256 in GCM mode.
    Aes256Gcm,
    /// ChaCha20-Poly1305.
    Chacha20Poly1305,
}

/// A key-exchange group that may be offered.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum KxGroup {
    /// Curve25519 ECDH.
    X25519,
    /// NIST P-256 ECDH.
    Secp256r1,
    /// NIST P-384 ECDH.
    Secp384r1,
    /// The hybrid post-quantum group X25519 + ML-KEM-768 (rustls's default first choice).
    X25519mlkem768,
}

macro_rules! cli_names {
    ($ty:ty { $($variant:path => $name:literal),+ $(,)? }) => {
        impl $ty {
            /// Every value, in the order they are listed to users.
            pub const ALL: &'static [$ty] = &[$($variant),+];

            /// The name used in scenario files, flags and reports.
            pub fn name(self) -> &'static str {
                match self { $($variant => $name),+ }
            }
        }

        impl std::str::FromStr for $ty {
            type Err = String;
            fn from_str(s: &str) -> Result<Self, String> {
                let wanted = s.trim().to_ascii_lowercase();
                Self::ALL.iter().copied().find(|v| v.name() == wanted).ok_or_else(|| {
                    let names: Vec<&str> = Self::ALL.iter().map(|v| v.name()).collect();
                    format!("unknown value {s:?}; expected one of: {}", names.join(", "))
                })
            }
        }

        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.name())
            }
        }
    };
}

cli_names!(TlsVersion { TlsVersion::Tls12 => "1.2", TlsVersion::Tls13 => "1.3" });
cli_names!(Cipher {
    Cipher::Aes128Gcm => "aes128-gcm",
    Cipher::Aes256Gcm => "aes256-gcm",
    Cipher::Chacha20Poly1305 => "chacha20-poly1305",
});
cli_names!(KxGroup {
    KxGroup::X25519 => "x25519",
    KxGroup::Secp256r1 => "secp256r1",
    KxGroup::Secp384r1 => "secp384r1",
    KxGroup::X25519mlkem768 => "x25519mlkem768",
});

impl Cipher {
    fn suites(self, version: TlsVersion) -> Vec<SupportedCipherSuite> {
        use cipher_suite::*;
        match (self, version) {
            (Cipher::Aes128Gcm, TlsVersion::Tls13) => vec![TLS13_AES_128_GCM_SHA256],
            (Cipher::Aes256Gcm, TlsVersion::Tls13) => vec![TLS13_AES_256_GCM_SHA384],
            (Cipher::Chacha20Poly1305, TlsVersion::Tls13) => vec![TLS13_CHACHA20_POLY1305_SHA256],
            (Cipher::Aes128Gcm, TlsVersion::Tls12) => vec![
                TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
                TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
            ],
            (Cipher::Aes256Gcm, TlsVersion::Tls12) => vec![
                TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
                TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
            ],
            (Cipher::Chacha20Poly1305, TlsVersion::Tls12) => vec![
                TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
                TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
            ],
        }
    }
}

impl KxGroup {
    fn group(self) -> &'static dyn SupportedKxGroup {
        match self {
            KxGroup::X25519 => kx_group::X25519,
            KxGroup::Secp256r1 => kx_group::SECP256R1,
            KxGroup::Secp384r1 => kx_group::SECP384R1,
            KxGroup::X25519mlkem768 => kx_group::X25519MLKEM768,
        }
    }
}

/// What a TLS endpoint may negotiate. Both ends of a link use the same settings, so what
/// is negotiated is exactly what was pinned (the first entry of each list wins).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsSettings {
    /// Protocol versions offered, most preferred first.
    pub versions: Vec<TlsVersion>,
    /// Bulk ciphers offered, most preferred first.
    pub ciphers: Vec<Cipher>,
    /// Key-exchange groups offered, most preferred first.
    pub groups: Vec<KxGroup>,
}

impl Default for TlsSettings {
    /// TLS 1.3 with AES-256-GCM and X25519MLKEM768: what rustls with aws-lc-rs negotiates
    /// between two of its own endpoints by default, pinned so that it cannot drift.
    fn default() -> Self {
        TlsSettings {
            versions: vec![TlsVersion::Tls13],
            ciphers: vec![Cipher::Aes256Gcm],
            groups: vec![KxGroup::X25519mlkem768],
        }
    }
}

impl TlsSettings {
    /// What a server of the deployment accepts: the pinned settings first (so that a
    /// client pinning them gets exactly them), then what real clients of a VMS commonly
    /// offer — TLS 1.3 and 1.2; AES-256-GCM, AES-128-GCM and ChaCha20-Poly1305; the hybrid
    /// group, X25519, P-256 and P-384 — as a real recording server accepts its clients'
    /// offers. What a link negotiates is still what its client pinned.
    pub fn accepted_by_servers(&self) -> TlsSettings {
        fn union<T: Copy + PartialEq>(pinned: &[T], common: &[T]) -> Vec<T> {
            let mut out = pinned.to_vec();
            out.extend(common.iter().filter(|c| !pinned.contains(c)));
            out
        }
        TlsSettings {
            versions: union(&self.versions, &[TlsVersion::Tls13, TlsVersion::Tls12]),
            ciphers: union(&self.ciphers, Cipher::ALL),
            groups: union(
                &self.groups,
                &[
                    KxGroup::X25519mlkem768,
                    KxGroup::X25519,
                    KxGroup::Secp256r1,
                    KxGroup::Secp384r1,
                ],
            ),
        }
    }
}

/// Settings that cannot produce a working TLS configuration.
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    /// An empty list of versions, ciphers or groups.
    #[error("TLS settings list no {0}; name at least one")]
    Empty(&'static str),
    /// rustls refused the combination.
    #[error("rustls refused the TLS settings: {0}")]
    Rustls(#[from] rustls::Error),
}

impl TlsSettings {
    /// The aws-lc-rs provider reduced to the pinned ciphers and groups.
    pub fn provider(&self) -> Result<Arc<CryptoProvider>, SettingsError> {
        if self.versions.is_empty() {
            return Err(SettingsError::Empty("versions"));
        }
        if self.ciphers.is_empty() {
            return Err(SettingsError::Empty("ciphers"));
        }
        if self.groups.is_empty() {
            return Err(SettingsError::Empty("groups"));
        }
        let mut p = provider::default_provider();
        p.cipher_suites = self
            .ciphers
            .iter()
            .flat_map(|c| self.versions.iter().flat_map(|v| c.suites(*v)))
            .collect();
        p.kx_groups = self.groups.iter().map(|g| g.group()).collect();
        Ok(Arc::new(p))
    }

    /// The rustls protocol versions to enable.
    pub fn protocol_versions(&self) -> Vec<&'static rustls::SupportedProtocolVersion> {
        let mut out = Vec::new();
        for v in &self.versions {
            let pv = match v {
                TlsVersion::Tls12 => &rustls::version::TLS12,
                TlsVersion::Tls13 => &rustls::version::TLS13,
            };
            if !out
                .iter()
                .any(|o: &&rustls::SupportedProtocolVersion| o.version == pv.version)
            {
                out.push(pv);
            }
        }
        out
    }
}

/// What a TLS handshake actually settled on.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Negotiated {
    /// Protocol version, e.g. `TLSv1_3`.
    pub version: String,
    /// Cipher suite, e.g. `TLS13_AES_256_GCM_SHA384`.
    pub suite: String,
    /// Key-exchange group, e.g. `X25519MLKEM768`.
    pub group: String,
    /// Whether the session was resumed rather than fully negotiated.
    pub resumed: bool,
}

impl Negotiated {
    pub(super) fn from_common(c: &rustls::CommonState) -> Self {
        let opt = |s: Option<String>| s.unwrap_or_else(|| "unknown".to_owned());
        Negotiated {
            version: opt(c.protocol_version().map(|v| format!("{v:?}"))),
            suite: opt(c
                .negotiated_cipher_suite()
                .map(|s| format!("{:?}", s.suite()))),
            group: opt(c
                .negotiated_key_exchange_group()
                .map(|g| format!("{:?}", g.name()))),
            resumed: matches!(c.handshake_kind(), Some(rustls::HandshakeKind::Resumed)),
        }
    }
}
