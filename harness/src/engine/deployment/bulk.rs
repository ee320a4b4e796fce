//! The unpaced link-ceiling test (`vmsbench bulk`): one sender pushing frames as fast as
//! the connections take them, and receivers counting what arrives.

use std::sync::Arc;

use anyhow::Context as _;
use simulators::clock::RunClock;
use simulators::metrics::{latency_histogram, Meter, Window};
use simulators::role::bulk::BulkSender;
use simulators::role::viewer::{Endpoint, StreamRequest, Viewer, ViewerConfig};
use simulators::role::RoleRuntime;
use simulators::transport::{Connector, Mode};
use simulators::video::Playback;
use tokio_util::sync::CancellationToken;

use super::outcome::{LinkOutcome, PhaseOutcome, RoleCpu};
use super::roles::bind;
use super::{PhaseOptions, Timing, BULK_DRAIN};
use crate::engine::credentials::Credentials;
use crate::engine::sampler::Sampler;
use crate::engine::scenario::Scenario;
use crate::sys::process;

/// What a bulk phase sends.
#[derive(Clone, Copy, Debug)]
pub(crate) struct BulkLoad {
    /// Parallel connections.
    pub connections: u32,
    /// Payload bytes per frame.
    pub frame_size: usize,
}

/// [`run_bulk_phase`] with [`PhaseOptions`].
#[allow(clippy::too_many_arguments)]
pub(crate) async fn run_bulk_phase_with(
    scenario: &Scenario,
    creds: &Credentials,
    mode: Mode,
    load: BulkLoad,
    clock: RunClock,
    timing: Timing,
    interrupt: &CancellationToken,
    options: &PhaseOptions,
) -> anyhow::Result<Option<PhaseOutcome>> {
    crate::sys::allocator::release_free_memory();
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
    let listener = bind(&server, tls, scenario.listen.of(&host))
        .await
        .context("binding the bulk sender")?;
    let sender = BulkSender::start(&server, listener, load.frame_size, clock, window.clone())?;
    let meter = Meter::new(load.connections as usize);
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
                on_header: None,
                verify: Some(sender.pool()),
                meter: Some(meter.client()),
                start_at_ns: None,
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
        let meters = vec![("bulk".to_owned(), meter.clone())];
        let sampler = Sampler::start(meters, clock, start_ns, options.on_interval.clone());
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
    let mut client_errors = Vec::new();
    for r in receivers {
        if let Err(e) = r.finish().await {
            client_errors.push(e.to_string());
        }
    }
    let received = meter.snapshot();
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
        role_peak_rss: std::collections::BTreeMap::new(),
        baseline_rss_bytes,
        partial,
        intervals,
        ramp: super::outcome::RampOutcome::default(),
        steady: super::outcome::Steady::default(),
    }))
}
