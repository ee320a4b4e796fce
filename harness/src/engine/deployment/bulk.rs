//! The unpaced link-ceiling test (`vmsbench bulk`): one sender pushing frames as fast as
//! the connections take them, and receivers counting what arrives. Its two roles are part
//! of a plan like any other, so a placement can put the sender on one machine and the
//! receivers on others.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use simulators::clock::RunClock;
use simulators::metrics::{latency_histogram, LinkMetrics, Window};
use simulators::transport::Mode;
use tokio_util::sync::CancellationToken;

use super::events::Schedule;
use super::outcome::{LinkOutcome, PhaseOutcome, RoleCpu};
use super::phase::{measure, Deployment, START_AHEAD};
use super::plan::{Plan, BULK_RECEIVERS, BULK_SENDER};
use super::roles::BULK_CARRIER;
use super::{PhaseOptions, Timing, BULK_DRAIN};
use crate::engine::credentials::Credentials;
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

/// One phase of the ceiling test: the sender and its receivers started (here or where the
/// placement puts them), a warm-up, the window, a short drain, and what both sides counted.
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
    let agents = options.agents.as_deref();
    crate::sys::allocator::release_free_memory();
    let baseline_rss_bytes = process::rss_bytes().unwrap_or(0);
    let baseline_fds = process::open_fds().unwrap_or(0);
    let _ = process::reset_peak_rss();
    let window = Arc::new(Window::default());
    let ahead = agents.map_or(Duration::ZERO, |_| START_AHEAD);
    let start_ns = clock.now_ns() + ahead.as_nanos() as u64;
    let plan = Plan::bulk(scenario, mode, load.connections, load.frame_size, start_ns);
    let shares = agents.map(|a| a.placement().split(&plan)).transpose()?;
    let local_plan = shares.as_ref().map_or(&plan, |s| &s.local);
    super::check_share_descriptors(local_plan)?;
    let schedule = Schedule::none();
    let placed = shares.as_ref().zip(agents);
    let deployment =
        Deployment::start(local_plan, placed, creds, clock, window.clone(), &schedule).await?;
    let warmed = tokio::select! {
        _ = interrupt.cancelled() => false,
        _ = tokio::time::sleep_until(clock.instant_at(start_ns).into()) => {
            tokio::select! {
                _ = interrupt.cancelled() => false,
                _ = tokio::time::sleep(timing.warmup) => true,
            }
        }
    };
    if !warmed {
        deployment.shutdown().await;
        return Ok(None);
    }
    let (mut deployment, measured) = measure(
        deployment,
        schedule,
        &window,
        timing,
        interrupt,
        options,
        baseline_fds,
    )
    .await?;
    // Frames sent inside the window may still be in socket buffers.
    tokio::time::sleep(BULK_DRAIN).await;
    let lost = deployment.remote.iter().any(|r| r.is_lost());
    let mut counts = deployment.count().await;
    for (k, v) in &measured.cpu {
        *counts.window_cpu.entry(k.clone()).or_default() += v;
    }
    let peak_rss_bytes = process::peak_rss_bytes().unwrap_or(0) + counts.peak_rss_bytes;
    let clients = deployment.shutdown().await;
    let mut received = LinkMetrics::default();
    let mut client_errors = Vec::new();
    for c in &clients {
        received.merge(&c.metrics);
        client_errors.extend(c.errors.iter().cloned());
    }
    let mut sent = simulators::metrics::SenderSnapshot::default();
    let mut server_failures: BTreeMap<String, u64> = BTreeMap::new();
    for s in &counts.servers {
        sent += s.stats.sent;
        for (k, v) in &s.stats.failures {
            *server_failures.entry(k.clone()).or_default() += v;
        }
    }
    let cpu = |role: &str| counts.window_cpu.get(role).copied().unwrap_or(0.0);
    let (cpu_server_s, cpu_client_s) = (cpu(BULK_SENDER), cpu(BULK_RECEIVERS));
    let mut intervals = measured.intervals;
    for i in &mut intervals {
        if i.link == BULK_CARRIER.as_str() {
            "bulk".clone_into(&mut i.link);
        }
    }
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
            wan: None,
        }],
        roles: vec![
            RoleCpu {
                role: BULK_SENDER.into(),
                cpu_s: cpu_server_s,
            },
            RoleCpu {
                role: BULK_RECEIVERS.into(),
                cpu_s: cpu_client_s,
            },
        ],
        failovers: Vec::new(),
        hosts: Vec::new(),
        certificate_events: Vec::new(),
        incompatibilities: Vec::new(),
        window_s: (measured.end_ns - measured.start_ns) as f64 / 1e9,
        process_cpu: counts.process_cpu + measured.process_cpu,
        peak_rss_bytes,
        role_peak_rss: BTreeMap::new(),
        baseline_rss_bytes: baseline_rss_bytes + counts.baseline_rss_bytes,
        partial: measured.happened.partial || lost,
        intervals,
        ramp: super::outcome::RampOutcome::default(),
        steady: super::outcome::Steady::default(),
        machine: measured.machine,
        process: measured.process,
    }))
}
