//! A scenario brought to life for one phase: roles started on their own runtimes, a warm-up,
//! a measured window, a drain, and everything each side counted.

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use hdrhistogram::Histogram;
use simulators::clock::RunClock;
use simulators::metrics::{latency_histogram, LinkMetrics, SenderSnapshot, Window};
use simulators::pki::Pki;
use simulators::role::bulk::BulkSender;
use simulators::role::recorder::{Recorder, RecorderConfig};
use simulators::role::viewer::{StreamRequest, Viewer, ViewerConfig};
use simulators::role::RoleRuntime;
use simulators::transport::{Connector, Listener, Mode};
use simulators::video::{Camera, PayloadPool, Playback};
use tokio_util::sync::CancellationToken;

use crate::process;
use crate::scenario::{Scenario, RECORDER_HOST, VIEWER_RECORDER};

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

/// Everything one phase (one mode, one repeat) measured on one link.
#[derive(Debug)]
pub struct PhaseOutcome {
    /// Link id.
    pub link: String,
    /// Plaintext or TLS.
    pub mode: Mode,
    /// What the receivers measured.
    pub received: LinkMetrics,
    /// What the sender counted in the window.
    pub sent: SenderSnapshot,
    /// Connection failures the server counted, by category.
    pub server_failures: BTreeMap<String, u64>,
    /// Server-side handshake times, µs.
    pub server_handshake_us: Histogram<u64>,
    /// Frames scheduled in the window for the streams subscribed (0 for unpaced bulk).
    pub frames_due: u64,
    /// Length of the window actually measured, seconds.
    pub window_s: f64,
    /// CPU seconds of the server role in the window.
    pub cpu_server_s: f64,
    /// CPU seconds of the client role in the window.
    pub cpu_client_s: f64,
    /// CPU seconds of the whole process in the window (user, sys).
    pub process_cpu: process::Usage,
    /// Peak RSS of the process during the phase, bytes.
    pub peak_rss_bytes: u64,
    /// RSS before the phase's roles started, bytes.
    pub baseline_rss_bytes: u64,
    /// Client connections the phase opened.
    pub connections: u64,
    /// Whether the window was cut short by an interruption.
    pub partial: bool,
    /// Human-readable failures of individual clients.
    pub client_errors: Vec<String>,
}

/// Builds the cameras of a scenario's recording server.
pub fn cameras(scenario: &Scenario) -> Vec<Camera> {
    let profile = Arc::new(scenario.profile.clone());
    let pool = PayloadPool::new(profile.max_frame_bytes(), scenario.seed);
    (0..scenario.cameras)
        .map(|id| Camera::new(id, profile.clone(), scenario.seed, pool.clone()))
        .collect()
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

/// The listener and connector for `mode`, with certificates from `pki`.
fn endpoints(
    scenario: &Scenario,
    pki: &Pki,
    mode: Mode,
) -> anyhow::Result<(Option<Arc<rustls::ServerConfig>>, Connector)> {
    Ok(match mode {
        Mode::Plain => (None, Connector::plain()),
        Mode::Tls => (
            Some(pki.server_config(RECORDER_HOST, &scenario.tls)?),
            Connector::tls(pki.client_config(&scenario.tls)?),
        ),
    })
}

/// The measured part of a phase: warm-up, window, drain. Shared by paced and bulk runs.
struct Measure<'a> {
    clock: RunClock,
    window: Arc<Window>,
    server: &'a RoleRuntime,
    client: &'a RoleRuntime,
    interrupt: &'a CancellationToken,
}

struct Measured {
    start_ns: u64,
    end_ns: u64,
    cpu_server_s: f64,
    cpu_client_s: f64,
    process_cpu: process::Usage,
    partial: bool,
}

impl Measure<'_> {
    /// Returns `None` when interrupted before the window opened.
    async fn window(&self, timing: Timing) -> Option<Measured> {
        tokio::select! {
            _ = self.interrupt.cancelled() => return None,
            _ = tokio::time::sleep(timing.warmup) => {}
        }
        let cpu0 = (self.server.cpu_seconds(), self.client.cpu_seconds());
        let usage0 = process::usage().unwrap_or_default();
        let start_ns = self.clock.now_ns();
        self.window.open(start_ns);
        let partial = tokio::select! {
            _ = self.interrupt.cancelled() => true,
            _ = tokio::time::sleep_until(self.clock.instant_at(start_ns + timing.duration.as_nanos() as u64).into()) => false,
        };
        let end_ns = self.clock.now_ns();
        self.window.close(end_ns);
        let cpu_server_s = self.server.cpu_seconds() - cpu0.0;
        let cpu_client_s = self.client.cpu_seconds() - cpu0.1;
        let process_cpu = process::usage().unwrap_or_default() - usage0;
        Some(Measured {
            start_ns,
            end_ns,
            cpu_server_s,
            cpu_client_s,
            process_cpu,
            partial,
        })
    }
}

fn phase_runtimes(scenario: &Scenario) -> anyhow::Result<(RoleRuntime, RoleRuntime)> {
    let server = RoleRuntime::new("recorder-1", scenario.server_threads)
        .context("starting the recording server's runtime")?;
    let client = RoleRuntime::new("viewers", scenario.client_threads)
        .context("starting the viewers' runtime")?;
    Ok((server, client))
}

