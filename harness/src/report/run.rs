//! The records of a `run` or `bulk` report.

use std::collections::BTreeMap;

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};
use simulators::transport::{Mode, TlsSettings};

use super::soak::{SoakInterval, SoakTrend};
use super::stats::Spread;
use super::{decode_histogram, Percentiles, TlsInfo};
use crate::engine::credentials::CertificateSummary;
use crate::engine::deployment::{
    CertificateEventOutcome, FailoverOutcome, HostOutcome, Incompatibility, RampOutcome, WanOutcome,
};
use crate::sys::cpu::CpuWindow;
use crate::sys::environment::Environment;

/// A whole report.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Report {
    /// Version of this layout.
    pub schema_version: u32,
    /// `run` or `bulk`.
    pub command: String,
    /// When the run started (RFC 3339, UTC).
    pub started_at: String,
    /// True when the run was interrupted: figures cover only what was measured.
    pub partial: bool,
    /// How and where it was measured.
    pub environment: Environment,
    /// The deployment or load that was simulated.
    pub scenario: serde_json::Value,
    /// Warm-up, window, repeats and order.
    pub measurement: Measurement,
    /// One entry per link and mode: medians over the repeats.
    pub results: Vec<LinkResult>,
    /// Per link: what TLS costs relative to plaintext.
    pub cost: Vec<Cost>,
    /// Per role and mode: CPU of each simulated role (medians over the repeats).
    pub roles: Vec<RoleResult>,
    /// Failovers that happened during the windows, per mode and repeat.
    pub failovers: Vec<FailoverResult>,
    /// How the clients started in each phase (the ramp and its handshake storm), per mode
    /// and repeat.
    #[serde(default)]
    pub ramps: Vec<RampResult>,
    /// Clients that cannot work with their server in some mode (e.g. an integration that
    /// cannot speak TLS pointed at an encrypted recording server).
    pub incompatibilities: Vec<Incompatibility>,
    /// Per server host and mode, summed over the repeats: what its clients and the server
    /// itself counted (shows which hosts' links a fault failed, and that the others ran).
    #[serde(default)]
    pub hosts: Vec<HostResult>,
    /// Certificates that expired or were renewed during the windows, per repeat.
    #[serde(default)]
    pub certificate_events: Vec<CertificateEventResult>,
    /// Where the servers' certificates came from and what each presented (`null` for
    /// the bulk test).
    #[serde(default)]
    pub certificates: Option<CertificateSummary>,
    /// What the TLS servers accepted: the pinned settings first, then what real clients
    /// commonly offer. Clients pin the scenario's `tls`, so that is what links negotiate
    /// (`results[].tls` says what they did). `null` in reports from before this field.
    #[serde(default)]
    pub server_tls: Option<TlsSettings>,
    /// Where the roles ran, when not all in one process (`--place`): the rules, each
    /// agent's machine and clock, and which kind of latency the figures are. Absent for a
    /// run in one process.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub placement: Option<PlacementRecord>,
    /// Things a reader must know before trusting the figures.
    pub warnings: Vec<String>,
    /// Per link and mode: the frame-latency histograms of every repeat merged (for
    /// percentile plots and `.hgrm` files).
    #[serde(default)]
    pub histograms: Vec<HistogramRecord>,
    /// Per second of each window, per repeat, mode and link: what was delivered.
    #[serde(default)]
    pub intervals: Vec<IntervalRecord>,
    /// This machine's ceilings, measured just before the run (`--with-limits`), and each
    /// link's figures beside them. Absent without the flag.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limits: Option<super::limits::LimitsComparison>,
    /// Which CPUs the roles were pinned to (`run --pin`), or why they were not. Absent from
    /// reports of commands that do not pin (bulk) and from older reports.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pinning: Option<PinningRecord>,
    /// Per window (mode and repeat): what this machine's CPUs did in it, steal and
    /// frequency; `environment.during_windows` sums them.
    #[serde(default)]
    pub cpu_windows: Vec<CpuWindowRecord>,
    /// A soak's intervals (`run --soak`): the process's memory, descriptors and CPU per GB
    /// over the window, in time order; empty for other runs.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub soak: Vec<SoakInterval>,
    /// How each of a soak's figures moved over it, and whether it grew (see
    /// [`super::soak`]); empty for other runs.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub soak_trend: Vec<SoakTrend>,
}

