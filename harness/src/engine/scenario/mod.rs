//! What to simulate: a VMS deployment — its hosts, roles, cameras, clients, encryption
//! groups, TLS settings and scheduled events — resolved and checked, ready to start.
//!
//! Scenario files (TOML) are parsed into this model by [`mod@file`]; the built-in presets live
//! in `harness/presets/` and are compiled into the binary.

mod check;
pub mod file;

use std::time::Duration;

use serde::{Deserialize, Serialize};
use simulators::pki::KeyType;
use simulators::transport::TlsSettings;
use simulators::video::Profile;

/// Every link of the seed system, by id.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum LinkId {
    /// Recording server → management server: registration, config pull, status.
    RecorderMgmt,
    /// Viewer or integration → management server: login and configuration download.
    ClientMgmt,
    /// Event server → management server.
    EventMgmt,
    /// Mobile server → management server.
    MobileMgmt,
    /// Data collector of a remote site → management server, over a WAN.
    CollectorMgmt,
    /// Viewer → recording server: live video and playback.
    ViewerRecorder,
    /// SDK integration → recording server: bulk stream retrieval.
    SdkRecorder,
    /// Mobile server → recording server: source streams for phones.
    MobileRecorder,
    /// Phone → mobile server.
    PhoneMobile,
    /// Viewer → event server: alarms and events.
    ClientEvent,
}

impl LinkId {
    /// Every link, in report order.
    pub const ALL: &'static [LinkId] = &[
        LinkId::ViewerRecorder,
        LinkId::SdkRecorder,
        LinkId::MobileRecorder,
        LinkId::PhoneMobile,
        LinkId::ClientEvent,
        LinkId::ClientMgmt,
        LinkId::RecorderMgmt,
        LinkId::EventMgmt,
        LinkId::MobileMgmt,
        LinkId::CollectorMgmt,
    ];

    /// The id used in reports.
    pub fn as_str(self) -> &'static str {
        match self {
            LinkId::RecorderMgmt => "recorder-mgmt",
            LinkId::ClientMgmt => "client-mgmt",
            LinkId::EventMgmt => "event-mgmt",
            LinkId::MobileMgmt => "mobile-mgmt",
            LinkId::CollectorMgmt => "collector-mgmt",
            LinkId::ViewerRecorder => "viewer-recorder",
            LinkId::SdkRecorder => "sdk-recorder",
            LinkId::MobileRecorder => "mobile-recorder",
            LinkId::PhoneMobile => "phone-mobile",
            LinkId::ClientEvent => "client-event",
        }
    }

    /// The encryption group that covers this link in the seed system.
    pub fn group(self) -> Group {
        match self {
            LinkId::RecorderMgmt
            | LinkId::ClientMgmt
            | LinkId::EventMgmt
            | LinkId::MobileMgmt
            | LinkId::CollectorMgmt => Group::Server,
            LinkId::ViewerRecorder | LinkId::SdkRecorder | LinkId::MobileRecorder => {
                Group::StreamingMedia
            }
            LinkId::PhoneMobile => Group::MobileServer,
            LinkId::ClientEvent => Group::EventServer,
        }
    }

    /// The port the seed system uses for it (plaintext port where it differs). Documented
    /// only: the simulation always binds 127.0.0.1 on a port the system chooses.
    pub fn default_port(self) -> (u16, u16) {
        match self {
            LinkId::RecorderMgmt | LinkId::EventMgmt | LinkId::MobileMgmt => (9000, 9000),
            LinkId::ClientMgmt => (443, 80),
            LinkId::CollectorMgmt => (7609, 7609),
            LinkId::ViewerRecorder | LinkId::SdkRecorder | LinkId::MobileRecorder => (7563, 7563),
            LinkId::PhoneMobile => (8082, 8081),
            LinkId::ClientEvent => (22331, 22331),
        }
    }
}

impl std::fmt::Display for LinkId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The seed system's certificate groups: what "encryption on" covers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Group {
    /// Management-server links and the data collectors.
    Server,
    /// Every connection to a recording server.
    StreamingMedia,
    /// Phones and the web client to the mobile server.
    MobileServer,
    /// Connections to the event server.
    EventServer,
}

