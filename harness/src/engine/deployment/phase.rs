//! One phase of a scenario: the plan started role by role, a warm-up, the measured window
//! with its scheduled events, a drain, and everything each side counted, per link.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use anyhow::bail;
use simulators::clock::RunClock;
use simulators::metrics::Window;
use simulators::transport::Mode;
use tokio_util::sync::CancellationToken;

use super::catch_up::CatchUp;
use super::collect::{
    certificate_event_outcomes, failover_outcome, host_outcomes, link_outcomes, Counted,
};
use super::events::{Happened, Schedule};
use super::local::Local;
use super::outcome::{PhaseOutcome, RampOutcome, RoleCpu, Steady};
use super::placement::Shares;
use super::plan::Plan;
use super::remote::coordinator::{Agents, RemoteShare};
use super::remote::{Counts, Status};
use super::roles::ClientOutcome;
use super::{Listening, PhaseOptions, Timing, MAX_DRAIN};
use crate::engine::credentials::Credentials;
use crate::engine::sampler::{IntervalSample, ProcessSample, Sampler, INTERVAL};
use crate::engine::scenario::{LinkId, Scenario};
use crate::sys::cpu::{self, CpuWindow};
use crate::sys::process;

/// How far ahead of the plan's making the schedules of a distributed phase start, so that
/// every agent has its share and its servers listen by then.
pub(super) const START_AHEAD: Duration = Duration::from_millis(500);

/// How far ahead the coordinator announces the opening of the window to its agents.
const OPEN_AHEAD: Duration = Duration::from_millis(100);

/// A plan brought to life: the roles of this process and the shares of the agents.
pub(super) struct Deployment<'a> {
    pub(super) local: Local<'a>,
    pub(super) remote: Vec<RemoteShare<'a>>,
}

impl<'a> Deployment<'a> {
    /// Starts every role of the plan in the plan's order, wherever it runs: `shares` says
    /// where (none: all here).
    pub(super) async fn start(
        local_plan: &'a Plan,
        shares: Option<(&'a Shares, &'a Agents)>,
        creds: &'a Credentials,
        clock: RunClock,
        window: Arc<Window>,
        schedule: &Schedule,
    ) -> anyhow::Result<Deployment<'a>> {
        let mut d = Deployment {
            local: Local::new(local_plan, creds, clock, window),
            remote: Vec::new(),
        };
        let Some((shares, agents)) = shares else {
            let all = 0..local_plan.roles.len();
            if let Err(e) = d.local.start(all).await {
                d.shutdown().await;
                return Err(e);
            }
            return Ok(d);
        };
        match d.start_placed(shares, agents, creds, clock, schedule).await {
            Ok(()) => Ok(d),
            Err(e) => {
                for r in &d.remote {
                    r.abort(&format!("{e:#}"));
                }
                d.shutdown().await;
                Err(e)
            }
        }
    }

    /// [`Deployment::start`] across processes: each agent gets its share, then the roles
    /// start in the plan's order, each run of roles where it runs, with every listener
    /// started before it known.
    async fn start_placed(
        &mut self,
        shares: &'a Shares,
        agents: &'a Agents,
        creds: &Credentials,
        clock: RunClock,
        schedule: &Schedule,
    ) -> anyhow::Result<()> {
        let epoch = clock.epoch_unix_ns();
        for (name, plan) in &shares.remote {
            let share = agents
                .prepare(name, plan, creds, epoch, clock, schedule)
                .await?;
            self.remote.push(share);
        }
        let mut directory: Vec<Listening> = Vec::new();
        let mut i = 0;
        while i < shares.order.len() {
            let (place, first) = &shares.order[i];
            let mut count = 1;
            while shares
                .order
                .get(i + count)
                .is_some_and(|(p, at)| p == place && *at == first + count)
            {
                count += 1;
            }
            match place {
                None => directory.extend(self.local.start(*first..first + count).await?),
                Some(name) => {
                    let Some(share) = self.remote.iter().find(|r| r.name() == name) else {
                        bail!("agent {name} has no share");
                    };
                    for l in share.start(*first, count, &directory).await? {
                        let addr = agents.address_of(&l).await?;
                        self.local.site.directory.add(&l.host, l.link, addr, l.tls);
                        directory.push(l);
                    }
                }
            }
            i += count;
        }
        Ok(())
    }

    /// The running figures of every role, here and on the agents.
    pub(super) fn status(&self) -> Status {
        let mut all = self.local.status();
        for r in &self.remote {
            let s = r.status();
            all.settled += s.settled;
            all.clients += s.clients;
            all.connections += s.connections;
            all.lag_ns = all.lag_ns.max(s.lag_ns);
            all.dropped_frames += s.dropped_frames;
            for (k, v) in s.frames {
                *all.frames.entry(k).or_default() += v;
            }
            for (k, v) in s.cpu {
                *all.cpu.entry(k).or_default() += v;
            }
        }
        all
    }

    /// What every server counted, here and on the agents (none from a lost agent).
    pub(super) async fn count(&mut self) -> Counts {
        let mut all = self.local.count().await;
        for r in &self.remote {
            let Some(c) = r.count().await else { continue };
            for role in &r.plan.roles {
                all.role_peak_rss
                    .insert(role.runtime.clone(), c.peak_rss_bytes);
            }
            all.servers.extend(c.servers);
            all.server_failures.extend(c.server_failures);
            all.watched.extend(c.watched);
            for (k, v) in c.window_cpu {
                *all.window_cpu.entry(k).or_default() += v;
            }
            all.process_cpu = all.process_cpu + c.process_cpu;
            all.steady.rss_bytes += c.steady.rss_bytes;
            // An agent counts the descriptors of its end of each connection.
            all.steady.connections += c.steady.connections / 2;
            all.peak_rss_bytes += c.peak_rss_bytes;
            all.happened.failovers.extend(c.happened.failovers);
            all.happened.replaced.extend(c.happened.replaced);
            all.baseline_rss_bytes += c.baseline_rss_bytes;
        }
        all
    }

    /// Stops every client first, everywhere (so that servers do not count their leaving as
    /// failures), then everything else; what each client measured.
    pub(super) async fn shutdown(mut self) -> Vec<ClientOutcome> {
        let mut clients = Vec::new();
        for r in &self.remote {
            clients.extend(r.finish().await.unwrap_or_default());
        }
        clients.extend(self.local.stop_clients().await);
        for r in &self.remote {
            r.stop().await;
        }
        self.local.stop().await;
        clients
    }
}