/// Which CPUs a run's roles ran on.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PinningRecord {
    /// What was asked for: `auto` or `off`.
    pub asked: String,
    /// Whether the roles were pinned.
    pub pinned: bool,
    /// The CPUs of the server roles (empty when not pinned).
    pub server_cpus: Vec<usize>,
    /// The CPUs of the client roles and of the harness itself (empty when not pinned).
    pub client_cpus: Vec<usize>,
    /// Each pinned role and its CPUs.
    pub roles: BTreeMap<String, Vec<usize>>,
    /// Why the roles were not pinned; `null` when they were.
    pub reason: Option<String>,
}

impl PinningRecord {
    /// One line for people, e.g. `servers (mgmt, recorder-1) on CPU 0, clients on CPU 1`.
    pub fn line(&self) -> String {
        if !self.pinned {
            return format!(
                "not pinned: {}",
                self.reason.as_deref().unwrap_or("not asked for")
            );
        }
        let servers: Vec<&str> = self
            .roles
            .iter()
            .filter(|(_, cpus)| **cpus == self.server_cpus)
            .map(|(r, _)| r.as_str())
            .collect();
        format!(
            "servers ({}) on {}, clients and the harness on {}",
            servers.join(", "),
            cpu_list(&self.server_cpus),
            cpu_list(&self.client_cpus)
        )
    }
}

/// `CPU 0` or `CPUs 0, 1`.
fn cpu_list(cpus: &[usize]) -> String {
    let list: Vec<String> = cpus.iter().map(ToString::to_string).collect();
    format!(
        "CPU{} {}",
        if cpus.len() == 1 { "" } else { "s" },
        list.join(", ")
    )
}

/// What this machine's CPUs did in one window.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CpuWindowRecord {
    /// `plain` or `tls`.
    pub mode: Mode,
    /// Which repeat (1-based).
    pub repeat: usize,
    /// Steal and frequency.
    #[serde(flatten)]
    pub cpus: CpuWindow,
}

impl CpuWindowRecord {
    /// The window's name for people, e.g. `tls repeat 2`.
    pub fn name(&self) -> String {
        format!("{} repeat {}", self.mode, self.repeat)
    }
}

/// The latency histograms of one link in one mode, all repeats merged, in HdrHistogram's
/// compressed V2 encoding (DEFLATE) in base64 — what `HistogramLogReader`s and the
/// `hdrhistogram` crate's `Deserializer` read. Values are µs.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct HistogramRecord {
    /// Link id.
    pub link: String,
    /// `plain` or `tls`.
    pub mode: Mode,
    /// Repeats merged.
    pub repeats: usize,
    /// Frame latency (last byte read − scheduled time), µs, V2+DEFLATE, base64.
    pub latency_us: String,
    /// Uncorrected latency (last byte read − sent time), µs, V2+DEFLATE, base64.
    pub uncorrected_latency_us: String,
}

impl HistogramRecord {
    /// The corrected latency histogram (`None` if the encoding is damaged).
    pub fn latency(&self) -> Option<Histogram<u64>> {
        decode_histogram(&self.latency_us)
    }

    /// The uncorrected latency histogram.
    pub fn uncorrected_latency(&self) -> Option<Histogram<u64>> {
        decode_histogram(&self.uncorrected_latency_us)
    }
}

/// What one link delivered in one second of one window (the NDJSON export's lines).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct IntervalRecord {
    /// End of the interval, seconds after the window opened.
    pub t_s: f64,
    /// Which repeat (1-based).
    pub repeat: usize,
    /// `plain` or `tls`.
    pub mode: Mode,
    /// Link id.
    pub link: String,
    /// Payload bit rate received in the interval, Mbit/s.
    pub goodput_mbit_s: f64,
    /// Frames received in the interval (of those scheduled in the window).
    pub frames: u64,
    /// Their latency, µs (zeros when no frame arrived).
    pub latency_us: IntervalLatency,
    /// Length of the interval, seconds (1 but for a last, shorter one).
    pub interval_s: f64,
    /// The interval's latency histogram, µs, for the interval log (`--export-hlog`), in
    /// V2+DEFLATE base64 (a few hundred bytes, where the histogram itself takes tens of
    /// KiB: a long run keeps thousands); kept in memory only, so that the JSON and NDJSON
    /// stay small.
    #[serde(skip)]
    pub histogram: Option<String>,
}