impl Group {
    /// The snake_case name used in scenario files and reports.
    pub fn as_str(self) -> &'static str {
        match self {
            Group::Server => "server",
            Group::StreamingMedia => "streaming_media",
            Group::MobileServer => "mobile_server",
            Group::EventServer => "event_server",
        }
    }
}

/// Which groups are encrypted in the scenario's TLS phase (the plaintext phase encrypts
/// nothing).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Encryption {
    /// `server` group on.
    pub server: bool,
    /// `streaming_media` group on.
    pub streaming_media: bool,
    /// `mobile_server` group on.
    pub mobile_server: bool,
    /// `event_server` group on.
    pub event_server: bool,
    /// Accept setups the seed system refuses (recording servers encrypted while the
    /// management server is not).
    pub allow_unsupported: bool,
}

impl Default for Encryption {
    fn default() -> Self {
        Encryption {
            server: true,
            streaming_media: true,
            mobile_server: true,
            event_server: true,
            allow_unsupported: false,
        }
    }
}

impl Encryption {
    /// Whether `group` is on.
    pub fn covers(&self, group: Group) -> bool {
        match group {
            Group::Server => self.server,
            Group::StreamingMedia => self.streaming_media,
            Group::MobileServer => self.mobile_server,
            Group::EventServer => self.event_server,
        }
    }
}

/// The management server.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Management {
    /// Host name (certificate CN/SAN).
    pub host: String,
    /// Size of the configuration a client downloads at login, bytes (1–10 MB is typical).
    pub config_bytes: u64,
    /// How often each logged-in client checks whether its configuration changed (a short
    /// request on a connection of its own).
    pub config_check: Duration,
    /// How often each client downloads its whole configuration again; `None` (the
    /// default): only at login, as the seed system does.
    pub config_refresh: Option<Duration>,
    /// How often registered servers (recording, event, mobile) send a status request.
    pub status_interval: Duration,
    /// Size of a status request, bytes.
    pub status_request_bytes: u32,
    /// Size of a status reply, bytes.
    pub status_reply_bytes: u32,
}

/// A group of identical cameras on a recording server.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct CameraGroup {
    /// Their profile.
    pub profile: Profile,
    /// How many.
    pub count: u32,
}

/// A recording server.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RecorderSpec {
    /// Host name.
    pub host: String,
    /// Its cameras, in id order (group after group).
    pub cameras: Vec<CameraGroup>,
    /// The failover recording server that takes over its cameras, if any.
    pub failover: Option<String>,
}

impl RecorderSpec {
    /// Total cameras.
    pub fn camera_count(&self) -> u32 {
        self.cameras.iter().map(|g| g.count).sum()
    }

    /// The profile of camera `id` (ids number the groups' cameras consecutively).
    pub fn profile_of(&self, id: u32) -> Option<&Profile> {
        let mut first = 0;
        for g in &self.cameras {
            if id < first + g.count {
                return Some(&g.profile);
            }
            first += g.count;
        }
        None
    }
}

/// The event server.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct EventServerSpec {
    /// Host name.
    pub host: String,
    /// Events per second sent to each connected viewer.
    pub events_per_s: u32,
    /// Size of one event message, bytes.
    pub event_bytes: u32,
}

/// How the mobile server serves phones.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum MobileMode {
    /// The camera stream passed through unchanged.
    Direct,
    /// Re-encoded to a JPEG-frame stream, capped in fps and resolution.
    Transcoded,
}

/// The mobile server.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct MobileServerSpec {
    /// Host name.
    pub host: String,
    /// Direct streaming or transcoding.
    pub mode: MobileMode,
    /// The stream phones get when transcoding (all frames JPEG, i.e. GOP 1).
    pub transcode_profile: Profile,
}

/// Live video or playback at a speed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ViewMode {
    /// Live.
    Live,
    /// Playback at this speed (1–8; at 4 and above only I-frames are sent).
    Playback(u8),
}

