//! A scenario brought to life for one phase: every role started on its own runtime, a
//! warm-up, a measured window (with its scheduled events), a drain, and everything each
//! side counted, per link.
//!
//! In the plaintext phase nothing is encrypted; in the TLS phase each link is encrypted
//! when its encryption group is on in the scenario.

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};
use simulators::clock::RunClock;
use simulators::metrics::{latency_histogram, LinkMetrics, SenderSnapshot, Window};
use simulators::pki::{HostIdentity, ReloadableIdentity};
use simulators::role::bulk::BulkSender;
use simulators::role::management::{ManagementConfig, ManagementServer};
use simulators::role::recorder::{Recorder, RecorderConfig, RecorderStats, Source};
use simulators::role::rpc::{Call, RpcClient, RpcConfig};
use simulators::role::viewer::{Endpoint, FrameHook, StreamRequest, Viewer, ViewerConfig};
use simulators::role::wan::WanLink;
use simulators::role::RoleRuntime;
use simulators::transport::{Connector, Listener, Mode};
use simulators::video::{Camera, PayloadPool, Playback, Profile};
use tokio_util::sync::CancellationToken;

use crate::engine::credentials::Credentials;
use crate::engine::sampler::{IntervalHook, IntervalSample, Sampler};
use crate::engine::scenario::{EventAction, LinkId, MobileMode, Pinning, Scenario, ViewMode};
use crate::engine::watcher::{Attempt, Tally, Watcher};
use crate::sys::process;

/// How long a phase warms up and measures.
#[derive(Clone, Copy, Debug)]
pub struct Timing {
    /// Time between starting the roles and opening the window.
    pub warmup: Duration,
    /// Length of the measured window.
    pub duration: Duration,
}

/// Longest wait, after the window closes, for frames scheduled inside it to arrive.
pub const MAX_DRAIN: Duration = Duration::from_secs(2);
/// How long a bulk phase waits after its window for frames still in socket buffers.
pub const BULK_DRAIN: Duration = Duration::from_millis(250);

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
    /// RSS before the phase's roles started, bytes.
    pub baseline_rss_bytes: u64,
    /// Whether the window was cut short by an interruption.
    pub partial: bool,
    /// Per second of the window and per link: what was delivered (see [`crate::engine::sampler`]).
    pub intervals: Vec<IntervalSample>,
}

/// What a phase does besides measuring.
#[derive(Clone, Default)]
pub struct PhaseOptions {
    /// Called with each second's interval samples while the window is open (live progress).
    pub on_interval: Option<IntervalHook>,
    /// Take no interval samples (`PhaseOutcome::intervals` stays empty). Sampling copies
    /// every client's latency histogram once a second; with thousands of clients that
    /// burst delays the clients sharing its CPU by tens of milliseconds, which a capacity
    /// search would read as late frames.
    pub no_intervals: bool,
}

impl std::fmt::Debug for PhaseOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PhaseOptions")
            .field("on_interval", &self.on_interval.is_some())
            .field("no_intervals", &self.no_intervals)
            .finish()
    }
}

/// Binds 127.0.0.1 on a port the system chooses, registered with the role's own runtime
/// so that its sockets are driven by the role's threads.
async fn bind(
    role: &RoleRuntime,
    tls: Option<Arc<rustls::ServerConfig>>,
) -> anyhow::Result<Listener> {
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, 0));
    Ok(role.spawn(Listener::bind(addr, tls)).await??)
}

/// A deterministic offset in `[0, modulo)` for `key`, so that clients' schedules spread out
/// the same way in every phase.
fn spread(seed: u64, key: &str, modulo: u64) -> u64 {
    let mut h: u64 = seed ^ 0x9e37_79b9_7f4a_7c15;
    for b in key.bytes() {
        h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
    }
    h % modulo.max(1)
}

/// The roles' runtimes, created on first use.
struct Roles {
    server_threads: usize,
    client_threads: usize,
    pinning: Option<Pinning>,
    runtimes: BTreeMap<String, RoleRuntime>,
}

/// The role (runtime, and CPU account) of the streaming server on `host`: its first label.
pub fn role_of_host(host: &str) -> &str {
    host.split('.').next().unwrap_or(host)
}

impl Roles {
    fn get(&mut self, name: &str, server: bool) -> anyhow::Result<&RoleRuntime> {
        if !self.runtimes.contains_key(name) {
            let threads = if server {
                self.server_threads
            } else {
                self.client_threads
            };
            let rt = match &self.pinning {
                Some(p) => RoleRuntime::with_affinity(name, threads, p.cpus_of(name)),
                None => RoleRuntime::new(name, threads),
            }
            .with_context(|| format!("starting the {name} role's runtime"))?;
            self.runtimes.insert(name.to_owned(), rt);
        }
        self.runtimes
            .get(name)
            .with_context(|| format!("role {name} vanished"))
    }

    fn cpu(&self) -> BTreeMap<String, f64> {
        self.runtimes
            .iter()
            .map(|(k, v)| (k.clone(), v.cpu_seconds()))
            .collect()
    }
}

/// A client of some link, with what the harness needs to count its due frames.
enum Client {
    Video {
        viewer: Viewer,
        /// What its streams should carry, bit/s.
        offered_bps: f64,
        /// Live streams: (camera, schedule start); playback streams are counted by the
        /// server's offers instead.
        live: Vec<Camera>,
        /// The recording server it started on (for failover reports).
        recorder: Option<String>,
        /// The server host it dialled first.
        host: String,
    },
    Rpc {
        client: RpcClient,
        config: RpcConfig,
    },
}

/// A client that retrieves video: which streams, from which server, on which role.
struct VideoClient {
    role: &'static str,
    link: LinkId,
    server: Endpoint,
    failover: Option<Endpoint>,
    cameras: Vec<Camera>,
    playback: Playback,
    connector: Connector,
    on_frame: Option<FrameHook>,
    /// The recording server it starts on (for failover reports).
    recorder: Option<String>,
}

/// The camera ids client `i` of a group watches on `recorder` (whose cameras are numbered
/// from its entry in `bases`): `per` consecutive ones from `i × per`, wrapping round. None
/// for a recording server the scenario does not have.
fn watched_ids(
    scenario: &Scenario,
    bases: &BTreeMap<String, u32>,
    recorder: &str,
    i: u32,
    per: u32,
) -> Vec<u32> {
    let (Some(rec), Some(base)) = (scenario.recorder(recorder), bases.get(recorder)) else {
        return Vec::new();
    };
    let n = rec.camera_count().max(1);
    (0..per.min(n)).map(|k| base + (i * per + k) % n).collect()
}

/// The cameras of `ids`, from every camera of the deployment by id.
fn pick(all: &BTreeMap<u32, Camera>, ids: &[u32]) -> Vec<Camera> {
    ids.iter().filter_map(|id| all.get(id).cloned()).collect()
}

/// Time between a stream's frames, its lateness threshold: a frame interval live, shorter
/// in playback, a GOP per I-frame at 4× and faster.
fn frame_interval_ns(c: &Camera, playback: Playback) -> u64 {
    match playback {
        Playback::Live => c.profile.frame_interval_ns(),
        Playback::Speed(s) if playback.iframes_only() => {
            c.profile.frame_interval_ns() * u64::from(c.profile.gop) / u64::from(s)
        }
        Playback::Speed(s) => c.profile.frame_interval_ns() / u64::from(s),
    }
}

