//! What one phase measured: per link, per role, per server host, and what happened to
//! failovers and certificates. These are the engine's results; the report is made of them.

use std::collections::BTreeMap;

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};
use simulators::metrics::{LinkMetrics, SenderSnapshot};
use simulators::role::wan::{WanProfile, WanStats};
use simulators::transport::Mode;

use crate::engine::sampler::{IntervalSample, ProcessSample};
use crate::engine::watcher::Tally;
use crate::sys::cpu::CpuWindow;
use crate::sys::process;

/// One link's figures from one phase.
#[derive(Debug)]
pub struct LinkOutcome {
    /// Link id.
    pub link: String,
    /// Its encryption group (`None` for the bulk test).
    pub group: Option<&'static str>,
    /// Whether it was encrypted in this phase.
    pub encrypted: bool,
    /// What the receivers measured.
    pub received: LinkMetrics,
    /// What the senders counted in the window.
    pub sent: SenderSnapshot,
    /// Connection failures the servers counted, by category.
    pub server_failures: BTreeMap<String, u64>,
    /// Server-side handshake times, µs.
    pub server_handshake_us: Histogram<u64>,
    /// Frames (or calls) scheduled in the window (0 when unknowable, e.g. unpaced bulk).
    pub frames_due: u64,
    /// What the link should carry, bit/s (0 for bulk).
    pub offered_bps: f64,
    /// Streams (or clients) on the link.
    pub streams: u64,
    /// CPU seconds of the server side attributed to this link.
    pub cpu_server_s: f64,
    /// CPU seconds of the client side attributed to this link.
    pub cpu_client_s: f64,
    /// `exclusive` when the roles involved serve only this link; `shared_by_bytes` when a
    /// role's CPU was split among its links in proportion to their payload bytes.
    pub cpu_attribution: &'static str,
    /// Distinct failure messages of individual clients.
    pub client_errors: Vec<String>,
    /// What the WAN relays in front of the link's clients counted (none without relays).
    pub wan: Option<WanOutcome>,
}

/// What the WAN relays of a link counted, and how they were set up.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct WanOutcome {
    /// The relays' profile; `None` when relays of the same link had different ones.
    pub profile: Option<WanProfile>,
    /// Relays counted.
    pub relays: u64,
    /// Their counts, summed.
    pub stats: WanStats,
}

impl WanOutcome {
    /// Adds `other`: counts summed, the profile kept while they agree.
    pub fn merge(&mut self, other: &WanOutcome) {
        if self.profile != other.profile {
            self.profile = None;
        }
        self.relays += other.relays;
        self.stats.merge(&other.stats);
    }

    /// Merges `other` into `into`, which may hold nothing yet.
    pub fn merge_into(into: &mut Option<WanOutcome>, other: &WanOutcome) {
        match into {
            Some(w) => w.merge(other),
            None => *into = Some(other.clone()),
        }
    }
}

/// A role's CPU in one phase.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RoleCpu {
    /// Role (runtime) name.
    pub role: String,
    /// CPU seconds (user + system) of its threads in the window.
    pub cpu_s: f64,
}

/// What a failover did in one phase.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct FailoverOutcome {
    /// The recording server that was stopped.
    pub host: String,
    /// The failover server its clients moved to.
    pub failover: Option<String>,
    /// When it was stopped, seconds after the window opened.
    pub at_s: f64,
    /// Clients of the stopped server.
    pub clients: u64,
    /// Reconnections they made (each one a new TCP connection and TLS handshake).
    pub reconnects: u64,
    /// Streams that flowed again from the failover server.
    pub streams_recovered: u64,
    /// Streams the clients had.
    pub streams: u64,
    /// Median time from losing the connection to a stream's first frame again, µs.
    pub recovery_p50_us: u64,
    /// Time until every recovered stream flowed again, µs.
    pub recovery_all_us: u64,
    /// Frames missing from those clients' streams in the window (sequence gaps).
    pub frames_lost: u64,
}

/// What one server host's clients and the server itself counted in one phase: shows that a
/// fault staged on a host fails that host's links and no other.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct HostOutcome {
    /// Host name.
    pub host: String,
    /// The fault staged on it, if any.
    pub fault: Option<String>,
    /// The links whose clients dialled it.
    pub links: Vec<String>,
    /// Connections its clients set up.
    pub connections: u64,
    /// Frames (and calls) its clients received in the window.
    pub frames: u64,
    /// Frames missing from its clients' streams (sequence gaps).
    pub frames_lost: u64,
    /// Its clients' failures, by category.
    pub client_errors: BTreeMap<String, u64>,
    /// The server's own failed connections, by category.
    pub server_errors: BTreeMap<String, u64>,
}

