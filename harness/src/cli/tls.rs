//! What TLS may negotiate, and how many threads each role gets.

use clap::Args;

use super::count_within;
use crate::engine::scenario::MAX_THREADS;
use simulators::pki::KeyType;
use simulators::transport::{Cipher, KxGroup, TlsSettings, TlsVersion};

/// TLS parameters, pinned so that a comparison compares one thing. Each flag overrides
/// the scenario's setting; without flags the scenario's (by default TLS 1.3, AES-256-GCM,
/// X25519MLKEM768, RSA-2048) apply.
#[derive(Debug, Args)]
pub struct TlsArgs {
    /// TLS version(s) to offer, most preferred first: 1.3, 1.2.
    #[arg(long = "tls-version", value_delimiter = ',')]
    pub versions: Option<Vec<TlsVersion>>,
    /// Bulk cipher(s) to offer: aes128-gcm, aes256-gcm, chacha20-poly1305.
    #[arg(long = "cipher", value_delimiter = ',')]
    pub ciphers: Option<Vec<Cipher>>,
    /// Key-exchange group(s): x25519mlkem768, x25519, secp256r1, secp384r1.
    #[arg(long = "group", value_delimiter = ',')]
    pub groups: Option<Vec<KxGroup>>,
    /// Key type of the servers' certificates: rsa2048, rsa3072, rsa4096, ecdsa-p256, ecdsa-p384.
    #[arg(long)]
    pub key: Option<KeyType>,
}

impl TlsArgs {
    /// Applies the flags given to `tls` and `key`.
    pub fn apply(&self, tls: &mut TlsSettings, key: &mut KeyType) {
        if let Some(v) = &self.versions {
            tls.versions.clone_from(v);
        }
        if let Some(c) = &self.ciphers {
            tls.ciphers.clone_from(c);
        }
        if let Some(g) = &self.groups {
            tls.groups.clone_from(g);
        }
        if let Some(k) = self.key {
            *key = k;
        }
    }
}

/// Threads per role.
#[derive(Debug, Args)]
pub struct ThreadArgs {
    /// Worker threads of the server role (default: half the cores, at least 1): 1 to 1024.
    #[arg(long, value_parser = count_within::<usize>(1, MAX_THREADS))]
    pub server_threads: Option<usize>,
    /// Worker threads of the client role (default: half the cores, at least 1): 1 to 1024.
    #[arg(long, value_parser = count_within::<usize>(1, MAX_THREADS))]
    pub client_threads: Option<usize>,
}
