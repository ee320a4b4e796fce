//! The report: per link and mode, what was measured, and what TLS cost.
//!
//! The JSON form is the documented interface (`schema_version` says which); the terminal
//! table is rendered from the same structures.

pub mod stats;

use std::collections::BTreeMap;
use std::fmt::Write as _;

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};
use simulators::metrics::RecordUs;
use simulators::transport::{Mode, Negotiated};

use crate::engine::credentials::CertificateSummary;
use crate::engine::deployment::{
    CertificateEventOutcome, FailoverOutcome, HostOutcome, Incompatibility, LinkOutcome,
    PhaseOutcome,
};
use crate::report::stats::{summarize, summarize_samples, Spread};
use crate::sys::environment::Environment;
use crate::units::{format_bytes, format_duration_us, format_mbit};

/// Version of the JSON layout. Bumped when a field changes meaning or type; fields may be
/// added without a bump. `harness/schema/report-v1.schema.json` describes version 1.
pub const SCHEMA_VERSION: u32 = 1;

/// A cost ratio is trusted when its max/min over the plain/TLS pairs is at most this.
///
/// The rule (checked for the goodput ratio and the p99-latency ratio of every link): with
/// fewer than [`MIN_PAIRS`] pairs, or with the largest pair's ratio more than 10 % above
/// the smallest, the median cannot be told apart from the noise between repeats; the report
/// then says so in `warnings` and marks the link's cost `reliable: false`. What helps: a
/// longer `--duration` (more frames per window, steadier percentiles) and more `--repeat`
/// (more pairs).
pub const MAX_RATIO_SPREAD: f64 = 1.10;
/// Fewest plain/TLS pairs whose spread can be judged at all (see [`MAX_RATIO_SPREAD`]).
pub const MIN_PAIRS: usize = 3;
/// The kernel cross-check flags a link whose application and kernel byte counts are
/// further apart than this, in percent (when at least [`KERNEL_CHECK_MIN_BYTES`] moved).
pub const KERNEL_CHECK_TOLERANCE_PCT: f64 = 1.0;
/// A load average (before the run) of this much per core or more means the machine was
/// busy with other work: the report says so.
pub const BUSY_LOAD_PER_CORE: f64 = 0.75;
/// A certificate brought from files that expires within this many days is warned about.
pub const EXPIRY_WARNING_DAYS: f64 = 30.0;
/// Below this many bytes the kernel cross-check is reported but not judged.
pub const KERNEL_CHECK_MIN_BYTES: u64 = 1 << 20;

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
    /// Things a reader must know before trusting the figures.
    pub warnings: Vec<String>,
    /// Per link and mode: the frame-latency histograms of every repeat merged (for
    /// percentile plots and `.hgrm` files).
    #[serde(default)]
    pub histograms: Vec<HistogramRecord>,
    /// Per second of each window, per repeat, mode and link: what was delivered.
    #[serde(default)]
    pub intervals: Vec<IntervalRecord>,
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

/// A histogram in HdrHistogram's V2+DEFLATE encoding, base64.
pub fn encode_histogram(h: &Histogram<u64>) -> String {
    use base64::Engine as _;
    use hdrhistogram::serialization::{Serializer as _, V2DeflateSerializer};
    let mut bytes = Vec::new();
    match V2DeflateSerializer::new().serialize(h, &mut bytes) {
        Ok(_) => base64::engine::general_purpose::STANDARD.encode(&bytes),
        Err(_) => String::new(),
    }
}

/// The inverse of [`encode_histogram`]; `None` for anything that does not decode.
pub fn decode_histogram(text: &str) -> Option<Histogram<u64>> {
    use base64::Engine as _;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(text.trim())
        .ok()?;
    let mut h: Histogram<u64> = hdrhistogram::serialization::Deserializer::new()
        .deserialize(&mut bytes.as_slice())
        .ok()?;
    // Like the histograms it was made from, it grows to take larger values when merged.
    h.auto(true);
    Some(h)
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
    fn of(w: &simulators::metrics::WireCount) -> Option<KernelCheck> {
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

/// Latency percentiles in µs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Percentiles {
    /// Median.
    pub p50: u64,
    /// 90th percentile.
    pub p90: u64,
    /// 99th percentile.
    pub p99: u64,
    /// 99.9th percentile.
    pub p999: u64,
    /// Largest value.
    pub max: u64,
}

impl Percentiles {
    /// Percentiles of a histogram (all zero when it is empty).
    pub fn of(h: &Histogram<u64>) -> Self {
        if h.is_empty() {
            return Percentiles::default();
        }
        Percentiles {
            p50: h.value_at_quantile(0.5),
            p90: h.value_at_quantile(0.9),
            p99: h.value_at_quantile(0.99),
            p999: h.value_at_quantile(0.999),
            max: h.max(),
        }
    }
}

/// What TLS negotiated on a link.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TlsInfo {
    /// Protocol version, e.g. `TLSv1_3`.
    pub version: String,
    /// Cipher suite.
    pub suite: String,
    /// Key-exchange group.
    pub group: String,
}

