//! This machine's ceilings (`vmsbench limits`), and how close a run came to them
//! (`--with-limits` on `run`, `bulk` and `capacity`).
//!
//! The ceilings are measured in one sitting: single-connection loopback TCP goodput
//! (plaintext), record-layer seal and open per suite and frame size (one core, no socket),
//! full and resumed handshakes per key type (one client and one server), memory per idle
//! TLS connection, and the latency floor of an idle link. A run measured with them reports
//! each of its figures beside its ceiling: goodput as a share of the ceiling, times and
//! memory as a multiple of their floor.

use serde::{Deserialize, Serialize};
use simulators::pki::KeyType;
use simulators::transport::{Cipher, Mode, TlsVersion};

use super::handshakes::{CellResult, Resumption};
use super::{Percentiles, TlsInfo};
use crate::sys::environment::Environment;

/// Version of the JSON layout of this report. Bumped when a field changes meaning or type.
pub(crate) const SCHEMA_VERSION: u32 = 1;

/// The whole `vmsbench limits` report.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct LimitsReport {
    /// Version of this layout.
    pub schema_version: u32,
    /// Always `limits`.
    pub command: String,
    /// When the measurements started (RFC 3339, UTC).
    pub started_at: String,
    /// True when interrupted: the measurements not reached are missing.
    pub partial: bool,
    /// How and where it was measured.
    pub environment: Environment,
    /// The ceilings.
    pub limits: Limits,
    /// Things a reader must know before trusting the figures.
    pub warnings: Vec<String>,
}

/// This machine's ceilings, measured in one sitting.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Limits {
    /// Time given to each measurement, seconds.
    pub budget_s: f64,
    /// Loopback TCP, one connection, plaintext, unpaced (null if not reached).
    pub tcp: Option<TcpCeiling>,
    /// Record-layer seal and open, per suite (TLS 1.3 and 1.2, every bulk cipher).
    pub record_layer: Vec<SuiteCeiling>,
    /// Full and resumed handshakes per key type, one client and one server, one connection
    /// at a time (the handshake matrix's cells at concurrency 1).
    pub handshakes: Vec<CellResult>,
    /// Memory per idle TLS connection (null if not reached, or RSS is unreadable here).
    pub memory: Option<IdleMemory>,
    /// The latency floor of an idle link, plaintext and TLS.
    pub latency_floor: Vec<LatencyFloor>,
}

/// Single-connection loopback TCP goodput.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct TcpCeiling {
    /// Bytes received over the window.
    pub bytes: u64,
    /// Seconds the receiver counted.
    pub window_s: f64,
    /// `bytes` over the window, Mbit/s (10⁶ bit/s).
    pub goodput_mbit_s: f64,
    /// Bytes per write (and per read buffer).
    pub write_bytes: u64,
    /// What was measured, in words.
    pub method: String,
}

/// The record layer of one suite, at each frame size of the built-in profiles.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SuiteCeiling {
    /// TLS version pinned.
    pub version: TlsVersion,
    /// Bulk cipher pinned.
    pub cipher: Cipher,
    /// The suite negotiated, as rustls names it.
    pub suite: String,
    /// One entry per distinct frame size, smallest first.
    pub frames: Vec<FrameCeiling>,
}

/// Seal and open of one frame size.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct FrameCeiling {
    /// Payload bytes per frame (plus the 40-byte frame header, sealed with it).
    pub frame_bytes: u64,
    /// The profiles' frames of this size (`1080p I`, `sub P`, …).
    pub frames: Vec<String>,
    /// Frames sealed and opened in the measurement (after a few untimed).
    pub count: u64,
    /// Sealing one frame (header and payload into records), µs: the median frame's.
    pub seal_us_per_frame: f64,
    /// Opening one frame (records back into header and payload), µs: the median frame's.
    pub open_us_per_frame: f64,
    /// Payload sealed per second, MB/s (10⁶ bytes/s), one core.
    pub seal_mbyte_s: f64,
    /// Payload opened per second, MB/s, one core.
    pub open_mbyte_s: f64,
}

