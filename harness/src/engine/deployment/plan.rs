//! What a phase starts, decided before anything runs: every role of the deployment as a
//! description that names hosts, cameras and links — never addresses, runtimes or other
//! in-process things — so that the same plan could be started in this process or sent to
//! another one.
//!
//! [`Plan::new`] turns a scenario and a mode into the plan; the roles come in the order
//! they must start (servers before the clients that dial them, recording servers before
//! the mobile server that pulls from them).

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use std::sync::Arc;

use simulators::role::rpc::{calls_due, Call};
use simulators::role::wan::WanProfile;
use simulators::transport::{Mode, TlsSettings};
use simulators::video::{Camera, PayloadPool, Playback, Profile};

use super::outcome::Incompatibility;
use crate::engine::scenario::{
    EventAction, LinkId, Listen, MobileMode, MobileServerSpec, Pinning, Scenario, ViewMode,
};

/// Session connections (logins, change checks) counted as open at once: each lasts one
/// call, and the ramp spreads the logins out.
pub(crate) const SESSION_CONNECTIONS: u64 = 512;

/// The runtime (and CPU account) of the management server.
pub(crate) const MGMT_RUNTIME: &str = "mgmt";
/// The runtime of the clients that offer only TLS 1.1.
const PROBES_RUNTIME: &str = "legacy-clients";
/// The runtime of the certificate watchers.
const WATCHERS_RUNTIME: &str = "watchers";

/// Every role of one phase, in the order they start.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct Plan {
    /// Plaintext or TLS phase.
    pub mode: Mode,
    /// Seed of the video model (frame sizes, payload bytes).
    pub seed: u64,
    /// Run-clock instant every schedule of the phase counts from (the clock anchor).
    pub start_ns: u64,
    /// The camera profiles, by name; cameras refer to them.
    pub profiles: BTreeMap<String, Profile>,
    /// Size of the shared payload pool: the largest frame any profile makes.
    pub largest_frame: u64,
    /// The links the deployment uses, in report order.
    pub links: Vec<LinkId>,
    /// How the clients start: one after another at a rate.
    pub ramp: Ramp,
    /// The roles.
    pub roles: Vec<RoleSpec>,
    /// Clients that cannot work with the server they are pointed at.
    pub incompatibilities: Vec<Incompatibility>,
    /// How the process that starts the roles sets them up.
    pub site: SiteSettings,
}

/// What a process starting roles of the plan needs besides the plan's roles and the
/// deployment's certificates: the TLS settings and the runtimes' threads and CPUs.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct SiteSettings {
    /// What clients pin (servers accept these first, then what real clients offer).
    pub tls: TlsSettings,
    /// Threads of each server role's runtime.
    pub server_threads: usize,
    /// Threads of each client role's runtime.
    pub client_threads: usize,
    /// Which CPUs the runtimes run on, if pinned.
    pub pinning: Option<Pinning>,
    /// Where the servers listen.
    pub listen: Listen,
}

impl SiteSettings {
    /// What `scenario` says of how a process sets its roles up.
    fn of(scenario: &Scenario) -> SiteSettings {
        SiteSettings {
            tls: scenario.tls.clone(),
            server_threads: scenario.server_threads,
            client_threads: scenario.client_threads,
            pinning: scenario.pinning.clone(),
            listen: scenario.listen.clone(),
        }
    }
}

/// How a phase's clients start: viewers, integrations and phones one after another (each
/// logging in as it starts), spread over the first half of the warm-up, or at the
/// scenario's connect rate when that is slower.
#[derive(Clone, Copy, Debug, Serialize, Deserialize)]
pub(crate) struct Ramp {
    /// Clients that start in the ramp.
    pub clients: u64,
    /// Time between two clients' starts, ns.
    pub step_ns: u64,
}

impl Ramp {
    /// How long the ramp lasts, ns: from the first client's start to the last's.
    pub(crate) fn duration_ns(&self) -> u64 {
        self.clients.saturating_sub(1).saturating_mul(self.step_ns)
    }
}

/// One role: what it is, where it runs, what it serves or dials.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct RoleSpec {
    /// The runtime (threads and CPU account) it runs on: `mgmt`, `recorder-1`, `viewers`, …
    /// Roles of one runtime run together.
    pub runtime: String,
    /// Whether its runtime gets the server threads (or the client threads).
    pub server: bool,
    /// A probe of the deployment (a certificate watcher, a client offering only TLS 1.1)
    /// rather than part of its load: its CPU is not attributed to the links.
    pub probe: bool,
    /// What it does.
    pub kind: RoleKind,
}

/// The kinds of role.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum RoleKind {
    /// The management server.
    Management(ManagementRole),
    /// A server that streams: a recording or failover server, the event server, the mobile
    /// server (with the streams it pulls from recording servers).
    Streaming(StreamingRole),
    /// Clients that retrieve video (or events) from streaming servers.
    VideoClients(ClientGroup<VideoClientSpec>),
    /// Clients that call the management server.
    RpcClients(ClientGroup<RpcClientSpec>),
    /// A client that watches a host's certificate while it changes.
    Watcher(WatcherRole),
    /// The unpaced ceiling test's sender (`vmsbench bulk`).
    BulkSender(BulkSenderRole),
    /// The ceiling test's receivers.
    BulkReceivers(BulkReceiversRole),
}

/// The ceiling test's sender: frames as fast as its connections take them.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct BulkSenderRole {
    /// The host it stands for (its certificate's).
    pub host: String,
    /// Payload bytes per frame.
    pub frame_size: usize,
    /// Whether its connections are encrypted.
    pub tls: bool,
}