/// What the window measured before the drain.
pub(super) struct Measured {
    pub(super) steady: Steady,
    pub(super) start_ns: u64,
    pub(super) end_ns: u64,
    /// CPU of this process's runtimes in the window, and of the whole process.
    pub(super) cpu: BTreeMap<String, f64>,
    pub(super) process_cpu: process::Usage,
    pub(super) intervals: Vec<IntervalSample>,
    pub(super) happened: Happened,
    /// What the machine's CPUs did in the window (steal, frequency).
    pub(super) machine: CpuWindow,
    /// The process in each interval, for a soak (empty otherwise).
    pub(super) process: Vec<ProcessSample>,
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
    let agents = options.agents.as_deref();
    crate::sys::allocator::release_free_memory();
    let baseline_rss_bytes = process::rss_bytes().unwrap_or(0);
    let baseline_fds = process::open_fds().unwrap_or(0);
    let _ = process::reset_peak_rss();
    let window = Arc::new(Window::default());
    let ahead = if agents.is_some() {
        START_AHEAD
    } else {
        Duration::ZERO
    };
    let start_ns = clock.now_ns() + ahead.as_nanos() as u64;
    let plan = Plan::new(scenario, mode, start_ns, timing.warmup);
    let shares = match agents {
        Some(a) => Some(a.placement().split(&plan)?),
        None => None,
    };
    let local_plan = shares.as_ref().map_or(&plan, |s| &s.local);
    super::check_share_descriptors(local_plan)?;
    let schedule = Schedule::new(scenario, creds, mode)?;
    let placed = shares.as_ref().zip(agents);
    let deployment =
        Deployment::start(local_plan, placed, creds, clock, window.clone(), &schedule).await?;
    if let Some(hook) = &options.on_listening {
        hook(mode, &deployment.local.site.directory.listeners());
    }
    let Some(ramp) = warm_up(&deployment, &plan, timing, interrupt).await else {
        deployment.shutdown().await;
        return Ok(None);
    };
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
    let due = plan.due(measured.start_ns, measured.end_ns);
    if !measured.happened.partial {
        drain(&deployment, &due).await;
    }
    let lost = deployment.remote.iter().any(RemoteShare::is_lost);
    let mut counts = deployment.count().await;
    for (k, v) in &measured.cpu {
        *counts.window_cpu.entry(k.clone()).or_default() += v;
    }
    counts.process_cpu = counts.process_cpu + measured.process_cpu;
    let mgmt_failures = counts
        .server_failures
        .entry(scenario.management.host.clone())
        .or_default()
        .clone();
    let local_peak = process::peak_rss_bytes().unwrap_or(0);
    let peak_rss_bytes = local_peak + counts.peak_rss_bytes;
    let placed = !deployment.remote.is_empty();
    let clients = deployment.shutdown().await;