/// Memory per idle TLS connection.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct IdleMemory {
    /// Connections opened (each with both ends in this process).
    pub connections: u64,
    /// Key type of the server certificate.
    pub key: KeyType,
    /// Resident memory before opening them (after freed memory was handed back), bytes.
    pub rss_before_bytes: u64,
    /// Resident memory with all of them open and idle, bytes.
    pub rss_after_bytes: u64,
    /// (after − before) / connections, both ends together, bytes.
    pub bytes_per_connection: f64,
    /// The allocator in use.
    pub allocator: String,
    /// What was measured, in words.
    pub method: String,
}

/// The latency floor of an idle link in one mode.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct LatencyFloor {
    /// `plain` or `tls`.
    pub mode: Mode,
    /// Payload bytes per frame.
    pub frame_bytes: u64,
    /// Frames timed.
    pub frames: u64,
    /// Write start → last byte read, µs (sender and receiver on different threads).
    pub latency_us: Percentiles,
    /// What TLS negotiated (null for plaintext).
    pub tls: Option<TlsInfo>,
    /// What was measured, in words.
    pub method: String,
}

/// The limits measured before a run, and how close each link came to them.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct LimitsComparison {
    /// When and how the limits were measured relative to the run.
    pub note: String,
    /// The ceilings.
    pub measured: Limits,
    /// Per link (or capacity boundary) and mode: its figures beside their ceilings.
    pub shares: Vec<LinkShare>,
}

/// One link's figures in one mode beside this machine's ceilings. Every ratio is null
/// where the figure or its ceiling is missing (a link with no frames, a plaintext link's
/// handshake).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct LinkShare {
    /// Link id (for a capacity search: the recording server at its boundary).
    pub link: String,
    /// `plain` or `tls`.
    pub mode: Mode,
    /// The goodput ceiling compared with, in words.
    pub ceiling: String,
    /// The link's goodput, Mbit/s.
    pub goodput_mbit_s: f64,
    /// Mean payload bytes per frame of the link.
    pub frame_bytes: Option<f64>,
    /// The ceiling at that frame size, Mbit/s.
    pub ceiling_mbit_s: Option<f64>,
    /// goodput / ceiling (1 = at the ceiling).
    pub goodput_share: Option<f64>,
    /// Cores the link's server role used on average (the record-layer and TCP ceilings are
    /// one core's and one connection's).
    pub server_cores: f64,
    /// Connections the link used.
    pub connections: u64,
    /// TCP connect + TLS handshake, median, µs.
    pub setup_us: Option<f64>,
    /// The floor of the same: a full handshake with the run's key type on an idle pair, µs.
    pub setup_floor_us: Option<f64>,
    /// setup / floor.
    pub setup_over_floor: Option<f64>,
    /// The link's median frame latency, µs.
    pub latency_p50_us: Option<f64>,
    /// The idle-link floor in the same mode, median, µs.
    pub latency_floor_p50_us: Option<f64>,
    /// latency / floor.
    pub latency_over_floor: Option<f64>,
    /// Resident memory per connection in the run, both ends, bytes.
    pub rss_per_connection_bytes: Option<f64>,
    /// The same for an idle TLS connection, bytes.
    pub idle_rss_per_connection_bytes: Option<f64>,
    /// run / idle.
    pub memory_over_idle: Option<f64>,
}

impl LimitsReport {
    /// Warnings derived from the figures: a debug build, an interruption, handshake cells
    /// that completed nothing or did not resume.
    pub fn derive_warnings(&mut self) {
        self.warnings
            .extend(self.environment.debug_build_warning("ceilings"));
        if self.partial {
            self.warnings.push(
                "the measurements were interrupted: only those finished before are reported".into(),
            );
        }
        for c in &self.limits.handshakes {
            let name = format!("handshakes {} {}", c.key, c.resumption.as_str());
            if c.handshakes == 0 {
                self.warnings
                    .push(format!("{name}: no handshake completed in the window"));
            } else if c.resumption == Resumption::Resumed && c.resumed_fraction < 0.99 {
                self.warnings.push(format!(
                    "{name}: only {:.1} % of the handshakes resumed",
                    c.resumed_fraction * 100.0
                ));
            }
        }
        if self.environment.cores > 0 && self.environment.cores < 4 {
            self.warnings.push(format!(
                "{} cores: the two ends of the TCP, handshake and latency measurements share \
                 them with each other (and with anything else running), so their figures are \
                 lower bounds of what a dedicated machine reaches",
                self.environment.cores
            ));
        }
    }
}