/// A group of identical viewers (Smart-Client-like operators).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ViewerGroup {
    /// Name for reports.
    pub name: String,
    /// How many viewers.
    pub count: u32,
    /// The recording server they watch.
    pub recorder: String,
    /// Cameras per view (1, 4, 9 or 16 are the usual layouts).
    pub view: u32,
    /// Live or playback.
    pub mode: ViewMode,
    /// The WAN between these clients and their server, if they reach it across one: a
    /// relay in front of the server adds its delay, jitter, loss and rate cap.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub wan: Option<simulators::role::wan::WanProfile>,
}

/// A group of identical SDK integrations.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct IntegrationGroup {
    /// Name for reports.
    pub name: String,
    /// How many integrations.
    pub count: u32,
    /// The recording server they pull from.
    pub recorder: String,
    /// Streams each retrieves.
    pub streams: u32,
    /// Whether the integration can speak TLS at all.
    pub tls_capable: bool,
    /// The WAN between these clients and their server, if they reach it across one: a
    /// relay in front of the server adds its delay, jitter, loss and rate cap.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub wan: Option<simulators::role::wan::WanProfile>,
}

/// A group of phones on the mobile server.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PhoneGroup {
    /// Name for reports.
    pub name: String,
    /// How many phones.
    pub count: u32,
    /// The recording server whose cameras they watch (through the mobile server).
    pub recorder: String,
    /// Cameras each phone watches.
    pub cameras_each: u32,
    /// The WAN between these clients and their server, if they reach it across one: a
    /// relay in front of the server adds its delay, jitter, loss and rate cap.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub wan: Option<simulators::role::wan::WanProfile>,
}

/// A group of data collectors of remote sites.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct CollectorGroup {
    /// Name for reports.
    pub name: String,
    /// How many collectors (one per remote site).
    pub count: u32,
    /// The WAN between the remote sites and the central site.
    pub wan: simulators::role::wan::WanProfile,
    /// How often each sends telemetry.
    pub interval: Duration,
    /// Size of one telemetry message, bytes.
    pub telemetry_bytes: u32,
}

/// Something that happens during the measured window.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ScheduledEvent {
    /// When, counted from the opening of the measured window.
    pub at: Duration,
    /// What happens.
    pub action: EventAction,
}

/// What a scheduled event does.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "action")]
pub enum EventAction {
    /// A recording server stops; its clients reconnect to its failover server.
    StopRecorder {
        /// The recording server's host name.
        host: String,
    },
    /// From this moment the host's certificate has expired: new full handshakes fail
    /// (`expired`), established connections go on. Staged by the server presenting a
    /// certificate whose not-after has just passed, as the real one would after its date.
    ExpireCertificate {
        /// The server's host name.
        host: String,
    },
    /// The host's certificate is renewed without a restart: new connections are shown a
    /// newly issued certificate (new serial number), established ones are untouched.
    RenewCertificate {
        /// The server's host name.
        host: String,
    },
    /// Every recording server (and failover server) stops sending for `duration`: frames
    /// keep falling due and queue up, then go out in a burst (`vmsbench run --inject-stall`;
    /// not in scenario files). Shows what coordinated-omission correction does.
    StallRecorders {
        /// How long the servers stall.
        duration: Duration,
    },
}

/// A certificate fault staged on one server host for the whole run (the TLS phase: the
/// plaintext phase presents no certificates).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Fault {
    /// The server host it is staged on.
    pub host: String,
    /// What is wrong.
    pub kind: FaultKind,
}

/// What is wrong with a host's certificate (or with a client of it): the failure cases a
/// deployment meets.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FaultKind {
    /// The certificate's validity ended yesterday.
    Expired,
    /// The certificate becomes valid tomorrow (e.g. a clock set wrong when it was issued).
    NotYetValid,
    /// The certificate names the short host name only, while clients dial the full one.
    WrongHost,
    /// The certificate was issued by another CA of the same name (a CA regenerated on
    /// reinstall), which clients do not trust.
    UntrustedCa,
    /// The certificate was issued by an intermediate CA that the server does not send.
    MissingIntermediate,
    /// The certificate's extended key usage is clientAuth only, not serverAuth.
    NoServerAuthEku,
    /// The server cannot read its private key (file mode 000): it has a certificate but
    /// cannot complete a handshake.
    KeyUnreadable,
    /// The certificate carries an RSA-1024 key.
    Rsa1024,
    /// A client that offers only TLS 1.1 dials the host, besides its usual clients.
    Tls11Client,
}

