//! The handshakes report: one result per cell of the matrix (TLS version × key type × key
//! exchange × full or resumed), the cells that cannot exist, and what a reader must know.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use simulators::pki::KeyType;
use simulators::transport::{Cipher, KxGroup, TlsVersion};

use crate::report::{Percentiles, TlsInfo};
use crate::sys::environment::Environment;

/// Version of the JSON layout of this report. Bumped when a field changes meaning or type.
pub(crate) const SCHEMA_VERSION: u32 = 1;

/// A resumed cell in which fewer handshakes than this resumed is flagged.
const RESUMED_FLOOR: f64 = 0.99;

/// A full or a resumed handshake.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Resumption {
    /// A full handshake: certificate, signature, key exchange.
    Full,
    /// An abbreviated handshake from a session the client holds.
    Resumed,
}

impl Resumption {
    /// The name used in reports and flags.
    pub fn as_str(self) -> &'static str {
        match self {
            Resumption::Full => "full",
            Resumption::Resumed => "resumed",
        }
    }
}

/// The whole report.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct HandshakesReport {
    /// Version of this layout.
    pub schema_version: u32,
    /// Always `handshakes`.
    pub command: String,
    /// When the run started (RFC 3339, UTC).
    pub started_at: String,
    /// True when the run was interrupted: only the cells measured before are present.
    pub partial: bool,
    /// How and where it was measured.
    pub environment: Environment,
    /// How each cell was measured.
    pub measurement: HandshakeMeasurement,
    /// One entry per measured cell, in matrix order (version, key, group, resumption).
    pub results: Vec<CellResult>,
    /// Cells asked for that cannot exist (e.g. X25519MLKEM768 with TLS 1.2), and why.
    pub skipped: Vec<SkippedCell>,
    /// Things a reader must know before trusting the figures.
    pub warnings: Vec<String>,
}

/// How each cell was measured.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct HandshakeMeasurement {
    /// Seconds in each cell's measured window.
    pub duration_s: f64,
    /// Seconds of unmeasured handshakes before each window.
    pub warmup_s: f64,
    /// Client connections in flight at once.
    pub concurrency: u32,
    /// Worker threads of the server role (`hs-server`).
    pub server_threads: usize,
    /// Worker threads of the client role (`hs-clients`).
    pub client_threads: usize,
    /// The bulk cipher every cell pins.
    pub cipher: Cipher,
    /// The host name the certificates carry and the clients verify.
    pub server_name: String,
    /// What one measured connection is, and what is timed.
    pub method: String,
}

/// The figures of one cell.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct CellResult {
    /// TLS version pinned at both ends (`1.2`, `1.3`).
    pub version: TlsVersion,
    /// Key type of the server certificate (and of the CA that issued it).
    pub key: KeyType,
    /// Key-exchange group pinned at both ends.
    pub group: KxGroup,
    /// `full` or `resumed`.
    pub resumption: Resumption,
    /// How sessions resume in this cell: `none` (full), `session_id` (TLS 1.2, server-side
    /// cache) or `ticket` (TLS 1.3, stateless tickets).
    pub mechanism: String,
    /// Handshakes completed within the window.
    pub handshakes: u64,
    /// `handshakes` per second of window.
    pub handshakes_per_s: f64,
    /// Seconds in the window.
    pub window_s: f64,
    /// TCP connect start → TLS handshake complete, client side, µs.
    pub latency_us: Percentiles,
    /// CPU µs (user + system) of the server role per handshake in the window; null when
    /// no handshake completed.
    pub cpu_server_us_per_handshake: Option<f64>,
    /// CPU µs of the client role per handshake in the window; null when none completed.
    pub cpu_client_us_per_handshake: Option<f64>,
    /// CPU seconds of the server role in the window.
    pub cpu_server_s: f64,
    /// CPU seconds of the client role in the window.
    pub cpu_client_s: f64,
    /// What the handshakes negotiated (the most frequent, should several differ; null when
    /// none completed). A resumed TLS 1.2 handshake has no key exchange: its group is
    /// `none`. (TLS 1.3 resumption runs the pinned key exchange again.)
    pub negotiated: Option<TlsInfo>,
    /// Share of the window's handshakes that were resumptions (0 to 1).
    pub resumed_fraction: f64,
    /// Failed connections in the window by category (client side).
    pub errors: BTreeMap<String, u64>,
    /// Failed handshakes over the whole cell by category, server side.
    pub server_errors: BTreeMap<String, u64>,
    /// The first distinct failure messages (client side).
    pub error_messages: Vec<String>,
}

