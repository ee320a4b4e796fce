//! The ceiling test's roles: the sender (frames as fast as its connections take them) and
//! its receivers (one stream each, every byte checked against the sender's payload).

use std::collections::BTreeMap;
use std::sync::Arc;

use anyhow::Context as _;
use simulators::metrics::{latency_histogram, Meter};
use simulators::role::bulk::BulkSender;
use simulators::role::recorder::RecorderStats;
use simulators::role::viewer::{Endpoint, StreamRequest, Viewer, ViewerConfig};
use simulators::video::{PayloadPool, Playback};

use super::{bind, ClientOutcome, ServerCount, Site};
use crate::engine::deployment::plan::{BulkReceiversRole, BulkSenderRole};
use crate::engine::scenario::LinkId;

/// The link the ceiling test's counts travel under inside the engine (its report calls it
/// `bulk`): a viewer's stream from a recording server's host.
pub(crate) const CARRIER: LinkId = LinkId::ViewerRecorder;

/// A running sender.
#[derive(Debug)]
pub(super) struct Sender {
    host: String,
    sender: Option<BulkSender>,
}

/// Binds and starts the sender of `role`.
pub(super) async fn start_sender(
    role: &BulkSenderRole,
    runtime: &str,
    server: bool,
    site: &mut Site<'_>,
) -> anyhow::Result<Sender> {
    let (tls, _) = site.server_tls(&role.host, role.tls, false)?;
    let ip = site.plan.site.listen.of(&role.host);
    let (clock, window) = (site.clock, site.window.clone());
    let rt = site.runtime(runtime, server)?;
    let listener = bind(rt, tls, ip).await.context("binding the bulk sender")?;
    let sender = BulkSender::start(rt, listener, role.frame_size, clock, window)?;
    site.directory
        .register(&role.host, CARRIER, sender.addr(), role.tls);
    Ok(Sender {
        host: role.host.clone(),
        sender: Some(sender),
    })
}

impl Sender {
    /// What it sent in the window, and its failed connections.
    pub(super) fn count(&self) -> Option<ServerCount> {
        let (sent, failures) = self.sender.as_ref()?.stats();
        Some(ServerCount {
            host: self.host.clone(),
            links: vec![CARRIER],
            stats: RecorderStats {
                connections: 0,
                failures,
                sent,
                by_label: BTreeMap::new(),
                handshake_us: latency_histogram(),
                handshake_us_by_label: BTreeMap::new(),
                negotiated: None,
            },
        })
    }

    /// Stops it.
    pub(super) async fn stop(mut self) {
        if let Some(s) = self.sender.take() {
            s.stop().await;
        }
    }
}

/// Running receivers.
#[derive(Debug)]
pub(super) struct Receivers {
    host: String,
    meter: Arc<Meter>,
    viewers: Vec<Viewer>,
}

/// Starts the receivers of `role`, dialling the sender where the directory says.
pub(super) fn start_receivers(
    role: &BulkReceiversRole,
    runtime: &str,
    server: bool,
    site: &mut Site<'_>,
) -> anyhow::Result<Receivers> {
    let addr = site
        .directory
        .lookup(&role.host, CARRIER)
        .with_context(|| format!("the bulk sender {} is not listening", role.host))?;
    let connector = site.connector(role.security)?;
    // The sender's payload, made alike here: every byte received is checked against it.
    let pool = PayloadPool::new(role.frame_size as u64, BulkSender::POOL_SEED);
    let meter = Meter::new(role.connections as usize);
    let (clock, window) = (site.clock, site.window.clone());
    let rt = site.runtime(runtime, server)?;
    let viewers = (0..role.connections)
        .map(|_| {
            let config = ViewerConfig {
                server: Endpoint {
                    addr,
                    host: role.host.clone(),
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
                on_header: None,
                verify: Some(pool.clone()),
                meter: Some(meter.client()),
                start_at_ns: None,
            };
            Viewer::start(rt, config, clock, window.clone())
        })
        .collect();
    Ok(Receivers {
        host: role.host.clone(),
        meter,
        viewers,
    })
}

impl Receivers {
    /// Their meter.
    pub(super) fn meters(&self) -> Vec<(LinkId, Arc<Meter>)> {
        vec![(CARRIER, self.meter.clone())]
    }

    /// Stops them; what they received.
    pub(super) async fn stop(&mut self) -> Vec<ClientOutcome> {
        let mut errors = Vec::new();
        let streams = self.viewers.len() as u64;
        for v in self.viewers.drain(..) {
            if let Err(e) = v.finish().await {
                errors.push(e.to_string());
            }
        }
        errors.sort();
        errors.dedup();
        vec![ClientOutcome {
            link: CARRIER,
            metrics: self.meter.snapshot(),
            errors,
            clients: streams,
            streams,
            offered_bps: 0.0,
            recorder: None,
            host: self.host.clone(),
            wan: None,
        }]
    }
}
