//! Clients as roles: groups of video clients (viewers, integrations, phones, event clients,
//! the mobile server's upstream streams) and of RPC clients (logins, status polls, remote
//! collectors behind their WAN links), each client started on the group's runtime.
//!
//! A client marked with a WAN dials a relay ([`WanLink`]) in front of its server: a remote
//! collector a relay of its own (each site has its own WAN), video clients one relay per
//! link, server and profile, which every such client of the role shares (a site's uplink).
//! What the relays counted goes out with the clients' outcome.
//!
//! Clients record into meters they share: one per link, server host and recording server
//! started on (so that failovers and per-host counts stay apart). A thousand viewers of
//! one recording server cost one meter, not a thousand.

use std::collections::BTreeMap;
use std::sync::Arc;

use anyhow::Context as _;
use simulators::metrics::{LinkMetrics, Meter};
use simulators::role::rpc::{RpcClient, RpcConfig};
use simulators::role::viewer::{Endpoint, HeaderHook, StreamRequest, Viewer, ViewerConfig};
use simulators::role::wan::{WanLink, WanProfile};
use simulators::video::Playback;

use super::Site;
use crate::engine::deployment::outcome::WanOutcome;
use crate::engine::deployment::plan::{
    frame_interval_ns, stream_bps, ClientGroup, RpcClientSpec, VideoClientSpec,
};
use crate::engine::scenario::LinkId;

/// The runtime of the WAN links in front of clients.
const WAN_RUNTIME: &str = "wan";

/// What one group of clients (one link, one server host, one recording server started on)
/// measured.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
pub(crate) struct ClientOutcome {
    /// Its link.
    pub link: LinkId,
    /// What its clients measured, merged.
    pub metrics: LinkMetrics,
    /// Why clients ended early, distinct messages.
    pub errors: Vec<String>,
    /// Clients in the group.
    pub clients: u64,
    /// Live streams they had (1 per RPC client).
    pub streams: u64,
    /// What their streams should carry, bit/s (0 for RPC clients).
    pub offered_bps: f64,
    /// The recording server they started on (for failover reports).
    pub recorder: Option<String>,
    /// The server host they dialled first.
    pub host: String,
    /// What the WAN relays in front of them counted, if they had any. Each relay is
    /// counted with one outcome of its link only.
    #[serde(default)]
    pub wan: Option<WanOutcome>,
}

/// A running WAN relay, with the link and server it stands in front of.
#[derive(Debug)]
struct Relay {
    link: LinkId,
    host: String,
    /// Shared by the clients of `host` with the same profile (video), or one client's own.
    shared: bool,
    wan: WanLink,
}

/// Which meter a client records into.
type GroupKey = (LinkId, String, Option<String>);

/// A group's meter and what its clients add up to.
#[derive(Debug)]
struct Group {
    meter: Arc<Meter>,
    streams: u64,
    offered_bps: f64,
}

/// A running client.
#[derive(Debug)]
enum Client {
    Video(Viewer),
    Rpc(RpcClient),
}

/// A running group of clients.
#[derive(Debug, Default)]
pub(super) struct Running {
    groups: BTreeMap<GroupKey, Group>,
    clients: Vec<(GroupKey, Client)>,
    wan: Vec<Relay>,
}

/// Starts every video client of `group` on `runtime` (behind a WAN relay where marked).
pub(super) async fn start_video(
    group: &ClientGroup<VideoClientSpec>,
    runtime: &str,
    server: bool,
    site: &mut Site<'_>,
) -> anyhow::Result<Running> {
    let mut running = Running::default();
    running
        .add_video(&group.clients, group.link, runtime, server, None, site)
        .await?;
    Ok(running)
}

/// Starts every RPC client of `group` on `runtime` (with a WAN link in front of each
/// remote collector).
pub(super) async fn start_rpc(
    group: &ClientGroup<RpcClientSpec>,
    runtime: &str,
    server: bool,
    site: &mut Site<'_>,
) -> anyhow::Result<Running> {
    let mut running = Running::default();
    for c in &group.clients {
        running
            .add_rpc(c, group.link, runtime, server, group.clients.len(), site)
            .await?;
    }
    Ok(running)
}