/// The ceiling test's receivers: one stream each, counted on one meter.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct BulkReceiversRole {
    /// The sender's host.
    pub host: String,
    /// Parallel connections.
    pub connections: u32,
    /// Payload bytes per frame (to check what arrives).
    pub frame_size: usize,
    /// Plaintext or TLS.
    pub security: Security,
}

/// The runtimes (and CPU accounts) of the ceiling test.
pub(crate) const BULK_SENDER: &str = "bulk-sender";
pub(crate) const BULK_RECEIVERS: &str = "bulk-receivers";

/// How a client speaks to its server.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Security {
    /// Plaintext.
    Plain,
    /// TLS with the pinned settings and the deployment's trust store.
    Tls,
    /// A client that offers only TLS 1.1 (a `tls11_client` fault).
    Tls11Only,
}

/// The management server.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct ManagementRole {
    /// Its host name.
    pub host: String,
    /// Whether its certificate changes during the run.
    pub reloadable: bool,
    /// Size of the configuration clients download, bytes.
    pub config_bytes: u64,
    /// Size of a status reply, bytes.
    pub status_reply_bytes: u32,
    /// Its listeners in order: the link each serves first, and whether it is encrypted.
    /// Links served by the same listener are listed in [`ManagementRole::also`].
    pub listeners: Vec<(LinkId, bool)>,
    /// Further links and the link whose listener serves them.
    pub also: Vec<(LinkId, LinkId)>,
    /// Every link it takes part in (for CPU attribution).
    pub links: Vec<LinkId>,
}

/// A camera of the deployment: its id and the name of its profile.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct CameraRef {
    /// Unique across the deployment.
    pub id: u32,
    /// A key of [`Plan::profiles`].
    pub profile: String,
}

/// Where a streaming server's frames come from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum FrameSource {
    /// Its own cameras, on schedule.
    Pacer,
    /// Frames its upstream clients receive, passed through (direct streaming).
    Relay,
}

/// A server that streams.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct StreamingRole {
    /// Its host name.
    pub host: String,
    /// The links its clients may use; the first decides whether it is encrypted, and
    /// collects the failures of connections that never said which link they are.
    pub links: Vec<LinkId>,
    /// Whether its connections are encrypted.
    pub tls: bool,
    /// Whether its certificate changes during the run (presented through a replaceable
    /// identity).
    pub reloadable: bool,
    /// A recording server (or failover): stalls apply to it.
    pub recording: bool,
    /// The cameras (or channels) it serves.
    pub cameras: Vec<CameraRef>,
    /// Where its frames come from.
    pub source: FrameSource,
    /// Frames each connection may queue before the server drops.
    pub queue_frames: usize,
    /// CPU burnt per frame sent, to fix its capacity (`capacity --throttle-us-per-frame`).
    pub cpu_per_frame: Option<Duration>,
    /// Streams it pulls itself (the mobile server from recording servers), on the link of
    /// [`StreamingRole::upstream_link`].
    pub upstream: Vec<VideoClientSpec>,
    /// The link of its upstream streams.
    pub upstream_link: Option<LinkId>,
    /// Its status poll to the management server, on this link.
    pub status: Option<(LinkId, RpcClientSpec)>,
}

/// Clients of one link, started together on one runtime.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct ClientGroup<C> {
    /// The link they use.
    pub link: LinkId,
    /// The clients.
    pub clients: Vec<C>,
}

/// A client that retrieves streams.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct VideoClientSpec {
    /// The server host it dials.
    pub server: String,
    /// The host it moves to when the server goes away.
    pub failover: Option<String>,
    /// The streams it subscribes to.
    pub cameras: Vec<CameraRef>,
    /// Live or playback.
    pub playback: Playback,
    /// Plaintext, TLS, or TLS 1.1 only.
    pub security: Security,
    /// The recording server it starts on (for failover reports).
    pub recorder: Option<String>,
    /// When it connects, after the phase starts (its place in the ramp), ns.
    #[serde(default)]
    pub start_offset_ns: u64,
    /// The WAN it dials through, if any (one relay per server and profile of the group).
    #[serde(default)]
    pub wan: Option<WanProfile>,
}

/// A client that calls the management server.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct RpcClientSpec {
    /// The management server's host.
    pub server: String,
    /// Plaintext, TLS, or TLS 1.1 only.
    pub security: Security,
    /// What it asks.
    pub call: Call,
    /// Time between calls.
    pub interval: Duration,
    /// Offset of its schedule within an interval, ns.
    pub phase_ns: u64,
    /// Whether it checks the configuration it downloads against the server's digest.
    pub checks_config: bool,
    /// The WAN link it calls through (remote-site collectors: a link of its own).
    pub wan: Option<WanProfile>,
}

/// A watcher on one host's certificate.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct WatcherRole {
    /// The host whose certificate changes.
    pub host: String,
    /// A link on which the host accepts TLS.
    pub link: LinkId,
}

