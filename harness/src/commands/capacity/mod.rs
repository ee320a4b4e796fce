//! `vmsbench capacity`: how many cameras one recording server holds within a service
//! objective, in plaintext and over TLS, and so what encryption costs in cameras.
//!
//! The scenario (default `small`) is narrowed to its first recording server with the
//! clients that watch it, and then grown: at `N` cameras, the camera groups keep their
//! profile mix and every client group (viewers, integrations, phones through the mobile
//! server) is scaled by `N / cameras in the scenario`, so the share of cameras being watched
//! stays the scenario's. Each step runs one phase of the deployment at one count in one mode
//! and checks the `objective` on the streams the recording server serves; the
//! `search` decides the next count. The recording server runs on CPUs of its own and
//! every other role on the rest, so that its CPU (and its saturation) is not mixed up with
//! its clients'.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use clap::Args;
use simulators::clock::RunClock;
use simulators::metrics::LinkMetrics;
use simulators::transport::Mode;
use simulators::video::Profile;
use tokio_util::sync::CancellationToken;

use crate::cli::{
    count_within, duration_within, parse_positive_usize, DocumentExportArgs, ModeArg,
    PlacementArgs, TlsArgs, MAX_WARMUP, MAX_WINDOW,
};
use crate::engine::capacity::search::{self, Probe, SearchParams, Searches, Stop, Verdict};
use crate::engine::capacity::shape::Shape;
use crate::engine::credentials::Credentials;
use crate::engine::deployment::{
    role_of_host, run_phase_with, Agents, PhaseOptions, PhaseOutcome, Timing, MAX_DRAIN,
};
use crate::engine::pinning::{pin_servers, split_cpus, PinGuard};
use crate::engine::scenario::{file, LinkId, MAX_CAMERAS, MAX_THREADS};
use crate::output::progress::{self, Steps};
use crate::report::capacity::{
    cost_pct, cost_pct_range, CameraRange, CapacityReport, ModeResult, Modes, ObjectiveInfo,
    Projection, SearchInfo, Step, StepLink, CAPACITY_SCHEMA_VERSION, NEAR_BOUNDARY, SATURATED,
};
use crate::report::interval::{self, Interval};
use crate::report::objective::{
    self, parse_objective, Limit, Measured, Objective, DEFAULT_OBJECTIVE,
};
use crate::report::{Percentiles, TlsInfo};
use crate::sys::environment::Environment;
use crate::units::format_duration_us;

/// The links a recording server serves: their streams are what the objective measures.
const SERVER_LINKS: [LinkId; 3] = [
    LinkId::ViewerRecorder,
    LinkId::SdkRecorder,
    LinkId::MobileRecorder,
];

/// Steps whose process peaks above this share of physical memory fail (`memory`): the
/// search would otherwise double its way into the out-of-memory killer.
const MEMORY_GUARD: f64 = 0.8;

/// Time a step spends starting and stopping its roles, beyond warm-up, window and drain
/// (the search learns how this grows with the cameras).
const STEP_OVERHEAD: Duration = Duration::from_millis(500);