/// A certificate that expired or was renewed during one phase, and what a watcher saw
/// before and after (see [`crate::engine::watcher`]).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CertificateEventOutcome {
    /// The server host.
    pub host: String,
    /// `expire_certificate` or `renew_certificate`.
    pub action: String,
    /// When, seconds after the window opened.
    pub at_s: f64,
    /// Serial number of the certificate presented before.
    pub serial_before: String,
    /// Serial number of the certificate presented after.
    pub serial_after: String,
    /// The watcher's connections from the window's opening (or the host's previous
    /// certificate event) until this event.
    pub before: Tally,
    /// The watcher's connections from this event until the window's end (or the host's
    /// next certificate event).
    pub after: Tally,
    /// Frames missing from the streams of the host's clients in the window (sequence
    /// gaps): 0 when every established stream went on.
    pub frames_lost: u64,
    /// Connections of the host's clients that broke (`io`, `closed_by_server`).
    pub connections_broken: u64,
}

/// A client that cannot work with the server it is pointed at.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Incompatibility {
    /// Link id.
    pub link: String,
    /// The client group.
    pub client: String,
    /// The server's host name.
    pub server: String,
    /// Why.
    pub reason: String,
}

/// Everything one phase (one mode, one repeat) measured.
#[derive(Debug)]
pub struct PhaseOutcome {
    /// Plaintext or TLS.
    pub mode: Mode,
    /// Per link.
    pub links: Vec<LinkOutcome>,
    /// Per role.
    pub roles: Vec<RoleCpu>,
    /// Failovers that happened.
    pub failovers: Vec<FailoverOutcome>,
    /// Clients that could not work with their server.
    pub incompatibilities: Vec<Incompatibility>,
    /// Per server host: its clients' and its own counts.
    pub hosts: Vec<HostOutcome>,
    /// Certificates that expired or were renewed.
    pub certificate_events: Vec<CertificateEventOutcome>,
    /// Length of the window actually measured, seconds.
    pub window_s: f64,
    /// CPU seconds of the whole process in the window (user, sys).
    pub process_cpu: process::Usage,
    /// Peak RSS of the process during the phase, bytes.
    pub peak_rss_bytes: u64,
    /// For a phase spread over processes: each role (runtime) and the peak resident memory
    /// of the process it ran in (empty when everything ran in one process).
    pub role_peak_rss: BTreeMap<String, u64>,
    /// RSS before the phase's roles started, bytes.
    pub baseline_rss_bytes: u64,
    /// Whether the window was cut short by an interruption.
    pub partial: bool,
    /// How the clients started, before the window.
    pub ramp: RampOutcome,
    /// The process at the end of the window.
    pub steady: Steady,
    /// Per second of the window and per link: what was delivered (see [`crate::engine::sampler`]).
    pub intervals: Vec<IntervalSample>,
    /// What this machine's CPUs did in the window: steal and frequency.
    pub machine: CpuWindow,
    /// For a soak, this process in each interval of the window (empty otherwise).
    pub process: Vec<ProcessSample>,
}

/// How a phase's clients started (the ramp, with its handshake storm), before the window.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct RampOutcome {
    /// Clients of the phase (video and management clients).
    pub clients: u64,
    /// Those that had settled (streaming, logged in, or given up) when the window opened.
    pub settled: u64,
    /// Connections set up by then.
    pub connections: u64,
    /// From the start of the phase until every client had settled (or the wait gave up), s.
    pub seconds: f64,
    /// How long the ramp was planned to take (the last client's start), s.
    pub planned_s: f64,
    /// CPU seconds of each role during the ramp.
    pub cpu: BTreeMap<String, f64>,
    /// From the start of the phase until the window opened, s: the ramp, then the time
    /// the servers took to catch up with their schedule.
    #[serde(default)]
    pub window_opened_s: f64,
    /// How far behind schedule the recording servers' frames left just before the window
    /// opened, ms: well under a millisecond when they had caught up.
    #[serde(default)]
    pub server_lag_ms: f64,
}

/// The process at the end of a window: what its connections cost in steady state.
#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize)]
pub struct Steady {
    /// Resident memory, bytes.
    pub rss_bytes: u64,
    /// Connections open (both ends in this process count as one): half the descriptors
    /// opened since the phase began.
    pub connections: u64,
}