impl RoleSpec {
    /// Each link this role takes part in, and whether as the server.
    pub(crate) fn participation(&self) -> Vec<(LinkId, bool)> {
        let mut out = Vec::new();
        match &self.kind {
            RoleKind::Management(m) => out.extend(m.links.iter().map(|l| (*l, true))),
            RoleKind::Streaming(s) => {
                out.extend(s.links.iter().map(|l| (*l, true)));
                out.extend(s.upstream_link.map(|l| (l, false)));
                out.extend(s.status.as_ref().map(|(l, _)| (*l, false)));
            }
            RoleKind::VideoClients(g) => out.push((g.link, false)),
            RoleKind::RpcClients(g) => out.push((g.link, false)),
            RoleKind::Watcher(_) | RoleKind::BulkSender(_) | RoleKind::BulkReceivers(_) => {}
        }
        out
    }
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

/// The runtime (and CPU account) of the streaming server on `host`: its first label.
pub(crate) fn role_of_host(host: &str) -> &str {
    host.split('.').next().unwrap_or(host)
}

/// The hosts whose certificate expires or is renewed during the run.
pub(super) fn certificate_event_hosts(scenario: &Scenario) -> Vec<String> {
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

/// Time between a stream's frames, its lateness threshold: a frame interval live, shorter
/// in playback, a GOP per I-frame at 4× and faster.
pub(super) fn frame_interval_ns(p: &Profile, playback: Playback) -> u64 {
    match playback {
        Playback::Live => p.frame_interval_ns(),
        Playback::Speed(s) if playback.iframes_only() => {
            p.frame_interval_ns() * u64::from(p.gop) / u64::from(s)
        }
        Playback::Speed(s) => p.frame_interval_ns() / u64::from(s),
    }
}

/// Offered bit rate of a stream of `profile` in `mode`.
pub(super) fn stream_bps(profile: &Profile, mode: Playback) -> f64 {
    match mode {
        Playback::Live => profile.bitrate_bps as f64,
        Playback::Speed(s) if mode.iframes_only() => {
            profile.i_frame_bytes() * 8.0 * f64::from(profile.fps) / f64::from(profile.gop)
                * f64::from(s)
        }
        Playback::Speed(s) => profile.bitrate_bps as f64 * f64::from(s),
    }
}

/// The ramp of `scenario`'s clients: spread over the first half of `warmup`, or at the
/// scenario's connect rate when that is slower.
fn ramp(scenario: &Scenario, warmup: Duration) -> Ramp {
    let present = |recorder: &str| scenario.recorder(recorder).is_some();
    let clients: u64 = scenario
        .viewers
        .iter()
        .filter(|g| present(&g.recorder))
        .map(|g| u64::from(g.count))
        .chain(
            scenario
                .integrations
                .iter()
                .filter(|g| present(&g.recorder))
                .map(|g| u64::from(g.count)),
        )
        .chain(scenario.phones.iter().map(|g| u64::from(g.count)))
        .sum();
    let spread_ns = warmup.as_nanos() as u64 / 2;
    let by_rate = 1_000_000_000 / u64::from(scenario.connect_rate.max(1));
    let by_warmup = spread_ns / clients.max(1);
    Ramp {
        clients,
        step_ns: by_rate.max(by_warmup),
    }
}

/// The profile of the event server's notification stream.
fn event_profile(events_per_s: u32, event_bytes: u32) -> Profile {
    Profile {
        name: EVENTS.into(),
        resolution: "-".into(),
        fps: events_per_s.max(1),
        bitrate_bps: (u64::from(event_bytes) * 8 * u64::from(events_per_s.max(1))).max(1000),
        gop: 1,
        ip_ratio: 1.0,
        vbr: 0.0,
    }
}

/// The profile name of the mobile server's transcoded streams (distinct from every camera
/// profile's, which may share the name of the profile transcoded to).
const TRANSCODED: &str = "(transcoded)";

/// The profile name of the event server's notification stream.
const EVENTS: &str = "(events)";

/// Builds a plan, one section of the deployment at a time.
struct Builder<'a> {
    scenario: &'a Scenario,
    mode: Mode,
    plan: Plan,
    /// The first camera id of each recording server.
    bases: BTreeMap<String, u32>,
    /// The cameras the phones watch, as the mobile server serves them.
    phone_cameras: Vec<CameraRef>,
    /// The event server's channel.
    event_channel: Option<CameraRef>,
    /// Clients started in the ramp so far.
    started: u64,
}

impl Plan {
    /// The plan of one phase of the ceiling test: `scenario`'s first recording server's
    /// host sends frames of `frame_size` bytes, unpaced, to `connections` receivers.
    pub(crate) fn bulk(
        scenario: &Scenario,
        mode: Mode,
        connections: u32,
        frame_size: usize,
        start_ns: u64,
    ) -> Plan {
        let host = scenario
            .recorders
            .first()
            .map_or("recorder-1.vms.test", |r| r.host.as_str())
            .to_owned();
        let tls = mode == Mode::Tls;
        let role = |runtime: &str, server: bool, kind: RoleKind| RoleSpec {
            runtime: runtime.to_owned(),
            server,
            probe: false,
            kind,
        };
        Plan {
            mode,
            seed: scenario.seed,
            start_ns,
            profiles: BTreeMap::new(),
            largest_frame: 0,
            links: Vec::new(),
            ramp: Ramp {
                clients: 0,
                step_ns: 0,
            },
            roles: vec![
                role(
                    BULK_SENDER,
                    true,
                    RoleKind::BulkSender(BulkSenderRole {
                        host: host.clone(),
                        frame_size,
                        tls,
                    }),
                ),
                role(
                    BULK_RECEIVERS,
                    false,
                    RoleKind::BulkReceivers(BulkReceiversRole {
                        host,
                        connections,
                        frame_size,
                        security: if tls { Security::Tls } else { Security::Plain },
                    }),
                ),
            ],
            incompatibilities: Vec::new(),
            site: SiteSettings::of(scenario),
        }
    }