impl From<&Negotiated> for TlsInfo {
    fn from(n: &Negotiated) -> Self {
        TlsInfo {
            version: n.version.clone(),
            suite: n.suite.clone(),
            group: n.group.clone(),
        }
    }
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
    /// Server cores busy on average during the window.
    pub cores_server: f64,
    /// Client cores busy on average during the window.
    pub cores_client: f64,
    /// Peak resident memory of the process during the phase, bytes.
    pub peak_rss_bytes: u64,
    /// (Peak RSS − RSS before the phase) per stream, bytes.
    pub rss_per_stream_bytes: Option<f64>,
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
    /// False when the goodput or p99-latency ratio cannot be trusted: fewer than 3 pairs,
    /// or a max/min over the pairs above 1.10 (see `warnings`).
    #[serde(default)]
    pub reliable: bool,
    /// Min and max of each ratio over the pairs.
    pub spread: BTreeMap<String, Spread>,
}

/// Every phase of one link in one mode.
#[derive(Debug, Default)]
struct Series {
    samples: Vec<Sample>,
    tls: Option<TlsInfo>,
    group: Option<String>,
    encrypted: bool,
    cpu_attribution: String,
    errors: BTreeMap<String, u64>,
    messages: Vec<String>,
    /// Latency histograms of every phase merged.
    latency_us: Option<Histogram<u64>>,
    uncorrected_latency_us: Option<Histogram<u64>>,
}

/// Accumulates phases into a report.
#[derive(Debug, Default)]
pub struct Collector {
    series: BTreeMap<(String, Mode), Series>,
    /// Link ids in the order they were first seen (the scenario's order).
    order: Vec<String>,
    roles: BTreeMap<(String, Mode), Vec<(f64, f64)>>,
    failovers: Vec<FailoverResult>,
    incompatibilities: Vec<Incompatibility>,
    hosts: BTreeMap<(String, Mode), HostResult>,
    host_order: Vec<String>,
    certificate_events: Vec<CertificateEventResult>,
    repeats: BTreeMap<Mode, usize>,
    intervals: Vec<IntervalRecord>,
}

/// Adds `h` into `into` (starting it if empty).
fn merge_into(into: &mut Option<Histogram<u64>>, h: &Histogram<u64>) {
    match into {
        Some(total) => {
            if total.add(h).is_err() {
                for v in h.iter_recorded() {
                    total.record_us_n(v.value_iterated_to(), v.count_at_value());
                }
            }
        }
        None => *into = Some(h.clone()),
    }
}

fn quantile(h: &Histogram<u64>, q: f64) -> u64 {
    if h.is_empty() {
        0
    } else {
        h.value_at_quantile(q)
    }
}

fn per_gb(cpu_s: f64, bytes: u64) -> Option<f64> {
    (bytes > 0).then(|| cpu_s / (bytes as f64 / 1e9))
}