/// `vmsbench capacity`.
#[derive(Debug, Args)]
pub struct CapacityArgs {
    /// A preset name (small, medium, …) or a scenario file; its first recording server is
    /// searched. Default: small.
    #[arg(value_name = "SCENARIO")]
    pub scenario: Option<String>,
    /// The service objective every step must meet: terms on frame latency (p50, p90, p99,
    /// p999, max), late and dropped frames (count or %), failures, the server's cpu (%)
    /// and rss, e.g. 'p99<=200ms,late<=0.1%,dropped=0,failures=0'.
    #[arg(long, default_value = DEFAULT_OBJECTIVE, value_parser = parse_objective)]
    pub objective: Objective,
    /// Plaintext, TLS, or both (their steps interleaved: plain, tls, plain, …).
    #[arg(long, value_enum, default_value_t = ModeArg::Both)]
    pub mode: ModeArg,
    /// Length of each step's measured window: 500ms to 1h.
    #[arg(long, value_parser = duration_within(MIN_STEP, MAX_STEP), default_value = "3s")]
    pub step_duration: Duration,
    /// Time before each window for connections to settle; at least the longest GOP plus
    /// 0.5 s, since a new stream waits for a key frame; at most 1h.
    #[arg(long, value_parser = duration_within(Duration::ZERO, MAX_WARMUP), default_value = "2s")]
    pub warmup: Duration,
    /// First camera count (default: the scenario's, on its first recording server): 1 to
    /// 100000.
    #[arg(long, value_parser = parse_camera_count)]
    pub start: Option<u32>,
    /// Largest camera count to try: 1 to 100000.
    #[arg(long, value_parser = parse_camera_count, default_value = "20000")]
    pub max: u32,
    /// Stop bisecting when the bracket is within this share of the count (e.g. 5%, 0).
    #[arg(long, value_parser = parse_percent, default_value = "3%")]
    pub precision: f64,
    /// Wall-clock budget of the whole search; the bracket reached is reported: 1s to 7d.
    #[arg(long, value_parser = duration_within(Duration::from_secs(1), MAX_WINDOW), default_value = "3m")]
    pub budget: Duration,
    /// Profile of every camera: sub, 720p, 1080p, 1080p-h265, 4mp, 4k, mjpeg-1080p
    /// (default: the scenario's mix).
    #[arg(long)]
    pub profile: Option<String>,
    /// CPUs for the recording server; every other role gets the rest (default: half of
    /// the CPUs this process may use, at least one; no pinning on a single CPU).
    #[arg(long, value_parser = parse_positive_usize)]
    pub server_cpus: Option<usize>,
    /// Project the capacity linearly to a recording server with N cores: 1 to 1024.
    #[arg(long, value_name = "N", value_parser = count_within::<usize>(1, MAX_THREADS))]
    pub project_cores: Option<usize>,
    /// Make the recording server burn this much CPU (µs of its thread's time) per frame
    /// sent, so that its capacity is known: for testing the search.
    #[arg(long, value_name = "US", value_parser = parse_throttle)]
    pub throttle_us_per_frame: Option<f64>,
    /// Where to write the report (every step of the search; the HTML page plots latency
    /// and CPU against camera count).
    #[command(flatten)]
    pub export: DocumentExportArgs,
    /// TLS flags.
    #[command(flatten)]
    pub tls: TlsArgs,
    /// Placement flags: e.g. `--place recorder-1=box` to measure the recording server on
    /// a machine of its own, its clients elsewhere.
    #[command(flatten)]
    pub placement: PlacementArgs,
    /// `--with-limits`.
    #[command(flatten)]
    pub limits: crate::cli::WithLimitsArgs,
}

/// The key type of the searched scenario's certificates (`--key` applied).
pub(super) fn key(args: &CapacityArgs) -> anyhow::Result<simulators::pki::KeyType> {
    let mut s = file::load(args.scenario.as_deref().unwrap_or(file::DEFAULT_PRESET))?;
    args.tls.apply(&mut s.tls, &mut s.key);
    Ok(s.key)
}

fn parse_camera_count(s: &str) -> Result<u32, String> {
    count_within(1, MAX_CAMERAS)(s)
}

/// The shortest step window that can judge a step.
const MIN_STEP: Duration = Duration::from_millis(500);
/// The longest step window.
const MAX_STEP: Duration = Duration::from_secs(3600);

fn parse_percent(s: &str) -> Result<f64, String> {
    let t = s.trim();
    let v: f64 = t
        .strip_suffix('%')
        .unwrap_or(t)
        .trim()
        .parse()
        .map_err(|_| format!("{s:?} is not a percentage (e.g. 3%)"))?;
    if !(0.0..=50.0).contains(&v) {
        return Err(format!("the precision must be 0–50 %, not {v}"));
    }
    Ok(v / 100.0)
}

fn parse_throttle(s: &str) -> Result<f64, String> {
    let v: f64 = s
        .trim()
        .parse()
        .map_err(|_| format!("{s:?} is not a number of microseconds"))?;
    if !(v > 0.0 && v <= 1e6) {
        return Err(format!(
            "the throttle must be above 0 and at most 1 s, not {v} µs"
        ));
    }
    Ok(v)
}

/// The scenario and placement a search runs on.
struct Plan {
    shape: Shape,
    role: String,
    server_cpus: Vec<usize>,
    client_cpus: Vec<usize>,
    timing: Timing,
    /// The agent whose machine the recording server has to itself, if it was placed.
    own_box: Option<String>,
}