    /// The plan of one phase of `scenario` in `mode`, whose schedules start at `start_ns`
    /// on the run clock and whose clients start within `warmup`.
    pub(crate) fn new(scenario: &Scenario, mode: Mode, start_ns: u64, warmup: Duration) -> Plan {
        let ramp = ramp(scenario, warmup);
        let mut b = Builder {
            scenario,
            mode,
            plan: Plan {
                mode,
                seed: scenario.seed,
                start_ns,
                profiles: BTreeMap::new(),
                largest_frame: 0,
                links: scenario.links(),
                ramp,
                roles: Vec::new(),
                incompatibilities: Vec::new(),
                site: SiteSettings::of(scenario),
            },
            bases: BTreeMap::new(),
            phone_cameras: Vec::new(),
            event_channel: None,
            started: 0,
        };
        b.profiles();
        b.management();
        b.recording_servers();
        b.event_server();
        b.mobile_server();
        b.viewers();
        b.integrations();
        b.phones();
        b.collectors();
        b.legacy_clients();
        b.watchers();
        b.plan
    }

    /// Frames (or calls) due in `[from_ns, to_ns)`, per link, from the schedules the plan
    /// sets up. Playback streams are left out: their schedules start when the server
    /// receives the subscription, so only the server knows them.
    pub(crate) fn due(&self, from_ns: u64, to_ns: u64) -> BTreeMap<LinkId, u64> {
        let mut due: BTreeMap<LinkId, u64> = BTreeMap::new();
        // Schedules need no payload: one byte of pool will do.
        let pool = PayloadPool::new(1, self.seed);
        let profiles: BTreeMap<&str, Arc<Profile>> = self
            .profiles
            .iter()
            .map(|(k, p)| (k.as_str(), Arc::new(p.clone())))
            .collect();
        let video = |c: &VideoClientSpec| -> u64 {
            if c.playback != Playback::Live {
                return 0;
            }
            c.cameras
                .iter()
                .filter_map(|cam| {
                    let p = profiles.get(cam.profile.as_str())?.clone();
                    let camera = Camera::new(cam.id, p, self.seed, pool.clone());
                    Some(camera.frames_due(Playback::Live, self.start_ns, from_ns, to_ns))
                })
                .sum()
        };
        let rpc = |c: &RpcClientSpec| -> u64 {
            calls_due(self.start_ns + c.phase_ns, c.interval, from_ns, to_ns)
        };
        for role in &self.roles {
            match &role.kind {
                RoleKind::VideoClients(g) => {
                    *due.entry(g.link).or_default() += g.clients.iter().map(video).sum::<u64>();
                }
                RoleKind::RpcClients(g) => {
                    *due.entry(g.link).or_default() += g.clients.iter().map(rpc).sum::<u64>();
                }
                RoleKind::Streaming(s) => {
                    if let Some(l) = s.upstream_link {
                        *due.entry(l).or_default() += s.upstream.iter().map(video).sum::<u64>();
                    }
                    if let Some((l, c)) = &s.status {
                        *due.entry(*l).or_default() += rpc(c);
                    }
                }
                RoleKind::Management(_)
                | RoleKind::Watcher(_)
                | RoleKind::BulkSender(_)
                | RoleKind::BulkReceivers(_) => {}
            }
        }
        due
    }

    /// File descriptors the plan opens when every role runs in one process: both ends of
    /// every connection, every listener, the WAN relays' second legs. Sessions (logins and
    /// change checks) hold a connection only while a call lasts; at most
    /// [`SESSION_CONNECTIONS`] of them are counted as open at once.
    pub(crate) fn descriptors(&self) -> u64 {
        let video = |n: usize| 2 * n as u64;
        // A client behind a WAN relay adds the relay's two ends of its connection (the
        // relay's listeners are few and left to the margin).
        let relayed = |clients: &[VideoClientSpec]| {
            video(clients.len()) + 2 * clients.iter().filter(|c| c.wan.is_some()).count() as u64
        };
        let rpc = |c: &RpcClientSpec| if c.wan.is_some() { 5 } else { 2 };
        let is_session = |c: &RpcClientSpec| matches!(c.call, Call::Session { .. });
        let mut sessions = 0u64;
        let mut total: u64 = self
            .roles
            .iter()
            .map(|r| match &r.kind {
                RoleKind::Management(m) => m.listeners.len() as u64,
                RoleKind::Streaming(s) => {
                    1 + video(s.upstream.len()) + s.status.as_ref().map_or(0, |(_, c)| rpc(c))
                }
                RoleKind::VideoClients(g) => relayed(&g.clients),
                RoleKind::RpcClients(g) => {
                    sessions += g.clients.iter().filter(|c| is_session(c)).count() as u64;
                    g.clients.iter().filter(|c| !is_session(c)).map(rpc).sum()
                }
                RoleKind::Watcher(_) => 2,
                RoleKind::BulkSender(_) => 1,
                RoleKind::BulkReceivers(b) => 2 * u64::from(b.connections),
            })
            .sum();
        total += 2 * sessions.min(SESSION_CONNECTIONS);
        total
    }

    /// Each runtime's links and sides, for attributing its CPU.
    pub(crate) fn participation(&self) -> BTreeMap<String, Vec<(LinkId, bool)>> {
        let mut out: BTreeMap<String, Vec<(LinkId, bool)>> = BTreeMap::new();
        for role in self.roles.iter().filter(|r| !r.probe) {
            let entry = out.entry(role.runtime.clone()).or_default();
            for p in role.participation() {
                if self.links.contains(&p.0) && !entry.contains(&p) {
                    entry.push(p);
                }
            }
        }
        out
    }
}

impl<'a> Builder<'a> {
    fn encrypted(&self, link: LinkId) -> bool {
        self.mode == Mode::Tls && self.scenario.encrypted(link)
    }

    fn security(&self, link: LinkId) -> Security {
        if self.encrypted(link) {
            Security::Tls
        } else {
            Security::Plain
        }
    }

    fn uses(&self, link: LinkId) -> bool {
        self.scenario.links().contains(&link)
    }