/// Where each link's participants run, for CPU attribution: (role, is_server).
type Participation = BTreeMap<String, Vec<(LinkId, bool)>>;

struct Running {
    roles: Roles,
    mgmt: Option<ManagementServer>,
    /// Streaming servers by host: recorders, failovers, the event and mobile servers.
    servers: BTreeMap<String, (Recorder, Vec<LinkId>)>,
    clients: Vec<(LinkId, Client)>,
    wan: Vec<WanLink>,
    participation: Participation,
    incompatibilities: Vec<Incompatibility>,
    /// The replaceable identities of hosts whose certificate changes during the run.
    reloadable: BTreeMap<String, Arc<ReloadableIdentity>>,
    start_ns: u64,
}

/// The hosts whose certificate expires or is renewed during the run.
fn certificate_event_hosts(scenario: &Scenario) -> Vec<String> {
    let mut hosts: Vec<String> = scenario
        .events
        .iter()
        .filter_map(|e| match &e.action {
            EventAction::ExpireCertificate { host } | EventAction::RenewCertificate { host } => {
                Some(host.clone())
            }
            _ => None,
        })
        .collect();
    hosts.sort();
    hosts.dedup();
    hosts
}

fn participate(p: &mut Participation, role: &str, link: LinkId, server: bool) {
    let entry = p.entry(role.to_owned()).or_default();
    if !entry.contains(&(link, server)) {
        entry.push((link, server));
    }
}

/// Camera ids are unique across the deployment: recording server `k`'s cameras follow the
/// cameras of the servers before it.
fn camera_bases(scenario: &Scenario) -> BTreeMap<String, u32> {
    let mut next = 0;
    scenario
        .recorders
        .iter()
        .map(|r| {
            let base = next;
            next += r.camera_count();
            (r.host.clone(), base)
        })
        .collect()
}

fn build_cameras(
    scenario: &Scenario,
    bases: &BTreeMap<String, u32>,
    pool: &PayloadPool,
) -> BTreeMap<String, Vec<Camera>> {
    let mut profiles: BTreeMap<String, Arc<Profile>> = BTreeMap::new();
    scenario
        .recorders
        .iter()
        .map(|r| {
            let base = bases.get(&r.host).copied().unwrap_or(0);
            let cams = (0..r.camera_count())
                .filter_map(|i| {
                    let p = r.profile_of(i)?;
                    let arc = profiles
                        .entry(p.name.clone())
                        .or_insert_with(|| Arc::new(p.clone()));
                    Some(Camera::new(
                        base + i,
                        arc.clone(),
                        scenario.seed,
                        pool.clone(),
                    ))
                })
                .collect();
            (r.host.clone(), cams)
        })
        .collect()
}

fn largest_frame(scenario: &Scenario) -> u64 {
    let mut max = 0;
    for r in &scenario.recorders {
        for g in &r.cameras {
            max = max.max(g.profile.max_frame_bytes());
        }
    }
    if let Some(m) = &scenario.mobile_server {
        max = max.max(m.transcode_profile.max_frame_bytes());
    }
    max.max(64 * 1024)
}

/// The profile of the event server's notification stream.
fn event_profile(events_per_s: u32, event_bytes: u32) -> Profile {
    Profile {
        name: "events".into(),
        resolution: "-".into(),
        fps: events_per_s.max(1),
        bitrate_bps: (u64::from(event_bytes) * 8 * u64::from(events_per_s.max(1))).max(1000),
        gop: 1,
        ip_ratio: 1.0,
        vbr: 0.0,
    }
}

/// Offered bit rate of a stream of `profile` in `mode`.
fn stream_bps(profile: &Profile, mode: Playback) -> f64 {
    match mode {
        Playback::Live => profile.bitrate_bps as f64,
        Playback::Speed(s) if mode.iframes_only() => {
            profile.i_frame_bytes() * 8.0 * f64::from(profile.fps) / f64::from(profile.gop)
                * f64::from(s)
        }
        Playback::Speed(s) => profile.bitrate_bps as f64 * f64::from(s),
    }
}