impl Sample {
    /// The figures of one link in one phase.
    pub fn from_link(l: &LinkOutcome, p: &PhaseOutcome) -> Sample {
        let r = &l.received;
        let window_s = p.window_s.max(1e-9);
        Sample {
            bytes_received: r.bytes,
            goodput_mbit_s: r.bytes as f64 * 8.0 / window_s / 1e6,
            offered_mbit_s: l.offered_bps / 1e6,
            frames_due: l.frames_due,
            frames_sent: l.sent.frames_sent,
            frames_received: r.frames,
            late_frames: r.late_frames,
            dropped_frames: l.sent.dropped_frames,
            sequence_gaps: r.sequence_gaps,
            frames_per_s: r.frames as f64 / window_s,
            latency_us: Percentiles::of(&r.latency_us),
            uncorrected_latency_us: Percentiles::of(&r.uncorrected_latency_us),
            connect_us: quantile(&r.connect_us, 0.5),
            handshake_us: quantile(&r.handshake_us, 0.5),
            handshake_us_p99: quantile(&r.handshake_us, 0.99),
            server_handshake_us: quantile(&l.server_handshake_us, 0.5),
            ttff_us: quantile(&r.ttff_us, 0.5),
            ttff_us_p99: quantile(&r.ttff_us, 0.99),
            cpu_server_s: l.cpu_server_s,
            cpu_client_s: l.cpu_client_s,
            cpu_process_s: p.process_cpu.total_s(),
            cpu_server_s_per_gb: per_gb(l.cpu_server_s, r.bytes),
            cpu_client_s_per_gb: per_gb(l.cpu_client_s, r.bytes),
            cores_server: l.cpu_server_s / window_s,
            cores_client: l.cpu_client_s / window_s,
            peak_rss_bytes: p.peak_rss_bytes,
            rss_per_stream_bytes: (l.streams > 0).then(|| {
                p.peak_rss_bytes.saturating_sub(p.baseline_rss_bytes) as f64 / l.streams as f64
            }),
            connections: r.connections,
            streams: l.streams,
            window_s: p.window_s,
            reconnects: r.reconnects,
            recovery_us_max: if r.recovery_us.is_empty() {
                0
            } else {
                r.recovery_us.max()
            },
            transfer_us: quantile(&r.transfer_us, 0.5),
            kernel_check: KernelCheck::of(&r.wire),
        }
    }
}

impl Collector {
    /// Adds one phase.
    pub fn add(&mut self, p: &PhaseOutcome) {
        let repeat = {
            let r = self.repeats.entry(p.mode).or_default();
            *r += 1;
            *r
        };
        for l in &p.links {
            if !self.order.contains(&l.link) {
                self.order.push(l.link.clone());
            }
            let series = self.series.entry((l.link.clone(), p.mode)).or_default();
            series.samples.push(Sample::from_link(l, p));
            series.group = l.group.map(str::to_owned);
            series.encrypted = l.encrypted;
            series.cpu_attribution = l.cpu_attribution.to_owned();
            if let Some(n) = &l.received.negotiated {
                series.tls = Some(TlsInfo::from(n));
            }
            for (k, v) in l.received.errors.iter().chain(&l.server_failures) {
                *series.errors.entry(k.clone()).or_default() += v;
            }
            for m in &l.client_errors {
                if !series.messages.contains(m) {
                    series.messages.push(m.clone());
                }
            }
            merge_into(&mut series.latency_us, &l.received.latency_us);
            merge_into(
                &mut series.uncorrected_latency_us,
                &l.received.uncorrected_latency_us,
            );
        }
        for i in &p.intervals {
            let h = &i.latency_us;
            self.intervals.push(IntervalRecord {
                t_s: i.t_s,
                repeat,
                mode: p.mode,
                link: i.link.clone(),
                goodput_mbit_s: i.goodput_mbit_s(),
                frames: i.frames,
                latency_us: IntervalLatency {
                    p50: quantile(h, 0.5),
                    p99: quantile(h, 0.99),
                    max: if h.is_empty() { 0 } else { h.max() },
                },
                interval_s: i.interval_s,
            });
        }
        let window_s = p.window_s.max(1e-9);
        for r in &p.roles {
            self.roles
                .entry((r.role.clone(), p.mode))
                .or_default()
                .push((r.cpu_s, r.cpu_s / window_s));
        }
        for f in &p.failovers {
            self.failovers.push(FailoverResult {
                mode: p.mode,
                repeat,
                outcome: f.clone(),
            });
        }
        for i in &p.incompatibilities {
            if !self.incompatibilities.contains(i) {
                self.incompatibilities.push(i.clone());
            }
        }
        for h in &p.hosts {
            if !self.host_order.contains(&h.host) {
                self.host_order.push(h.host.clone());
            }
            let entry = self
                .hosts
                .entry((h.host.clone(), p.mode))
                .or_insert_with(|| HostResult {
                    mode: p.mode,
                    repeats: 0,
                    outcome: HostOutcome {
                        host: h.host.clone(),
                        fault: h.fault.clone(),
                        ..HostOutcome::default()
                    },
                });
            entry.repeats += 1;
            let o = &mut entry.outcome;
            for l in &h.links {
                if !o.links.contains(l) {
                    o.links.push(l.clone());
                }
            }
            o.connections += h.connections;
            o.frames += h.frames;
            o.frames_lost += h.frames_lost;
            for (k, v) in &h.client_errors {
                *o.client_errors.entry(k.clone()).or_default() += v;
            }
            for (k, v) in &h.server_errors {
                *o.server_errors.entry(k.clone()).or_default() += v;
            }
        }
        for e in &p.certificate_events {
            self.certificate_events.push(CertificateEventResult {
                repeat,
                outcome: e.clone(),
            });
        }
    }

