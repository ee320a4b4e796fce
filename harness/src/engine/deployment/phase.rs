//! One phase of a scenario: the plan started role by role, a warm-up, the measured window
//! with its scheduled events, a drain, and everything each side counted, per link.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use simulators::clock::RunClock;
use simulators::metrics::{Meter, Window};
use simulators::transport::Mode;
use tokio_util::sync::CancellationToken;

use super::catch_up::CatchUp;
use super::collect::{
    certificate_event_outcomes, failover_outcome, host_outcomes, link_outcomes, Counted,
};
use super::events::{Happened, Schedule};
use super::outcome::{PhaseOutcome, RampOutcome, RoleCpu, Steady};
use super::plan::Plan;
use super::roles::{self, ClientOutcome, RoleHandle, Site};
use super::{PhaseOptions, Timing, MAX_DRAIN};
use crate::engine::credentials::Credentials;
use crate::engine::sampler::Sampler;
use crate::engine::scenario::{LinkId, Scenario};
use crate::engine::watcher::Attempt;
use crate::sys::process;

/// A plan brought to life in this process: every role started, in the plan's order.
struct Deployment<'a> {
    site: Site<'a>,
    roles: Vec<RoleHandle>,
}

impl<'a> Deployment<'a> {
    /// Starts every role of `plan`.
    async fn start(
        plan: &'a Plan,
        creds: &'a Credentials,
        clock: RunClock,
        window: Arc<Window>,
    ) -> anyhow::Result<Deployment<'a>> {
        let mut site = Site::new(plan, creds, clock, window);
        let mut started = Vec::with_capacity(plan.roles.len());
        for spec in &plan.roles {
            match roles::start(spec, &mut site).await {
                Ok(role) => started.push(role),
                Err(e) => {
                    Deployment {
                        site,
                        roles: started,
                    }
                    .shutdown()
                    .await;
                    return Err(e);
                }
            }
        }
        Ok(Deployment {
            site,
            roles: started,
        })
    }

    /// Every meter the clients record into, with its link.
    fn meters(&self) -> Vec<(String, Arc<Meter>)> {
        self.roles
            .iter()
            .flat_map(RoleHandle::meters)
            .map(|(link, meter)| (link.as_str().to_owned(), meter))
            .collect()
    }

    /// Clients that have settled (streaming, logged in, or given up), and clients.
    fn settled(&self) -> (u64, u64) {
        self.meters()
            .iter()
            .fold((0, 0), |(s, c), (_, m)| (s + m.settled(), c + m.clients()))
    }

    /// Connections set up so far, all clients together.
    fn connections(&self) -> u64 {
        self.meters().iter().map(|(_, m)| m.connections()).sum()
    }

    /// The most any recording server's frames left behind schedule since the last call.
    fn take_lag(&self) -> Duration {
        self.roles
            .iter()
            .map(RoleHandle::take_lag)
            .max()
            .unwrap_or_default()
    }

    /// Frames the streaming servers dropped for slow consumers so far.
    fn dropped_frames(&self) -> u64 {
        self.roles.iter().map(RoleHandle::dropped_frames).sum()
    }

    /// Stops the watchers; what each saw, by host.
    async fn stop_watchers(&mut self) -> BTreeMap<String, Vec<Attempt>> {
        let mut watched = BTreeMap::new();
        for r in &mut self.roles {
            if let Some((host, attempts)) = r.stop_watcher().await {
                watched.insert(host, attempts);
            }
        }
        watched
    }

    /// Stops every client first (so that servers do not count their leaving as failures),
    /// then everything else; what each client measured.
    async fn shutdown(mut self) -> Vec<ClientOutcome> {
        let mut clients = Vec::new();
        for r in &mut self.roles {
            clients.extend(r.stop_clients().await);
        }
        for r in self.roles {
            r.stop().await;
        }
        drop(self.site);
        clients
    }
}

/// What the window measured before the drain.
struct Measured {
    steady: Steady,
    start_ns: u64,
    end_ns: u64,
    cpu: BTreeMap<String, f64>,
    process_cpu: process::Usage,
    intervals: Vec<crate::engine::sampler::IntervalSample>,
    watched: BTreeMap<String, Vec<Attempt>>,
    happened: Happened,
}