fn plan(args: &CapacityArgs) -> anyhow::Result<Plan> {
    let spec = args.scenario.as_deref().unwrap_or(file::DEFAULT_PRESET);
    let mut s = file::load(spec)?;
    if let Some(p) = &args.profile {
        let profile = Profile::preset(p).context("--profile")?;
        for g in s.recorders.iter_mut().flat_map(|r| r.cameras.iter_mut()) {
            g.profile = profile.clone();
        }
    }
    args.tls.apply(&mut s.tls, &mut s.key);
    s.check()?;
    let mut shape = Shape::new(s)?;
    let role = role_of_host(shape.host()).to_owned();
    let cpus = split_cpus(args.server_cpus)?;
    let (server_cpus, client_cpus) = cpus.clone().unwrap_or_default();
    let b = &mut shape.base;
    if let Some((server, clients)) = cpus {
        b.server_threads = server.len();
        b.client_threads = clients.len();
        b.pinning = Some(pin_servers([role.clone()], &server, clients));
    } else {
        b.server_threads = 1;
        b.client_threads = 1;
    }
    b.recorder_cpu_per_frame = args
        .throttle_us_per_frame
        .map(|us| Duration::from_nanos((us * 1e3).round() as u64));
    let longest_gop = b
        .recorders
        .iter()
        .flat_map(|r| &r.cameras)
        .map(|g| {
            Duration::from_nanos(g.profile.frame_interval_ns() * u64::from(g.profile.gop.max(1)))
        })
        .max()
        .unwrap_or_default();
    let least = longest_gop + Duration::from_millis(500);
    if args.warmup < least {
        anyhow::bail!(
            "--warmup {:.2} s is too short: a new stream waits up to a GOP ({:.2} s) for its \
             first key frame; give at least {:.2} s",
            args.warmup.as_secs_f64(),
            longest_gop.as_secs_f64(),
            least.as_secs_f64()
        );
    }
    if args.step_duration < Duration::from_millis(500) {
        anyhow::bail!(
            "--step-duration {:?} is too short to judge a step; give at least 500ms",
            args.step_duration
        );
    }
    Ok(Plan {
        shape,
        role,
        server_cpus,
        client_cpus,
        timing: Timing {
            warmup: args.warmup,
            duration: args.step_duration,
        },
        own_box: None,
    })
}

/// What a step measured on the recording server's streams.
struct Figures {
    measured: Measured,
    streams: u64,
    frames_received: u64,
    missing_frames: u64,
    goodput_mbit_s: f64,
    clients_cores: f64,
    tls: Option<TlsInfo>,
    links: Vec<StepLink>,
    roles: BTreeMap<String, f64>,
    worst_second_p99_us: Option<u64>,
}

/// A step's figures. With `offset_free`, the latency judged is the delay variation: the
/// recording server and its clients ran on hosts whose clocks were not shown to agree, and
/// one-way latency would carry their offset.
fn figures(plan: &Plan, out: &PhaseOutcome, offset_free: bool) -> Figures {
    let mut received = LinkMetrics::default();
    let (mut due, mut dropped, mut streams, mut failures) = (0u64, 0u64, 0u64, 0u64);
    let mut links = Vec::new();
    for l in &out.links {
        failures += l.received.errors.values().sum::<u64>();
        failures += l.server_failures.values().sum::<u64>();
        if !SERVER_LINKS.iter().any(|s| s.as_str() == l.link) {
            continue;
        }
        received.merge(&l.received);
        due += l.frames_due;
        dropped += l.sent.dropped_frames;
        streams += l.streams;
        let r = &l.received;
        let missing = l
            .frames_due
            .saturating_sub(r.frames + l.sent.dropped_frames);
        links.push(StepLink {
            link: l.link.clone(),
            connections: r.connections,
            streams: l.streams,
            frames_due: l.frames_due,
            late_frames: r.late_frames + missing,
            dropped_frames: l.sent.dropped_frames,
            latency_us: Percentiles::of(&r.latency_us),
        });
    }
    let window_s = out.window_s.max(1e-9);
    let server_s: f64 = out
        .roles
        .iter()
        .filter(|r| r.role == plan.role)
        .map(|r| r.cpu_s)
        .sum();
    // Frames due that neither arrived (by the end of the drain) nor were dropped are as
    // good as infinitely late.
    let missing = due.saturating_sub(received.frames + dropped);
    Figures {
        measured: Measured {
            latency_us: Percentiles::of(if offset_free {
                &received.delay_variation_us
            } else {
                &received.latency_us
            }),
            frames_due: due,
            late_frames: received.late_frames + missing,
            dropped_frames: dropped,
            failures,
            server_cores: server_s / window_s,
            server_cpus: plan.shape.base.server_threads,
            // The recording server's own process when it ran on an agent.
            peak_rss_bytes: out
                .role_peak_rss
                .get(&plan.role)
                .copied()
                .unwrap_or(out.peak_rss_bytes),
        },
        streams,
        frames_received: received.frames,
        missing_frames: missing,
        goodput_mbit_s: received.bytes as f64 * 8.0 / window_s / 1e6,
        clients_cores: (out.process_cpu.total_s() - server_s).max(0.0) / window_s,
        tls: received.negotiated.as_ref().map(TlsInfo::from),
        links,
        roles: out
            .roles
            .iter()
            .map(|r| (r.role.clone(), r.cpu_s / window_s))
            .collect(),
        worst_second_p99_us: out
            .intervals
            .iter()
            .filter(|i| SERVER_LINKS.iter().any(|s| s.as_str() == i.link))
            .filter(|i| !i.latency_us.is_empty())
            .map(|i| i.latency_us.value_at_quantile(0.99))
            .max(),
    }
}