    /// Per host and mode, in the scenario's host order (plaintext first).
    pub fn hosts(&self) -> Vec<HostResult> {
        let mut out = Vec::new();
        for host in &self.host_order {
            for mode in [Mode::Plain, Mode::Tls] {
                if let Some(h) = self.hosts.get(&(host.clone(), mode)) {
                    out.push(h.clone());
                }
            }
        }
        out
    }

    /// Certificate events seen, in order.
    pub fn certificate_events(&self) -> Vec<CertificateEventResult> {
        self.certificate_events.clone()
    }

    /// Per-role CPU medians.
    pub fn roles(&self) -> Vec<RoleResult> {
        self.roles
            .iter()
            .map(|((role, mode), v)| {
                let cpu: Vec<f64> = v.iter().map(|x| x.0).collect();
                let cores: Vec<f64> = v.iter().map(|x| x.1).collect();
                RoleResult {
                    role: role.clone(),
                    mode: *mode,
                    cpu_s: summarize(&cpu).map_or(0.0, |s| s.0),
                    cores: summarize(&cores).map_or(0.0, |s| s.0),
                }
            })
            .collect()
    }

    /// Failovers seen, in order.
    pub fn failovers(&self) -> Vec<FailoverResult> {
        self.failovers.clone()
    }

    /// Incompatibilities seen.
    pub fn incompatibilities(&self) -> Vec<Incompatibility> {
        self.incompatibilities.clone()
    }

    /// Whether anything was measured.
    pub fn is_empty(&self) -> bool {
        self.series.is_empty()
    }

    /// Every link's and mode's latency histograms, all repeats merged, in report order.
    pub fn histograms(&self) -> Vec<HistogramRecord> {
        let mut keys: Vec<&(String, Mode)> = self.series.keys().collect();
        keys.sort_by_key(|(l, m)| (self.order.iter().position(|o| o == l), *m));
        keys.into_iter()
            .filter_map(|key| {
                let s = self.series.get(key)?;
                let (latency, uncorrected) =
                    (s.latency_us.as_ref()?, s.uncorrected_latency_us.as_ref()?);
                Some(HistogramRecord {
                    link: key.0.clone(),
                    mode: key.1,
                    repeats: s.samples.len(),
                    latency_us: encode_histogram(latency),
                    uncorrected_latency_us: encode_histogram(uncorrected),
                })
            })
            .collect()
    }

    /// Every interval sample, in the order taken.
    pub fn intervals(&self) -> Vec<IntervalRecord> {
        self.intervals.clone()
    }

    /// Summarises everything into results and costs.
    pub fn finish(&self) -> (Vec<LinkResult>, Vec<Cost>) {
        let mut results = Vec::new();
        let mut keys: Vec<&(String, Mode)> = self.series.keys().collect();
        keys.sort_by_key(|(l, m)| (self.order.iter().position(|o| o == l), *m));
        for key in keys {
            let (link, mode) = key;
            let Some(series) = self.series.get(key) else {
                continue;
            };
            let Some((figures, spread)) = summarize_samples(&series.samples) else {
                continue;
            };
            let short = series
                .samples
                .iter()
                .any(|s| s.frames_due > 0 && s.frames_received < s.frames_due);
            results.push(LinkResult {
                link: link.clone(),
                mode: *mode,
                group: series.group.clone(),
                encrypted: series.encrypted,
                short,
                cpu_attribution: series.cpu_attribution.clone(),
                tls: series.tls.clone(),
                figures,
                errors: series.errors.clone(),
                error_messages: series.messages.clone(),
                repeats: series.samples.len(),
                spread,
                samples: series.samples.clone(),
            });
        }
        let mut costs = Vec::new();
        for link in &self.order {
            let plain = self.series.get(&(link.clone(), Mode::Plain));
            let tls = self.series.get(&(link.clone(), Mode::Tls));
            if let (Some(plain), Some(tls)) = (plain, tls) {
                costs.push(cost(link, &plain.samples, &tls.samples));
            }
        }
        (results, costs)
    }
}

fn ratio(a: Option<f64>, b: Option<f64>) -> Option<f64> {
    match (a, b) {
        (Some(t), Some(p)) if p > 0.0 && t.is_finite() => Some(t / p),
        _ => None,
    }
}

