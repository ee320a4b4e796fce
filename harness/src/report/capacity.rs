//! The capacity report: every step of each mode's search, the capacity found, what limited
//! it, the cost of encryption, and a projection to a bigger machine. The JSON form
//! (`--export-json`) is the documented interface; the terminal table is rendered from it.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::interval::Interval;
use super::objective::{Limit, Objective};
use crate::engine::capacity::search::{Stage, Stop};
use crate::report::{Percentiles, TlsInfo};
use crate::sys::environment::Environment;

/// Version of the capacity JSON layout.
pub(crate) const CAPACITY_SCHEMA_VERSION: u32 = 1;

/// Recording-server cores at or above this share of its CPUs count as saturated.
pub(crate) const SATURATED: f64 = 0.9;

/// A whole capacity report.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct CapacityReport {
    /// Version of this layout.
    pub schema_version: u32,
    /// Always `capacity`.
    pub command: String,
    /// When the search started (RFC 3339, UTC).
    pub started_at: String,
    /// True when the search was interrupted.
    pub partial: bool,
    /// How and where it was measured.
    pub environment: Environment,
    /// The deployment searched, at its starting camera count; the clients scale with the
    /// cameras (see `notes`).
    pub scenario: serde_json::Value,
    /// The objective every step was held to.
    pub objective: ObjectiveInfo,
    /// How the search ran.
    pub search: SearchInfo,
    /// Per mode.
    pub modes: Modes,
    /// (plaintext capacity − TLS capacity) / plaintext capacity, %: the share of a
    /// recording server's cameras that encryption costs. Null unless both modes found one.
    pub capacity_cost_pct: Option<f64>,
    /// The bounds of `capacity_cost_pct` that the two modes' `max_cameras_range` allow
    /// (fewest TLS and most plaintext cameras, and the reverse): not a probability
    /// interval, but every cost the runs could not rule out. Null unless both modes have a
    /// range.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capacity_cost_pct_range: Option<Interval>,
    /// A linear projection to a machine with more cores (`--project-cores`).
    pub projection: Option<Projection>,
    /// Things a reader must know before trusting the figures.
    pub warnings: Vec<String>,
    /// How the deployment was shaped for the search.
    pub notes: Vec<String>,
    /// Where the roles ran, when not all in one process (`--place`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub placement: Option<super::PlacementRecord>,
    /// This machine's ceilings, measured just before the search (`--with-limits`), and
    /// each mode's boundary beside them. Absent without the flag.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limits: Option<super::limits::LimitsComparison>,
}

/// The objective, as written and as parsed.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ObjectiveInfo {
    /// The objective in its canonical text form, e.g. `p99<=200ms,late<=0.1%,dropped=0`.
    pub text: String,
    /// Its terms.
    #[serde(flatten)]
    pub parsed: Objective,
}

/// How the search ran.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SearchInfo {
    /// First camera count tried.
    pub start: u32,
    /// Largest camera count allowed.
    pub max: u32,
    /// Bisection stopped when the bracket was this share of the best count wide, %.
    pub precision_pct: f64,
    /// Seconds each step warmed up before its window.
    pub warmup_s: f64,
    /// Seconds in each step's measured window.
    pub step_duration_s: f64,
    /// The wall-clock budget, seconds.
    pub budget_s: f64,
    /// Wall-clock seconds the search took.
    pub elapsed_s: f64,
    /// Whether the modes' steps were interleaved (plain, tls, plain, …).
    pub interleaved: bool,
    /// The recording server's role (whose CPU is the server's).
    pub server_role: String,
    /// CPUs the recording server was pinned to (empty: not pinned).
    pub server_cpus: Vec<usize>,
    /// CPUs every other role was pinned to (empty: not pinned).
    pub client_cpus: Vec<usize>,
    /// Worker threads of the recording server.
    pub server_threads: usize,
    /// Deliberate CPU cost per frame sent (`--throttle-us-per-frame`), µs.
    pub throttle_us_per_frame: Option<f64>,
}

/// The results of the modes searched.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Modes {
    /// Plaintext.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub plain: Option<ModeResult>,
    /// TLS on every link its encryption group covers.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls: Option<ModeResult>,
}