impl Running {
    async fn start(
        scenario: &Scenario,
        creds: &Credentials,
        mode: Mode,
        clock: RunClock,
        window: &Arc<Window>,
    ) -> anyhow::Result<Running> {
        let encrypted = |link: LinkId| mode == Mode::Tls && scenario.encrypted(link);
        // Every server host's TLS configuration; hosts whose certificate expires or is
        // renewed during the run present it through a replaceable identity.
        let mut server_configs = BTreeMap::new();
        let mut reloadable = BTreeMap::new();
        if mode == Mode::Tls {
            let changing = certificate_event_hosts(scenario);
            for host in scenario.server_hosts() {
                let config = if changing.contains(&host) {
                    let (config, identity) =
                        creds.server_config_reloadable(&host, &scenario.tls)?;
                    reloadable.insert(host.clone(), identity);
                    config
                } else {
                    creds.server_config(&host, &scenario.tls)?
                };
                server_configs.insert(host, config);
            }
        }
        let server_tls = |host: &str, link: LinkId| -> anyhow::Result<_> {
            Ok(if encrypted(link) {
                Some(
                    server_configs
                        .get(host)
                        .cloned()
                        .with_context(|| format!("no TLS configuration for {host}"))?,
                )
            } else {
                None
            })
        };
        let tls_connector = Connector::tls(creds.client_config(&scenario.tls)?);
        let connector = |link: LinkId| {
            if encrypted(link) {
                tls_connector.clone()
            } else {
                Connector::plain()
            }
        };
        let mut r = Running {
            roles: Roles {
                server_threads: scenario.server_threads,
                client_threads: scenario.client_threads,
                pinning: scenario.pinning.clone(),
                runtimes: BTreeMap::new(),
            },
            mgmt: None,
            servers: BTreeMap::new(),
            clients: Vec::new(),
            wan: Vec::new(),
            participation: BTreeMap::new(),
            incompatibilities: Vec::new(),
            reloadable,
            start_ns: clock.now_ns(),
        };
        let links = scenario.links();
        let uses = |l: LinkId| links.contains(&l);
        let start_ns = r.start_ns;
        let m = &scenario.management;

        // Management server: registrations, client logins, collectors.
        let mgmt_config = ManagementConfig {
            config_bytes: m.config_bytes,
            status_reply_bytes: m.status_reply_bytes,
            seed: scenario.seed,
        };
        let rt = r.roles.get("mgmt", true)?;
        let mut listeners = Vec::new();
        for link in [
            LinkId::RecorderMgmt,
            LinkId::ClientMgmt,
            LinkId::CollectorMgmt,
        ] {
            listeners.push(bind(rt, server_tls(&m.host, link)?).await?);
        }
        let mgmt = ManagementServer::start(rt, listeners, &mgmt_config)?;
        let mgmt_addrs = mgmt.addrs().to_vec();
        let mgmt_endpoint = |i: usize| Endpoint {
            addr: mgmt_addrs[i],
            host: m.host.clone(),
        };
        let digest = mgmt.config_digest();
        r.mgmt = Some(mgmt);
        for link in [
            LinkId::RecorderMgmt,
            LinkId::ClientMgmt,
            LinkId::CollectorMgmt,
            LinkId::EventMgmt,
            LinkId::MobileMgmt,
        ] {
            if uses(link) {
                participate(&mut r.participation, "mgmt", link, true);
            }
        }
        let status = |link: LinkId, who: &str| RpcConfig {
            server: mgmt_endpoint(0),
            connector: connector(link),
            call: Call::Status {
                request_bytes: m.status_request_bytes,
            },
            interval: m.status_interval,
            start_ns,
            phase_ns: spread(scenario.seed, who, m.status_interval.as_nanos() as u64),
            config_digest: None,
        };

        // Recording servers (and failovers), all cameras on one schedule.
        let pool = PayloadPool::new(largest_frame(scenario), scenario.seed);
        let bases = camera_bases(scenario);
        let cameras = build_cameras(scenario, &bases, &pool);
        let mut all_cameras: BTreeMap<u32, Camera> = BTreeMap::new();
        for c in cameras.values().flatten() {
            all_cameras.insert(c.id, c.clone());
        }
        let recorder_links = [
            LinkId::ViewerRecorder,
            LinkId::SdkRecorder,
            LinkId::MobileRecorder,
        ];
        let mut streaming_hosts: Vec<(String, Vec<Camera>)> = scenario
            .recorders
            .iter()
            .map(|rec| {
                (
                    rec.host.clone(),
                    cameras.get(&rec.host).cloned().unwrap_or_default(),
                )
            })
            .collect();
        for f in &scenario.failovers {
            let backed: Vec<Camera> = scenario
                .recorders
                .iter()
                .filter(|rec| rec.failover.as_deref() == Some(f.as_str()))
                .flat_map(|rec| cameras.get(&rec.host).cloned().unwrap_or_default())
                .collect();
            streaming_hosts.push((f.clone(), backed));
        }
        for (host, cams) in streaming_hosts {
            let role = role_of_host(&host).to_owned();
            let rt = r.roles.get(&role, true)?;
            let listener = bind(rt, server_tls(&host, LinkId::ViewerRecorder)?).await?;
            let config = RecorderConfig {
                host: host.clone(),
                cameras: cams,
                queue_frames: scenario.queue_frames,
                start_ns,
                source: Source::Pacer,
            };
            let rec = Recorder::start(rt, listener, config, clock, window.clone())?;
            rec.set_cpu_per_frame(scenario.recorder_cpu_per_frame);
            let rpc = RpcClient::start(
                rt,
                status(LinkId::RecorderMgmt, &host),
                clock,
                window.clone(),
            );
            r.clients.push((
                LinkId::RecorderMgmt,
                Client::Rpc {
                    client: rpc,
                    config: status(LinkId::RecorderMgmt, &host),
                },
            ));
            for link in recorder_links {
                if uses(link) {
                    participate(&mut r.participation, &role, link, true);
                }
            }
            participate(&mut r.participation, &role, LinkId::RecorderMgmt, false);
            r.servers.insert(host, (rec, recorder_links.to_vec()));
        }

        // Event server: a stream of notifications to every connected viewer.
        let mut event_channel: Option<Camera> = None;
        if let Some(ev) = &scenario.event_server {
            let rt = r.roles.get("event", true)?;
            let profile = Arc::new(event_profile(ev.events_per_s, ev.event_bytes));
            let channel = Camera::new(0, profile, scenario.seed, pool.clone());
            let listener = bind(rt, server_tls(&ev.host, LinkId::ClientEvent)?).await?;
            let config = RecorderConfig {
                host: ev.host.clone(),
                cameras: vec![channel.clone()],
                queue_frames: scenario.queue_frames,
                start_ns,
                source: Source::Pacer,
            };
            let server = Recorder::start(rt, listener, config, clock, window.clone())?;
            let cfg = status(LinkId::EventMgmt, &ev.host);
            let rpc = RpcClient::start(rt, cfg.clone(), clock, window.clone());
            r.clients.push((
                LinkId::EventMgmt,
                Client::Rpc {
                    client: rpc,
                    config: cfg,
                },
            ));
            participate(&mut r.participation, "event", LinkId::ClientEvent, true);
            participate(&mut r.participation, "event", LinkId::EventMgmt, false);
            r.servers
                .insert(ev.host.clone(), (server, vec![LinkId::ClientEvent]));
            event_channel = Some(channel);
        }

        // Mobile server: pulls the cameras phones watch, serves the phones.
        let mut phone_cameras: Vec<Camera> = Vec::new();
        if let (Some(ms), true) = (&scenario.mobile_server, uses(LinkId::PhoneMobile)) {
            let rt = r.roles.get("mobile", true)?;
            // Which cameras, per recording server, the phones watch.
            let mut wanted: BTreeMap<String, Vec<u32>> = BTreeMap::new();
            for g in scenario
                .phones
                .iter()
                .filter(|g| scenario.recorder(&g.recorder).is_some())
            {
                let w = wanted.entry(g.recorder.clone()).or_default();
                for i in 0..g.count {
                    for id in watched_ids(scenario, &bases, &g.recorder, i, g.cameras_each) {
                        if !w.contains(&id) {
                            w.push(id);
                        }
                    }
                }
            }
            let sources: Vec<Camera> = wanted
                .values()
                .flat_map(|ids| pick(&all_cameras, ids))
                .collect();
            let (serving, source) = match ms.mode {
                MobileMode::Direct => (sources.clone(), Source::Relay),
                MobileMode::Transcoded => {
                    let p = Arc::new(ms.transcode_profile.clone());
                    let transcoded = sources
                        .iter()
                        .map(|c| Camera::new(c.id, p.clone(), scenario.seed, pool.clone()))
                        .collect();
                    (transcoded, Source::Pacer)
                }
            };
            phone_cameras = serving.clone();
            let listener = bind(rt, server_tls(&ms.host, LinkId::PhoneMobile)?).await?;
            let config = RecorderConfig {
                host: ms.host.clone(),
                cameras: serving,
                queue_frames: scenario.queue_frames,
                start_ns,
                source,
            };
            let server = Recorder::start(rt, listener, config, clock, window.clone())?;
            let hook: Option<FrameHook> = match ms.mode {
                MobileMode::Direct => {
                    let relay = server.relay();
                    Some(Arc::new(move |h, p| relay.forward(h, p)))
                }
                MobileMode::Transcoded => None,
            };
            for (host, ids) in &wanted {
                let Some((endpoint, failover)) = r.endpoints(scenario, host) else {
                    continue;
                };
                let cameras = pick(&all_cameras, ids);
                let client = VideoClient {
                    role: "mobile",
                    link: LinkId::MobileRecorder,
                    server: endpoint,
                    failover,
                    cameras,
                    playback: Playback::Live,
                    connector: connector(LinkId::MobileRecorder),
                    on_frame: hook.clone(),
                    recorder: Some(host.clone()),
                };
                r.start_video(client, clock, window)?;
            }
            let rt = r.roles.get("mobile", true)?;
            let cfg = status(LinkId::MobileMgmt, &ms.host);
            let rpc = RpcClient::start(rt, cfg.clone(), clock, window.clone());
            r.clients.push((
                LinkId::MobileMgmt,
                Client::Rpc {
                    client: rpc,
                    config: cfg,
                },
            ));
            participate(
                &mut r.participation,
                "mobile",
                LinkId::MobileRecorder,
                false,
            );
            participate(&mut r.participation, "mobile", LinkId::PhoneMobile, true);
            participate(&mut r.participation, "mobile", LinkId::MobileMgmt, false);
            r.servers
                .insert(ms.host.clone(), (server, vec![LinkId::PhoneMobile]));
        }

        // Viewers: video from a recording server, events, and logins.
        let login = |who: &str| RpcConfig {
            server: mgmt_endpoint(1),
            connector: connector(LinkId::ClientMgmt),
            call: Call::Login,
            interval: m.config_refresh,
            start_ns,
            phase_ns: spread(scenario.seed, who, m.config_refresh.as_nanos() as u64),
            config_digest: Some(digest),
        };
        for g in &scenario.viewers {
            if scenario.recorder(&g.recorder).is_none() {
                continue;
            }
            for i in 0..g.count {
                let ids = watched_ids(scenario, &bases, &g.recorder, i, g.view);
                let playback = match g.mode {
                    ViewMode::Live => Playback::Live,
                    ViewMode::Playback(s) => Playback::Speed(s),
                };
                let cameras = pick(&all_cameras, &ids);
                let Some((endpoint, failover)) = r.endpoints(scenario, &g.recorder) else {
                    continue;
                };
                let client = VideoClient {
                    role: "viewers",
                    link: LinkId::ViewerRecorder,
                    server: endpoint,
                    failover,
                    cameras,
                    playback,
                    connector: connector(LinkId::ViewerRecorder),
                    on_frame: None,
                    recorder: Some(g.recorder.clone()),
                };
                r.start_video(client, clock, window)?;
                let who = format!("{}-{i}", g.name);
                if let (Some(ev), Some(channel)) = (&scenario.event_server, &event_channel) {
                    let endpoint = r.endpoint(&ev.host);
                    if let Some(server) = endpoint {
                        let client = VideoClient {
                            role: "event-clients",
                            link: LinkId::ClientEvent,
                            server,
                            failover: None,
                            cameras: vec![channel.clone()],
                            playback: Playback::Live,
                            connector: connector(LinkId::ClientEvent),
                            on_frame: None,
                            recorder: None,
                        };
                        r.start_video(client, clock, window)?;
                    }
                }
                let rt = r.roles.get("login-clients", false)?;
                let cfg = login(&who);
                let client = RpcClient::start(rt, cfg.clone(), clock, window.clone());
                r.clients.push((
                    LinkId::ClientMgmt,
                    Client::Rpc {
                        client,
                        config: cfg,
                    },
                ));
            }
        }
        if uses(LinkId::ViewerRecorder) {
            participate(
                &mut r.participation,
                "viewers",
                LinkId::ViewerRecorder,
                false,
            );
        }
        if uses(LinkId::ClientEvent) {
            participate(
                &mut r.participation,
                "event-clients",
                LinkId::ClientEvent,
                false,
            );
        }

        // SDK integrations: bulk retrieval, some unable to speak TLS.
        for g in &scenario.integrations {
            if scenario.recorder(&g.recorder).is_none() {
                continue;
            }
            let tls_required = encrypted(LinkId::SdkRecorder);
            if !g.tls_capable && tls_required {
                r.incompatibilities.push(Incompatibility {
                    link: LinkId::SdkRecorder.as_str().into(),
                    client: g.name.clone(),
                    server: g.recorder.clone(),
                    reason: format!(
                        "integration {:?} cannot speak TLS, and {} requires it (encryption \
                         group streaming_media is on): its {} connection(s) will fail",
                        g.name, g.recorder, g.count
                    ),
                });
            }
            for i in 0..g.count {
                let ids = watched_ids(scenario, &bases, &g.recorder, i, g.streams);
                let cameras = pick(&all_cameras, &ids);
                let Some((endpoint, failover)) = r.endpoints(scenario, &g.recorder) else {
                    continue;
                };
                let client = VideoClient {
                    role: "integrations",
                    link: LinkId::SdkRecorder,
                    server: endpoint,
                    failover,
                    cameras,
                    playback: Playback::Live,
                    connector: if g.tls_capable {
                        connector(LinkId::SdkRecorder)
                    } else {
                        Connector::plain()
                    },
                    on_frame: None,
                    recorder: Some(g.recorder.clone()),
                };
                r.start_video(client, clock, window)?;
                let rt = r.roles.get("login-clients", false)?;
                let cfg = login(&format!("{}-{i}", g.name));
                let client = RpcClient::start(rt, cfg.clone(), clock, window.clone());
                r.clients.push((
                    LinkId::ClientMgmt,
                    Client::Rpc {
                        client,
                        config: cfg,
                    },
                ));
            }
        }
        if uses(LinkId::SdkRecorder) {
            participate(
                &mut r.participation,
                "integrations",
                LinkId::SdkRecorder,
                false,
            );
        }
        if uses(LinkId::ClientMgmt) {
            participate(
                &mut r.participation,
                "login-clients",
                LinkId::ClientMgmt,
                false,
            );
        }

        // Phones, through the mobile server.
        if let Some(ms) = &scenario.mobile_server {
            let endpoint = r.endpoint(&ms.host);
            for g in scenario.phones.iter().filter(|_| endpoint.is_some()) {
                for i in 0..g.count {
                    let ids = watched_ids(scenario, &bases, &g.recorder, i, g.cameras_each);
                    let cams: Vec<Camera> = ids
                        .iter()
                        .filter_map(|id| phone_cameras.iter().find(|c| c.id == *id).cloned())
                        .collect();
                    let Some(server) = endpoint.clone() else {
                        continue;
                    };
                    let client = VideoClient {
                        role: "phones",
                        link: LinkId::PhoneMobile,
                        server,
                        failover: None,
                        cameras: cams,
                        playback: Playback::Live,
                        connector: connector(LinkId::PhoneMobile),
                        on_frame: None,
                        recorder: None,
                    };
                    r.start_video(client, clock, window)?;
                }
            }
            if uses(LinkId::PhoneMobile) {
                participate(&mut r.participation, "phones", LinkId::PhoneMobile, false);
            }
        }

        // Data collectors of remote sites, each behind its own WAN link.
        for g in &scenario.collectors {
            for i in 0..g.count {
                let wan_rt = r.roles.get("wan", false)?;
                let wan = WanLink::start(wan_rt, mgmt_addrs[2], g.wan_delay).await?;
                let who = format!("{}-{i}", g.name);
                let cfg = RpcConfig {
                    server: Endpoint {
                        addr: wan.addr(),
                        host: m.host.clone(),
                    },
                    connector: connector(LinkId::CollectorMgmt),
                    call: Call::Telemetry {
                        bytes: g.telemetry_bytes,
                    },
                    interval: g.interval,
                    start_ns,
                    phase_ns: spread(scenario.seed, &who, g.interval.as_nanos() as u64),
                    config_digest: None,
                };
                r.wan.push(wan);
                let rt = r.roles.get("collectors", false)?;
                let client = RpcClient::start(rt, cfg.clone(), clock, window.clone());
                r.clients.push((
                    LinkId::CollectorMgmt,
                    Client::Rpc {
                        client,
                        config: cfg,
                    },
                ));
            }
        }
        if uses(LinkId::CollectorMgmt) {
            participate(
                &mut r.participation,
                "collectors",
                LinkId::CollectorMgmt,
                false,
            );
        }

        // Clients offering only TLS 1.1 (`tls11_client` faults), one per such host, besides
        // its usual clients; on plaintext links they are ordinary plaintext clients.
        let legacy = |link: LinkId| {
            if encrypted(link) {
                Connector::tls11_only()
            } else {
                Connector::plain()
            }
        };
        for host in creds.tls11_hosts() {
            if host == m.host {
                let rt = r.roles.get("legacy-clients", false)?;
                let mut cfg = status(LinkId::RecorderMgmt, &format!("tls11-{host}"));
                cfg.connector = legacy(LinkId::RecorderMgmt);
                let client = RpcClient::start(rt, cfg.clone(), clock, window.clone());
                r.clients.push((
                    LinkId::RecorderMgmt,
                    Client::Rpc {
                        client,
                        config: cfg,
                    },
                ));
                continue;
            }
            let Some(server) = r.endpoint(&host) else {
                continue;
            };
            let recorded = scenario
                .recorders
                .iter()
                .find(|rec| rec.host == host || rec.failover.as_deref() == Some(host.as_str()))
                .and_then(|rec| cameras.get(&rec.host));
            let (link, stream) = if let Some(cams) = recorded {
                (LinkId::ViewerRecorder, cams.first().cloned())
            } else if scenario
                .event_server
                .as_ref()
                .is_some_and(|e| e.host == host)
            {
                (LinkId::ClientEvent, event_channel.clone())
            } else {
                (LinkId::PhoneMobile, phone_cameras.first().cloned())
            };
            if !uses(link) {
                continue;
            }
            let client = VideoClient {
                role: "legacy-clients",
                link,
                server,
                failover: None,
                cameras: stream.into_iter().collect(),
                playback: Playback::Live,
                connector: legacy(link),
                on_frame: None,
                recorder: None,
            };
            r.start_video(client, clock, window)?;
        }
        Ok(r)
    }

