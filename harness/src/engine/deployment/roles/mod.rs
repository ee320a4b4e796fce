//! Starting the roles of a plan, all through one interface: a [`RoleSpec`] goes in
//! ([`start`]), a [`RoleHandle`] comes out that reports what the role counted and can be
//! stopped. Each kind of role has a file of its own: [`management`], [`streaming`]
//! (recording, failover, event and mobile servers), [`clients`] (video and RPC clients),
//! [`watcher`].
//!
//! What the roles of one process share lives in [`Site`]: the runtimes (threads and CPU
//! accounts) created on first use, the directory of the addresses servers bound, the
//! deployment's credentials and the payload pool. A role names the hosts it dials; the
//! directory turns them into addresses, so a role description never carries one.

mod bulk;
mod clients;
mod management;
mod streaming;
mod watcher;

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;

use anyhow::Context as _;
use rustls::ClientConfig;
use simulators::clock::RunClock;
use simulators::metrics::{Meter, Window};
use simulators::pki::ReloadableIdentity;
use simulators::role::recorder::RecorderStats;
use simulators::role::RoleRuntime;
use simulators::transport::{Connector, Listener};
use simulators::video::{Camera, PayloadPool, Profile};

use super::plan::{CameraRef, Plan, RoleKind, RoleSpec, Security};
use crate::engine::credentials::Credentials;
use crate::engine::scenario::{LinkId, Pinning};
use crate::engine::watcher::Attempt;

use super::Listening;

pub(super) use bulk::CARRIER as BULK_CARRIER;
pub(super) use clients::{offered, ClientOutcome};

/// Where each server of the phase listens, by host and link.
#[derive(Debug, Default)]
pub(super) struct Directory {
    addrs: BTreeMap<String, BTreeMap<LinkId, (SocketAddr, bool)>>,
    /// The digest of the management server's configuration, for clients that check what
    /// they download.
    config_digest: Option<[u8; 32]>,
}

impl Directory {
    /// Where a server of another process accepts `link`, as clients here reach it.
    pub(in crate::engine::deployment) fn add(
        &mut self,
        host: &str,
        link: LinkId,
        addr: SocketAddr,
        tls: bool,
    ) {
        self.register(host, link, addr, tls);
    }

    fn register(&mut self, host: &str, link: LinkId, addr: SocketAddr, tls: bool) {
        self.addrs
            .entry(host.to_owned())
            .or_default()
            .insert(link, (dialable(addr), tls));
    }

    /// Where `host` accepts connections on `link`; a streaming server accepts every link
    /// it serves on one listener.
    pub(super) fn lookup(&self, host: &str, link: LinkId) -> Option<SocketAddr> {
        let links = self.addrs.get(host)?;
        links
            .get(&link)
            .or_else(|| links.values().next())
            .map(|(addr, _)| *addr)
    }

    /// Every listener: where each host accepts each link.
    pub(super) fn listeners(&self) -> Vec<Listening> {
        self.addrs
            .iter()
            .flat_map(|(host, links)| {
                links.iter().map(|(link, (addr, tls))| Listening {
                    host: host.clone(),
                    link: *link,
                    address: *addr,
                    tls: *tls,
                })
            })
            .collect()
    }
}

/// The runtimes of a phase, created on first use.
#[derive(Debug)]
struct Runtimes {
    server_threads: usize,
    client_threads: usize,
    pinning: Option<Pinning>,
    map: BTreeMap<String, RoleRuntime>,
}

impl Runtimes {
    fn get(&mut self, name: &str, server: bool) -> anyhow::Result<&RoleRuntime> {
        if !self.map.contains_key(name) {
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
            self.map.insert(name.to_owned(), rt);
        }
        self.map
            .get(name)
            .with_context(|| format!("role {name} vanished"))
    }
}

/// What the roles of one process share while a phase runs.
pub(super) struct Site<'a> {
    /// The phase's plan.
    pub plan: &'a Plan,
    /// The certificates and trust store of the deployment.
    pub creds: &'a Credentials,
    /// The run clock.
    pub clock: RunClock,
    /// The measured window.
    pub window: Arc<Window>,
    /// Where servers listen.
    pub directory: Directory,
    runtimes: Runtimes,
    /// The deployment's payload pool: every camera's frames are slices of it, and every
    /// client checks what it receives against it.
    pool: PayloadPool,
    profiles: BTreeMap<String, Arc<Profile>>,
    client_config: Option<Arc<ClientConfig>>,
}