/// One mode's search.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ModeResult {
    /// The largest camera count that met the objective on every run (null: none did).
    pub max_cameras: Option<u32>,
    /// The smallest camera count that failed it (null: none did, up to `--max`).
    pub first_failing_cameras: Option<u32>,
    /// Why the search ended.
    pub stopped: Stop,
    /// Whether the boundary was found and confirmed (`stopped` is `bracketed`).
    pub complete: bool,
    /// What limited the recording server, judged at the first failing count.
    pub limit: Option<Limit>,
    /// The objective terms violated at the first failing count.
    pub limit_reasons: Vec<String>,
    /// The recording-server link with the most late and dropped frames there.
    pub limit_link: Option<String>,
    /// The recording server's cores at the first failing count.
    pub limit_cpu_server_cores: Option<f64>,
    /// Everything else's cores there.
    pub limit_cpu_clients_cores: Option<f64>,
    /// CPU seconds the recording server spent per second per camera (cores per camera),
    /// at the largest passing count.
    pub cpu_per_camera_server_s: Option<f64>,
    /// The same for everything else on this machine (clients, management, mobile server).
    pub cpu_per_camera_client_s: Option<f64>,
    /// What TLS negotiated (null in plaintext).
    pub tls: Option<TlsInfo>,
    /// Every step, in the order run.
    pub steps: Vec<Step>,
    /// The camera counts between which the capacity lies as far as the runs can tell: from
    /// the largest count at and below which every run passed to one below the smallest
    /// count at and above which every run failed. When every run agreed this is the
    /// bisection's bracket (`max_cameras` .. `first_failing_cameras` − 1); runs that
    /// disagreed widen it. Null when no count passed every run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_cameras_range: Option<CameraRange>,
    /// 95 % intervals of `cpu_per_camera_server_s` and `cpu_per_camera_client_s`, under
    /// those names: the mean over the passing steps within [`NEAR_BOUNDARY`] of
    /// `max_cameras` (at least two), Student t. Absent with fewer such steps.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub intervals: BTreeMap<String, Interval>,
}

/// The camera counts between which a capacity lies.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CameraRange {
    /// The smallest count it may be.
    pub low: u32,
    /// The largest.
    pub high: u32,
}

impl CameraRange {
    fn interval(self) -> Interval {
        Interval {
            low: f64::from(self.low),
            high: f64::from(self.high),
        }
    }
}

/// Passing steps at or above this share of `max_cameras` count as measured at the boundary
/// for the intervals of CPU per camera (CPU per camera falls as fixed costs spread over
/// more cameras, so steps far below the boundary would widen them).
pub(crate) const NEAR_BOUNDARY: f64 = 0.8;

/// A range is too wide to quote a capacity from when its width exceeds this share of its
/// middle (±10 %).
pub(crate) const TOO_NOISY: f64 = 0.2;

impl ModeResult {
    /// Whether the range of the boundary is too wide to quote one figure.
    pub fn too_noisy(&self) -> bool {
        self.max_cameras_range
            .map(CameraRange::interval)
            .is_some_and(|r| {
                let mid = (r.low + r.high) / 2.0;
                mid > 0.0 && (r.high - r.low) / mid > TOO_NOISY
            })
    }
}

impl ModeResult {
    /// The range of the boundary in words (`range 300–349 cameras`, with `too noisy to
    /// quote` when it is), or empty without one.
    pub fn range_words(&self) -> String {
        match self.max_cameras_range {
            Some(r) if self.too_noisy() => {
                format!("range {}–{} cameras, too noisy to quote", r.low, r.high)
            }
            Some(r) => format!("range {}–{} cameras", r.low, r.high),
            None => String::new(),
        }
    }

    /// The server's CPU per camera in ms per s, with its 95 % interval when there is one.
    pub fn server_cpu_words(&self) -> Option<String> {
        let c = self.cpu_per_camera_server_s?;
        Some(match self.intervals.get("cpu_per_camera_server_s") {
            Some(i) => format!(
                "{:.3} ms/s (near the boundary, 95 %: {:.3}–{:.3})",
                c * 1e3,
                i.low * 1e3,
                i.high * 1e3
            ),
            None => format!("{:.3} ms/s", c * 1e3),
        })
    }
}

impl CapacityReport {
    /// The capacity cost of encryption in words, with the bounds the ranges allow.
    pub fn cost_words(&self) -> Option<String> {
        let c = self.capacity_cost_pct?;
        Some(match self.capacity_cost_pct_range {
            Some(r) => format!("{c:.1} % (the ranges allow {:.1}–{:.1} %)", r.low, r.high),
            None => format!("{c:.1} %"),
        })
    }
}

/// The bounds of the capacity cost of encryption, %, that two ranges allow.
pub(crate) fn cost_pct_range(
    plain: Option<CameraRange>,
    tls: Option<CameraRange>,
) -> Option<Interval> {
    let (p, t) = (plain?.interval(), tls?.interval());
    (p.low > 0.0).then(|| Interval {
        low: (1.0 - t.high / p.low) * 100.0,
        high: (1.0 - t.low / p.high) * 100.0,
    })
}