    /// Stalls every recording server (and failover server) of `scenario` for `duration`.
    fn stall_recorders(&self, scenario: &Scenario, duration: Duration) {
        let recording = |host: &str| {
            scenario.recorders.iter().any(|r| r.host == host)
                || scenario.failovers.iter().any(|f| f == host)
        };
        for (host, (server, _)) in &self.servers {
            if recording(host) {
                server.stall(duration);
            }
        }
    }

    /// Probes on every client's metrics, with their links, for interval samples.
    fn probes(&self) -> Vec<(String, simulators::metrics::MetricsProbe)> {
        self.clients
            .iter()
            .map(|(link, c)| {
                let probe = match c {
                    Client::Video { viewer, .. } => viewer.probe(),
                    Client::Rpc { client, .. } => client.probe(),
                };
                (link.as_str().to_owned(), probe)
            })
            .collect()
    }

    /// Where a running streaming server (recording, failover, event or mobile) listens.
    fn endpoint(&self, host: &str) -> Option<Endpoint> {
        self.servers.get(host).map(|(rec, _)| Endpoint {
            addr: rec.addr(),
            host: host.to_owned(),
        })
    }

    /// A recording server's endpoint and, if it has one, its failover's.
    fn endpoints(&self, scenario: &Scenario, host: &str) -> Option<(Endpoint, Option<Endpoint>)> {
        let failover = scenario
            .recorder(host)
            .and_then(|rec| rec.failover.as_deref())
            .and_then(|f| self.endpoint(f));
        Some((self.endpoint(host)?, failover))
    }