fn cost(link: &str, plain: &[Sample], tls: &[Sample]) -> Cost {
    type Figure = fn(&Sample) -> Option<f64>;
    let figures: [(&str, Figure); 5] = [
        ("goodput_ratio", |s| Some(s.goodput_mbit_s)),
        ("latency_p99_ratio", |s| Some(s.latency_us.p99 as f64)),
        ("cpu_per_gb_ratio", |s| {
            per_gb(s.cpu_server_s + s.cpu_client_s, s.bytes_received)
        }),
        ("cpu_server_per_gb_ratio", |s| s.cpu_server_s_per_gb),
        ("cpu_client_per_gb_ratio", |s| s.cpu_client_s_per_gb),
    ];
    let pairs: Vec<(&Sample, &Sample)> = plain.iter().zip(tls).collect();
    let mut medians = BTreeMap::new();
    let mut spread = BTreeMap::new();
    for (name, f) in figures {
        let ratios: Vec<f64> = pairs
            .iter()
            .filter_map(|(p, t)| ratio(f(t), f(p)))
            .collect();
        if let Some((m, s)) = summarize(&ratios) {
            medians.insert(name, m);
            spread.insert(name.to_owned(), s);
        }
    }
    let handshakes: Vec<f64> = tls.iter().map(|s| s.handshake_us as f64).collect();
    let reliable = pairs.len() >= MIN_PAIRS
        && ["goodput_ratio", "latency_p99_ratio"].iter().all(|k| {
            spread
                .get(*k)
                .is_some_and(|s| ratio_spread(s) <= MAX_RATIO_SPREAD)
        });
    Cost {
        link: link.to_owned(),
        goodput_ratio: medians.get("goodput_ratio").copied(),
        latency_p99_ratio: medians.get("latency_p99_ratio").copied(),
        cpu_per_gb_ratio: medians.get("cpu_per_gb_ratio").copied(),
        cpu_server_per_gb_ratio: medians.get("cpu_server_per_gb_ratio").copied(),
        cpu_client_per_gb_ratio: medians.get("cpu_client_per_gb_ratio").copied(),
        handshake_us: summarize(&handshakes).map_or(0, |(m, _)| m.round() as u64),
        pairs: pairs.len(),
        reliable,
        spread,
    }
}

/// max/min of a ratio over the pairs (infinite when the smallest is not positive).
pub fn ratio_spread(s: &Spread) -> f64 {
    if s.min > 0.0 && s.max.is_finite() {
        s.max / s.min
    } else {
        f64::INFINITY
    }
}

fn x(v: Option<f64>) -> String {
    v.map_or_else(|| "–".to_owned(), |v| format!("×{v:.2}"))
}

fn us(v: u64) -> String {
    format_duration_us(v as f64)
}