/// The verdict on a step, as reported: whether it passed, why not, and what limited it.
struct Judged {
    pass: bool,
    reasons: Vec<String>,
    limit: Option<Limit>,
}

/// The verdict on a step: the objective's violations, the built-in memory guard, and
/// which limit explains a failure (a saturated CPU first, since it causes the rest).
fn judge(objective: &Objective, f: &Figures, client_cpus: usize, memory_bytes: u64) -> Judged {
    let m = &f.measured;
    let mut violations = objective.check(m);
    if memory_bytes > 0 && m.peak_rss_bytes as f64 > MEMORY_GUARD * memory_bytes as f64 {
        violations.push(objective::Violation {
            limit: Limit::Memory,
            reason: format!(
                "peak RSS {} above {:.0} % of this machine's memory",
                crate::units::format_bytes(m.peak_rss_bytes),
                MEMORY_GUARD * 100.0
            ),
        });
    }
    let pass = violations.is_empty();
    let limit = if pass {
        None
    } else if m.server_cores >= SATURATED * m.server_cpus.max(1) as f64 {
        Some(Limit::ServerCpu)
    } else if client_cpus > 0 && f.clients_cores >= SATURATED * client_cpus as f64 {
        Some(Limit::ClientCpu)
    } else {
        violations.first().map(|v| v.limit)
    };
    Judged {
        pass,
        reasons: violations.into_iter().map(|v| v.reason).collect(),
        limit,
    }
}

/// One mode's steps so far, and what its TLS handshakes negotiated.
#[derive(Default)]
struct Collected {
    steps: Vec<Step>,
    tls: Option<TlsInfo>,
}

