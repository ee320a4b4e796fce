//! Clients as roles: groups of video clients (viewers, integrations, phones, event clients,
//! the mobile server's upstream streams) and of RPC clients (logins, status polls, remote
//! collectors behind their WAN links), each client started on the group's runtime.

use std::collections::BTreeMap;

use anyhow::Context as _;
use simulators::metrics::{LinkMetrics, MetricsProbe};
use simulators::role::rpc::{RpcClient, RpcConfig};
use simulators::role::viewer::{Endpoint, FrameHook, StreamRequest, Viewer, ViewerConfig};
use simulators::role::wan::WanLink;
use simulators::video::Playback;

use super::Site;
use crate::engine::deployment::plan::{
    frame_interval_ns, stream_bps, ClientGroup, RpcClientSpec, VideoClientSpec,
};
use crate::engine::scenario::LinkId;

/// The runtime of the WAN links in front of remote collectors.
const WAN_RUNTIME: &str = "wan";

/// One client's final figures.
#[derive(Debug)]
pub(in crate::engine::deployment) struct ClientOutcome {
    /// Its link.
    pub link: LinkId,
    /// What it measured.
    pub metrics: LinkMetrics,
    /// Why it ended early, if it did.
    pub error: Option<String>,
    /// Live streams it had (1 for an RPC client).
    pub streams: u64,
    /// What its streams should carry, bit/s (0 for an RPC client).
    pub offered_bps: f64,
    /// The recording server it started on (for failover reports).
    pub recorder: Option<String>,
    /// The server host it dialled first.
    pub host: String,
}

/// A running client.
#[derive(Debug)]
enum Client {
    Video {
        viewer: Viewer,
        offered_bps: f64,
        live_streams: u64,
        recorder: Option<String>,
    },
    Rpc {
        client: RpcClient,
    },
}

#[derive(Debug)]
struct Started {
    link: LinkId,
    host: String,
    client: Client,
}

/// A running group of clients.
#[derive(Debug, Default)]
pub(super) struct Running {
    clients: Vec<Started>,
    wan: Vec<WanLink>,
}

/// Starts a video client of `link` on `runtime`, or none when its server is not running.
pub(super) fn start_one_video(
    c: &VideoClientSpec,
    link: LinkId,
    runtime: &str,
    server: bool,
    on_frame: Option<FrameHook>,
    site: &mut Site<'_>,
) -> anyhow::Result<Option<(Viewer, f64, u64)>> {
    let Some(addr) = site.directory.lookup(&c.server, link) else {
        return Ok(None);
    };
    let failover = c.failover.as_ref().and_then(|f| {
        Some(Endpoint {
            addr: site.directory.lookup(f, link)?,
            host: f.clone(),
        })
    });
    let cameras = site.cameras(&c.cameras);
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
        on_frame,
    };
    let offered_bps = cameras
        .iter()
        .map(|cam| stream_bps(&cam.profile, c.playback))
        .sum();
    // Playback schedules start when the server receives the subscription; only the
    // server knows them, so playback streams are counted from its offers instead.
    let live = if c.playback == Playback::Live {
        cameras.len() as u64
    } else {
        0
    };
    let (clock, window) = (site.clock, site.window.clone());
    let rt = site.runtime(runtime, server)?;
    Ok(Some((
        Viewer::start(rt, config, clock, window),
        offered_bps,
        live,
    )))
}

/// Starts every video client of `group` on `runtime`.
pub(super) fn start_video(
    group: &ClientGroup<VideoClientSpec>,
    runtime: &str,
    server: bool,
    site: &mut Site<'_>,
) -> anyhow::Result<Running> {
    let mut running = Running::default();
    running.add_video(&group.clients, group.link, runtime, server, None, site)?;
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
            .add_rpc(c, group.link, runtime, server, site)
            .await?;
    }
    Ok(running)
}

impl Running {
    /// Starts video clients of `link` on `runtime`.
    pub(super) fn add_video(
        &mut self,
        clients: &[VideoClientSpec],
        link: LinkId,
        runtime: &str,
        server: bool,
        on_frame: Option<FrameHook>,
        site: &mut Site<'_>,
    ) -> anyhow::Result<()> {
        for c in clients {
            let Some((viewer, offered_bps, live_streams)) =
                start_one_video(c, link, runtime, server, on_frame.clone(), site)?
            else {
                continue;
            };
            self.clients.push(Started {
                link,
                host: c.server.clone(),
                client: Client::Video {
                    viewer,
                    offered_bps,
                    live_streams,
                    recorder: c.recorder.clone(),
                },
            });
        }
        Ok(())
    }

    /// Starts an RPC client of `link` on `runtime`.
    pub(super) async fn add_rpc(
        &mut self,
        c: &RpcClientSpec,
        link: LinkId,
        runtime: &str,
        server: bool,
        site: &mut Site<'_>,
    ) -> anyhow::Result<()> {
        let addr = site
            .directory
            .lookup(&c.server, link)
            .with_context(|| format!("{link}: {} is not listening", c.server))?;
        let addr = match c.wan_delay {
            Some(delay) => {
                let wan = WanLink::start(site.runtime(WAN_RUNTIME, false)?, addr, delay).await?;
                let relay = wan.addr();
                self.wan.push(wan);
                relay
            }
            None => addr,
        };
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
        };
        let (clock, window) = (site.clock, site.window.clone());
        let rt = site.runtime(runtime, server)?;
        let client = RpcClient::start(rt, config, clock, window);
        self.clients.push(Started {
            link,
            host: c.server.clone(),
            client: Client::Rpc { client },
        });
        Ok(())
    }

    /// A probe on each client's metrics, with its link.
    pub(super) fn probes(&self) -> Vec<(LinkId, MetricsProbe)> {
        self.clients
            .iter()
            .map(|s| {
                let probe = match &s.client {
                    Client::Video { viewer, .. } => viewer.probe(),
                    Client::Rpc { client } => client.probe(),
                };
                (s.link, probe)
            })
            .collect()
    }

    /// Stops every client and returns what each measured.
    pub(super) async fn stop(&mut self) -> Vec<ClientOutcome> {
        let mut out = Vec::new();
        for s in std::mem::take(&mut self.clients) {
            out.push(match s.client {
                Client::Video {
                    viewer,
                    offered_bps,
                    live_streams,
                    recorder,
                } => {
                    let (metrics, outcome) = viewer.stop().await;
                    ClientOutcome {
                        link: s.link,
                        metrics,
                        error: outcome.err().map(|e| e.to_string()),
                        streams: live_streams,
                        offered_bps,
                        recorder,
                        host: s.host,
                    }
                }
                Client::Rpc { client } => ClientOutcome {
                    link: s.link,
                    metrics: client.stop().await,
                    error: None,
                    streams: 1,
                    offered_bps: 0.0,
                    recorder: None,
                    host: s.host,
                },
            });
        }
        out
    }

    /// Stops the WAN links (after the clients and the servers).
    pub(super) async fn stop_links(self) {
        for w in self.wan {
            w.stop().await;
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