    /// Starts a client retrieving video on its role's runtime and keeps it with what the
    /// harness needs to count its frames.
    fn start_video(
        &mut self,
        c: VideoClient,
        clock: RunClock,
        window: &Arc<Window>,
    ) -> anyhow::Result<()> {
        let host = c.server.host.clone();
        let config = ViewerConfig {
            server: c.server,
            failover: c.failover,
            streams: c
                .cameras
                .iter()
                .map(|cam| StreamRequest {
                    camera: cam.id,
                    interval_ns: frame_interval_ns(cam, c.playback),
                })
                .collect(),
            playback: c.playback,
            connector: c.connector,
            label: c.link.as_str().into(),
            on_frame: c.on_frame,
        };
        // The mobile server is a server role that is also a client of the recorders.
        let rt = self.roles.get(c.role, c.role == "mobile")?;
        let viewer = Viewer::start(rt, config, clock, window.clone());
        let offered_bps = c
            .cameras
            .iter()
            .map(|cam| stream_bps(&cam.profile, c.playback))
            .sum();
        // Playback schedules start when the server receives the subscription; only the
        // server knows them, so playback streams are counted from its offers instead.
        let live = if c.playback == Playback::Live {
            c.cameras
        } else {
            Vec::new()
        };
        self.clients.push((
            c.link,
            Client::Video {
                viewer,
                offered_bps,
                live,
                recorder: c.recorder,
                host,
            },
        ));
        Ok(())
    }

    /// Where `host` accepts TLS connections (for a watcher), if its links are encrypted.
    fn tls_addr(&self, scenario: &Scenario, host: &str) -> Option<SocketAddr> {
        if host == scenario.management.host {
            let addr = self.mgmt.as_ref()?.addrs().first().copied();
            return addr.filter(|_| scenario.encrypted(LinkId::RecorderMgmt));
        }
        let (server, links) = self.servers.get(host)?;
        let link = links.first()?;
        scenario.encrypted(*link).then(|| server.addr())
    }

    /// Stops a streaming server (a scheduled failure).
    async fn stop_server(&mut self, host: &str) -> bool {
        match self.servers.remove(host) {
            Some((rec, _)) => {
                rec.stop().await;
                true
            }
            None => false,
        }
    }
}

/// What the servers of one link counted.
#[derive(Clone, Debug)]
struct ServerSide {
    sent: SenderSnapshot,
    /// Frames offered to playback subscriptions (whose schedules only the server knows).
    playback_offered: u64,
    failures: BTreeMap<String, u64>,
    handshake_us: Histogram<u64>,
}

impl Default for ServerSide {
    fn default() -> Self {
        ServerSide {
            sent: SenderSnapshot::default(),
            playback_offered: 0,
            failures: BTreeMap::new(),
            handshake_us: latency_histogram(),
        }
    }
}

/// Sums each link's server-side counters over the servers that serve it.
fn server_counts(stats: &[(RecorderStats, Vec<LinkId>)]) -> BTreeMap<LinkId, ServerSide> {
    let mut out: BTreeMap<LinkId, ServerSide> = BTreeMap::new();
    for (s, links) in stats {
        for link in links {
            let entry = out.entry(*link).or_default();
            for (label, snap) in &s.by_label {
                let (name, playback) = match label.split_once('/') {
                    Some((n, _)) => (n, true),
                    None => (label.as_str(), false),
                };
                if name != link.as_str() {
                    continue;
                }
                entry.sent += *snap;
                if playback {
                    entry.playback_offered += snap.frames_offered;
                }
                if let Some(h) = s.handshake_us_by_label.get(label) {
                    let _ = entry.handshake_us.add(h);
                }
            }
            // Failures cannot be told apart by link before a client says who it is; they
            // are reported on the server's first link.
            if Some(link) == links.first() {
                for (k, v) in &s.failures {
                    *entry.failures.entry(k.clone()).or_default() += v;
                }
            }
        }
    }
    out
}