/// Latency percentiles of one interval, µs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct IntervalLatency {
    /// Median.
    pub p50: u64,
    /// 99th percentile.
    pub p99: u64,
    /// Largest value.
    pub max: u64,
}

/// The kernel cross-check of goodput: between the same two points of each connection (the
/// first frame scheduled inside the window, and the first scheduled at or after its end),
/// the bytes the application read from its sockets and the bytes the kernel's TCP stack
/// handed it (`TCP_INFO` `tcpi_bytes_received` less the bytes still unread, `SIOCINQ`).
/// Summed over the link's connections. With the payload bytes between the same points it
/// ties goodput to what crossed the wire: `overhead_pct` should be the 40-byte frame
/// headers (plus TLS's record overhead, about 22 bytes per 16 KiB record).
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct KernelCheck {
    /// Bytes the application read from the sockets (below TLS).
    pub app_wire_bytes: u64,
    /// Bytes of TCP payload the kernel handed to the application.
    pub kernel_bytes: u64,
    /// (app − kernel) / kernel, percent.
    pub discrepancy_pct: f64,
    /// Frame payload bytes the application decoded between the points.
    pub payload_bytes: u64,
    /// Frame header bytes (40 per frame) between the points.
    pub header_bytes: u64,
    /// (wire − payload) / payload, percent: frame headers, and for TLS its record overhead.
    pub overhead_pct: f64,
    /// Connections measured.
    pub connections: u64,
}

impl KernelCheck {
    pub(crate) fn of(w: &simulators::metrics::WireCount) -> Option<KernelCheck> {
        if w.connections == 0 {
            return None;
        }
        let pct = |a: u64, b: u64| {
            if b == 0 {
                0.0
            } else {
                (a as f64 - b as f64) / b as f64 * 100.0
            }
        };
        Some(KernelCheck {
            app_wire_bytes: w.app_bytes,
            kernel_bytes: w.kernel_bytes,
            discrepancy_pct: pct(w.app_bytes, w.kernel_bytes),
            payload_bytes: w.payload_bytes,
            header_bytes: w.messages * simulators::wire::HEADER_LEN as u64,
            overhead_pct: pct(w.app_bytes, w.payload_bytes),
            connections: w.connections,
        })
    }
}

/// What the WAN relays in front of a link's clients counted in one phase, beside how they
/// were set up (see `simulators::role::wan`). The counts cover the phase from the first
/// connection to the end of the drain, not the window alone, and come from the process
/// that ran the clients (summed over processes in a distributed run).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct WanFigures {
    /// The relays' settings; null when relays of the link had different ones.
    pub configured: Option<WanConfigured>,
    /// Relays in front of the link's clients.
    pub relays: u64,
    /// Connections they relayed.
    pub connections: u64,
    /// Bytes relayed towards the servers (below TLS).
    pub bytes_to_server: u64,
    /// Bytes relayed towards the clients (below TLS).
    pub bytes_to_client: u64,
    /// Segments (of at most 1448 bytes) relayed, both directions.
    pub segments: u64,
    /// Of those, segments lost and delivered one retransmission later.
    pub retransmissions: u64,
    /// retransmissions / segments (0 when no segment crossed).
    pub retransmission_share: f64,
    /// The longest a byte waited past its due time for the rate cap, ms (0 without one).
    pub max_rate_queue_ms: f64,
}

/// A WAN relay's settings, each direction alike.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct WanConfigured {
    /// One-way delay, ms.
    pub delay_ms: f64,
    /// Largest extra delay (uniform from 0), ms.
    pub jitter_ms: f64,
    /// Share of segments lost, 0 to 0.5.
    pub loss: f64,
    /// Rate cap per direction, bit/s (null: none).
    pub rate_bps: Option<u64>,
}

impl WanFigures {
    pub(crate) fn of(w: &WanOutcome) -> WanFigures {
        let ms = |d: std::time::Duration| d.as_secs_f64() * 1e3;
        WanFigures {
            configured: w.profile.map(|p| WanConfigured {
                delay_ms: ms(p.delay),
                jitter_ms: ms(p.jitter),
                loss: p.loss,
                rate_bps: p.rate_bps,
            }),
            relays: w.relays,
            connections: w.stats.connections,
            bytes_to_server: w.stats.bytes_to_upstream,
            bytes_to_client: w.stats.bytes_from_upstream,
            segments: w.stats.segments,
            retransmissions: w.stats.retransmissions,
            retransmission_share: w.stats.retransmission_share(),
            max_rate_queue_ms: w.stats.max_rate_queue_ns as f64 / 1e6,
        }
    }
}