/// `vmsbench capacity`: searches, prints progress on stderr, and returns the report.
pub async fn run(
    args: &CapacityArgs,
    interrupt: &CancellationToken,
) -> anyhow::Result<CapacityReport> {
    let mut plan = plan(args)?;
    args.placement.apply_wan(&mut plan.shape.base)?;
    let agents = super::measure::gather_agents(&args.placement, interrupt).await?;
    if let Some(a) = &agents {
        own_box(&mut plan, args, a);
        a.certify_addresses(&mut plan.shape.base);
    }
    let environment = Environment::detect();
    let creds = Credentials::for_scenario(&plan.shape.base)?;
    let clock = RunClock::new();
    let modes = args.mode.modes();
    let start = args
        .start
        .unwrap_or_else(|| plan.shape.base_cameras())
        .min(args.max);
    let params = search_params(args, &plan, start);
    // This thread starts, drains and stops every phase: keep it off the recording server's
    // CPUs too.
    let _pinned = PinGuard::pin(&plan.client_cpus)?;
    let stepper = Stepper {
        args,
        plan: &plan,
        creds: &creds,
        clock,
        // A step is judged on its whole window; its per-second samples show whether a
        // failure came in one burst or throughout (`Step::worst_second_p99_us`).
        options: PhaseOptions {
            agents: agents.clone(),
            ..PhaseOptions::default()
        },
        memory_bytes: environment.memory_bytes,
        interrupt,
    };
    let mut searches = Searches::new(params, &modes);
    let started_at = humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string();
    let mut steps = Steps::new(None);
    announce(args, &plan);
    let collected = stepper.search(&mut searches, &mut steps, &modes).await;
    if let Some(a) = &agents {
        a.bye().await;
    }
    let collected = collected?;
    let placement = agents.as_deref().map(super::measure::placement_record);
    if interrupt.is_cancelled() {
        searches.stop_all(Stop::Interrupted);
    }

    let mut warnings = search_warnings(&environment, &plan);
    if let Some(p) = placement.as_ref().filter(|p| !p.clocks_agree) {
        warnings.push(format!(
            "the objective's latency terms were judged on delay variation, not one-way \
             latency: {}",
            p.latency
        ));
    }
    let results = mode_results(collected, &searches, &mut warnings);
    let capacity = |m: &Option<ModeResult>| m.as_ref()?.max_cameras.map(f64::from);
    let capacity_cost_pct = cost_pct(capacity(&results.plain), capacity(&results.tls));
    let range = |m: &Option<ModeResult>| m.as_ref()?.max_cameras_range;
    let capacity_cost_pct_range = cost_pct_range(range(&results.plain), range(&results.tls));
    let projection = args
        .project_cores
        .map(|n| Projection::linear(n, results.plain.as_ref(), results.tls.as_ref()));
    Ok(CapacityReport {
        schema_version: CAPACITY_SCHEMA_VERSION,
        command: "capacity".into(),
        started_at,
        partial: interrupt.is_cancelled(),
        environment,
        scenario: scenario_identity(&plan.shape.at(start))?,
        objective: ObjectiveInfo {
            text: args.objective.to_string(),
            parsed: args.objective.clone(),
        },
        search: search_info(args, &plan, start, steps.elapsed(), modes.len() > 1),
        modes: results,
        capacity_cost_pct,
        capacity_cost_pct_range,
        projection,
        warnings,
        notes: plan.shape.notes.clone(),
        placement,
        limits: None,
    })
}

/// A recording server placed on an agent has that machine to itself: unless
/// `--server-cpus` says otherwise, it runs a thread per core of the agent's machine,
/// unpinned, and the clients here use every CPU of this one.
fn own_box(plan: &mut Plan, args: &CapacityArgs, agents: &Agents) {
    let host = plan.shape.host().to_owned();
    let Some(agent) = agents.placement().agent_of_server(&plan.role, &host) else {
        return;
    };
    if args.server_cpus.is_some() {
        return;
    }
    let cores = agents.environment(agent).map_or(1, |e| e.cores.max(1));
    let here = std::thread::available_parallelism().map_or(1, usize::from);
    let b = &mut plan.shape.base;
    b.server_threads = cores;
    b.client_threads = here;
    b.pinning = None;
    plan.own_box = Some(agent.to_owned());
    plan.server_cpus.clear();
    // Unpinned, the clients may use every CPU here.
    plan.client_cpus = (0..here).collect();
}

/// Where the search starts and how far and fine it goes; a step's estimated time is its
/// warm-up, window, longest drain and [`STEP_OVERHEAD`].
fn search_params(args: &CapacityArgs, plan: &Plan, start: u32) -> SearchParams {
    let t = plan.timing;
    SearchParams {
        start,
        max: args.max,
        precision: args.precision,
        budget: args.budget,
        step_estimate: t.warmup + t.duration + MAX_DRAIN + STEP_OVERHEAD,
    }
}

/// Prints on stderr what is searched, against which objective, for how long, and where
/// the recording server and its clients run.
fn announce(args: &CapacityArgs, plan: &Plan) {
    let t = plan.timing;
    let placement = if let Some(agent) = &plan.own_box {
        format!(
            "{} on agent {agent}, {} server thread(s), not pinned",
            plan.role, plan.shape.base.server_threads
        )
    } else if plan.server_cpus.is_empty() {
        "not pinned: only one CPU, so the recording server shares it with its clients".to_owned()
    } else {
        format!(
            "{} pinned to CPU {:?}, every other role to CPU {:?}",
            plan.role, plan.server_cpus, plan.client_cpus
        )
    };
    progress::note(&format!(
        "capacity of {} ({}): objective {}, {} s per step after {} s warm-up, budget {}; {placement}",
        plan.role,
        plan.shape.base.name,
        args.objective,
        t.duration.as_secs_f64(),
        t.warmup.as_secs_f64(),
        humantime::format_duration(args.budget),
    ));
}