/// Splits each role's CPU over the links it takes part in, in proportion to their bytes.
fn attribute_cpu(
    participation: &Participation,
    cpu: &BTreeMap<String, f64>,
    bytes: &BTreeMap<LinkId, u64>,
) -> (BTreeMap<LinkId, (f64, f64)>, BTreeMap<LinkId, bool>) {
    let mut shares: BTreeMap<LinkId, (f64, f64)> = BTreeMap::new();
    let mut shared: BTreeMap<LinkId, bool> = BTreeMap::new();
    for (role, parts) in participation {
        let Some(total) = cpu.get(role) else { continue };
        let sum: u64 = parts
            .iter()
            .map(|(l, _)| bytes.get(l).copied().unwrap_or(0))
            .sum();
        for (link, server) in parts {
            let weight = if sum == 0 {
                1.0 / parts.len() as f64
            } else {
                bytes.get(link).copied().unwrap_or(0) as f64 / sum as f64
            };
            let e = shares.entry(*link).or_default();
            if *server {
                e.0 += total * weight;
            } else {
                e.1 += total * weight;
            }
            if parts.len() > 1 {
                shared.insert(*link, true);
            }
        }
    }
    (shares, shared)
}

/// Runs one phase of `scenario` in `mode`. `Ok(None)`: interrupted before anything was
/// measured.
pub async fn run_phase(
    scenario: &Scenario,
    creds: &Credentials,
    mode: Mode,
    clock: RunClock,
    timing: Timing,
    interrupt: &CancellationToken,
) -> anyhow::Result<Option<PhaseOutcome>> {
    let options = PhaseOptions::default();
    run_phase_with(scenario, creds, mode, clock, timing, interrupt, &options).await
}