impl Report {
    /// Warnings derived from the figures themselves: shortfalls, late and dropped frames,
    /// failures, a debug build.
    pub fn derive_warnings(&mut self) {
        if self.environment.build_profile.starts_with("debug") {
            self.warnings.push(
                "this is a debug build: figures are not representative; build with --release"
                    .into(),
            );
        }
        if self.partial {
            self.warnings
                .push("the run was interrupted: figures cover only what was measured".into());
        }
        let env = &self.environment;
        if env.cores > 0 && env.load_average_1m >= (env.cores as f64 * BUSY_LOAD_PER_CORE).max(1.0)
        {
            self.warnings.push(format!(
                "the machine was busy before the run started (1-minute load average {:.2} on \
                 {} cores): other work competed for the CPUs, so figures are noisier; measure \
                 on a quiet machine",
                env.load_average_1m, env.cores
            ));
        }
        // Certificates brought from files can be near their end (or past it); generated
        // ones are made for the run.
        if let Some(c) = self.certificates.as_ref().filter(|c| c.source == "files") {
            for h in c.hosts.iter().filter(|h| h.days_left < EXPIRY_WARNING_DAYS) {
                let when = if h.days_left < 0.0 {
                    format!("expired {:.0} day(s) ago", -h.days_left)
                } else {
                    format!("expires in {:.0} day(s)", h.days_left)
                };
                self.warnings.push(format!(
                    "the certificate of {} (serial {}) {when}: renew it before it does; the \
                     seed system does not warn, and clients stop connecting once it has",
                    h.host,
                    short_serial(&h.serial)
                ));
            }
        }
        let faulty: Vec<&HostResult> = self
            .hosts
            .iter()
            .filter(|h| h.mode == Mode::Tls && h.outcome.fault.is_some())
            .collect();
        if !faulty.is_empty() {
            let mut links: Vec<&str> = faulty
                .iter()
                .flat_map(|h| h.outcome.links.iter().map(String::as_str))
                .collect();
            links.sort_unstable();
            links.dedup();
            self.warnings.push(format!(
                "certificate faults were staged: in the TLS phase the links to the faulty hosts \
                 ({}) carry failed clients, so their TLS/plain cost ratios measure the faults, \
                 not the cost of TLS",
                links.join(", ")
            ));
        }
        for h in &faulty {
            let o = &h.outcome;
            let Some(fault) = &o.fault else { continue };
            let Ok(kind) = fault.parse::<crate::engine::scenario::FaultKind>() else {
                continue;
            };
            let category = kind.category();
            if !o.client_errors.contains_key(category) && !o.server_errors.contains_key(category) {
                self.warnings.push(format!(
                    "fault {fault} on {}: no connection failed as {category}; are its links \
                     encrypted in the TLS phase, and does anything connect to it?",
                    o.host
                ));
            }
        }
        for r in &self.results {
            let f = &r.figures;
            let name = format!("{} ({})", r.link, r.mode);
            let short: Vec<String> = r
                .samples
                .iter()
                .enumerate()
                .filter(|(_, s)| s.frames_due > 0 && s.frames_received < s.frames_due)
                .map(|(i, s)| {
                    format!(
                        "{}{} of {} frames due arrived ({:.1} % short)",
                        if r.samples.len() > 1 {
                            format!("in repeat {}, ", i + 1)
                        } else {
                            String::new()
                        },
                        s.frames_received,
                        s.frames_due,
                        100.0 * (s.frames_due - s.frames_received) as f64 / s.frames_due as f64
                    )
                })
                .collect();
            if !short.is_empty() {
                self.warnings.push(format!(
                    "{name}: fell short of the due frame rate: {}; latency figures describe \
                     only the frames that arrived",
                    short.join(", ")
                ));
            }
            if f.late_frames > 0 {
                self.warnings.push(format!(
                    "{name}: {} frames arrived more than one frame interval late",
                    f.late_frames
                ));
            }
            if f.dropped_frames > 0 {
                self.warnings.push(format!(
                    "{name}: the recording server dropped {} frames for slow consumers",
                    f.dropped_frames
                ));
            }
            if !r.errors.is_empty() {
                let list: Vec<String> = r.errors.iter().map(|(k, v)| format!("{k} ×{v}")).collect();
                self.warnings
                    .push(format!("{name}: failures: {}", list.join(", ")));
            }
            if let Some(k) = &f.kernel_check {
                if k.kernel_bytes >= KERNEL_CHECK_MIN_BYTES
                    && k.discrepancy_pct.abs() > KERNEL_CHECK_TOLERANCE_PCT
                {
                    self.warnings.push(format!(
                        "{name}: the application read {} bytes from its sockets where the kernel \
                         received {} ({:+.2} %, more than {KERNEL_CHECK_TOLERANCE_PCT} %): the \
                         byte counts, and so goodput, are in doubt",
                        k.app_wire_bytes, k.kernel_bytes, k.discrepancy_pct
                    ));
                }
            }
        }
        self.derive_spread_warnings();
    }

    /// Warnings on cost ratios whose spread over the pairs is too wide to trust (the rule
    /// of [`MAX_RATIO_SPREAD`] and [`MIN_PAIRS`]).
    fn derive_spread_warnings(&mut self) {
        let few = self
            .cost
            .iter()
            .map(|c| c.pairs)
            .filter(|p| *p < MIN_PAIRS)
            .max();
        if let Some(pairs) = few {
            self.warnings.push(format!(
                "the cost ratios come from {pairs} plain/TLS pair{}: at least {MIN_PAIRS} are \
                 needed to see how far they spread; run with --repeat {MIN_PAIRS} or more",
                if pairs == 1 { "" } else { "s" }
            ));
        }
        for (what, key) in [
            ("goodput", "goodput_ratio"),
            ("p99 latency", "latency_p99_ratio"),
        ] {
            let wide: Vec<String> = self
                .cost
                .iter()
                .filter(|c| c.pairs >= MIN_PAIRS)
                .filter_map(|c| {
                    let s = c.spread.get(key)?;
                    let median = match key {
                        "goodput_ratio" => c.goodput_ratio,
                        _ => c.latency_p99_ratio,
                    };
                    (ratio_spread(s) > MAX_RATIO_SPREAD).then(|| {
                        format!(
                            "{} ×{:.2}–×{:.2} (median {})",
                            c.link,
                            s.min,
                            s.max,
                            x(median)
                        )
                    })
                })
                .collect();
            if wide.is_empty() {
                continue;
            }
            let pairs = self.cost.iter().map(|c| c.pairs).max().unwrap_or(0);
            self.warnings.push(format!(
                "the TLS/plain {what} ratio spread wider than {:.0} % (max/min over the {pairs} \
                 pairs) on {} link{}: {}; such a median cannot be told apart from the noise \
                 between repeats: run with a longer --duration (more frames per window) or more \
                 --repeat (more pairs)",
                (MAX_RATIO_SPREAD - 1.0) * 100.0,
                wide.len(),
                if wide.len() == 1 { "" } else { "s" },
                wide.join(", ")
            ));
        }
    }