/// What every step of a search shares: the scenario and its placement, the credentials,
/// how a phase runs, and the interrupt that stops the search.
struct Stepper<'a> {
    args: &'a CapacityArgs,
    plan: &'a Plan,
    creds: &'a Credentials,
    clock: RunClock,
    options: PhaseOptions,
    /// Physical memory, for the memory guard (0 if unknown).
    memory_bytes: u64,
    interrupt: &'a CancellationToken,
}

impl Stepper<'_> {
    /// Runs the steps the searches ask for until they are done, the budget is spent or
    /// the run is interrupted; returns each mode's steps.
    async fn search(
        &self,
        searches: &mut Searches,
        steps: &mut Steps,
        modes: &[Mode],
    ) -> anyhow::Result<Vec<(Mode, Collected)>> {
        let mut collected: Vec<(Mode, Collected)> =
            modes.iter().map(|m| (*m, Collected::default())).collect();
        let mut index = 0;
        while let Some((mode, probe)) = searches.next(steps.elapsed()) {
            if self.interrupt.is_cancelled() {
                searches.stop_all(Stop::Interrupted);
                break;
            }
            index += 1;
            let Some((step, tls)) = self.step(index, mode, probe, searches, steps).await? else {
                searches.stop_all(Stop::Interrupted);
                break;
            };
            let Some((_, c)) = collected.iter_mut().find(|(m, _)| *m == mode) else {
                continue;
            };
            if tls.is_some() {
                c.tls = tls;
            }
            c.steps.push(step);
        }
        Ok(collected)
    }

    /// Step `index`: runs `probe` in `mode`, judges it, tells the search and the progress
    /// line, and returns its record with what TLS negotiated; `None` if it was
    /// interrupted.
    async fn step(
        &self,
        index: usize,
        mode: Mode,
        probe: Probe,
        searches: &mut Searches,
        steps: &mut Steps,
    ) -> anyhow::Result<Option<(Step, Option<TlsInfo>)>> {
        let Probe { cameras, stage } = probe;
        steps.begin(&format!(
            "{mode:<5} {:<7} {cameras:>6} cameras",
            stage.as_str()
        ));
        let step_began = Instant::now();
        let Some(outcome) = self.run_phase(mode, cameras).await? else {
            return Ok(None);
        };
        let offset_free = self.options.agents.as_ref().is_some_and(|a| {
            a.worst_clock_us()
                .is_some_and(|us| us > super::measure::CLOCKS_AGREE_US)
        });
        let mut f = figures(self.plan, &outcome, offset_free);
        let judged = judge(
            &self.args.objective,
            &f,
            self.plan.client_cpus.len(),
            self.memory_bytes,
        );
        let m = &f.measured;
        let load = (m.server_cores / m.server_cpus.max(1) as f64)
            .max(f.clients_cores / self.plan.client_cpus.len().max(1) as f64);
        let verdict = Verdict {
            pass: judged.pass,
            load: Some(load),
            took: step_began.elapsed(),
        };
        searches.record(mode, cameras, &verdict);
        steps.end(&step_line(&f, &judged));
        let tls = f.tls.take();
        let elapsed_s = steps.elapsed().as_secs_f64();
        let step = self.step_record(index, probe, f, judged, outcome.window_s, elapsed_s);
        Ok(Some((step, tls)))
    }

    /// Runs one phase of the scenario at `cameras` in `mode`; `None` if it was interrupted
    /// (or cut short).
    async fn run_phase(&self, mode: Mode, cameras: u32) -> anyhow::Result<Option<PhaseOutcome>> {
        let scenario = self.plan.shape.at(cameras);
        let phase = run_phase_with(
            &scenario,
            self.creds,
            mode,
            self.clock,
            self.plan.timing,
            self.interrupt,
            &self.options,
        );
        Ok(phase.await?.filter(|outcome| !outcome.partial))
    }

    /// The report's record of step `index`: `probe`, what it measured and its verdict,
    /// `window_s` its measured window and `elapsed_s` the search's time when it ended.
    fn step_record(
        &self,
        index: usize,
        probe: Probe,
        f: Figures,
        judged: Judged,
        window_s: f64,
        elapsed_s: f64,
    ) -> Step {
        let Probe { cameras, stage } = probe;
        let m = &f.measured;
        Step {
            index,
            stage,
            cameras,
            streams: f.streams,
            pass: judged.pass,
            reasons: judged.reasons,
            limit: judged.limit,
            latency_us: m.latency_us,
            frames_due: m.frames_due,
            frames_received: f.frames_received,
            late_frames: m.late_frames,
            missing_frames: f.missing_frames,
            dropped_frames: m.dropped_frames,
            failures: m.failures,
            goodput_mbit_s: f.goodput_mbit_s,
            cpu_server_cores: m.server_cores,
            server_cpus: m.server_cpus,
            cpu_clients_cores: f.clients_cores,
            client_cpus: self.plan.client_cpus.len(),
            cpu_per_camera_server_s: m.server_cores / f64::from(cameras.max(1)),
            cpu_roles_cores: f.roles,
            links: f.links,
            worst_second_p99_us: f.worst_second_p99_us,
            peak_rss_bytes: m.peak_rss_bytes,
            window_s,
            elapsed_s,
        }
    }
}