/// [`run_phase`] with [`PhaseOptions`].
pub async fn run_phase_with(
    scenario: &Scenario,
    creds: &Credentials,
    mode: Mode,
    clock: RunClock,
    timing: Timing,
    interrupt: &CancellationToken,
    options: &PhaseOptions,
) -> anyhow::Result<Option<PhaseOutcome>> {
    let baseline_rss_bytes = process::rss_bytes().unwrap_or(0);
    let _ = process::reset_peak_rss();
    let window = Arc::new(Window::default());
    let mut running = Running::start(scenario, creds, mode, clock, &window).await?;
    // The certificates that certificate events will present, issued now (key generation
    // takes a while), and a watcher on each host whose certificate changes.
    let mut staged: BTreeMap<usize, HostIdentity> = BTreeMap::new();
    let mut watchers: Vec<(String, Watcher)> = Vec::new();
    if mode == Mode::Tls {
        let mut events: Vec<_> = scenario.events.iter().collect();
        events.sort_by_key(|e| e.at);
        for (i, e) in events.iter().enumerate() {
            let next = match &e.action {
                EventAction::ExpireCertificate { host } => creds.expired(host)?,
                EventAction::RenewCertificate { host } => creds.renewal(host)?,
                _ => continue,
            };
            staged.insert(i, next);
        }
        let client = creds.client_config(&scenario.tls)?;
        let hosts: Vec<String> = running.reloadable.keys().cloned().collect();
        for host in hosts {
            if let Some(addr) = running.tls_addr(scenario, &host) {
                let rt = running.roles.get("watchers", false)?.handle();
                let w = Watcher::start(&rt, &client, addr, host.clone(), clock);
                watchers.push((host, w));
            }
        }
    }

    tokio::select! {
        _ = interrupt.cancelled() => {
            shutdown(running).await;
            return Ok(None);
        }
        _ = tokio::time::sleep(timing.warmup) => {}
    }
    let cpu0 = running.roles.cpu();
    let usage0 = process::usage().unwrap_or_default();
    let start_ns = clock.now_ns();
    window.open(start_ns);
    let probes = if options.no_intervals {
        Vec::new()
    } else {
        running.probes()
    };
    let sampler = Sampler::start(probes, clock, start_ns, options.on_interval.clone());
    let end_at = start_ns + timing.duration.as_nanos() as u64;
    let mut events = scenario.events.clone();
    events.sort_by_key(|e| e.at);
    let mut failovers = Vec::new();
    let mut replaced: Vec<Replaced> = Vec::new();
    let mut partial = false;
    for (i, event) in events
        .iter()
        .enumerate()
        .filter(|(_, e)| e.at < timing.duration)
    {
        let at = start_ns + event.at.as_nanos() as u64;
        tokio::select! {
            _ = interrupt.cancelled() => { partial = true; break; }
            _ = tokio::time::sleep_until(clock.instant_at(at).into()) => {}
        }
        match &event.action {
            EventAction::StopRecorder { host } => {
                if running.stop_server(host).await {
                    failovers.push((host.clone(), event.at));
                }
            }
            EventAction::StallRecorders { duration } => {
                running.stall_recorders(scenario, *duration);
            }
            EventAction::ExpireCertificate { host } | EventAction::RenewCertificate { host } => {
                let (Some(identity), Some(next)) =
                    (running.reloadable.get(host), staged.remove(&i))
                else {
                    continue;
                };
                let serial_before = identity.serial_hex();
                identity
                    .replace(&next)
                    .with_context(|| format!("replacing the certificate of {host}"))?;
                replaced.push(Replaced {
                    host: host.clone(),
                    action: match event.action {
                        EventAction::ExpireCertificate { .. } => "expire_certificate",
                        _ => "renew_certificate",
                    },
                    at: event.at,
                    done_ns: clock.now_ns(),
                    serial_before,
                    serial_after: next.serial_hex(),
                });
            }
        }
    }
    if !partial {
        tokio::select! {
            _ = interrupt.cancelled() => partial = true,
            _ = tokio::time::sleep_until(clock.instant_at(end_at).into()) => {}
        }
    }
    let end_ns = clock.now_ns();
    window.close(end_ns);
    let cpu1 = running.roles.cpu();
    let mut watched: BTreeMap<String, Vec<Attempt>> = BTreeMap::new();
    for (host, w) in watchers {
        watched.insert(host, w.stop().await);
    }
    let process_cpu = process::usage().unwrap_or_default() - usage0;
    let intervals = sampler.finish().await;
    let cpu: BTreeMap<String, f64> = cpu1
        .iter()
        .map(|(k, v)| (k.clone(), v - cpu0.get(k).copied().unwrap_or(0.0)))
        .collect();

    // Frames due in the window, per link, from the schedules the harness set up.
    let due_of = |client: &Client| -> u64 {
        match client {
            Client::Video { live, .. } => live
                .iter()
                .map(|c| c.frames_due(Playback::Live, running.start_ns, start_ns, end_ns))
                .sum(),
            Client::Rpc { config, .. } => config.calls_due(start_ns, end_ns),
        }
    };
    let mut due: BTreeMap<LinkId, u64> = BTreeMap::new();
    for (link, client) in &running.clients {
        *due.entry(*link).or_default() += due_of(client);
    }
    // Drain: wait until what was due has arrived (or was dropped), within limits. The
    // probes read each client's frame count without copying its histograms (with
    // thousands of clients, copying them every 20 ms took seconds).
    let drain_until = tokio::time::Instant::now() + MAX_DRAIN;
    let probes = running.probes();
    while !partial && tokio::time::Instant::now() < drain_until {
        let mut received: BTreeMap<&str, u64> = BTreeMap::new();
        for (link, probe) in &probes {
            *received.entry(link.as_str()).or_default() += probe.frames().unwrap_or(0);
        }
        let dropped: u64 = running
            .servers
            .values()
            .map(|(s, _)| s.stats().sent.dropped_frames)
            .sum();
        let missing: u64 = due
            .iter()
            .map(|(l, d)| d.saturating_sub(received.get(l.as_str()).copied().unwrap_or(0)))
            .sum();
        if missing <= dropped {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let server_stats: Vec<(RecorderStats, Vec<LinkId>)> = running
        .servers
        .values()
        .map(|(s, links)| (s.stats(), links.clone()))
        .collect();
    let mgmt_failures = running
        .mgmt
        .as_ref()
        .map(|m| m.stats().failures)
        .unwrap_or_default();
    let mut server_errors: BTreeMap<String, BTreeMap<String, u64>> = running
        .servers
        .iter()
        .map(|(host, (s, _))| (host.clone(), s.stats().failures))
        .collect();
    server_errors.insert(scenario.management.host.clone(), mgmt_failures.clone());
    let peak_rss_bytes = process::peak_rss_bytes().unwrap_or(0);
    let participation = running.participation.clone();
    let incompatibilities = running.incompatibilities.clone();
    let collected = shutdown(running).await;

    let servers = server_counts(&server_stats);
    let mut per_link: BTreeMap<LinkId, (LinkMetrics, Vec<String>, u64)> = BTreeMap::new();
    for c in &collected.clients {
        let e = per_link.entry(c.link).or_default();
        e.0.merge(&c.metrics);
        if let Some(err) = &c.error {
            if !e.1.contains(err) {
                e.1.push(err.clone());
            }
        }
        e.2 += c.streams;
    }
    let bytes: BTreeMap<LinkId, u64> = per_link
        .iter()
        .map(|(l, (m, _, _))| (*l, m.bytes))
        .collect();
    let (cpu_shares, shared) = attribute_cpu(&participation, &cpu, &bytes);
    let mut links = Vec::new();
    for link in scenario.links() {
        let (received, client_errors, streams) = per_link.remove(&link).unwrap_or_default();
        let ServerSide {
            sent,
            playback_offered: playback_due,
            failures: mut server_failures,
            handshake_us: server_handshake_us,
        } = servers.get(&link).cloned().unwrap_or_default();
        // The management server's failures cannot be told apart by link; they are
        // reported with the registrations.
        if link == LinkId::RecorderMgmt {
            for (k, v) in &mgmt_failures {
                *server_failures.entry(k.clone()).or_default() += v;
            }
        }
        let (cpu_server_s, cpu_client_s) = cpu_shares.get(&link).copied().unwrap_or_default();
        links.push(LinkOutcome {
            link: link.as_str().to_owned(),
            group: Some(link.group().as_str()),
            encrypted: mode == Mode::Tls && scenario.encrypted(link),
            received,
            sent,
            server_failures,
            server_handshake_us,
            frames_due: due.get(&link).copied().unwrap_or(0) + playback_due,
            offered_bps: collected.offered.get(&link).copied().unwrap_or(0.0),
            streams,
            cpu_server_s,
            cpu_client_s,
            cpu_attribution: if shared.get(&link).copied().unwrap_or(false) {
                "shared_by_bytes"
            } else {
                "exclusive"
            },
            client_errors,
        });
    }
    let failovers = failovers
        .into_iter()
        .map(|(host, at)| failover_outcome(scenario, &collected, &host, at))
        .collect();
    let hosts = host_outcomes(scenario, &collected, server_errors);
    let certificate_events =
        certificate_event_outcomes(&replaced, &watched, &hosts, start_ns, end_ns);
    Ok(Some(PhaseOutcome {
        mode,
        links,
        roles: cpu
            .into_iter()
            .map(|(role, cpu_s)| RoleCpu { role, cpu_s })
            .collect(),
        failovers,
        incompatibilities,
        hosts,
        certificate_events,
        window_s: (end_ns - start_ns) as f64 / 1e9,
        process_cpu,
        peak_rss_bytes,
        baseline_rss_bytes,
        partial,
        intervals,
    }))
}

fn failover_outcome(
    scenario: &Scenario,
    collected: &Collected,
    host: &str,
    at: Duration,
) -> FailoverOutcome {
    let affected: Vec<&Finished> = collected
        .clients
        .iter()
        .filter(|c| c.recorder.as_deref() == Some(host))
        .collect();
    let mut recovery = latency_histogram();
    let mut out = FailoverOutcome {
        host: host.to_owned(),
        failover: scenario.recorder(host).and_then(|r| r.failover.clone()),
        at_s: at.as_secs_f64(),
        clients: affected.len() as u64,
        reconnects: 0,
        streams_recovered: 0,
        streams: 0,
        recovery_p50_us: 0,
        recovery_all_us: 0,
        frames_lost: 0,
    };
    for c in affected {
        out.reconnects += c.metrics.reconnects;
        out.streams += c.streams;
        out.frames_lost += c.metrics.sequence_gaps;
        let _ = recovery.add(&c.metrics.recovery_us);
    }
    out.streams_recovered = recovery.len();
    if !recovery.is_empty() {
        out.recovery_p50_us = recovery.value_at_quantile(0.5);
        out.recovery_all_us = recovery.max();
    }
    out
}

/// Per server host: what its clients and the server counted.
fn host_outcomes(
    scenario: &Scenario,
    collected: &Collected,
    mut server_errors: BTreeMap<String, BTreeMap<String, u64>>,
) -> Vec<HostOutcome> {
    scenario
        .server_hosts()
        .into_iter()
        .map(|host| {
            let mut out = HostOutcome {
                fault: scenario.fault_on(&host).map(|k| k.as_str().to_owned()),
                server_errors: server_errors.remove(&host).unwrap_or_default(),
                ..HostOutcome::default()
            };
            for c in collected.clients.iter().filter(|c| c.host == host) {
                let link = c.link.as_str().to_owned();
                if !out.links.contains(&link) {
                    out.links.push(link);
                }
                out.connections += c.metrics.connections;
                out.frames += c.metrics.frames;
                out.frames_lost += c.metrics.sequence_gaps;
                for (k, v) in &c.metrics.errors {
                    *out.client_errors.entry(k.clone()).or_default() += v;
                }
            }
            out.host = host;
            out
        })
        .collect()
}

/// A certificate replaced by a scheduled event.
struct Replaced {
    host: String,
    action: &'static str,
    /// When it was due, from the window's opening.
    at: Duration,
    /// When the new certificate was in place (run clock): the boundary between the
    /// watcher's attempts before and after.
    done_ns: u64,
    serial_before: String,
    serial_after: String,
}

/// What each certificate event did, from the watcher's attempts around it.
fn certificate_event_outcomes(
    replaced: &[Replaced],
    watched: &BTreeMap<String, Vec<Attempt>>,
    hosts: &[HostOutcome],
    start_ns: u64,
    end_ns: u64,
) -> Vec<CertificateEventOutcome> {
    replaced
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let previous = replaced[..i]
                .iter()
                .rev()
                .find(|e| e.host == r.host)
                .map_or(start_ns, |e| e.done_ns);
            let next = replaced[i + 1..]
                .iter()
                .find(|e| e.host == r.host)
                .map_or(end_ns, |e| e.done_ns);
            let attempts = watched.get(&r.host).map(Vec::as_slice).unwrap_or_default();
            let counts = hosts.iter().find(|h| h.host == r.host);
            let broken = |c: &HostOutcome| {
                ["io", "closed_by_server"]
                    .iter()
                    .map(|k| c.client_errors.get(*k).copied().unwrap_or(0))
                    .sum()
            };
            CertificateEventOutcome {
                host: r.host.clone(),
                action: r.action.to_owned(),
                at_s: r.at.as_secs_f64(),
                serial_before: r.serial_before.clone(),
                serial_after: r.serial_after.clone(),
                before: Tally::between(attempts, previous, r.done_ns),
                after: Tally::between(attempts, r.done_ns, next),
                frames_lost: counts.map_or(0, |c| c.frames_lost),
                connections_broken: counts.map_or(0, broken),
            }
        })
        .collect()
}