impl FaultKind {
    /// Every kind, in the order the documentation lists them.
    pub const ALL: &'static [FaultKind] = &[
        FaultKind::Expired,
        FaultKind::NotYetValid,
        FaultKind::WrongHost,
        FaultKind::UntrustedCa,
        FaultKind::MissingIntermediate,
        FaultKind::NoServerAuthEku,
        FaultKind::KeyUnreadable,
        FaultKind::Rsa1024,
        FaultKind::Tls11Client,
    ];

    /// The name used in scenario files and reports.
    pub fn as_str(self) -> &'static str {
        match self {
            FaultKind::Expired => "expired",
            FaultKind::NotYetValid => "not_yet_valid",
            FaultKind::WrongHost => "wrong_host",
            FaultKind::UntrustedCa => "untrusted_ca",
            FaultKind::MissingIntermediate => "missing_intermediate",
            FaultKind::NoServerAuthEku => "no_server_auth_eku",
            FaultKind::KeyUnreadable => "key_unreadable",
            FaultKind::Rsa1024 => "rsa1024",
            FaultKind::Tls11Client => "tls11_client",
        }
    }

    /// The failure category its connections are counted under (client side; for
    /// `key_unreadable`, the server's own).
    pub fn category(self) -> &'static str {
        match self {
            FaultKind::Expired => "expired",
            FaultKind::NotYetValid => "not_yet_valid",
            FaultKind::WrongHost => "wrong_host",
            FaultKind::UntrustedCa => "untrusted_ca",
            FaultKind::MissingIntermediate => "unknown_issuer",
            FaultKind::NoServerAuthEku => "bad_usage",
            FaultKind::KeyUnreadable => "key_unreadable",
            FaultKind::Rsa1024 => "weak_key",
            FaultKind::Tls11Client => "no_common_parameters",
        }
    }

    /// Whether staging it needs a certificate issued by vmsbench's own CA (so it cannot be
    /// combined with certificates brought from files).
    pub fn needs_issuing(self) -> bool {
        !matches!(self, FaultKind::KeyUnreadable | FaultKind::Tls11Client)
    }
}

impl std::str::FromStr for FaultKind {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        FaultKind::ALL
            .iter()
            .copied()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| {
                let names: Vec<&str> = FaultKind::ALL.iter().map(|k| k.as_str()).collect();
                format!(
                    "unknown fault {s:?}; valid faults are: {}",
                    names.join(", ")
                )
            })
    }
}

/// Where the servers' certificates come from.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "source")]
pub enum Certificates {
    /// A CA and one certificate per host, generated for the run.
    Generated,
    /// Files: per host `HOST.chain.pem` (or `HOST.pem`) and `HOST.key.pem` in `dir`, as
    /// `vmsbench certs generate` writes them, and the CA clients trust in `ca`.
    Files {
        /// The directory holding the hosts' files.
        dir: std::path::PathBuf,
        /// The CA certificate(s) clients trust, PEM.
        ca: std::path::PathBuf,
    },
}

/// Where the servers listen: every server host on one address, or some hosts on
/// addresses of their own (a port is always chosen by the system).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Listen {
    /// The address of every server host not named in `hosts`.
    pub default: std::net::IpAddr,
    /// Hosts that listen on an address of their own.
    pub hosts: std::collections::BTreeMap<String, std::net::IpAddr>,
    /// Names and addresses a host's certificate carries besides its host name and listen
    /// address (`--host HOST=NAME`: the name clients resolve, and its address).
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub sans: std::collections::BTreeMap<String, Vec<String>>,
}

impl Default for Listen {
    fn default() -> Self {
        Listen {
            default: std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST),
            hosts: std::collections::BTreeMap::new(),
            sans: std::collections::BTreeMap::new(),
        }
    }
}

impl Listen {
    /// The address `host` listens on.
    pub fn of(&self, host: &str) -> std::net::IpAddr {
        self.hosts.get(host).copied().unwrap_or(self.default)
    }

    /// Whether every server listens on 127.0.0.1.
    pub fn is_default(&self) -> bool {
        *self == Listen::default()
    }
}