    /// The terminal table.
    pub fn render_table(&self) -> String {
        let mut out = String::new();
        if let Some(short) = crate::export::markdown::short_summary(self) {
            let _ = writeln!(out, "{short}\n");
        }
        let _ = writeln!(out, "{}", self.environment.summary_line());
        let m = &self.measurement;
        let _ = writeln!(
            out,
            "{} · {} s warm-up, {} s window, {} of {} repeats, {}{}",
            self.command,
            m.warmup_s,
            m.duration_s,
            m.repeats_completed,
            m.repeat,
            m.order,
            if self.partial {
                " · PARTIAL (interrupted)"
            } else {
                ""
            }
        );
        let _ = writeln!(out);
        let header = [
            "link",
            "mode",
            "goodput",
            "frames due/recv",
            "late",
            "drop",
            "p50",
            "p99",
            "p99.9",
            "max",
            "connect",
            "handshake",
            "ttff",
            "srv CPU s/GB",
            "cli CPU s/GB",
            "peak RSS",
        ];
        let mut rows: Vec<Vec<String>> = vec![header.iter().map(|s| (*s).to_owned()).collect()];
        for r in &self.results {
            let f = &r.figures;
            let gb = |v: Option<f64>| v.map_or_else(|| "–".to_owned(), |v| format!("{v:.2}"));
            rows.push(vec![
                r.link.clone(),
                r.mode.to_string(),
                format_mbit(f.goodput_mbit_s),
                if let Some(w) = crate::export::markdown::worst_short(r) {
                    format!("{}/{} SHORT", w.frames_due, w.frames_received)
                } else if f.frames_due > 0 {
                    format!("{}/{}", f.frames_due, f.frames_received)
                } else {
                    format!("–/{}", f.frames_received)
                },
                f.late_frames.to_string(),
                f.dropped_frames.to_string(),
                us(f.latency_us.p50),
                us(f.latency_us.p99),
                us(f.latency_us.p999),
                us(f.latency_us.max),
                us(f.connect_us),
                if r.mode == Mode::Tls {
                    us(f.handshake_us)
                } else {
                    "–".into()
                },
                if f.ttff_us > 0 {
                    us(f.ttff_us)
                } else {
                    "–".into()
                },
                gb(f.cpu_server_s_per_gb),
                gb(f.cpu_client_s_per_gb),
                format_bytes(f.peak_rss_bytes),
            ]);
        }
        crate::output::table::render_rows(&mut out, &rows, |c| c < 2);
        let _ = writeln!(out);
        for r in self.results.iter().filter(|r| r.mode == Mode::Tls) {
            let group = r
                .group
                .as_deref()
                .map(|g| format!(" (group {g})"))
                .unwrap_or_default();
            match (&r.tls, r.encrypted) {
                (Some(t), _) => {
                    let _ = writeln!(
                        out,
                        "TLS on {}{group}: {} {} {}",
                        r.link, t.version, t.suite, t.group
                    );
                }
                (None, false) => {
                    let _ = writeln!(out, "{}{group}: not encrypted in the TLS phase", r.link);
                }
                (None, true) => {
                    let _ = writeln!(out, "{}{group}: no TLS connection succeeded", r.link);
                }
            }
        }
        for c in &self.cost {
            let _ = writeln!(
                out,
                "Cost of TLS on {} (TLS/plain, median of {} pairs): goodput {}, p99 latency {}, \
                 CPU per GB {} (server {}, client {}), handshake +{} · {}",
                c.link,
                c.pairs,
                x(c.goodput_ratio),
                x(c.latency_p99_ratio),
                x(c.cpu_per_gb_ratio),
                x(c.cpu_server_per_gb_ratio),
                x(c.cpu_client_per_gb_ratio),
                us(c.handshake_us),
                crate::export::markdown::trust(c),
            );
        }
        for line in self.certificate_lines() {
            let _ = writeln!(out, "{line}");
        }
        for w in &self.warnings {
            let _ = writeln!(out, "warning: {w}");
        }
        out
    }