/// One client's final figures.
struct Finished {
    link: LinkId,
    metrics: LinkMetrics,
    error: Option<String>,
    streams: u64,
    recorder: Option<String>,
    /// The server host it dialled first.
    host: String,
}

struct Collected {
    clients: Vec<Finished>,
    offered: BTreeMap<LinkId, f64>,
}

/// Stops clients first (so servers do not count their leaving as failures), then servers.
async fn shutdown(running: Running) -> Collected {
    let mut clients = Vec::new();
    let mut offered: BTreeMap<LinkId, f64> = BTreeMap::new();
    for (link, client) in running.clients {
        match client {
            Client::Video {
                viewer,
                offered_bps,
                live,
                recorder,
                host,
            } => {
                *offered.entry(link).or_default() += offered_bps;
                let (metrics, outcome) = viewer.stop().await;
                clients.push(Finished {
                    link,
                    streams: live.len() as u64,
                    metrics,
                    error: outcome.err().map(|e| e.to_string()),
                    recorder,
                    host,
                });
            }
            Client::Rpc { client, config } => {
                let metrics = client.stop().await;
                clients.push(Finished {
                    link,
                    metrics,
                    error: None,
                    streams: 1,
                    recorder: None,
                    host: config.server.host,
                });
            }
        }
    }
    for (_, (server, _)) in running.servers {
        server.stop().await;
    }
    if let Some(m) = running.mgmt {
        m.stop().await;
    }
    for w in running.wan {
        w.stop().await;
    }
    drop(running.roles);
    Collected { clients, offered }
}

/// What a bulk phase sends.
#[derive(Clone, Copy, Debug)]
pub struct BulkLoad {
    /// Parallel connections.
    pub connections: u32,
    /// Payload bytes per frame.
    pub frame_size: usize,
}

/// Runs one phase of the unpaced link-ceiling test in `mode`.
pub async fn run_bulk_phase(
    scenario: &Scenario,
    creds: &Credentials,
    mode: Mode,
    load: BulkLoad,
    clock: RunClock,
    timing: Timing,
    interrupt: &CancellationToken,
) -> anyhow::Result<Option<PhaseOutcome>> {
    let options = PhaseOptions::default();
    run_bulk_phase_with(
        scenario, creds, mode, load, clock, timing, interrupt, &options,
    )
    .await
}

/// [`run_bulk_phase`] with [`PhaseOptions`].
#[allow(clippy::too_many_arguments)]
pub async fn run_bulk_phase_with(
    scenario: &Scenario,
    creds: &Credentials,
    mode: Mode,
    load: BulkLoad,
    clock: RunClock,
    timing: Timing,
    interrupt: &CancellationToken,
    options: &PhaseOptions,
) -> anyhow::Result<Option<PhaseOutcome>> {
    let baseline_rss_bytes = process::rss_bytes().unwrap_or(0);
    let _ = process::reset_peak_rss();
    let host = scenario
        .recorders
        .first()
        .map_or("recorder-1.vms.test", |r| r.host.as_str())
        .to_owned();
    let (tls, connector) = match mode {
        Mode::Plain => (None, Connector::plain()),
        Mode::Tls => (
            Some(creds.server_config(&host, &scenario.tls)?),
            Connector::tls(creds.client_config(&scenario.tls)?),
        ),
    };
    let server = RoleRuntime::new("bulk-sender", scenario.server_threads)?;
    let client = RoleRuntime::new("bulk-receivers", scenario.client_threads)?;
    let window = Arc::new(Window::default());
    let listener = bind(&server, tls)
        .await
        .context("binding the bulk sender")?;
    let sender = BulkSender::start(&server, listener, load.frame_size, clock, window.clone())?;
    let receivers: Vec<Viewer> = (0..load.connections)
        .map(|_| {
            let config = ViewerConfig {
                server: Endpoint {
                    addr: sender.addr(),
                    host: host.clone(),
                },
                failover: None,
                streams: vec![StreamRequest {
                    camera: 0,
                    interval_ns: u64::MAX,
                }],
                playback: Playback::Live,
                connector: connector.clone(),
                label: "bulk".into(),
                on_frame: None,
            };
            Viewer::start(&client, config, clock, window.clone())
        })
        .collect();
    let measured = tokio::select! {
        _ = interrupt.cancelled() => None,
        _ = tokio::time::sleep(timing.warmup) => Some(()),
    };
    let mut window_bounds = None;
    let mut partial = false;
    let (mut cpu_server_s, mut cpu_client_s) = (0.0, 0.0);
    let mut process_cpu = process::Usage::default();
    let mut intervals = Vec::new();
    if measured.is_some() {
        let cpu0 = (server.cpu_seconds(), client.cpu_seconds());
        let usage0 = process::usage().unwrap_or_default();
        let start_ns = clock.now_ns();
        window.open(start_ns);
        let probes = receivers
            .iter()
            .map(|r| ("bulk".to_owned(), r.probe()))
            .collect();
        let sampler = Sampler::start(probes, clock, start_ns, options.on_interval.clone());
        tokio::select! {
            _ = interrupt.cancelled() => partial = true,
            _ = tokio::time::sleep(timing.duration) => {}
        }
        let end_ns = clock.now_ns();
        window.close(end_ns);
        cpu_server_s = server.cpu_seconds() - cpu0.0;
        cpu_client_s = client.cpu_seconds() - cpu0.1;
        process_cpu = process::usage().unwrap_or_default() - usage0;
        intervals = sampler.finish().await;
        window_bounds = Some((start_ns, end_ns));
        // Frames sent inside the window may still be in socket buffers.
        tokio::time::sleep(BULK_DRAIN).await;
    }
    let (sent, server_failures) = sender.stats();
    let peak_rss_bytes = process::peak_rss_bytes().unwrap_or(0);
    let mut received = LinkMetrics::default();
    let mut client_errors = Vec::new();
    for r in receivers {
        let (m, outcome) = r.stop().await;
        received.merge(&m);
        if let Err(e) = outcome {
            client_errors.push(e.to_string());
        }
    }
    sender.stop().await;
    let Some((start_ns, end_ns)) = window_bounds else {
        return Ok(None);
    };
    Ok(Some(PhaseOutcome {
        mode,
        links: vec![LinkOutcome {
            link: "bulk".to_owned(),
            group: None,
            encrypted: mode == Mode::Tls,
            received,
            sent,
            server_failures,
            server_handshake_us: latency_histogram(),
            frames_due: 0,
            offered_bps: 0.0,
            streams: u64::from(load.connections),
            cpu_server_s,
            cpu_client_s,
            cpu_attribution: "exclusive",
            client_errors,
        }],
        roles: vec![
            RoleCpu {
                role: "bulk-sender".into(),
                cpu_s: cpu_server_s,
            },
            RoleCpu {
                role: "bulk-receivers".into(),
                cpu_s: cpu_client_s,
            },
        ],
        failovers: Vec::new(),
        hosts: Vec::new(),
        certificate_events: Vec::new(),
        incompatibilities: Vec::new(),
        window_s: (end_ns - start_ns) as f64 / 1e9,
        process_cpu,
        peak_rss_bytes,
        baseline_rss_bytes,
        partial,
        intervals,
    }))
}