impl Running {
    /// The meter of `key`, made for up to `clients` clients on first use.
    fn group(&mut self, key: &GroupKey, clients: usize) -> &mut Group {
        self.groups.entry(key.clone()).or_insert_with(|| Group {
            meter: Meter::new(clients),
            streams: 0,
            offered_bps: 0.0,
        })
    }

    /// Where a client of `link` dials `host` at `addr`: the address itself, or a WAN relay
    /// in front of it — shared by the clients of the same server and profile, or (not
    /// `shared`) the client's own. `salt` is what tells the client apart in the plan (its
    /// start offset or phase), so that a relay started for it draws its own losses and
    /// jitter, also in another process that starts its relays in the same order.
    #[allow(clippy::too_many_arguments)]
    async fn dial_through(
        &mut self,
        link: LinkId,
        host: &str,
        addr: std::net::SocketAddr,
        wan: Option<WanProfile>,
        shared: bool,
        salt: u64,
        site: &mut Site<'_>,
    ) -> anyhow::Result<std::net::SocketAddr> {
        let Some(profile) = wan else {
            return Ok(addr);
        };
        if shared {
            let existing = self.wan.iter().find(|r| {
                r.shared && r.link == link && r.host == host && r.wan.profile() == profile
            });
            if let Some(r) = existing {
                return Ok(r.wan.addr());
            }
        }
        let seed =
            site.plan.seed ^ salt.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ self.wan.len() as u64;
        let wan = WanLink::start_seeded(site.runtime(WAN_RUNTIME, false)?, addr, profile, seed)
            .await
            .with_context(|| format!("{link}: the WAN relay in front of {host}"))?;
        let relay = wan.addr();
        self.wan.push(Relay {
            link,
            host: host.to_owned(),
            shared,
            wan,
        });
        Ok(relay)
    }

    /// Starts video clients of `link` on `runtime` (each but those whose server is not
    /// running), calling `on_header` with every frame each receives intact.
    pub(super) async fn add_video(
        &mut self,
        clients: &[VideoClientSpec],
        link: LinkId,
        runtime: &str,
        server: bool,
        on_header: Option<HeaderHook>,
        site: &mut Site<'_>,
    ) -> anyhow::Result<()> {
        for c in clients {
            let Some(addr) = site.directory.lookup(&c.server, link) else {
                continue;
            };
            let addr = self
                .dial_through(link, &c.server, addr, c.wan, true, c.start_offset_ns, site)
                .await?;
            let failover = match &c.failover {
                Some(f) => match site.directory.lookup(f, link) {
                    Some(a) => Some(Endpoint {
                        addr: self
                            .dial_through(link, f, a, c.wan, true, c.start_offset_ns, site)
                            .await?,
                        host: f.clone(),
                    }),
                    None => None,
                },
                None => None,
            };
            let key = (link, c.server.clone(), c.recorder.clone());
            let cameras = site.cameras(&c.cameras);
            let group = self.group(&key, clients.len());
            group.offered_bps += cameras
                .iter()
                .map(|cam| stream_bps(&cam.profile, c.playback))
                .sum::<f64>();
            // Playback schedules start when the server receives the subscription; only
            // the server knows them, so playback streams are counted from its offers.
            if c.playback == Playback::Live {
                group.streams += cameras.len() as u64;
            }
            let meter = group.meter.client();
            let config = ViewerConfig {
                server: Endpoint {
                    addr,
                    host: c.server.clone(),
                },
                failover,
                streams: cameras
                    .iter()
                    .map(|cam| StreamRequest {
                        camera: cam.id,
                        interval_ns: frame_interval_ns(&cam.profile, c.playback),
                    })
                    .collect(),
                playback: c.playback,
                connector: site.connector(c.security)?,
                label: link.as_str().into(),
                on_frame: None,
                on_header: on_header.clone(),
                verify: Some(site.pool.clone()),
                meter: Some(meter),
                start_at_ns: (c.start_offset_ns > 0)
                    .then(|| site.plan.start_ns + c.start_offset_ns),
            };
            let (clock, window) = (site.clock, site.window.clone());
            let rt = site.runtime(runtime, server)?;
            let viewer = Viewer::start(rt, config, clock, window);
            self.clients.push((key, Client::Video(viewer)));
        }
        Ok(())
    }