/// [`run_phase`] with [`PhaseOptions`].
pub(crate) async fn run_phase_with(
    scenario: &Scenario,
    creds: &Credentials,
    mode: Mode,
    clock: RunClock,
    timing: Timing,
    interrupt: &CancellationToken,
    options: &PhaseOptions,
) -> anyhow::Result<Option<PhaseOutcome>> {
    super::check_descriptors(scenario)?;
    crate::sys::allocator::release_free_memory();
    let baseline_rss_bytes = process::rss_bytes().unwrap_or(0);
    let baseline_fds = process::open_fds().unwrap_or(0);
    let _ = process::reset_peak_rss();
    let window = Arc::new(Window::default());
    let plan = Plan::new(scenario, mode, clock.now_ns(), timing.warmup);
    let mut deployment = Deployment::start(&plan, creds, clock, window.clone()).await?;
    if let Some(hook) = &options.on_listening {
        hook(mode, &deployment.site.directory.listeners());
    }
    let schedule = match Schedule::new(scenario, creds, mode) {
        Ok(s) => s,
        Err(e) => {
            deployment.shutdown().await;
            return Err(e);
        }
    };
    let Some(ramp) = warm_up(&deployment, &plan, timing, interrupt).await else {
        deployment.shutdown().await;
        return Ok(None);
    };
    let measured = match measure_window(
        &mut deployment,
        schedule,
        &window,
        timing,
        interrupt,
        options,
        baseline_fds,
    )
    .await
    {
        Ok(m) => m,
        Err(e) => {
            deployment.shutdown().await;
            return Err(e);
        }
    };
    let due = plan.due(measured.start_ns, measured.end_ns);
    if !measured.happened.partial {
        drain(&deployment, &due).await;
    }
    let servers: Vec<_> = deployment
        .roles
        .iter()
        .filter_map(RoleHandle::server_count)
        .collect();
    let mut server_errors: BTreeMap<String, BTreeMap<String, u64>> = deployment
        .roles
        .iter()
        .filter_map(RoleHandle::server_failures)
        .collect();
    let mgmt_failures = server_errors
        .get(&scenario.management.host)
        .cloned()
        .unwrap_or_default();
    server_errors.insert(scenario.management.host.clone(), mgmt_failures.clone());
    let peak_rss_bytes = process::peak_rss_bytes().unwrap_or(0);
    let clients = deployment.shutdown().await;

    let participation = plan.participation();
    let links = link_outcomes(&Counted {
        scenario,
        mode,
        clients: &clients,
        servers: &servers,
        mgmt_failures: &mgmt_failures,
        due: &due,
        cpu: &measured.cpu,
        participation: &participation,
    });
    let Measured {
        steady,
        start_ns,
        end_ns,
        cpu,
        process_cpu,
        intervals,
        watched,
        happened,
    } = measured;
    let failovers = happened
        .failovers
        .into_iter()
        .map(|(host, at)| failover_outcome(scenario, &clients, &host, at))
        .collect();
    let hosts = host_outcomes(scenario, &clients, server_errors);
    let certificate_events =
        certificate_event_outcomes(&happened.replaced, &watched, &hosts, start_ns, end_ns);
    Ok(Some(PhaseOutcome {
        mode,
        links,
        roles: cpu
            .into_iter()
            .map(|(role, cpu_s)| RoleCpu { role, cpu_s })
            .collect(),
        failovers,
        incompatibilities: plan.incompatibilities.clone(),
        hosts,
        certificate_events,
        window_s: (end_ns - start_ns) as f64 / 1e9,
        process_cpu,
        peak_rss_bytes,
        baseline_rss_bytes,
        partial: happened.partial,
        intervals,
        ramp,
        steady,
    }))
}