/// Most cameras in one camera group, and most clients in one client group.
pub const MAX_GROUP: u64 = 100_000;
/// Most cameras on one recording server, all its groups together.
pub const MAX_CAMERAS: u64 = 100_000;
/// Most cameras in one view (the seed system's largest layouts are around 8×8).
pub const MAX_VIEW: u64 = 64;
/// Most cameras one phone watches.
pub const MAX_PHONE_CAMERAS: u64 = 16;
/// Most worker threads per role.
pub const MAX_THREADS: u64 = 1024;
/// Most frames a connection may queue.
pub const MAX_QUEUE_FRAMES: u64 = 1_000_000;
/// The shortest interval of anything periodic (status polls, configuration checks,
/// telemetry): shorter would be a busy loop, not a deployment.
pub const MIN_INTERVAL: Duration = Duration::from_millis(1);
/// The longest interval of anything periodic: a day, far beyond any measured window.
pub const MAX_INTERVAL: Duration = Duration::from_secs(86_400);
/// The latest a scheduled event may happen: the longest measured window.
pub const MAX_EVENT_AT: Duration = Duration::from_secs(7 * 86_400);
/// The largest WAN delay (and jitter) a client group may have.
pub const MAX_WAN_DELAY: Duration = Duration::from_secs(10);
/// The largest share of segments a WAN may lose.
pub const MAX_WAN_LOSS: f64 = 0.5;

/// A whole deployment.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Scenario {
    /// Name (the preset's or the file's).
    pub name: String,
    /// One line saying what it models.
    pub description: String,
    /// Seed of the video model (frame sizes, phases, payload bytes).
    pub seed: u64,
    /// What TLS may negotiate on encrypted links.
    pub tls: TlsSettings,
    /// Key type of every server certificate.
    pub key: KeyType,
    /// Which encryption groups the TLS phase turns on.
    pub encryption: Encryption,
    /// The management server.
    pub management: Management,
    /// Recording servers.
    pub recorders: Vec<RecorderSpec>,
    /// Failover recording servers (host names).
    pub failovers: Vec<String>,
    /// The event server, if any.
    pub event_server: Option<EventServerSpec>,
    /// The mobile server, if any.
    pub mobile_server: Option<MobileServerSpec>,
    /// Viewers.
    pub viewers: Vec<ViewerGroup>,
    /// SDK integrations.
    pub integrations: Vec<IntegrationGroup>,
    /// Phones.
    pub phones: Vec<PhoneGroup>,
    /// Data collectors.
    pub collectors: Vec<CollectorGroup>,
    /// Scheduled events.
    pub events: Vec<ScheduledEvent>,
    /// Where the server certificates come from.
    pub certificates: Certificates,
    /// Certificate faults, at most one per host.
    pub faults: Vec<Fault>,
    /// Frames each connection may queue on a streaming server before it drops.
    pub queue_frames: usize,
    /// Worker threads of each server role's runtime.
    pub server_threads: usize,
    /// Clients (viewers, integrations, phones) that start per second: a deployment's
    /// clients connect one after another at this rate, and the window opens once all of
    /// them are streaming.
    pub connect_rate: u32,
    /// Worker threads of each client role's runtime.
    pub client_threads: usize,
    /// Where the servers listen (127.0.0.1 unless `run --listen` says otherwise; not in
    /// files).
    #[serde(skip_serializing_if = "Listen::is_default")]
    pub listen: Listen,
    /// CPUs each role's threads are pinned to (set by `vmsbench capacity`; not in files).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pinning: Option<Pinning>,
    /// CPU time each recording server burns per frame it sends: a throttle that gives it a
    /// known capacity, for tests (set by `vmsbench capacity --throttle-us-per-frame`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recorder_cpu_per_frame: Option<Duration>,
}

/// Which CPUs the roles run on: some roles on CPUs of their own, every other role on the
/// rest, so that one role's CPU use (and capacity) is not mixed up with its clients'.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pinning {
    /// Role name (`recorder-1`, `viewers`, …) → its CPUs.
    pub roles: std::collections::BTreeMap<String, Vec<usize>>,
    /// The CPUs of every role not listed.
    pub others: Vec<usize>,
}