/// `a / b` when both are positive and finite.
pub(crate) fn ratio(a: f64, b: f64) -> Option<f64> {
    (a.is_finite() && b.is_finite() && a > 0.0 && b > 0.0).then(|| a / b)
}

/// The bulk cipher a suite name carries (`TLS13_AES_256_GCM_SHA384`,
/// `TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256`, …).
pub(crate) fn cipher_of(suite: &str) -> Option<Cipher> {
    if suite.contains("AES_128_GCM") {
        Some(Cipher::Aes128Gcm)
    } else if suite.contains("AES_256_GCM") {
        Some(Cipher::Aes256Gcm)
    } else if suite.contains("CHACHA20_POLY1305") {
        Some(Cipher::Chacha20Poly1305)
    } else {
        None
    }
}

/// The version rustls reports (`TLSv1_2`, `TLSv1_3`).
pub(crate) fn version_of(name: &str) -> Option<TlsVersion> {
    match name {
        "TLSv1_2" => Some(TlsVersion::Tls12),
        "TLSv1_3" => Some(TlsVersion::Tls13),
        _ => None,
    }
}

impl SuiteCeiling {
    /// µs to seal a frame of `bytes`: linear between the two measured sizes around it
    /// (sealing is a per-record cost plus a per-byte one, so the mean size of a mix of
    /// frames gives the mix's cost), and at the nearest end's rate per byte outside them.
    pub(crate) fn seal_us_at(&self, bytes: f64) -> Option<f64> {
        let points: Vec<(f64, f64)> = self
            .frames
            .iter()
            .filter(|f| f.frame_bytes > 0 && f.seal_us_per_frame > 0.0)
            .map(|f| (f.frame_bytes as f64, f.seal_us_per_frame))
            .collect();
        let (first, last) = (points.first()?, points.last()?);
        if !(bytes.is_finite() && bytes > 0.0) {
            return None;
        }
        if bytes <= first.0 {
            return Some(first.1 * bytes / first.0);
        }
        if bytes >= last.0 {
            return Some(last.1 * bytes / last.0);
        }
        let i = points.iter().position(|p| p.0 >= bytes)?;
        let (a, b) = (points[i - 1], points[i]);
        Some(a.1 + (b.1 - a.1) * (bytes - a.0) / (b.0 - a.0))
    }
}

impl Limits {
    /// The record layer of the suite `tls` names (same version and bulk cipher).
    fn suite(&self, tls: &TlsInfo) -> Option<&SuiteCeiling> {
        let (version, cipher) = (version_of(&tls.version)?, cipher_of(&tls.suite)?);
        self.record_layer
            .iter()
            .find(|s| s.version == version && s.cipher == cipher)
    }

    /// The idle-link floor in `mode`, median, µs.
    pub(crate) fn latency_floor_us(&self, mode: Mode) -> Option<f64> {
        self.latency_floor
            .iter()
            .find(|f| f.mode == mode)
            .map(|f| f.latency_us.p50 as f64)
    }

    /// The median connect + full handshake with `key` on an idle pair, µs.
    pub(crate) fn setup_floor_us(
        &self,
        key: Option<KeyType>,
        version: Option<TlsVersion>,
    ) -> Option<f64> {
        self.handshakes
            .iter()
            .filter(|c| c.resumption == Resumption::Full && c.handshakes > 0)
            .filter(|c| key.is_none_or(|k| c.key == k))
            .find(|c| version.is_none_or(|v| c.version == v))
            .map(|c| c.latency_us.p50 as f64)
    }