/// One step of a search: one camera count, one mode, one measured window.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Step {
    /// Position in the whole search (both modes), from 1.
    pub index: usize,
    /// Ramp, bisect or confirm.
    pub stage: Stage,
    /// Cameras on the recording server.
    pub cameras: u32,
    /// Streams it served (live and playback, to viewers, integrations and the mobile
    /// server).
    pub streams: u64,
    /// Whether the objective held.
    pub pass: bool,
    /// The terms that did not hold (empty when passing).
    pub reasons: Vec<String>,
    /// What limited the server at this step (null when passing).
    pub limit: Option<Limit>,
    /// Frame latency of the recording server's streams (corrected), µs.
    pub latency_us: Percentiles,
    /// Frames due in the window on those streams.
    pub frames_due: u64,
    /// Frames received.
    pub frames_received: u64,
    /// Frames late by more than one frame interval, plus frames due and never delivered.
    pub late_frames: u64,
    /// Of `late_frames`, those never delivered (and not dropped).
    pub missing_frames: u64,
    /// Frames the server dropped for slow consumers.
    pub dropped_frames: u64,
    /// Failed connections and handshakes, all links.
    pub failures: u64,
    /// Payload delivered on the recording server's streams, Mbit/s.
    pub goodput_mbit_s: f64,
    /// Cores the recording server used.
    pub cpu_server_cores: f64,
    /// CPUs it had.
    pub server_cpus: usize,
    /// Cores everything else used (clients, management, mobile and event servers).
    pub cpu_clients_cores: f64,
    /// CPUs they had.
    pub client_cpus: usize,
    /// `cpu_server_cores / cameras`.
    pub cpu_per_camera_server_s: f64,
    /// Cores each role used (`recorder-1`, `viewers`, `mobile`, `phones`, …).
    pub cpu_roles_cores: BTreeMap<String, f64>,
    /// The recording server's links one by one: where frames were late or dropped.
    pub links: Vec<StepLink>,
    /// The worst one-second p99 of its streams' latency in the window, µs: near the
    /// step's p99 when frames were late throughout, far above it for a burst (null when no
    /// second had a frame).
    #[serde(default)]
    pub worst_second_p99_us: Option<u64>,
    /// Peak resident memory of the process, bytes.
    pub peak_rss_bytes: u64,
    /// Seconds in the window.
    pub window_s: f64,
    /// Wall-clock seconds since the search started, at the end of this step.
    pub elapsed_s: f64,
}

/// One of the recording server's links at one step.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct StepLink {
    /// Link id (`viewer-recorder`, `sdk-recorder`, `mobile-recorder`).
    pub link: String,
    /// Client connections on it.
    pub connections: u64,
    /// Streams on it.
    pub streams: u64,
    /// Frames due in the window.
    pub frames_due: u64,
    /// Frames late, or due and never delivered nor dropped.
    pub late_frames: u64,
    /// Frames the server dropped.
    pub dropped_frames: u64,
    /// Frame latency (corrected), µs.
    pub latency_us: Percentiles,
}

/// A projection of the measured capacity to a machine with more cores.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Projection {
    /// Always `linear`: cores × 0.9 / measured CPU per camera.
    pub method: String,
    /// The recording server's cores on the projected machine.
    pub cores: usize,
    /// Projected cameras, plaintext.
    pub plain_cameras: Option<u64>,
    /// Projected cameras, TLS.
    pub tls_cameras: Option<u64>,
    /// Projected capacity cost of encryption, %.
    pub capacity_cost_pct: Option<f64>,
    /// What the projection assumes away.
    pub caveats: Vec<String>,
}

/// What a linear projection leaves out.
pub(crate) const PROJECTION_CAVEATS: &[&str] = &[
    "memory bandwidth: every stream's bytes are copied (and under TLS encrypted) once more \
     per client; more cores share the same memory channels",
    "NIC and kernel: here the bytes went over loopback, where the kernel often runs a \
     packet's receive path in the sending thread, so the server's CPU includes some of its \
     clients' kernel work; a real NIC, its interrupts and offloads (kernel TLS, TSO) change \
     the cost per byte",
    "lock contention: more threads contend for the same per-camera subscriber lists and \
     the allocator",
    "the clients shared this machine: their cost is excluded from the server's CPU, but \
     they competed for caches and memory bandwidth",
    "handshake storms (failover, reconnects) are not part of the steady state measured",
];

impl Projection {
    /// Projects both modes to `cores` cores.
    pub fn linear(cores: usize, plain: Option<&ModeResult>, tls: Option<&ModeResult>) -> Self {
        let project = |m: Option<&ModeResult>| {
            let per = m?.cpu_per_camera_server_s?;
            (per > 0.0).then(|| (cores as f64 * SATURATED / per).floor() as u64)
        };
        let (p, t) = (project(plain), project(tls));
        Projection {
            method: "linear".into(),
            cores,
            plain_cameras: p,
            tls_cameras: t,
            capacity_cost_pct: cost_pct(p.map(|v| v as f64), t.map(|v| v as f64)),
            caveats: PROJECTION_CAVEATS.iter().map(|s| (*s).to_owned()).collect(),
        }
    }
}

/// The share of the plaintext capacity that TLS loses, %.
pub(crate) fn cost_pct(plain: Option<f64>, tls: Option<f64>) -> Option<f64> {
    let (p, t) = (plain?, tls?);
    (p > 0.0).then(|| (p - t) / p * 100.0)
}

impl CapacityReport {
    /// Each mode searched, by name.
    pub fn each_mode(&self) -> impl Iterator<Item = (&'static str, &ModeResult)> {
        [("plain", &self.modes.plain), ("tls", &self.modes.tls)]
            .into_iter()
            .filter_map(|(n, m)| m.as_ref().map(|m| (n, m)))
    }
}