/// Runs one phase of the paced video scenario in `mode`. `Ok(None)`: interrupted before
/// anything was measured.
pub async fn run_phase(
    scenario: &Scenario,
    pki: &Pki,
    mode: Mode,
    clock: RunClock,
    timing: Timing,
    interrupt: &CancellationToken,
) -> anyhow::Result<Option<PhaseOutcome>> {
    let baseline_rss_bytes = process::rss_bytes().unwrap_or(0);
    let _ = process::reset_peak_rss();
    let (server_tls, connector) = endpoints(scenario, pki, mode)?;
    let (server, client) = phase_runtimes(scenario)?;
    let window = Arc::new(Window::default());
    let cameras = cameras(scenario);
    let start_ns = clock.now_ns();

    let listener = bind(&server, server_tls)
        .await
        .context("binding the recording server")?;
    let config = RecorderConfig {
        host: RECORDER_HOST.to_owned(),
        cameras: cameras.clone(),
        queue_frames: scenario.queue_frames,
        start_ns,
    };
    let recorder = Recorder::start(&server, listener, config, clock, window.clone())?;

    let interval_ns = scenario.profile.frame_interval_ns();
    let viewers: Vec<Viewer> = (0..scenario.viewers)
        .map(|i| {
            let streams = scenario
                .viewer_cameras(i)
                .into_iter()
                .map(|camera| StreamRequest {
                    camera,
                    interval_ns,
                })
                .collect();
            let config = ViewerConfig {
                addr: recorder.addr(),
                host: RECORDER_HOST.to_owned(),
                streams,
                playback: Playback::Live,
                connector: connector.clone(),
                check: None,
            };
            Viewer::start(&client, config, clock, window.clone())
        })
        .collect();

    let measure = Measure {
        clock,
        window: window.clone(),
        server: &server,
        client: &client,
        interrupt,
    };
    let Some(m) = measure.window(timing).await else {
        shutdown(viewers, recorder).await;
        return Ok(None);
    };

    let frames_due: u64 = (0..scenario.viewers)
        .flat_map(|i| scenario.viewer_cameras(i))
        .filter_map(|id| cameras.get(id as usize))
        .map(|c| c.frames_due(Playback::Live, start_ns, m.start_ns, m.end_ns))
        .sum();
    // Drain: wait until every frame due in the window was received or dropped.
    let drain_until = tokio::time::Instant::now() + MAX_DRAIN;
    while tokio::time::Instant::now() < drain_until && !m.partial {
        let received: u64 = viewers.iter().map(|v| v.metrics().frames).sum();
        if received + recorder.stats().sent.dropped_frames >= frames_due {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let stats = recorder.stats();
    let peak_rss_bytes = process::peak_rss_bytes().unwrap_or(0);
    let (received, client_errors) = shutdown(viewers, recorder).await;
    let connections = received.connections;
    Ok(Some(PhaseOutcome {
        link: VIEWER_RECORDER.to_owned(),
        mode,
        received,
        sent: stats.sent,
        server_failures: stats.failures,
        server_handshake_us: stats.handshake_us,
        frames_due,
        window_s: (m.end_ns - m.start_ns) as f64 / 1e9,
        cpu_server_s: m.cpu_server_s,
        cpu_client_s: m.cpu_client_s,
        process_cpu: m.process_cpu,
        peak_rss_bytes,
        baseline_rss_bytes,
        connections,
        partial: m.partial,
        client_errors,
    }))
}

async fn shutdown(viewers: Vec<Viewer>, recorder: Recorder) -> (LinkMetrics, Vec<String>) {
    let mut total = LinkMetrics::default();
    let mut errors = Vec::new();
    for v in viewers {
        let (m, outcome) = v.stop().await;
        total.merge(&m);
        if let Err(e) = outcome {
            errors.push(e.to_string());
        }
    }
    recorder.stop().await;
    (total, errors)
}

/// How long a bulk phase waits after its window for frames still in socket buffers.
pub const BULK_DRAIN: Duration = Duration::from_millis(250);

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
    pki: &Pki,
    mode: Mode,
    load: BulkLoad,
    clock: RunClock,
    timing: Timing,
    interrupt: &CancellationToken,
) -> anyhow::Result<Option<PhaseOutcome>> {
    let baseline_rss_bytes = process::rss_bytes().unwrap_or(0);
    let _ = process::reset_peak_rss();
    let (server_tls, connector) = endpoints(scenario, pki, mode)?;
    let (server, client) = phase_runtimes(scenario)?;
    let window = Arc::new(Window::default());
    let listener = bind(&server, server_tls)
        .await
        .context("binding the bulk sender")?;
    let sender = BulkSender::start(&server, listener, load.frame_size, clock, window.clone())?;
    let receivers: Vec<Viewer> = (0..load.connections)
        .map(|_| {
            let config = ViewerConfig {
                addr: sender.addr(),
                host: RECORDER_HOST.to_owned(),
                streams: vec![StreamRequest {
                    camera: 0,
                    interval_ns: u64::MAX,
                }],
                playback: Playback::Live,
                connector: connector.clone(),
                check: None,
            };
            Viewer::start(&client, config, clock, window.clone())
        })
        .collect();
    let measure = Measure {
        clock,
        window: window.clone(),
        server: &server,
        client: &client,
        interrupt,
    };
    let measured = measure.window(timing).await;
    // Frames sent inside the window may still be in socket buffers.
    tokio::time::sleep(BULK_DRAIN).await;
    let (sent, failures) = sender.stats();
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
    let Some(m) = measured else { return Ok(None) };
    let connections = received.connections;
    Ok(Some(PhaseOutcome {
        link: "bulk".to_owned(),
        mode,
        received,
        sent,
        server_failures: failures,
        server_handshake_us: latency_histogram(),
        frames_due: 0,
        window_s: (m.end_ns - m.start_ns) as f64 / 1e9,
        cpu_server_s: m.cpu_server_s,
        cpu_client_s: m.cpu_client_s,
        process_cpu: m.process_cpu,
        peak_rss_bytes,
        baseline_rss_bytes,
        connections,
        partial: m.partial,
        client_errors,
    }))
}