impl Pinning {
    /// The CPUs of `role`.
    pub fn cpus_of(&self, role: &str) -> &[usize] {
        self.roles.get(role).unwrap_or(&self.others)
    }
}

impl Scenario {
    /// Puts the client groups `group` names behind a WAN of `wan`: a kind (`viewers`,
    /// `integrations`, `phones`, `collectors`) or one group's name. Returns how many groups
    /// it reached; an error names the groups there are when none matched.
    pub fn put_behind_wan(
        &mut self,
        group: &str,
        wan: simulators::role::wan::WanProfile,
    ) -> anyhow::Result<usize> {
        let mut reached = 0;
        let mut hit = |kind: &str, name: &str| {
            let yes = group == kind || group == name;
            reached += usize::from(yes);
            yes
        };
        for g in &mut self.viewers {
            if hit("viewers", &g.name) {
                g.wan = Some(wan);
            }
        }
        for g in &mut self.integrations {
            if hit("integrations", &g.name) {
                g.wan = Some(wan);
            }
        }
        for g in &mut self.phones {
            if hit("phones", &g.name) {
                g.wan = Some(wan);
            }
        }
        for g in &mut self.collectors {
            if hit("collectors", &g.name) {
                g.wan = wan;
            }
        }
        if reached == 0 {
            let names: Vec<&str> = (self.viewers.iter().map(|g| g.name.as_str()))
                .chain(self.integrations.iter().map(|g| g.name.as_str()))
                .chain(self.phones.iter().map(|g| g.name.as_str()))
                .chain(self.collectors.iter().map(|g| g.name.as_str()))
                .collect();
            anyhow::bail!(
                "--wan {group}: no client group is called so; give viewers, integrations, \
                 phones, collectors or one of this scenario's groups: {}",
                names.join(", ")
            );
        }
        Ok(reached)
    }

    /// The recording server (or failover) named `host`.
    pub fn recorder(&self, host: &str) -> Option<&RecorderSpec> {
        self.recorders.iter().find(|r| r.host == host)
    }

    /// The fault staged on `host`, if any.
    pub fn fault_on(&self, host: &str) -> Option<FaultKind> {
        self.faults.iter().find(|f| f.host == host).map(|f| f.kind)
    }

    /// Every host that needs a server certificate.
    pub fn server_hosts(&self) -> Vec<String> {
        let mut hosts = vec![self.management.host.clone()];
        hosts.extend(self.recorders.iter().map(|r| r.host.clone()));
        hosts.extend(self.failovers.iter().cloned());
        hosts.extend(self.event_server.iter().map(|e| e.host.clone()));
        hosts.extend(self.mobile_server.iter().map(|m| m.host.clone()));
        hosts.dedup();
        hosts
    }

    /// The links this scenario uses.
    pub fn links(&self) -> Vec<LinkId> {
        let has_clients = self.viewers.iter().any(|v| v.count > 0)
            || self.integrations.iter().any(|i| i.count > 0);
        LinkId::ALL
            .iter()
            .copied()
            .filter(|l| match l {
                LinkId::RecorderMgmt => !self.recorders.is_empty(),
                LinkId::ClientMgmt => has_clients,
                LinkId::EventMgmt => self.event_server.is_some(),
                LinkId::MobileMgmt => self.mobile_server.is_some(),
                LinkId::CollectorMgmt => self.collectors.iter().any(|c| c.count > 0),
                LinkId::ViewerRecorder => self.viewers.iter().any(|v| v.count > 0),
                LinkId::SdkRecorder => self.integrations.iter().any(|i| i.count > 0),
                LinkId::MobileRecorder | LinkId::PhoneMobile => {
                    self.mobile_server.is_some() && self.phones.iter().any(|p| p.count > 0)
                }
                LinkId::ClientEvent => {
                    self.event_server.is_some() && self.viewers.iter().any(|v| v.count > 0)
                }
            })
            .collect()
    }

    /// Whether `link` is encrypted in the TLS phase.
    pub fn encrypted(&self, link: LinkId) -> bool {
        self.encryption.covers(link.group())
    }
}

/// Worker threads per role by default: half the cores, at least one.
pub fn default_threads() -> usize {
    std::thread::available_parallelism()
        .map_or(1, |n| n.get() / 2)
        .max(1)
}