/// A step's result on the progress line: streams, pass or FAIL, the key figures and, on a
/// failure, the limit and why.
fn step_line(f: &Figures, judged: &Judged) -> String {
    let m = &f.measured;
    format!(
        "{} streams  {}  p99 {}, late {}, dropped {}, server {:.2}/{} cores, clients {:.2} \
         cores{}",
        f.streams,
        if judged.pass { "pass" } else { "FAIL" },
        format_duration_us(m.latency_us.p99 as f64),
        m.late_frames,
        m.dropped_frames,
        m.server_cores,
        m.server_cpus,
        f.clients_cores,
        match judged.limit {
            Some(l) => format!(" — {}: {}", l.describe(), judged.reasons.join("; ")),
            None => String::new(),
        }
    )
}

/// What a reader of the whole search must know: a debug build, an unpinned server.
fn search_warnings(environment: &Environment, plan: &Plan) -> Vec<String> {
    let mut warnings: Vec<String> = environment
        .debug_build_warning("capacities")
        .into_iter()
        .collect();
    if plan.server_cpus.is_empty() && plan.own_box.is_none() {
        warnings.push(
            "the recording server was not pinned (a single CPU): its capacity includes its \
             clients' cost"
                .into(),
        );
    }
    warnings
}

/// Each searched mode's result, from its search and its steps; what a reader of each must
/// know is added to `warnings`.
fn mode_results(
    collected: Vec<(Mode, Collected)>,
    searches: &Searches,
    warnings: &mut Vec<String>,
) -> Modes {
    let mut results = Modes::default();
    for (mode, c) in collected {
        let Some(search) = searches.of(mode) else {
            continue;
        };
        let result = mode_result(search, c);
        warnings.extend(mode_warnings(mode, search, &result));
        match mode {
            Mode::Plain => results.plain = Some(result),
            Mode::Tls => results.tls = Some(result),
        }
    }
    results
}

/// How the search was set up and placed, and how long it took (`elapsed`).
fn search_info(
    args: &CapacityArgs,
    plan: &Plan,
    start: u32,
    elapsed: Duration,
    interleaved: bool,
) -> SearchInfo {
    let t = plan.timing;
    SearchInfo {
        start,
        max: args.max,
        precision_pct: args.precision * 100.0,
        warmup_s: t.warmup.as_secs_f64(),
        step_duration_s: t.duration.as_secs_f64(),
        budget_s: args.budget.as_secs_f64(),
        elapsed_s: elapsed.as_secs_f64(),
        interleaved,
        server_role: plan.role.clone(),
        server_cpus: plan.server_cpus.clone(),
        client_cpus: plan.client_cpus.clone(),
        server_threads: plan.shape.base.server_threads,
        throttle_us_per_frame: args.throttle_us_per_frame,
    }
}

/// What a reader of one mode's result must know.
fn mode_warnings(mode: Mode, search: &search::Search, m: &ModeResult) -> Vec<String> {
    let count = |v: Option<u32>| v.map_or("–".into(), |v| v.to_string());
    let mut out = Vec::new();
    if m.limit == Some(Limit::ClientCpu) {
        out.push(format!(
            "{mode}: the clients' CPUs saturated before the recording server's: {} cameras is \
             a lower bound for the server; give it fewer CPUs (--server-cpus) or run the \
             clients elsewhere",
            count(m.max_cameras)
        ));
    }
    if m.stopped == Stop::Budget {
        out.push(format!(
            "{mode}: the budget ran out before the boundary was confirmed; the bracket reached \
             is {}..{}",
            count(m.max_cameras),
            count(m.first_failing_cameras),
        ));
    }
    if let Some(r) = m.max_cameras_range.filter(|_| m.too_noisy()) {
        out.push(format!(
            "{mode}: the boundary is too noisy to quote one figure: the runs place the \
             capacity anywhere from {} to {} cameras; use longer steps (--step-duration), a \
             quieter machine or fewer CPUs for the clients",
            r.low, r.high
        ));
    }
    if let Some(f) = m.first_failing_cameras.filter(|f| search.flaky(*f)) {
        out.push(format!(
            "{mode}: runs at {f} cameras both passed and failed: the boundary is noisy here"
        ));
    }
    out
}