    /// The mobile server, if phones use it.
    fn phones_server(&self) -> Option<&'a MobileServerSpec> {
        let s: &'a Scenario = self.scenario;
        s.mobile_server
            .as_ref()
            .filter(|_| self.uses(LinkId::PhoneMobile))
    }

    fn push(&mut self, runtime: &str, server: bool, kind: RoleKind) {
        self.plan.roles.push(RoleSpec {
            runtime: runtime.to_owned(),
            server,
            probe: runtime == PROBES_RUNTIME || runtime == WATCHERS_RUNTIME,
            kind,
        });
    }

    /// Every camera profile, the event channel's and the transcoded one, and the largest
    /// frame any of them makes.
    fn profiles(&mut self) {
        let s = self.scenario;
        let mut next = 0;
        for r in &s.recorders {
            self.bases.insert(r.host.clone(), next);
            next += r.camera_count();
            for g in &r.cameras {
                self.plan
                    .profiles
                    .entry(g.profile.name.clone())
                    .or_insert_with(|| g.profile.clone());
            }
        }
        if let Some(ev) = &s.event_server {
            let p = event_profile(ev.events_per_s, ev.event_bytes);
            self.plan.profiles.insert(p.name.clone(), p);
        }
        let mut largest = 64 * 1024;
        for p in self.plan.profiles.values() {
            largest = largest.max(p.max_frame_bytes());
        }
        if let Some(m) = &s.mobile_server {
            largest = largest.max(m.transcode_profile.max_frame_bytes());
            let mut p = m.transcode_profile.clone();
            p.name = TRANSCODED.to_owned();
            self.plan.profiles.insert(TRANSCODED.to_owned(), p);
        }
        self.plan.largest_frame = largest;
    }

    /// The cameras of recording server `host`.
    fn cameras_of(&self, host: &str) -> Vec<CameraRef> {
        let (Some(rec), Some(base)) = (self.scenario.recorder(host), self.bases.get(host)) else {
            return Vec::new();
        };
        (0..rec.camera_count())
            .filter_map(|i| {
                Some(CameraRef {
                    id: base + i,
                    profile: rec.profile_of(i)?.name.clone(),
                })
            })
            .collect()
    }

    /// The cameras client `i` of a group watches on `recorder`: `per` consecutive ones from
    /// `i × per`, wrapping round. None for a recording server the scenario does not have.
    fn watched(&self, recorder: &str, i: u32, per: u32) -> Vec<CameraRef> {
        let cams = self.cameras_of(recorder);
        let n = cams.len() as u32;
        if n == 0 {
            return Vec::new();
        }
        (0..per.min(n))
            .filter_map(|k| cams.get(((i * per + k) % n) as usize).cloned())
            .collect()
    }

    /// A status poll of `who` to the management server on `link`.
    fn status(&self, link: LinkId, who: &str) -> RpcClientSpec {
        let m = &self.scenario.management;
        RpcClientSpec {
            server: m.host.clone(),
            security: self.security(link),
            call: Call::Status {
                request_bytes: m.status_request_bytes,
            },
            interval: m.status_interval,
            phase_ns: spread(self.scenario.seed, who, m.status_interval.as_nanos() as u64),
            checks_config: false,
            wan: None,
        }
    }

    /// The next client's start in the ramp, after the phase starts, ns.
    fn next_start(&mut self) -> u64 {
        let at = self.started * self.plan.ramp.step_ns;
        self.started += 1;
        at
    }

    /// The session of a client starting at `at` ns: its login (with the configuration
    /// download) then a change check every `config_check`.
    fn session(&self, at: u64) -> RpcClientSpec {
        let m = &self.scenario.management;
        let check = m.config_check.as_nanos().max(1);
        RpcClientSpec {
            server: m.host.clone(),
            security: self.security(LinkId::ClientMgmt),
            call: Call::Session {
                refresh_every: m
                    .config_refresh
                    .map(|r| u32::try_from((r.as_nanos() / check).max(1)).unwrap_or(u32::MAX)),
            },
            interval: m.config_check,
            phase_ns: at,
            checks_config: true,
            wan: None,
        }
    }

    fn management(&mut self) {
        let m = &self.scenario.management;
        let listeners = [
            LinkId::RecorderMgmt,
            LinkId::ClientMgmt,
            LinkId::CollectorMgmt,
        ]
        .into_iter()
        .map(|l| (l, self.encrypted(l)))
        .collect();
        let links = [
            LinkId::RecorderMgmt,
            LinkId::ClientMgmt,
            LinkId::CollectorMgmt,
            LinkId::EventMgmt,
            LinkId::MobileMgmt,
        ]
        .into_iter()
        .filter(|l| self.uses(*l))
        .collect();
        let role = ManagementRole {
            host: m.host.clone(),
            reloadable: self.mode == Mode::Tls
                && certificate_event_hosts(self.scenario).contains(&m.host),
            config_bytes: m.config_bytes,
            status_reply_bytes: m.status_reply_bytes,
            listeners,
            also: vec![
                (LinkId::EventMgmt, LinkId::RecorderMgmt),
                (LinkId::MobileMgmt, LinkId::RecorderMgmt),
            ],
            links,
        };
        self.push(MGMT_RUNTIME, true, RoleKind::Management(role));
    }