/// How the figures were taken.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Measurement {
    /// Seconds between starting the roles and opening the window.
    pub warmup_s: f64,
    /// Seconds in each measured window.
    pub duration_s: f64,
    /// Repeats asked for (pairs of plain and TLS phases when both modes run).
    pub repeat: u32,
    /// Repeats that completed.
    pub repeats_completed: u32,
    /// Modes in the order each repeat ran them (`plain`, `tls`).
    pub modes: Vec<Mode>,
    /// Factor applied to the warm-up and window asked for (`--multiplier`).
    pub multiplier: f64,
    /// Length of the stall injected into every recording server at the middle of each
    /// window (`--inject-stall`), seconds; null when none was.
    #[serde(default)]
    pub inject_stall_s: Option<f64>,
    /// How the repeats were ordered.
    pub order: String,
}

/// The figures of one phase (one repeat of one link in one mode).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Sample {
    /// Payload bytes received of frames scheduled in the window.
    pub bytes_received: u64,
    /// `bytes_received` over the window, Mbit/s.
    pub goodput_mbit_s: f64,
    /// What the streams should deliver (cameras watched × bitrate), Mbit/s; 0 for bulk.
    pub offered_mbit_s: f64,
    /// Frames scheduled in the window for the streams subscribed (0 for unpaced bulk).
    pub frames_due: u64,
    /// Frames the sender wrote in the window.
    pub frames_sent: u64,
    /// Frames received.
    pub frames_received: u64,
    /// Frames received more than one frame interval after they were due.
    pub late_frames: u64,
    /// Frames the sender dropped (slow consumer: queue full, then until the next I-frame).
    pub dropped_frames: u64,
    /// Frames missing from the received sequences.
    pub sequence_gaps: u64,
    /// Frames received per second.
    pub frames_per_s: f64,
    /// Last byte read − scheduled time (coordinated-omission corrected), µs.
    pub latency_us: Percentiles,
    /// Last byte read − sent time, µs.
    pub uncorrected_latency_us: Percentiles,
    /// Delay variation, µs: each frame's latency less the least of its stream (the
    /// receiver's own reference, so a clock offset between sender and receiver cancels
    /// out). `latency_us` and `uncorrected_latency_us` need the two ends' clocks to agree;
    /// this one does not. All zero for links whose clients track no stream (RPC calls).
    #[serde(default)]
    pub delay_variation_us: Percentiles,
    /// Median TCP connect time, µs.
    pub connect_us: u64,
    /// Median client-side TLS handshake time, µs (0 for plaintext).
    pub handshake_us: u64,
    /// 99th percentile of the client-side handshake time, µs.
    pub handshake_us_p99: u64,
    /// Median server-side TLS handshake time, µs.
    pub server_handshake_us: u64,
    /// Median time to first frame (subscribe → first key frame received) per stream, µs.
    pub ttff_us: u64,
    /// 99th percentile of the time to first frame, µs.
    pub ttff_us_p99: u64,
    /// CPU seconds of the server role in the window.
    pub cpu_server_s: f64,
    /// CPU seconds of the client role in the window.
    pub cpu_client_s: f64,
    /// CPU seconds (user + system) of the whole process in the window.
    pub cpu_process_s: f64,
    /// Server CPU seconds per GB (10⁹ bytes) of payload delivered.
    pub cpu_server_s_per_gb: Option<f64>,
    /// Client CPU seconds per GB of payload delivered.
    pub cpu_client_s_per_gb: Option<f64>,
    /// Server CPU per frame delivered, µs: what one more stream costs the server, at the
    /// frame rate it runs at.
    #[serde(default)]
    pub cpu_server_us_per_frame: Option<f64>,
    /// Client CPU per frame delivered, µs.
    #[serde(default)]
    pub cpu_client_us_per_frame: Option<f64>,
    /// Server cores busy on average during the window.
    pub cores_server: f64,
    /// Client cores busy on average during the window.
    pub cores_client: f64,
    /// Peak resident memory of the process during the phase, bytes.
    pub peak_rss_bytes: u64,
    /// (Peak RSS − RSS before the phase) per stream, bytes.
    pub rss_per_stream_bytes: Option<f64>,
    /// Resident memory of the process at the end of the window (steady state), bytes.
    #[serde(default)]
    pub steady_rss_bytes: u64,
    /// (RSS at the end of the window − RSS before the phase) per connection open then,
    /// both ends together (in one process they cannot be told apart, and the figure is the
    /// phase's, the same for every link of it), bytes.
    #[serde(default)]
    pub rss_per_connection_bytes: Option<f64>,
    /// Client connections set up.
    pub connections: u64,
    /// Streams subscribed.
    pub streams: u64,
    /// Seconds in the window.
    pub window_s: f64,
    /// Connections re-established after a server went away (failover).
    pub reconnects: u64,
    /// Longest time from losing a connection to a stream flowing again, µs.
    pub recovery_us_max: u64,
    /// Median whole-transfer time (configuration download), µs.
    pub transfer_us: u64,
    /// The kernel cross-check of the bytes received (null where not measured: request and
    /// response links, or a kernel without `TCP_INFO` byte counts).
    #[serde(default)]
    pub kernel_check: Option<KernelCheck>,
    /// What the WAN relays in front of the link's clients counted (absent without relays).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wan: Option<WanFigures>,
}