    /// What the certificate faults and events did, a line each (empty when there were
    /// none): the faulty hosts' failures, that the other hosts ran untouched, and what a
    /// watcher saw around each certificate event.
    pub fn certificate_lines(&self) -> Vec<String> {
        let mut lines = Vec::new();
        let tls: Vec<&HostResult> = self.hosts.iter().filter(|h| h.mode == Mode::Tls).collect();
        let faulty: Vec<&&HostResult> = tls.iter().filter(|h| h.outcome.fault.is_some()).collect();
        for h in &faulty {
            let o = &h.outcome;
            lines.push(format!(
                "fault {} on {}: {} connection(s) set up, {} frame(s) received; failures on {}: \
                 clients {}, server {}",
                o.fault.as_deref().unwrap_or_default(),
                o.host,
                o.connections,
                o.frames,
                if o.links.is_empty() {
                    "its links".to_owned()
                } else {
                    o.links.join(", ")
                },
                counts(&o.client_errors),
                counts(&o.server_errors),
            ));
        }
        if !faulty.is_empty() {
            let others: Vec<&&HostResult> =
                tls.iter().filter(|h| h.outcome.fault.is_none()).collect();
            let failures = |h: &HostResult| -> u64 {
                h.outcome.client_errors.values().sum::<u64>()
                    + h.outcome.server_errors.values().sum::<u64>()
            };
            let connections: u64 = others.iter().map(|h| h.outcome.connections).sum();
            let total: u64 = others.iter().map(|h| failures(h)).sum();
            // Hosts whose certificate expired mid-run fail some handshakes on purpose.
            let changing: Vec<String> = others
                .iter()
                .filter(|h| {
                    failures(h) > 0
                        && self
                            .certificate_events
                            .iter()
                            .any(|e| e.outcome.host == h.outcome.host)
                })
                .map(|h| format!("{} on {}", failures(h), h.outcome.host))
                .collect();
            lines.push(format!(
                "the {} other host(s): {connections} connection(s), {total} failure(s){}",
                others.len(),
                if changing.is_empty() {
                    String::new()
                } else {
                    format!(
                        " ({}, whose certificate changed mid-run)",
                        changing.join(", ")
                    )
                }
            ));
        }
        if !self.certificate_events.is_empty() {
            lines.push(format!(
                "certificate events: a watcher dialled each host every {} ms, once with a full \
                 handshake and once resuming a session; the servers' failure counts include \
                 its refused handshakes",
                crate::engine::watcher::WATCH_INTERVAL.as_millis()
            ));
        }
        for e in &self.certificate_events {
            let o = &e.outcome;
            let what = if o.action == "expire_certificate" {
                "expired"
            } else {
                "was renewed"
            };
            let tally = |t: &crate::engine::watcher::Tally| {
                format!(
                    "full handshakes {} ok{}, resumed {} ok{}",
                    t.full_ok,
                    if t.full_failed.is_empty() {
                        String::new()
                    } else {
                        format!(", failed {}", counts(&t.full_failed))
                    },
                    t.resumed_ok,
                    if t.resumed_failed.is_empty() {
                        String::new()
                    } else {
                        format!(", failed {}", counts(&t.resumed_failed))
                    },
                )
            };
            lines.push(format!(
                "certificate of {} {what} at {:.1} s (repeat {}; serial {} → {}): before: {}; \
                 after: {}; established streams: {} frame(s) lost, {} connection(s) broken",
                o.host,
                o.at_s,
                e.repeat,
                short_serial(&o.serial_before),
                short_serial(&o.serial_after),
                tally(&o.before),
                tally(&o.after),
                o.frames_lost,
                o.connections_broken,
            ));
        }
        lines
    }
}

/// `a ×3, b ×1`, or `none`.
fn counts(map: &BTreeMap<String, u64>) -> String {
    if map.is_empty() {
        return "none".into();
    }
    map.iter()
        .map(|(k, v)| format!("{k} ×{v}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The first 8 hex digits of a serial number.
fn short_serial(serial: &str) -> &str {
    serial.get(..8).unwrap_or(serial)
}