    /// A streaming server on `host` serving `cameras` on `links`.
    fn streaming(&self, host: &str, links: Vec<LinkId>, cameras: Vec<CameraRef>) -> StreamingRole {
        let first = links.first().copied().unwrap_or(LinkId::ViewerRecorder);
        StreamingRole {
            host: host.to_owned(),
            tls: self.encrypted(first),
            reloadable: self.mode == Mode::Tls
                && certificate_event_hosts(self.scenario)
                    .iter()
                    .any(|h| h == host),
            recording: false,
            links,
            cameras,
            source: FrameSource::Pacer,
            queue_frames: self.scenario.queue_frames,
            cpu_per_frame: None,
            upstream: Vec::new(),
            upstream_link: None,
            status: None,
        }
    }

    /// Recording servers and failovers: every camera on one schedule, each with its status
    /// poll.
    fn recording_servers(&mut self) {
        let s = self.scenario;
        let mut hosts: Vec<(String, Vec<CameraRef>)> = s
            .recorders
            .iter()
            .map(|r| (r.host.clone(), self.cameras_of(&r.host)))
            .collect();
        for f in &s.failovers {
            let backed = s
                .recorders
                .iter()
                .filter(|r| r.failover.as_deref() == Some(f.as_str()))
                .flat_map(|r| self.cameras_of(&r.host))
                .collect();
            hosts.push((f.clone(), backed));
        }
        for (host, cameras) in hosts {
            let links = vec![
                LinkId::ViewerRecorder,
                LinkId::SdkRecorder,
                LinkId::MobileRecorder,
            ];
            let mut role = self.streaming(&host, links, cameras);
            role.recording = true;
            role.cpu_per_frame = s.recorder_cpu_per_frame;
            role.status = Some((
                LinkId::RecorderMgmt,
                self.status(LinkId::RecorderMgmt, &host),
            ));
            self.push(role_of_host(&host), true, RoleKind::Streaming(role));
        }
    }

    /// The event server: a stream of notifications to every connected viewer.
    fn event_server(&mut self) {
        let Some(ev) = &self.scenario.event_server else {
            return;
        };
        let channel = CameraRef {
            id: 0,
            profile: EVENTS.to_owned(),
        };
        let mut role = self.streaming(&ev.host, vec![LinkId::ClientEvent], vec![channel.clone()]);
        role.status = Some((LinkId::EventMgmt, self.status(LinkId::EventMgmt, &ev.host)));
        self.event_channel = Some(channel);
        self.push("event", true, RoleKind::Streaming(role));
    }

    /// The mobile server: pulls the cameras phones watch from their recording servers and
    /// serves the phones, passing streams through or transcoding them.
    fn mobile_server(&mut self) {
        let s = self.scenario;
        let Some(ms) = self.phones_server() else {
            return;
        };
        // Which cameras, per recording server, the phones watch.
        let mut wanted: BTreeMap<String, Vec<CameraRef>> = BTreeMap::new();
        for g in s
            .phones
            .iter()
            .filter(|g| s.recorder(&g.recorder).is_some())
        {
            let w = wanted.entry(g.recorder.clone()).or_default();
            for i in 0..g.count {
                for cam in self.watched(&g.recorder, i, g.cameras_each) {
                    if !w.contains(&cam) {
                        w.push(cam);
                    }
                }
            }
        }
        let sources: Vec<CameraRef> = wanted.values().flatten().cloned().collect();
        let (serving, source) = match ms.mode {
            MobileMode::Direct => (sources, FrameSource::Relay),
            MobileMode::Transcoded => (
                sources
                    .into_iter()
                    .map(|c| CameraRef {
                        id: c.id,
                        profile: TRANSCODED.to_owned(),
                    })
                    .collect(),
                FrameSource::Pacer,
            ),
        };
        self.phone_cameras = serving.clone();
        let mut role = self.streaming(&ms.host, vec![LinkId::PhoneMobile], serving);
        role.source = source;
        role.upstream_link = Some(LinkId::MobileRecorder);
        role.upstream = wanted
            .into_iter()
            .filter(|(host, _)| s.recorder(host).is_some())
            .map(|(host, cameras)| VideoClientSpec {
                failover: s.recorder(&host).and_then(|r| r.failover.clone()),
                server: host.clone(),
                cameras,
                playback: Playback::Live,
                security: self.security(LinkId::MobileRecorder),
                recorder: Some(host),
                start_offset_ns: 0,
                wan: None,
            })
            .collect();
        role.status = Some((
            LinkId::MobileMgmt,
            self.status(LinkId::MobileMgmt, &ms.host),
        ));
        self.push("mobile", true, RoleKind::Streaming(role));
    }

    /// A video client of recording server `recorder`.
    fn recorder_client(
        &self,
        recorder: &str,
        cameras: Vec<CameraRef>,
        link: LinkId,
    ) -> VideoClientSpec {
        VideoClientSpec {
            server: recorder.to_owned(),
            failover: self
                .scenario
                .recorder(recorder)
                .and_then(|r| r.failover.clone()),
            cameras,
            playback: Playback::Live,
            security: self.security(link),
            recorder: Some(recorder.to_owned()),
            start_offset_ns: 0,
            wan: None,
        }
    }

    /// Viewers: video from a recording server, events from the event server, and logins.
    fn viewers(&mut self) {
        let s = self.scenario;
        let mut video = Vec::new();
        let mut events = Vec::new();
        let mut logins = Vec::new();
        for g in s
            .viewers
            .iter()
            .filter(|g| s.recorder(&g.recorder).is_some())
        {
            for i in 0..g.count {
                let at = self.next_start();
                let mut client = self.recorder_client(
                    &g.recorder,
                    self.watched(&g.recorder, i, g.view),
                    LinkId::ViewerRecorder,
                );
                client.start_offset_ns = at;
                client.wan = g.wan;
                client.playback = match g.mode {
                    ViewMode::Live => Playback::Live,
                    ViewMode::Playback(speed) => Playback::Speed(speed),
                };
                video.push(client);
                if let (Some(ev), Some(channel)) = (&s.event_server, &self.event_channel) {
                    events.push(VideoClientSpec {
                        server: ev.host.clone(),
                        failover: None,
                        cameras: vec![channel.clone()],
                        playback: Playback::Live,
                        security: self.security(LinkId::ClientEvent),
                        recorder: None,
                        start_offset_ns: at,
                        wan: None,
                    });
                }
                logins.push(self.session(at));
            }
        }
        self.push_group("viewers", LinkId::ViewerRecorder, video);
        self.push_group("event-clients", LinkId::ClientEvent, events);
        self.push_rpc("login-clients", LinkId::ClientMgmt, logins);
    }