fn median(v: impl Iterator<Item = f64>) -> Option<f64> {
    let v: Vec<f64> = v.collect();
    crate::report::stats::median(&v)
}

fn mode_result(search: &search::Search, c: Collected) -> ModeResult {
    let best = search.best_pass();
    let first_fail = search.first_fail();
    let stopped = search.stopped().unwrap_or(Stop::Budget);
    // Per camera at the best count: the median over its runs.
    let per_camera = |cores: fn(&Step) -> f64| {
        let b = best?;
        let at_best = c.steps.iter().filter(|s| s.cameras == b);
        median(at_best.map(|s| cores(s) / f64::from(b.max(1))))
    };
    let cpu_per_camera_server_s = per_camera(|s| s.cpu_server_cores);
    let cpu_per_camera_client_s = per_camera(|s| s.cpu_clients_cores);
    // The limit at the first failing count: from its (last) failing run.
    let failing = c
        .steps
        .iter()
        .rev()
        .find(|s| Some(s.cameras) == first_fail && !s.pass);
    ModeResult {
        max_cameras: best,
        first_failing_cameras: first_fail,
        stopped,
        complete: stopped == Stop::Bracketed,
        limit: failing.and_then(|s| s.limit),
        limit_reasons: failing.map(|s| s.reasons.clone()).unwrap_or_default(),
        limit_link: failing.and_then(|s| {
            s.links
                .iter()
                .filter(|l| l.late_frames + l.dropped_frames > 0)
                .max_by_key(|l| l.late_frames + l.dropped_frames)
                .map(|l| {
                    let plural =
                        |n: u64, what: &str| format!("{n} {what}{}", if n == 1 { "" } else { "s" });
                    format!(
                        "{} ({}, {})",
                        l.link,
                        plural(l.connections, "connection"),
                        plural(l.streams, "stream")
                    )
                })
        }),
        limit_cpu_server_cores: failing.map(|s| s.cpu_server_cores),
        limit_cpu_clients_cores: failing.map(|s| s.cpu_clients_cores),
        cpu_per_camera_server_s,
        cpu_per_camera_client_s,
        tls: c.tls,
        max_cameras_range: search.range().map(|(low, high)| CameraRange { low, high }),
        intervals: boundary_intervals(best, &c.steps),
        steps: c.steps,
    }
}

/// The deployment as the report records it. The throttle is left out (it is under
/// `search.throttle_us_per_frame`): it stands in for a change of the recording server's code,
/// so a baseline made without it, or with another, still compares.
fn scenario_identity(
    scenario: &crate::engine::scenario::Scenario,
) -> anyhow::Result<serde_json::Value> {
    let mut v = serde_json::to_value(scenario)?;
    if let Some(o) = v.as_object_mut() {
        o.remove("recorder_cpu_per_frame");
    }
    Ok(v)
}

/// The 95 % intervals of CPU per camera over the passing steps near the boundary `best`
/// (see [`NEAR_BOUNDARY`]).
fn boundary_intervals(best: Option<u32>, steps: &[Step]) -> BTreeMap<String, Interval> {
    let Some(best) = best else {
        return BTreeMap::new();
    };
    let near: Vec<&Step> = steps
        .iter()
        .filter(|s| s.pass && f64::from(s.cameras) >= f64::from(best) * NEAR_BOUNDARY)
        .collect();
    let per_camera = |cores: fn(&Step) -> f64| -> Vec<f64> {
        near.iter()
            .map(|s| cores(s) / f64::from(s.cameras.max(1)))
            .collect()
    };
    [
        (
            "cpu_per_camera_server_s",
            per_camera(|s| s.cpu_server_cores),
        ),
        (
            "cpu_per_camera_client_s",
            per_camera(|s| s.cpu_clients_cores),
        ),
    ]
    .into_iter()
    .filter_map(|(name, v)| Some((name.to_owned(), interval::mean(&v)?)))
    .collect()
}