/// How long a phase waits, beyond its warm-up and its ramp, for clients to settle and
/// servers to catch up.
const SETTLE_GRACE: Duration = Duration::from_secs(15);
/// How often the warm-up checks whether the clients have settled and the servers keep up.
const SETTLE_POLL: Duration = Duration::from_millis(10);
/// The warm-up: the clients start in their ramp, and the window opens once the warm-up
/// is over, every client has settled, and the recording servers have caught up with their
/// schedule (a handshake storm can leave them far behind; a window opened then would
/// measure the storm's backlog, not the steady state) or are plainly unable to (see
/// [`CatchUp`]). It gives up [`SETTLE_GRACE`] after the warm-up and the ramp. Returns what
/// the ramp did; `None` if interrupted.
async fn warm_up(
    deployment: &Deployment<'_>,
    plan: &Plan,
    timing: Timing,
    interrupt: &CancellationToken,
) -> Option<RampOutcome> {
    let clock = deployment.site.clock;
    let start = plan.start_ns;
    let warm_end = start + timing.warmup.as_nanos() as u64;
    let give_up = start.max(warm_end) + plan.ramp.duration_ns() + SETTLE_GRACE.as_nanos() as u64;
    let cpu0 = deployment.site.cpu();
    let mut settled_at: Option<(u64, BTreeMap<String, f64>, u64)> = None;
    let _ = deployment.take_lag();
    let mut catch_up = CatchUp::new(clock.now_ns());
    loop {
        let now = clock.now_ns();
        let (settled, clients) = deployment.settled();
        if settled_at.is_none() && settled >= clients {
            settled_at = Some((now, deployment.site.cpu(), deployment.connections()));
            catch_up.watch(now);
        }
        catch_up.poll(now, deployment.take_lag());
        let ready = settled_at.is_some() && catch_up.settled(now);
        if now >= warm_end && (ready || now >= give_up) {
            break;
        }
        tokio::select! {
            _ = interrupt.cancelled() => return None,
            _ = tokio::time::sleep(SETTLE_POLL) => {}
        }
    }
    let (settled, clients) = deployment.settled();
    let opened = clock.now_ns();
    let (end, cpu1, connections) =
        settled_at.unwrap_or_else(|| (opened, deployment.site.cpu(), deployment.connections()));
    let seconds = end.saturating_sub(start) as f64 / 1e9;
    Some(RampOutcome {
        clients,
        settled,
        connections,
        seconds,
        planned_s: plan.ramp.duration_ns() as f64 / 1e9,
        cpu: cpu1
            .iter()
            .map(|(k, v)| (k.clone(), v - cpu0.get(k).copied().unwrap_or(0.0)))
            .collect(),
        window_opened_s: opened.saturating_sub(start) as f64 / 1e9,
        server_lag_ms: catch_up.lag(opened).as_secs_f64() * 1e3,
    })
}

/// Opens the window, runs its events, waits for its end and closes it: the CPU each role
/// used in it, the interval samples, what the watchers saw.
async fn measure_window(
    deployment: &mut Deployment<'_>,
    schedule: Schedule,
    window: &Window,
    timing: Timing,
    interrupt: &CancellationToken,
    options: &PhaseOptions,
    baseline_fds: u64,
) -> anyhow::Result<Measured> {
    let clock = deployment.site.clock;
    let cpu0 = deployment.site.cpu();
    let usage0 = process::usage().unwrap_or_default();
    let start_ns = clock.now_ns();
    window.open(start_ns);
    let sampler = Sampler::start(
        deployment.meters(),
        clock,
        start_ns,
        options.on_interval.clone(),
    );
    let end_at = start_ns + timing.duration.as_nanos() as u64;
    let mut happened = schedule
        .run(
            &mut deployment.roles,
            clock,
            start_ns,
            timing.duration,
            interrupt,
        )
        .await?;
    if !happened.partial {
        tokio::select! {
            _ = interrupt.cancelled() => happened.partial = true,
            _ = tokio::time::sleep_until(clock.instant_at(end_at).into()) => {}
        }
    }
    let end_ns = clock.now_ns();
    window.close(end_ns);
    let cpu1 = deployment.site.cpu();
    let steady = Steady {
        rss_bytes: process::rss_bytes().unwrap_or(0),
        connections: process::open_fds()
            .unwrap_or(0)
            .saturating_sub(baseline_fds)
            / 2,
    };
    let watched = deployment.stop_watchers().await;
    let process_cpu = process::usage().unwrap_or_default() - usage0;
    let intervals = sampler.finish().await;
    let cpu = cpu1
        .iter()
        .map(|(k, v)| (k.clone(), v - cpu0.get(k).copied().unwrap_or(0.0)))
        .collect();
    Ok(Measured {
        steady,
        start_ns,
        end_ns,
        cpu,
        process_cpu,
        intervals,
        watched,
        happened,
    })
}

/// Waits until what was due has arrived (or was dropped), within [`MAX_DRAIN`], reading
/// the meters' frame counters.
async fn drain(deployment: &Deployment<'_>, due: &BTreeMap<LinkId, u64>) {
    let drain_until = tokio::time::Instant::now() + MAX_DRAIN;
    let meters = deployment.meters();
    while tokio::time::Instant::now() < drain_until {
        let mut received: BTreeMap<&str, u64> = BTreeMap::new();
        for (link, meter) in &meters {
            *received.entry(link.as_str()).or_default() += meter.frames();
        }
        let dropped = deployment.dropped_frames();
        let missing: u64 = due
            .iter()
            .map(|(l, d)| d.saturating_sub(received.get(l.as_str()).copied().unwrap_or(0)))
            .sum();
        if missing <= dropped {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