    fn push_group(&mut self, runtime: &str, link: LinkId, clients: Vec<VideoClientSpec>) {
        if !clients.is_empty() {
            self.push(
                runtime,
                false,
                RoleKind::VideoClients(ClientGroup { link, clients }),
            );
        }
    }

    fn push_rpc(&mut self, runtime: &str, link: LinkId, clients: Vec<RpcClientSpec>) {
        if !clients.is_empty() {
            self.push(
                runtime,
                false,
                RoleKind::RpcClients(ClientGroup { link, clients }),
            );
        }
    }

    /// SDK integrations: bulk retrieval, some unable to speak TLS; and their logins.
    fn integrations(&mut self) {
        let s = self.scenario;
        let mut video = Vec::new();
        let mut logins = Vec::new();
        for g in s
            .integrations
            .iter()
            .filter(|g| s.recorder(&g.recorder).is_some())
        {
            if !g.tls_capable && self.encrypted(LinkId::SdkRecorder) {
                self.plan.incompatibilities.push(Incompatibility {
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
                let at = self.next_start();
                let mut client = self.recorder_client(
                    &g.recorder,
                    self.watched(&g.recorder, i, g.streams),
                    LinkId::SdkRecorder,
                );
                client.start_offset_ns = at;
                client.wan = g.wan;
                if !g.tls_capable {
                    client.security = Security::Plain;
                }
                video.push(client);
                logins.push(self.session(at));
            }
        }
        self.push_group("integrations", LinkId::SdkRecorder, video);
        self.push_rpc("login-clients", LinkId::ClientMgmt, logins);
    }

    /// Phones, through the mobile server.
    fn phones(&mut self) {
        let s = self.scenario;
        let Some(ms) = self.phones_server() else {
            return;
        };
        let mut phones = Vec::new();
        for g in &s.phones {
            for i in 0..g.count {
                let cameras = self
                    .watched(&g.recorder, i, g.cameras_each)
                    .into_iter()
                    .filter_map(|w| self.phone_cameras.iter().find(|c| c.id == w.id).cloned())
                    .collect();
                let start_offset_ns = self.next_start();
                phones.push(VideoClientSpec {
                    server: ms.host.clone(),
                    failover: None,
                    cameras,
                    playback: Playback::Live,
                    security: self.security(LinkId::PhoneMobile),
                    recorder: None,
                    start_offset_ns,
                    wan: g.wan,
                });
            }
        }
        self.push_group("phones", LinkId::PhoneMobile, phones);
    }

    /// Data collectors of remote sites, each behind its own WAN link.
    fn collectors(&mut self) {
        let s = self.scenario;
        let mut clients = Vec::new();
        for g in &s.collectors {
            for i in 0..g.count {
                let who = format!("{}-{i}", g.name);
                clients.push(RpcClientSpec {
                    server: s.management.host.clone(),
                    security: self.security(LinkId::CollectorMgmt),
                    call: Call::Telemetry {
                        bytes: g.telemetry_bytes,
                    },
                    interval: g.interval,
                    phase_ns: spread(s.seed, &who, g.interval.as_nanos() as u64),
                    checks_config: false,
                    wan: Some(g.wan),
                });
            }
        }
        self.push_rpc("collectors", LinkId::CollectorMgmt, clients);
    }

    /// Clients offering only TLS 1.1 (`tls11_client` faults), one per such host, besides
    /// its usual clients; on plaintext links they are ordinary plaintext clients.
    fn legacy_clients(&mut self) {
        let s = self.scenario;
        let legacy = |b: &Self, link: LinkId| {
            if b.encrypted(link) {
                Security::Tls11Only
            } else {
                Security::Plain
            }
        };
        let mut hosts: Vec<String> = s
            .faults
            .iter()
            .filter(|f| f.kind == crate::engine::scenario::FaultKind::Tls11Client)
            .map(|f| f.host.clone())
            .collect();
        hosts.sort();
        hosts.dedup();
        for host in hosts {
            if host == s.management.host {
                let mut c = self.status(LinkId::RecorderMgmt, &format!("tls11-{host}"));
                c.security = legacy(self, LinkId::RecorderMgmt);
                self.push_rpc(PROBES_RUNTIME, LinkId::RecorderMgmt, vec![c]);
                continue;
            }
            let recorded = s
                .recorders
                .iter()
                .find(|r| r.host == host || r.failover.as_deref() == Some(host.as_str()));
            let (link, stream) = if let Some(r) = recorded {
                (
                    LinkId::ViewerRecorder,
                    self.cameras_of(&r.host).first().cloned(),
                )
            } else if s.event_server.as_ref().is_some_and(|e| e.host == host) {
                (LinkId::ClientEvent, self.event_channel.clone())
            } else if s.mobile_server.as_ref().is_some_and(|m| m.host == host)
                && self.uses(LinkId::PhoneMobile)
            {
                (LinkId::PhoneMobile, self.phone_cameras.first().cloned())
            } else {
                continue;
            };
            if !self.uses(link) {
                continue;
            }
            let client = VideoClientSpec {
                server: host.clone(),
                failover: None,
                cameras: stream.into_iter().collect(),
                playback: Playback::Live,
                security: legacy(self, link),
                recorder: None,
                start_offset_ns: 0,
                wan: None,
            };
            self.push_group(PROBES_RUNTIME, link, vec![client]);
        }
    }

    /// A watcher on each host whose certificate changes during a TLS phase.
    fn watchers(&mut self) {
        if self.mode != Mode::Tls {
            return;
        }
        let s = self.scenario;
        for host in certificate_event_hosts(s) {
            let link = if host == s.management.host {
                LinkId::RecorderMgmt
            } else {
                let Some(link) = self.plan.roles.iter().find_map(|r| match &r.kind {
                    RoleKind::Streaming(st) if st.host == host => st.links.first().copied(),
                    _ => None,
                }) else {
                    continue;
                };
                link
            };
            if s.encrypted(link) {
                self.push(
                    WATCHERS_RUNTIME,
                    false,
                    RoleKind::Watcher(WatcherRole { host, link }),
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::scenario::file;

    fn plan(name: &str, mode: Mode) -> Plan {
        let s = file::load_preset(name).expect("preset");
        Plan::new(&s, mode, 0, Duration::from_secs(2))
    }

    #[test]
    fn logins_are_spread_over_the_ramp_each_with_its_client_not_at_one_instant() {
        let s = file::load_preset("medium").expect("preset");
        let warmup = Duration::from_secs(4);
        let p = Plan::new(&s, Mode::Tls, 0, warmup);
        let mut logins: Vec<u64> = Vec::new();
        let mut starts: Vec<u64> = Vec::new();
        for r in &p.roles {
            match &r.kind {
                RoleKind::RpcClients(g) if g.link == LinkId::ClientMgmt => {
                    logins.extend(g.clients.iter().map(|c| c.phase_ns));
                }
                RoleKind::VideoClients(g) if g.link != LinkId::PhoneMobile => {
                    starts.extend(g.clients.iter().map(|c| c.start_offset_ns));
                }
                _ => {}
            }
        }
        assert!(logins.len() >= 10, "{} logins", logins.len());
        logins.sort_unstable();
        starts.sort_unstable();
        // An operator's event connection starts with its video.
        starts.dedup();
        // Each operator and integration logs in as it starts, one after another.
        assert_eq!(logins, starts);
        assert!(logins.windows(2).all(|w| w[0] < w[1]), "{logins:?}");
        // Within the first half of the warm-up, or at the connect rate if that is slower.
        let by_rate = logins.len() as u64 * 1_000_000_000 / u64::from(s.connect_rate);
        let limit = (warmup.as_nanos() as u64 / 2).max(by_rate);
        assert!(logins.last().is_some_and(|l| *l < limit), "{logins:?}");
        // Phones start in the same ramp (they log in to the mobile server, not here).
        assert!(logins.last().is_some_and(|l| *l <= p.ramp.duration_ns()));
    }

    #[test]
    fn a_plan_round_trips_through_json_and_names_no_address() {
        for name in file::PRESET_NAMES {
            for mode in [Mode::Plain, Mode::Tls] {
                let p = plan(name, mode);
                let json = serde_json::to_string(&p).expect("serialise");
                // Roles name hosts, never where they were found; only the site settings
                // say which address servers bind (127.0.0.1 by default).
                let roles = serde_json::to_string(&p.roles).expect("serialise");
                assert!(!roles.contains("127.0.0.1"), "{name}: {roles}");
                let back: Plan = serde_json::from_str(&json).expect("deserialise");
                assert_eq!(
                    serde_json::to_value(&back).expect("value"),
                    serde_json::to_value(&p).expect("value"),
                    "{name}"
                );
            }
        }
    }

    #[test]
    fn servers_start_before_their_clients() {
        let p = plan("medium", Mode::Tls);
        let first_client = p.roles.iter().position(|r| !r.server).expect("clients");
        assert!(p.roles[..first_client].iter().all(|r| r.server));
        assert!(p.roles[first_client..].iter().all(|r| !r.server));
        assert!(matches!(p.roles[0].kind, RoleKind::Management(_)));
        let mobile = p
            .roles
            .iter()
            .position(|r| r.runtime == "mobile")
            .expect("mobile server");
        let last_recorder = p
            .roles
            .iter()
            .rposition(|r| matches!(&r.kind, RoleKind::Streaming(s) if s.recording))
            .expect("recorders");
        assert!(last_recorder < mobile);
    }

    #[test]
    fn every_client_dials_a_server_of_the_plan() {
        for name in file::PRESET_NAMES {
            let p = plan(name, Mode::Tls);
            let hosts: Vec<&str> = p
                .roles
                .iter()
                .filter_map(|r| match &r.kind {
                    RoleKind::Management(m) => Some(m.host.as_str()),
                    RoleKind::Streaming(s) => Some(s.host.as_str()),
                    _ => None,
                })
                .collect();
            for r in &p.roles {
                let dialled: Vec<&str> = match &r.kind {
                    RoleKind::VideoClients(g) => {
                        g.clients.iter().map(|c| c.server.as_str()).collect()
                    }
                    RoleKind::RpcClients(g) => {
                        g.clients.iter().map(|c| c.server.as_str()).collect()
                    }
                    RoleKind::Watcher(w) => vec![w.host.as_str()],
                    _ => Vec::new(),
                };
                for h in dialled {
                    assert!(
                        hosts.contains(&h),
                        "{name}: {h} is not a server of the plan"
                    );
                }
            }
        }
    }
}