    let participation = plan.participation();
    let links = link_outcomes(&Counted {
        scenario,
        mode,
        clients: &clients,
        servers: &counts.servers,
        mgmt_failures: &mgmt_failures,
        due: &due,
        cpu: &counts.window_cpu,
        participation: &participation,
    });
    let Measured {
        steady,
        start_ns,
        end_ns,
        intervals,
        mut happened,
        machine,
        mut process,
        ..
    } = measured;
    // Each interval's frames due, its ends kept inside the window so that they add up to
    // the window's.
    let mut from = start_ns;
    for p in &mut process {
        let to = (start_ns + (p.t_s * 1e9).round() as u64).min(end_ns);
        p.frames_due = plan.due(from, to).values().sum();
        from = to;
    }
    // What the events did on the agents' servers, in the order it happened.
    happened.failovers.append(&mut counts.happened.failovers);
    happened.failovers.sort_by_key(|(_, at)| *at);
    happened.replaced.append(&mut counts.happened.replaced);
    happened.replaced.sort_by_key(|r| r.done_ns);
    let failovers = happened
        .failovers
        .into_iter()
        .map(|(host, at)| failover_outcome(scenario, &clients, &host, at))
        .collect();
    let hosts = host_outcomes(scenario, &clients, counts.server_failures);
    let certificate_events = certificate_event_outcomes(
        &happened.replaced,
        &counts.watched,
        &hosts,
        start_ns,
        end_ns,
    );
    Ok(Some(PhaseOutcome {
        mode,
        links,
        roles: counts
            .window_cpu
            .into_iter()
            .map(|(role, cpu_s)| RoleCpu { role, cpu_s })
            .collect(),
        failovers,
        incompatibilities: plan.incompatibilities.clone(),
        hosts,
        certificate_events,
        window_s: (end_ns - start_ns) as f64 / 1e9,
        process_cpu: counts.process_cpu,
        peak_rss_bytes,
        baseline_rss_bytes: baseline_rss_bytes + counts.baseline_rss_bytes,
        role_peak_rss: role_peak_rss(placed, counts.role_peak_rss, local_plan, local_peak),
        partial: happened.partial || lost,
        intervals,
        ramp,
        steady: Steady {
            rss_bytes: steady.rss_bytes + counts.steady.rss_bytes,
            connections: steady.connections + counts.steady.connections,
        },
        machine,
        process,
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
    let clock = deployment.local.site.clock;
    let start = plan.start_ns;
    let warm_end = start + timing.warmup.as_nanos() as u64;
    let give_up = start.max(warm_end) + plan.ramp.duration_ns() + SETTLE_GRACE.as_nanos() as u64;
    let cpu0 = deployment.status().cpu;
    let mut settled_at: Option<(u64, BTreeMap<String, f64>, u64)> = None;
    let mut catch_up = CatchUp::new(clock.now_ns());
    let mut status;
    loop {
        let now = clock.now_ns();
        status = deployment.status();
        if settled_at.is_none() && now >= start && status.settled >= status.clients {
            settled_at = Some((now, status.cpu.clone(), status.connections));
            catch_up.watch(now);
        }
        catch_up.poll(now, Duration::from_nanos(status.lag_ns));
        let ready = settled_at.is_some() && catch_up.settled(now);
        if now >= warm_end && (ready || now >= give_up) {
            break;
        }
        tokio::select! {
            _ = interrupt.cancelled() => return None,
            _ = tokio::time::sleep(SETTLE_POLL) => {}
        }
    }
    let opened = clock.now_ns();
    let (end, cpu1, connections) =
        settled_at.unwrap_or_else(|| (opened, status.cpu.clone(), status.connections));
    let seconds = end.saturating_sub(start) as f64 / 1e9;
    Some(RampOutcome {
        clients: status.clients,
        settled: status.settled,
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
/// used in it, the interval samples, what the watchers saw. `deployment` comes back with
/// what the window measured or, on an error, is stopped everywhere first.
pub(super) async fn measure<'a>(
    mut deployment: Deployment<'a>,
    schedule: Schedule,
    window: &Window,
    timing: Timing,
    interrupt: &CancellationToken,
    options: &PhaseOptions,
    baseline_fds: u64,
) -> anyhow::Result<(Deployment<'a>, Measured)> {
    let clock = deployment.local.site.clock;
    // Agents learn of the opening by message: it is announced ahead, so that theirs opens
    // on time too and no frame of the first moments goes uncounted.
    let ahead = if deployment.remote.is_empty() {
        0
    } else {
        OPEN_AHEAD.as_nanos() as u64
    };
    let start_ns = clock.now_ns() + ahead;
    let end_at = start_ns + timing.duration.as_nanos() as u64;
    for r in &deployment.remote {
        r.open(start_ns, end_at);
    }
    // Both ends are set before the window opens, so that whether a frame counts depends
    // only on when it was scheduled, never on when it arrived or a timer fired; an
    // interruption moves the end earlier.
    window.open(start_ns);
    window.close(end_at);
    tokio::time::sleep_until(clock.instant_at(start_ns).into()).await;
    let cpus_at_open = cpu::Reading::now();
    let cpu0 = deployment.local.site.cpu();
    let usage0 = process::usage().unwrap_or_default();
    let sampler = Sampler::start_every(
        deployment.local.meters(),
        clock,
        start_ns,
        options.soak_interval.unwrap_or(INTERVAL),
        options.soak_interval.is_some(),
        with_remote_samples(options.on_interval.clone(), &deployment.remote),
    );
    let events = schedule.run(
        &mut deployment.local.roles,
        clock,
        start_ns,
        timing.duration,
        interrupt,
    );
    let mut happened = match events.await {
        Ok(h) => h,
        Err(e) => {
            deployment.shutdown().await;
            return Err(e);
        }
    };
    if !happened.partial {
        tokio::select! {
            _ = interrupt.cancelled() => happened.partial = true,
            _ = tokio::time::sleep_until(clock.instant_at(end_at).into()) => {}
        }
    }
    // The window ends on time unless cut short (the scheduled end has passed by now).
    let end_ns = if happened.partial {
        clock.now_ns().min(end_at)
    } else {
        end_at
    };
    window.close(end_ns);
    for r in &deployment.remote {
        r.close(end_ns);
    }
    let cpu1 = deployment.local.site.cpu();
    let machine = CpuWindow::between(&cpus_at_open, &cpu::Reading::now());
    let steady = Steady {
        rss_bytes: process::rss_bytes().unwrap_or(0),
        connections: process::open_fds()
            .unwrap_or(0)
            .saturating_sub(baseline_fds)
            / 2,
    };
    let process_cpu = process::usage().unwrap_or_default() - usage0;
    let (mut intervals, process_samples) = sampler.finish_all().await;
    if !deployment.remote.is_empty() {
        // The agents' last samples leave them when their windows close.
        tokio::time::sleep(super::remote::STATUS_EVERY * 3).await;
        let remote = deployment.remote.iter().flat_map(RemoteShare::intervals);
        intervals = merge_intervals(intervals.into_iter().chain(remote));
    }
    let cpu = cpu1
        .iter()
        .map(|(k, v)| (k.clone(), v - cpu0.get(k).copied().unwrap_or(0.0)))
        .collect();
    let measured = Measured {
        steady,
        start_ns,
        end_ns,
        cpu,
        process_cpu,
        intervals,
        happened,
        machine,
        process: process_samples,
    };
    Ok((deployment, measured))
}

/// `hook` (live progress) given each second's samples of this process and, as far as they
/// have arrived, the agents' latest.
fn with_remote_samples(
    hook: Option<crate::engine::sampler::IntervalHook>,
    remote: &[RemoteShare<'_>],
) -> Option<crate::engine::sampler::IntervalHook> {
    let hook = hook?;
    if remote.is_empty() {
        return Some(hook);
    }
    let readers: Vec<_> = remote.iter().map(|r| r.latest_intervals()).collect();
    Some(Arc::new(move |local: &[IntervalSample]| {
        let all = local
            .iter()
            .cloned()
            .chain(readers.iter().flat_map(|read| read()));
        hook(&merge_intervals(all.map(|mut s| {
            // One second for the display, whoever's clock took it.
            s.t_s = 1.0;
            s.interval_s = 1.0;
            s
        })))
    }))
}

/// For a phase spread over processes, each role and the peak memory of the process it ran
/// in: the agents' (`remote`) and this process's (`local_peak`) for the roles of
/// `local_plan`; empty for a phase in one process.
fn role_peak_rss(
    placed: bool,
    remote: BTreeMap<String, u64>,
    local_plan: &Plan,
    local_peak: u64,
) -> BTreeMap<String, u64> {
    if !placed {
        return BTreeMap::new();
    }
    let mut m = remote;
    for role in &local_plan.roles {
        m.entry(role.runtime.clone()).or_insert(local_peak);
    }
    m
}

/// Interval samples of several processes as one series: samples of the same link and the
/// same second (counted from the window's opening) added — counts summed, histograms
/// added — in time order.
fn merge_intervals(samples: impl Iterator<Item = IntervalSample>) -> Vec<IntervalSample> {
    let mut merged: BTreeMap<(u64, String), IntervalSample> = BTreeMap::new();
    for s in samples {
        // The second the interval's middle falls in: the same for every process's sample of
        // it, whatever their timers' jitter, and apart from a short last interval.
        let second = (s.t_s - s.interval_s / 2.0).max(0.0).floor() as u64;
        match merged.entry((second, s.link.clone())) {
            std::collections::btree_map::Entry::Vacant(v) => {
                v.insert(s);
            }
            std::collections::btree_map::Entry::Occupied(mut o) => {
                let m = o.get_mut();
                m.frames += s.frames;
                m.bytes += s.bytes;
                m.t_s = m.t_s.max(s.t_s);
                m.interval_s = m.interval_s.max(s.interval_s);
                let _ = m.latency_us.add(&s.latency_us);
            }
        }
    }
    merged.into_values().collect()
}

/// Waits until what was due has arrived (or was dropped), within [`MAX_DRAIN`], reading
/// the clients' frame counters here and on the agents.
async fn drain(deployment: &Deployment<'_>, due: &BTreeMap<LinkId, u64>) {
    let drain_until = tokio::time::Instant::now() + MAX_DRAIN;
    while tokio::time::Instant::now() < drain_until {
        let status = deployment.status();
        let missing: u64 = due
            .iter()
            .map(|(l, d)| d.saturating_sub(status.frames.get(l.as_str()).copied().unwrap_or(0)))
            .sum();
        if missing <= status.dropped_frames {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[cfg(test)]
mod tests {
    use simulators::metrics::{latency_histogram, RecordUs as _};

    use super::*;

    fn sample(link: &str, t_s: f64, frames: u64, latency_us: u64) -> IntervalSample {
        let mut h = latency_histogram();
        h.record_us_n(latency_us, frames);
        IntervalSample {
            link: link.to_owned(),
            t_s,
            interval_s: 1.0,
            frames,
            bytes: frames * 100,
            latency_us: h,
        }
    }

    #[test]
    fn intervals_of_several_processes_add_up_per_link_and_second() {
        let merged = merge_intervals(
            [
                sample("viewer-recorder", 1.0002, 30, 500),
                sample("viewer-recorder", 0.9998, 20, 900),
                sample("viewer-recorder", 2.0001, 10, 500),
                sample("phone-mobile", 1.0, 5, 700),
            ]
            .into_iter(),
        );
        let got: Vec<(&str, u64, u64, u64)> = merged
            .iter()
            .map(|s| (s.link.as_str(), s.frames, s.bytes, s.latency_us.len()))
            .collect();
        assert_eq!(
            got,
            [
                ("phone-mobile", 5, 500, 5),
                ("viewer-recorder", 50, 5000, 50),
                ("viewer-recorder", 10, 1000, 10),
            ]
        );
        assert_eq!(
            merged[1].latency_us.max(),
            merged[1].latency_us.highest_equivalent(900)
        );
    }
}