    /// The goodput ceiling of a link in `mode` with frames of `frame_bytes`: loopback TCP
    /// for plaintext, sealing with the negotiated suite for TLS. Mbit/s and its name.
    pub(crate) fn goodput_ceiling(
        &self,
        mode: Mode,
        tls: Option<&TlsInfo>,
        frame_bytes: Option<f64>,
    ) -> (String, Option<f64>) {
        match (mode, tls) {
            (Mode::Plain, _) => (
                "loopback TCP, one connection".to_owned(),
                self.tcp.as_ref().map(|t| t.goodput_mbit_s),
            ),
            (Mode::Tls, Some(tls)) => {
                let name = format!("record-layer seal, {}, one core", tls.suite);
                let at = self
                    .suite(tls)
                    .zip(frame_bytes)
                    .and_then(|(s, bytes)| Some(bytes * 8.0 / s.seal_us_at(bytes)?));
                (name, at.filter(|v| v.is_finite() && *v > 0.0))
            }
            (Mode::Tls, None) => ("record-layer seal (no suite negotiated)".to_owned(), None),
        }
    }

    pub(crate) fn idle_bytes(&self) -> Option<f64> {
        self.memory.as_ref().map(|m| m.bytes_per_connection)
    }
}

/// The note every comparison carries.
pub(crate) fn note(budget_s: f64, what: &str) -> String {
    format!(
        "measured in the same sitting, just before the {what} ({budget_s} s per measurement); \
         the record-layer ceiling is one core sealing in memory and the TCP ceiling one \
         loopback connection, so a link that used several cores or connections can exceed it"
    )
}

impl LinkShare {
    /// The one line a reader sees: `viewer-recorder TLS: 41 % of this machine's
    /// record-layer seal ceiling (…)`, then the times and memory against their floors.
    pub fn line(&self) -> String {
        let mode = match self.mode {
            Mode::Plain => "plaintext",
            Mode::Tls => "TLS",
        };
        let mut parts = Vec::new();
        match (self.goodput_share, self.ceiling_mbit_s) {
            (Some(s), Some(c)) => {
                let frame = self
                    .frame_bytes
                    .map_or(String::new(), |b| format!(" at {:.0} B frames", b));
                let mut p = format!(
                    "{} of this machine's {} ceiling ({:.0} Mbit/s{frame})",
                    percent(s),
                    self.ceiling,
                    c
                );
                if self.server_cores > 1.0 {
                    p.push_str(&format!(
                        ", with its server on {:.1} cores",
                        self.server_cores
                    ));
                }
                if self.mode == Mode::Plain && self.connections > 1 {
                    p.push_str(&format!(" over {} connections", self.connections));
                }
                parts.push(p);
            }
            _ => parts.push(format!("no {} ceiling to compare with", self.ceiling)),
        }
        if let (Some(r), Some(f)) = (self.latency_over_floor, self.latency_floor_p50_us) {
            parts.push(format!(
                "p50 latency ×{r:.1} the idle-link floor ({f:.0} µs)"
            ));
        }
        if let (Some(r), Some(f)) = (self.setup_over_floor, self.setup_floor_us) {
            parts.push(format!(
                "connection setup ×{r:.1} the handshake floor ({f:.0} µs)"
            ));
        }
        if let (Some(r), Some(f)) = (self.memory_over_idle, self.idle_rss_per_connection_bytes) {
            parts.push(format!(
                "memory per connection ×{r:.1} an idle one ({:.1} KiB)",
                f / 1024.0
            ));
        }
        format!("{} {mode}: {}", self.link, parts.join("; "))
    }
}

/// A share as a percentage people read: `41 %`, `0.35 %`.
fn percent(share: f64) -> String {
    let p = share * 100.0;
    if p >= 10.0 {
        format!("{p:.0} %")
    } else if p >= 1.0 {
        format!("{p:.1} %")
    } else {
        format!("{p:.2} %")
    }
}

/// Limits with round figures, for the tests of the shares and the exports.
#[cfg(test)]
pub(crate) mod fixtures {
    use super::*;