impl std::fmt::Debug for Site<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Site")
            .field("directory", &self.directory)
            .field("runtimes", &self.runtimes.map.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

impl<'a> Site<'a> {
    /// A site for `plan`: no runtime and no server yet.
    pub(super) fn new(
        plan: &'a Plan,
        creds: &'a Credentials,
        clock: RunClock,
        window: Arc<Window>,
    ) -> Site<'a> {
        Site {
            plan,
            creds,
            clock,
            window,
            directory: Directory::default(),
            runtimes: Runtimes {
                server_threads: plan.site.server_threads,
                client_threads: plan.site.client_threads,
                pinning: plan.site.pinning.clone(),
                map: BTreeMap::new(),
            },
            pool: PayloadPool::new(plan.largest_frame, plan.seed),
            profiles: plan
                .profiles
                .iter()
                .map(|(k, p)| (k.clone(), Arc::new(p.clone())))
                .collect(),
            client_config: None,
        }
    }

    /// The runtime `name`, with server or client threads.
    fn runtime(&mut self, name: &str, server: bool) -> anyhow::Result<&RoleRuntime> {
        self.runtimes.get(name, server)
    }

    /// CPU seconds used so far by each runtime.
    pub(super) fn cpu(&self) -> BTreeMap<String, f64> {
        self.runtimes
            .map
            .iter()
            .map(|(k, v)| (k.clone(), v.cpu_seconds()))
            .collect()
    }

    /// The cameras of `refs`, sharing the payload pool.
    fn cameras(&self, refs: &[CameraRef]) -> Vec<Camera> {
        refs.iter()
            .filter_map(|r| {
                let profile = self.profiles.get(&r.profile)?.clone();
                Some(Camera::new(
                    r.id,
                    profile,
                    self.plan.seed,
                    self.pool.clone(),
                ))
            })
            .collect()
    }

    /// The deployment's client configuration (its trust store, the pinned settings).
    fn client_config(&mut self) -> anyhow::Result<Arc<ClientConfig>> {
        if let Some(c) = &self.client_config {
            return Ok(c.clone());
        }
        let c = self.creds.client_config(&self.plan.site.tls)?;
        self.client_config = Some(c.clone());
        Ok(c)
    }

    /// A connector for a client of `security`.
    fn connector(&mut self, security: Security) -> anyhow::Result<Connector> {
        Ok(match security {
            Security::Plain => Connector::plain(),
            Security::Tls => Connector::tls(self.client_config()?),
            Security::Tls11Only => Connector::tls11_only(),
        })
    }

    /// The server configuration of `host` (accepting what real clients commonly offer, the
    /// pinned settings first): through a replaceable identity when its certificate changes
    /// during the run.
    fn server_tls(&self, host: &str, tls: bool, reloadable: bool) -> anyhow::Result<ServerTls> {
        if !tls {
            return Ok((None, None));
        }
        let tls = &self.plan.site.tls;
        if reloadable {
            let (config, identity) = self.creds.server_config_reloadable(host, tls)?;
            return Ok((Some(config), Some(identity)));
        }
        Ok((Some(self.creds.server_config(host, tls)?), None))
    }
}

/// A server's TLS configuration (none when it is not encrypted), and the replaceable
/// identity it presents when its certificate changes during the run.
type ServerTls = (
    Option<Arc<rustls::ServerConfig>>,
    Option<Arc<ReloadableIdentity>>,
);

/// Binds `ip` (127.0.0.1 unless the run says otherwise) on a port the system chooses,
/// registered with the role's own runtime so that its sockets are driven by the role's
/// threads.
pub(super) async fn bind(
    rt: &RoleRuntime,
    tls: Option<Arc<rustls::ServerConfig>>,
    ip: IpAddr,
) -> anyhow::Result<Listener> {
    let addr = SocketAddr::from((ip, 0));
    let bound = rt.spawn(Listener::bind(addr, tls)).await?;
    bound.with_context(|| format!("listening on {ip}"))
}

/// Where a client of this process reaches a listener bound at `addr`: the loopback
/// address when it listens on every address.
fn dialable(addr: SocketAddr) -> SocketAddr {
    match addr.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => {
            SocketAddr::from((Ipv4Addr::LOCALHOST, addr.port()))
        }
        IpAddr::V6(ip) if ip.is_unspecified() => {
            SocketAddr::from((Ipv6Addr::LOCALHOST, addr.port()))
        }
        _ => addr,
    }
}

/// A started role. Its CPU is its runtime's ([`Site::cpu`]), shared with the roles the
/// plan puts on the same runtime.
#[derive(Debug)]
pub(super) struct RoleHandle {
    running: Running,
}

#[derive(Debug)]
enum Running {
    Management(management::Running),
    Streaming(streaming::Running),
    Clients(clients::Running),
    Watcher(watcher::Running),
    BulkSender(bulk::Sender),
    BulkReceivers(bulk::Receivers),
}

/// What a server counted, for the links it serves.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
pub(crate) struct ServerCount {
    /// Its host.
    pub host: String,
    /// The links it serves (its failures are reported on the first).
    pub links: Vec<LinkId>,
    /// What it counted.
    pub stats: RecorderStats,
}