    /// Starts an RPC client of `link` on `runtime`, one of `of` in its group.
    pub(super) async fn add_rpc(
        &mut self,
        c: &RpcClientSpec,
        link: LinkId,
        runtime: &str,
        server: bool,
        of: usize,
        site: &mut Site<'_>,
    ) -> anyhow::Result<()> {
        let addr = site
            .directory
            .lookup(&c.server, link)
            .with_context(|| format!("{link}: {} is not listening", c.server))?;
        let addr = self
            .dial_through(link, &c.server, addr, c.wan, false, c.phase_ns, site)
            .await?;
        let key = (link, c.server.clone(), None);
        let group = self.group(&key, of);
        group.streams += 1;
        let meter = group.meter.client();
        let config = RpcConfig {
            server: Endpoint {
                addr,
                host: c.server.clone(),
            },
            connector: site.connector(c.security)?,
            call: c.call,
            interval: c.interval,
            start_ns: site.plan.start_ns,
            phase_ns: c.phase_ns,
            config_digest: if c.checks_config {
                site.directory.config_digest
            } else {
                None
            },
            meter: Some(meter),
        };
        let (clock, window) = (site.clock, site.window.clone());
        let rt = site.runtime(runtime, server)?;
        let client = RpcClient::start(rt, config, clock, window);
        self.clients.push((key, Client::Rpc(client)));
        Ok(())
    }

    /// Each group's meter, with its link.
    pub(super) fn meters(&self) -> Vec<(LinkId, Arc<Meter>)> {
        self.groups
            .iter()
            .map(|((link, _, _), g)| (*link, g.meter.clone()))
            .collect()
    }

    /// Stops every client and returns what each group measured.
    pub(super) async fn stop(&mut self) -> Vec<ClientOutcome> {
        let mut errors: BTreeMap<GroupKey, Vec<String>> = BTreeMap::new();
        for (key, client) in std::mem::take(&mut self.clients) {
            let outcome = match client {
                Client::Video(v) => v.finish().await.err().map(|e| e.to_string()),
                Client::Rpc(c) => {
                    c.finish().await;
                    None
                }
            };
            let list = errors.entry(key).or_default();
            if let Some(e) = outcome.filter(|e| !list.contains(e)) {
                list.push(e);
            }
        }
        let mut outcomes: Vec<ClientOutcome> = std::mem::take(&mut self.groups)
            .into_iter()
            .map(|(key, g)| {
                let (link, host, recorder) = key.clone();
                ClientOutcome {
                    link,
                    metrics: g.meter.snapshot(),
                    errors: errors.remove(&key).unwrap_or_default(),
                    clients: g.meter.clients(),
                    streams: g.streams,
                    offered_bps: g.offered_bps,
                    recorder,
                    host,
                    wan: None,
                }
            })
            .collect();
        self.count_relays(&mut outcomes);
        outcomes
    }

    /// Adds what each WAN relay counted to one outcome of its link: the one of its server
    /// if there is one (a failover's relay may have none), else the link's first.
    fn count_relays(&self, outcomes: &mut [ClientOutcome]) {
        for r in &self.wan {
            let counted = WanOutcome {
                profile: Some(r.wan.profile()),
                relays: 1,
                stats: r.wan.stats(),
            };
            let at = outcomes
                .iter()
                .position(|o| o.link == r.link && o.host == r.host)
                .or_else(|| outcomes.iter().position(|o| o.link == r.link));
            if let Some(o) = at.and_then(|i| outcomes.get_mut(i)) {
                WanOutcome::merge_into(&mut o.wan, &counted);
            }
        }
    }

    /// Stops the WAN links (after the clients and the servers).
    pub(super) async fn stop_links(self) {
        for r in self.wan {
            r.wan.stop().await;
        }
    }
}

/// Offered bit rate per link of `outcomes`.
pub(in crate::engine::deployment) fn offered(outcomes: &[ClientOutcome]) -> BTreeMap<LinkId, f64> {
    let mut out: BTreeMap<LinkId, f64> = BTreeMap::new();
    for c in outcomes {
        *out.entry(c.link).or_default() += c.offered_bps;
    }
    out
}