    pub(crate) fn suite(points: &[(u64, f64)]) -> SuiteCeiling {
        SuiteCeiling {
            version: TlsVersion::Tls13,
            cipher: Cipher::Aes256Gcm,
            suite: "TLS13_AES_256_GCM_SHA384".into(),
            frames: points
                .iter()
                .map(|&(b, us)| FrameCeiling {
                    frame_bytes: b,
                    frames: vec![],
                    count: 10,
                    seal_us_per_frame: us,
                    open_us_per_frame: us,
                    seal_mbyte_s: b as f64 / us,
                    open_mbyte_s: b as f64 / us,
                })
                .collect(),
        }
    }

    pub(crate) fn limits() -> Limits {
        let floor = |mode, p50| LatencyFloor {
            mode,
            frame_bytes: 100,
            frames: 10,
            latency_us: Percentiles {
                p50,
                p90: p50,
                p99: p50,
                p999: p50,
                max: p50,
            },
            tls: None,
            method: String::new(),
        };
        let hs: CellResult = serde_json::from_value(serde_json::json!({
            "version": "1.3", "key": "rsa2048", "group": "x25519", "resumption": "full",
            "mechanism": "none", "handshakes": 100, "handshakes_per_s": 1000.0, "window_s": 0.1,
            "latency_us": {"p50": 500, "p90": 600, "p99": 700, "p999": 800, "max": 900},
            "cpu_server_us_per_handshake": 300.0, "cpu_client_us_per_handshake": 200.0,
            "cpu_server_s": 0.03, "cpu_client_s": 0.02, "negotiated": null,
            "resumed_fraction": 0.0, "errors": {}, "server_errors": {}, "error_messages": []
        }))
        .expect("a cell");
        Limits {
            budget_s: 1.0,
            tcp: Some(TcpCeiling {
                bytes: 1,
                window_s: 1.0,
                goodput_mbit_s: 3200.0,
                write_bytes: 1,
                method: String::new(),
            }),
            // 10 000 B in 10 µs: 8 000 Mbit/s.
            record_layer: vec![suite(&[(10_000, 10.0)])],
            handshakes: vec![hs],
            memory: Some(IdleMemory {
                connections: 10,
                key: KeyType::Rsa2048,
                rss_before_bytes: 0,
                rss_after_bytes: 450_000,
                bytes_per_connection: 45_000.0,
                allocator: "jemalloc".into(),
                method: String::new(),
            }),
            latency_floor: vec![floor(Mode::Plain, 30), floor(Mode::Tls, 50)],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::fixtures::suite;
    use super::*;

    #[test]
    fn seal_time_is_interpolated_between_sizes_and_scaled_beyond_them() {
        let s = suite(&[(1000, 2.0), (3000, 4.0)]);
        assert_eq!(s.seal_us_at(2000.0), Some(3.0));
        assert_eq!(s.seal_us_at(1000.0), Some(2.0));
        assert_eq!(
            s.seal_us_at(500.0),
            Some(1.0),
            "the smallest size's rate per byte"
        );
        assert_eq!(
            s.seal_us_at(6000.0),
            Some(8.0),
            "the largest size's rate per byte"
        );
        assert_eq!(s.seal_us_at(0.0), None);
        assert_eq!(s.seal_us_at(f64::NAN), None);
        assert_eq!(suite(&[]).seal_us_at(1000.0), None);
    }

    #[test]
    fn ratios_need_two_positive_finite_figures() {
        assert_eq!(ratio(41.0, 100.0), Some(0.41));
        assert_eq!(ratio(0.0, 100.0), None);
        assert_eq!(ratio(1.0, 0.0), None);
        assert_eq!(ratio(f64::INFINITY, 1.0), None);
        assert_eq!(
            cipher_of("TLS13_AES_256_GCM_SHA384"),
            Some(Cipher::Aes256Gcm)
        );
        assert_eq!(
            cipher_of("TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256"),
            Some(Cipher::Chacha20Poly1305)
        );
        assert_eq!(cipher_of("TLS13_AES_128_CCM_SHA256"), None);
        assert_eq!(percent(0.41), "41 %");
        assert_eq!(percent(0.0123), "1.2 %");
        assert_eq!(percent(0.0012), "0.12 %");
    }
}