/// One role's CPU in one mode.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RoleResult {
    /// Role (runtime) name: `mgmt`, `recorder-1`, `viewers`, …
    pub role: String,
    /// `plain` or `tls`.
    pub mode: Mode,
    /// CPU seconds in the window (median over the repeats).
    pub cpu_s: f64,
    /// Cores busy on average (median over the repeats).
    pub cores: f64,
}

/// One server host in one mode, summed over the repeats.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct HostResult {
    /// `plain` or `tls`.
    pub mode: Mode,
    /// Repeats summed.
    pub repeats: usize,
    /// The counts.
    #[serde(flatten)]
    pub outcome: HostOutcome,
}

/// A certificate event in one phase.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CertificateEventResult {
    /// Which repeat (1-based).
    pub repeat: usize,
    /// What happened.
    #[serde(flatten)]
    pub outcome: CertificateEventOutcome,
}

/// A failover in one phase.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct FailoverResult {
    /// `plain` or `tls`.
    pub mode: Mode,
    /// Which repeat (1-based).
    pub repeat: usize,
    /// What happened.
    #[serde(flatten)]
    pub outcome: FailoverOutcome,
}

/// How one phase's clients started: the ramp and its handshake storm, before the window.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RampResult {
    /// `plain` or `tls`.
    pub mode: Mode,
    /// Which repeat (1-based).
    pub repeat: usize,
    /// What happened.
    #[serde(flatten)]
    pub outcome: RampOutcome,
    /// Connections set up per second of the ramp.
    pub connections_per_s: f64,
}

/// One link in one mode: medians over the repeats, their spread, and each repeat.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct LinkResult {
    /// Link id (`viewer-recorder`, `bulk`, …).
    pub link: String,
    /// `plain` or `tls`.
    pub mode: Mode,
    /// The encryption group that covers the link (`server`, `streaming_media`, …).
    pub group: Option<String>,
    /// Whether the link was encrypted in this mode (a group may be off in the TLS phase).
    pub encrypted: bool,
    /// True when some repeat received fewer frames than were due: the run fell short of
    /// the due frame rate, and latency figures describe only the frames that arrived.
    #[serde(default)]
    pub short: bool,
    /// How CPU was attributed: `exclusive` (the roles serve only this link) or
    /// `shared_by_bytes` (a role's CPU split among its links by payload bytes).
    pub cpu_attribution: String,
    /// What TLS negotiated (null for plaintext).
    pub tls: Option<TlsInfo>,
    /// Medians over the repeats.
    #[serde(flatten)]
    pub figures: Sample,
    /// Failures by category, summed over the repeats (client and server side).
    pub errors: BTreeMap<String, u64>,
    /// The distinct failure messages seen.
    pub error_messages: Vec<String>,
    /// Repeats measured.
    pub repeats: usize,
    /// Min and max of each figure over the repeats, by field path.
    pub spread: BTreeMap<String, Spread>,
    /// Every repeat's figures, in order.
    pub samples: Vec<Sample>,
}