/// Starts `spec` at `site`: the one way every role starts.
pub(super) async fn start(spec: &RoleSpec, site: &mut Site<'_>) -> anyhow::Result<RoleHandle> {
    let running = match &spec.kind {
        RoleKind::Management(m) => {
            Running::Management(management::start(m, &spec.runtime, spec.server, site).await?)
        }
        RoleKind::Streaming(s) => {
            Running::Streaming(streaming::start(s, &spec.runtime, spec.server, site).await?)
        }
        RoleKind::VideoClients(g) => {
            Running::Clients(clients::start_video(g, &spec.runtime, spec.server, site).await?)
        }
        RoleKind::RpcClients(g) => {
            Running::Clients(clients::start_rpc(g, &spec.runtime, spec.server, site).await?)
        }
        RoleKind::Watcher(w) => {
            Running::Watcher(watcher::start(w, &spec.runtime, spec.server, site)?)
        }
        RoleKind::BulkSender(b) => {
            Running::BulkSender(bulk::start_sender(b, &spec.runtime, spec.server, site).await?)
        }
        RoleKind::BulkReceivers(b) => {
            Running::BulkReceivers(bulk::start_receivers(b, &spec.runtime, spec.server, site)?)
        }
    };
    Ok(RoleHandle { running })
}

impl RoleHandle {
    /// The server host it is, if it is a streaming server that still runs.
    pub(super) fn streaming_host(&self) -> Option<&str> {
        match &self.running {
            Running::Streaming(s) => s.host(),
            _ => None,
        }
    }

    /// The meters its clients record into, with their links.
    pub(super) fn meters(&self) -> Vec<(LinkId, Arc<Meter>)> {
        match &self.running {
            Running::Streaming(s) => s.meters(),
            Running::Clients(c) => c.meters(),
            Running::BulkReceivers(b) => b.meters(),
            Running::Management(_) | Running::Watcher(_) | Running::BulkSender(_) => Vec::new(),
        }
    }

    /// Frames its server dropped for slow consumers so far.
    pub(super) fn dropped_frames(&self) -> u64 {
        self.server_count()
            .map_or(0, |c| c.stats.sent.dropped_frames)
    }

    /// What its streaming server counted so far (none once it was stopped).
    pub(super) fn server_count(&self) -> Option<ServerCount> {
        match &self.running {
            Running::Streaming(s) => s.count(),
            Running::BulkSender(b) => b.count(),
            _ => None,
        }
    }

    /// The server's own failed connections so far, by category, with its host.
    pub(super) fn server_failures(&self) -> Option<(String, BTreeMap<String, u64>)> {
        match &self.running {
            Running::Management(m) => Some(m.failures()),
            Running::Streaming(s) => s.count().map(|c| (c.host, c.stats.failures)),
            Running::BulkSender(b) => b.count().map(|c| (c.host, c.stats.failures)),
            _ => None,
        }
    }

    /// Whether it is a recording (or failover) server.
    pub(super) fn is_recording(&self) -> bool {
        matches!(&self.running, Running::Streaming(s) if s.is_recording())
    }

    /// How far behind schedule its recording server's frames have left since the last
    /// call.
    pub(super) fn take_lag(&self) -> std::time::Duration {
        match &self.running {
            Running::Streaming(s) => s.take_lag(),
            _ => std::time::Duration::ZERO,
        }
    }

    /// Stalls its recording server for `duration`.
    pub(super) fn stall(&self, duration: std::time::Duration) {
        if let Running::Streaming(s) = &self.running {
            s.stall(duration);
        }
    }

    /// The replaceable identity its server presents, if its certificate changes during
    /// the run: `(host, identity)`.
    pub(super) fn identity(&self) -> Option<(&str, &Arc<ReloadableIdentity>)> {
        match &self.running {
            Running::Management(m) => m.identity(),
            Running::Streaming(s) => s.identity(),
            _ => None,
        }
    }

    /// Stops its streaming server (a scheduled failure); its clients go on. False if it
    /// has none running.
    pub(super) async fn stop_server(&mut self) -> bool {
        match &mut self.running {
            Running::Streaming(s) => s.stop_server().await,
            _ => false,
        }
    }

    /// Stops its watcher and returns what it saw: `(host, attempts)`.
    pub(super) async fn stop_watcher(&mut self) -> Option<(String, Vec<Attempt>)> {
        match &mut self.running {
            Running::Watcher(w) => w.stop().await,
            _ => None,
        }
    }

    /// Stops its clients and returns what each group of them measured.
    pub(super) async fn stop_clients(&mut self) -> Vec<ClientOutcome> {
        match &mut self.running {
            Running::Streaming(s) => s.stop_clients().await,
            Running::Clients(c) => c.stop().await,
            Running::BulkReceivers(b) => b.stop().await,
            Running::Management(_) | Running::Watcher(_) | Running::BulkSender(_) => Vec::new(),
        }
    }

    /// Stops what is left: its server, its WAN links.
    pub(super) async fn stop(self) {
        match self.running {
            Running::Management(m) => m.stop().await,
            Running::Streaming(s) => s.stop().await,
            Running::Clients(c) => c.stop_links().await,
            Running::BulkSender(b) => b.stop().await,
            Running::Watcher(_) | Running::BulkReceivers(_) => {}
        }
    }
}