/// A cell that was asked for but cannot be measured.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SkippedCell {
    /// TLS version.
    pub version: TlsVersion,
    /// Key type.
    pub key: KeyType,
    /// Key-exchange group.
    pub group: KxGroup,
    /// `full` or `resumed`.
    pub resumption: Resumption,
    /// Why it cannot be measured.
    pub reason: String,
}

/// The protocol version name rustls reports for a version (`TLSv1_2`, `TLSv1_3`).
pub(crate) fn rustls_version_name(v: TlsVersion) -> &'static str {
    match v {
        TlsVersion::Tls12 => "TLSv1_2",
        TlsVersion::Tls13 => "TLSv1_3",
    }
}

/// The group name rustls reports for a group (`X25519`, `secp256r1`, …).
pub(crate) fn rustls_group_name(g: KxGroup) -> &'static str {
    match g {
        KxGroup::X25519 => "X25519",
        KxGroup::Secp256r1 => "secp256r1",
        KxGroup::Secp384r1 => "secp384r1",
        KxGroup::X25519mlkem768 => "X25519MLKEM768",
    }
}

impl HandshakesReport {
    /// Warnings derived from the figures: debug build, interruption, cells that did not
    /// resume (or resumed when they should not have), other parameters than pinned,
    /// failures, empty cells.
    pub fn derive_warnings(&mut self) {
        self.warnings
            .extend(self.environment.debug_build_warning("figures"));
        if self.partial {
            self.warnings.push(
                "the run was interrupted: only the cells measured before are reported".into(),
            );
        }
        for r in &self.results {
            let name = format!(
                "TLS {} {} {} {}",
                r.version,
                r.key,
                r.group,
                r.resumption.as_str()
            );
            if r.handshakes == 0 {
                self.warnings
                    .push(format!("{name}: no handshake completed in the window"));
                continue;
            }
            match r.resumption {
                Resumption::Resumed if r.resumed_fraction < RESUMED_FLOOR => {
                    self.warnings.push(format!(
                        "{name}: only {:.1} % of the handshakes resumed ({}); the figures mix \
                         full and resumed handshakes",
                        r.resumed_fraction * 100.0,
                        r.mechanism
                    ))
                }
                Resumption::Full if r.resumed_fraction > 0.0 => self.warnings.push(format!(
                    "{name}: {:.1} % of the handshakes resumed although resumption was off",
                    r.resumed_fraction * 100.0
                )),
                _ => {}
            }
            if let Some(n) = &r.negotiated {
                if n.version != rustls_version_name(r.version) {
                    self.warnings.push(format!(
                        "{name}: negotiated {} instead of the pinned version",
                        n.version
                    ));
                }
                let resumed_tls12 =
                    r.version == TlsVersion::Tls12 && r.resumption == Resumption::Resumed;
                if n.group != rustls_group_name(r.group) && !resumed_tls12 {
                    self.warnings.push(format!(
                        "{name}: negotiated group {} instead of the pinned one",
                        n.group
                    ));
                }
            }
            let failures: u64 = r.errors.values().sum();
            if failures > 0 {
                let list: Vec<String> = r.errors.iter().map(|(k, v)| format!("{k} ×{v}")).collect();
                self.warnings.push(format!(
                    "{name}: {failures} connections failed ({}): {}",
                    list.join(", "),
                    r.error_messages.join("; ")
                ));
            }
        }
        let cores = self.environment.cores;
        let m = &self.measurement;
        if cores > 0 && m.server_threads + m.client_threads > cores {
            self.warnings.push(format!(
                "server ({} threads) and clients ({} threads) share {cores} cores: \
                 handshakes/s is bounded by both sides together; CPU per handshake is the \
                 figure that carries over to a dedicated server",
                m.server_threads, m.client_threads
            ));
        }
    }
}