/// What TLS costs on one link: TLS figure / plaintext figure, pair by pair, summarised.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Cost {
    /// Link id.
    pub link: String,
    /// TLS goodput / plaintext goodput (below 1: TLS delivers less).
    pub goodput_ratio: Option<f64>,
    /// TLS p99 frame latency / plaintext p99.
    pub latency_p99_ratio: Option<f64>,
    /// TLS CPU per GB / plaintext CPU per GB, server and client together.
    pub cpu_per_gb_ratio: Option<f64>,
    /// The same for the server role alone.
    pub cpu_server_per_gb_ratio: Option<f64>,
    /// The same for the client role alone.
    pub cpu_client_per_gb_ratio: Option<f64>,
    /// Median TLS handshake time the client adds to connection setup, µs.
    pub handshake_us: u64,
    /// Plain/TLS pairs the ratios come from.
    pub pairs: usize,
    /// False when a headline figure (goodput, p99 latency, CPU per GB) is undecided: under
    /// two pairs (no interval), or a 95 % interval wider than ±10 % that holds "no change"
    /// (see `intervals` and `warnings`).
    #[serde(default)]
    pub reliable: bool,
    /// Min and max of each ratio over the pairs.
    pub spread: BTreeMap<String, Spread>,
    /// TLS − plain frame latency, µs: the median over the pairs of each pair's difference at
    /// p50, p99 and p99.9 (a +40 µs p99 on a 60 µs poll reads better as +40 µs than as
    /// ×1.7). None when a mode had no frames.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency_diff_us: Option<LatencyDiff>,
    /// TLS − plain CPU seconds per GB of the server role, median over the pairs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu_server_s_per_gb_diff: Option<f64>,
    /// The same for the client role.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu_client_s_per_gb_diff: Option<f64>,
    /// TLS − plain time to first frame, µs, median over the pairs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttff_diff_us: Option<f64>,
    /// 95 % intervals of the figures above, under their names (`goodput_ratio`,
    /// `latency_p99_ratio`, `cpu_per_gb_ratio`, `cpu_server_per_gb_ratio`,
    /// `cpu_client_per_gb_ratio`, `latency_diff_us.p50`, `latency_diff_us.p99`,
    /// `latency_diff_us.p999`, `cpu_server_s_per_gb_diff`, `cpu_client_s_per_gb_diff`,
    /// `ttff_diff_us`, `handshake_us`): from the pairs, as `report::interval` explains. A
    /// ratio's interval is of the geometric mean over the pairs; the others of the mean.
    /// Absent with fewer than two pairs.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub intervals: BTreeMap<String, super::interval::Interval>,
}

/// TLS − plain latency at three percentiles, µs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct LatencyDiff {
    /// At the median.
    pub p50: f64,
    /// At the 99th percentile.
    pub p99: f64,
    /// At the 99.9th percentile.
    pub p999: f64,
}

/// The first 8 hex digits of a serial number.
pub(crate) fn short_serial(serial: &str) -> &str {
    serial.get(..8).unwrap_or(serial)
}

/// Where the roles of a distributed run ran.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct PlacementRecord {
    /// The placement rules, `KEY=AGENT[,AGENT…]`; roles no rule names ran in the
    /// coordinator's process.
    pub rules: Vec<String>,
    /// Each agent.
    pub agents: Vec<AgentRecord>,
    /// Whether every agent's clock agreed with the coordinator's within 1 ms (offset plus
    /// half the probe's round trip): only then is one-way latency across hosts trusted.
    pub clocks_agree: bool,
    /// The largest disagreement, µs.
    pub worst_clock_offset_us: Option<f64>,
    /// Which latency `latency_us` is here, in words.
    pub latency: String,
    /// Why the run was aborted (an agent lost), if it was.
    pub aborted: Option<String>,
}

/// One agent of a distributed run.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct AgentRecord {
    /// Its name.
    pub name: String,
    /// Where it connected from.
    pub address: String,
    /// Its machine.
    pub environment: Environment,
    /// Its clock against the coordinator's.
    pub clock: Option<ClockRecord>,
    /// Why it was lost, if it was.
    pub lost: Option<String>,
}

/// An agent's clock against the coordinator's (NTP-style, the probe with the shortest round
/// trip).
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq)]
pub struct ClockRecord {
    /// Agent − coordinator, µs.
    pub offset_us: f64,
    /// The probe's round trip, µs.
    pub rtt_us: f64,
}
