//! A streaming server as a role: a recording or failover server, the event server, or the
//! mobile server with the streams it pulls from recording servers (passed through to
//! phones or transcoded); each with its status poll to the management server.

use std::sync::Arc;
use std::time::Duration;

use simulators::metrics::Meter;
use simulators::pki::ReloadableIdentity;
use simulators::role::recorder::{Recorder, RecorderConfig, Source};
use simulators::role::timeouts::ServerTimeouts;
use simulators::role::viewer::HeaderHook;

use super::{bind, clients, ClientOutcome, ServerCount, Site};
use crate::engine::deployment::plan::{FrameSource, StreamingRole};
use crate::engine::scenario::LinkId;

/// A running streaming server.
#[derive(Debug)]
pub(super) struct Running {
    host: String,
    links: Vec<LinkId>,
    recording: bool,
    /// `None` once stopped by a scheduled failure.
    server: Option<Recorder>,
    identity: Option<Arc<ReloadableIdentity>>,
    /// Its upstream streams and its status poll.
    clients: clients::Running,
}

/// Binds the server of `role`, starts it, then its upstream streams and its status poll.
pub(super) async fn start(
    role: &StreamingRole,
    runtime: &str,
    server: bool,
    site: &mut Site<'_>,
) -> anyhow::Result<Running> {
    let (tls, identity) = site.server_tls(&role.host, role.tls, role.reloadable)?;
    let cameras = site.cameras(&role.cameras);
    let config = RecorderConfig {
        host: role.host.clone(),
        cameras,
        queue_frames: role.queue_frames,
        start_ns: site.plan.start_ns,
        source: match role.source {
            FrameSource::Pacer => Source::Pacer,
            FrameSource::Relay => Source::Relay,
        },
        timeouts: ServerTimeouts::default(),
    };
    let (clock, window) = (site.clock, site.window.clone());
    let ip = site.plan.site.listen.of(&role.host);
    let rt = site.runtime(runtime, server)?;
    let listener = bind(rt, tls, ip).await?;
    let recorder = Recorder::start(rt, listener, config, clock, window)?;
    recorder.set_cpu_per_frame(role.cpu_per_frame);
    for link in &role.links {
        site.directory
            .register(&role.host, *link, recorder.addr(), role.tls);
    }
    let mut clients = clients::Running::default();
    if let Some(link) = role.upstream_link {
        // Direct streaming: what the upstream clients receive goes out to the phones.
        let hook: Option<HeaderHook> = (role.source == FrameSource::Relay).then(|| {
            let relay = recorder.relay();
            Arc::new(move |h: &_| relay.forward(h)) as HeaderHook
        });
        clients
            .add_video(&role.upstream, link, runtime, server, hook, site)
            .await?;
    }
    if let Some((link, status)) = &role.status {
        clients
            .add_rpc(status, *link, runtime, server, 1, site)
            .await?;
    }
    Ok(Running {
        host: role.host.clone(),
        links: role.links.clone(),
        recording: role.recording,
        server: Some(recorder),
        identity,
        clients,
    })
}

impl Running {
    /// Its host, while its server runs.
    pub(super) fn host(&self) -> Option<&str> {
        self.server.as_ref().map(|_| self.host.as_str())
    }

    /// Whether it is a recording (or failover) server.
    pub(super) fn is_recording(&self) -> bool {
        self.recording
    }

    /// What its server counted so far.
    pub(super) fn count(&self) -> Option<ServerCount> {
        let server = self.server.as_ref()?;
        Some(ServerCount {
            host: self.host.clone(),
            links: self.links.clone(),
            stats: server.stats(),
        })
    }

    /// Its clients' meters.
    pub(super) fn meters(&self) -> Vec<(LinkId, Arc<Meter>)> {
        self.clients.meters()
    }

    /// How far behind schedule its recording server's frames have left since the last
    /// call (zero for a relay).
    pub(super) fn take_lag(&self) -> Duration {
        match (self.recording, &self.server) {
            (true, Some(s)) => s.take_lag(),
            _ => Duration::ZERO,
        }
    }

    /// Stalls its server for `duration`, if it is a recording server.
    pub(super) fn stall(&self, duration: Duration) {
        if let (true, Some(s)) = (self.recording, &self.server) {
            s.stall(duration);
        }
    }

    /// Its replaceable identity, if its certificate changes during the run.
    pub(super) fn identity(&self) -> Option<(&str, &Arc<ReloadableIdentity>)> {
        self.identity.as_ref().map(|i| (self.host.as_str(), i))
    }

    /// Stops the server (a scheduled failure).
    pub(super) async fn stop_server(&mut self) -> bool {
        match self.server.take() {
            Some(s) => {
                s.stop().await;
                true
            }
            None => false,
        }
    }

    /// Stops its upstream streams and status poll.
    pub(super) async fn stop_clients(&mut self) -> Vec<ClientOutcome> {
        self.clients.stop().await
    }

    /// Stops the server.
    pub(super) async fn stop(mut self) {
        self.stop_server().await;
    }
}
