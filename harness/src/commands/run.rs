//! `vmsbench run`: a deployment streaming video, measured in plaintext and over TLS in
//! interleaved repeats.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;

use clap::Args;
use simulators::clock::RunClock;
use simulators::transport::Mode;
use simulators::video::Profile;
use tokio_util::sync::CancellationToken;

use super::measure::{finish, gather_agents, now_rfc3339, record_placement, repeat_phases, Header};
use crate::cli::{
    count_within, duration_within, MeasureArgs, ModeArg, PlacementArgs, ThreadArgs, TlsArgs,
};
use crate::engine::credentials::Credentials;
use crate::engine::deployment::{check_descriptors, run_phase_with, Listening, ListeningHook};
use crate::engine::pinning::{pin_servers, server_runtimes, split_cpus, PinGuard};
use crate::engine::scenario::file::parse_scale;
use crate::engine::scenario::{
    file, CameraGroup, Certificates, EventAction, Fault, FaultKind, Scenario, ScheduledEvent,
    MAX_CAMERAS, MAX_GROUP, MAX_INTERVAL, MAX_QUEUE_FRAMES, MAX_VIEW, MIN_INTERVAL,
};
use crate::output::atomic;
use crate::report::{PinningRecord, Report};
use crate::sys::environment::Environment;
use crate::units::parse_duration;

/// `vmsbench run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// A preset name (small, medium, large, multi-site, mixed-integrations,
    /// certificate-incidents, connections-8k) or a scenario file (TOML). Default: small.
    #[arg(value_name = "SCENARIO")]
    pub scenario: Option<String>,
    /// Scale the scenario's counts (cameras, clients) by F, e.g. 0.2 to fit a small machine.
    #[arg(long, value_name = "F", value_parser = parse_scale)]
    pub scale: Option<f64>,
    /// Measurement flags.
    #[command(flatten)]
    pub measure: MeasureArgs,
    /// Cameras on the first recording server (e.g. 32, 1k): 1 to 100000. Views of more
    /// cameras than that are narrowed to fit, as --scale does.
    #[arg(long, value_parser = count_within::<u32>(1, MAX_CAMERAS))]
    pub cameras: Option<u32>,
    /// Viewers in the first viewer group: 0 to 100000.
    #[arg(long, value_parser = count_within::<u32>(0, MAX_GROUP))]
    pub viewers: Option<u32>,
    /// Cameras each viewer of the first group watches: 1 to 64, and no more than its
    /// recording server has.
    #[arg(long, value_parser = count_within::<u32>(1, MAX_VIEW))]
    pub cameras_per_viewer: Option<u32>,
    /// Profile of every camera: sub, 720p, 1080p, 1080p-h265, 4mp, 4k, mjpeg-1080p.
    #[arg(long)]
    pub profile: Option<String>,
    /// Frames each connection may queue on the recording server before it drops: 1 to
    /// 1000000.
    #[arg(long, value_parser = count_within::<usize>(1, MAX_QUEUE_FRAMES))]
    pub queue_frames: Option<usize>,
    /// Seed of the video model.
    #[arg(long)]
    pub seed: Option<u64>,
    /// How often each logged-in client checks for configuration changes (e.g. 10s): 1ms
    /// to 1d.
    #[arg(long, value_name = "DURATION", value_parser = duration_within(MIN_INTERVAL, MAX_INTERVAL))]
    pub config_check: Option<Duration>,
    /// Stage a certificate fault on a server host, as `[[fault]]` in a scenario would:
    /// HOST=KIND, e.g. recorder-1.vms.test=expired (kinds: expired, not_yet_valid,
    /// wrong_host, untrusted_ca, missing_intermediate, no_server_auth_eku, key_unreadable,
    /// rsa1024, tls11_client). Repeatable; replaces a fault the scenario stages on that host.
    #[arg(long, value_name = "HOST=KIND")]
    pub fault: Vec<String>,
    /// Stall every recording server for DURATION at the middle of each window (e.g. 1s):
    /// shows what coordinated-omission correction does to the latency figures.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub inject_stall: Option<Duration>,
    /// TLS flags.
    #[command(flatten)]
    pub tls: TlsArgs,
    /// Thread flags.
    #[command(flatten)]
    pub threads: ThreadArgs,
    /// Where the servers listen: IP for every server host (e.g. 0.0.0.0, so that real
    /// clients on other machines reach them), or HOST=IP for one host (e.g.
    /// recorder-1.vms.test=127.0.0.2). Repeatable; default 127.0.0.1. Ports are chosen by
    /// the system; `--export-listeners` says which.
    #[arg(long, value_name = "IP|HOST=IP")]
    pub listen: Vec<String>,
    /// Write the certificates the run's clients trust (the run's CA, PEM) to FILE before
    /// any server starts, so that a real client (openssl s_client, a player, another host)
    /// can verify the simulated servers.
    #[arg(long, value_name = "FILE")]
    pub export_ca: Option<PathBuf>,
    /// Write where every server listens to FILE (JSON: the phase's mode, and per listener
    /// its host, link, address and whether it is encrypted) each time a phase's servers
    /// are up; the file is replaced, never half-written.
    #[arg(long, value_name = "FILE")]
    pub export_listeners: Option<PathBuf>,
    /// Placement flags: which roles run on agents.
    #[command(flatten)]
    pub placement: PlacementArgs,
    /// CPU pinning: `auto` puts the server roles on one half of the CPUs this process may
    /// use and the client roles (and the harness) on the other when there are at least 2;
    /// `off` leaves every thread to the scheduler. Runs across processes (`--place`) are
    /// not pinned.
    #[arg(long, value_enum, default_value_t = PinArg::Auto)]
    pub pin: PinArg,
    /// A soak: one mode (TLS, unless --mode plain) for one long window (--duration, e.g.
    /// 30m) at the scenario's steady load, sampled every --interval: the process's
    /// resident memory, open descriptors and CPU per GB, with a warning when one grows.
    #[arg(long)]
    pub soak: bool,
    /// How often a soak samples the process (e.g. 10s).
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, default_value = "10s", requires = "soak")]
    pub interval: Duration,
}

/// `--pin`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum PinArg {
    /// Servers on one half of the CPUs, clients on the other, when there are at least 2.
    Auto,
    /// No pinning.
    Off,
}

/// Builds the scenario `vmsbench run` describes: the preset or file named (default:
/// `small`), scaled, with the flags applied.
pub fn scenario_from(args: &RunArgs) -> anyhow::Result<Scenario> {
    let spec = args.scenario.as_deref().unwrap_or("small");
    let mut s = file::load(spec)?;
    if let Some(f) = args.scale {
        s = s.scaled(f);
    }
    let mut changed = Vec::new();
    if let Some(p) = &args.profile {
        let profile = Profile::preset(p)?;
        for g in s.recorders.iter_mut().flat_map(|r| r.cameras.iter_mut()) {
            g.profile = profile.clone();
        }
        changed.push(format!("profile {p}"));
    }
    if let Some(c) = args.cameras {
        let Some(rec) = s.recorders.first_mut() else {
            anyhow::bail!("--cameras: scenario {spec} has no recording server");
        };
        let profile = rec
            .cameras
            .first()
            .map(|g| g.profile.clone())
            .unwrap_or_else(Profile::default_1080p);
        rec.cameras = vec![CameraGroup { profile, count: c }];
        changed.push(format!("{c} cameras"));
        let host = rec.host.clone();
        if narrow_to(&mut s, &host, c) {
            changed.push(format!("views narrowed to {c} cameras"));
        }
    }
    if args.viewers.is_some() || args.cameras_per_viewer.is_some() {
        let Some(g) = s.viewers.first_mut() else {
            anyhow::bail!("--viewers/--cameras-per-viewer: scenario {spec} has no viewers");
        };
        if let Some(v) = args.viewers {
            g.count = v;
            changed.push(format!("{v} viewers"));
        }
        if let Some(k) = args.cameras_per_viewer {
            g.view = k;
            changed.push(format!("{k} cameras per viewer"));
        }
    }
    if let Some(q) = args.queue_frames {
        s.queue_frames = q;
    }
    if let Some(seed) = args.seed {
        s.seed = seed;
    }
    if let Some(check) = args.config_check {
        if check.is_zero() {
            anyhow::bail!("--config-check must be longer than 0s");
        }
        s.management.config_check = check;
        changed.push(format!(
            "configuration checks every {}",
            humantime::format_duration(check)
        ));
    }
    for l in &args.listen {
        listen_flag(&mut s, l)?;
    }
    for f in &args.fault {
        let fault = fault_flag(&s, f)?;
        changed.push(format!("{} on {}", fault.kind.as_str(), fault.host));
        s.faults.retain(|g| g.host != fault.host);
        s.faults.push(fault);
    }
    apply_common(&mut s, &args.tls, &args.threads);
    if !changed.is_empty() {
        s.name = format!("{} ({})", s.name, changed.join(", "));
    }
    for g in &s.recorders {
        for c in &g.cameras {
            c.profile.validate()?;
        }
    }
    s.check()?;
    Ok(s)
}

/// Narrows what the client groups of recording server `host` watch to its `cameras`, as
/// `--scale` does: views, integration streams and phones' cameras. Whether any changed.
fn narrow_to(s: &mut Scenario, host: &str, cameras: u32) -> bool {
    let mut narrowed = false;
    let mut narrow = |recorder: &str, each: &mut u32| {
        if recorder == host && *each > cameras {
            *each = cameras;
            narrowed = true;
        }
    };
    for g in &mut s.viewers {
        narrow(&g.recorder, &mut g.view);
    }
    for g in &mut s.integrations {
        narrow(&g.recorder, &mut g.streams);
    }
    for g in &mut s.phones {
        narrow(&g.recorder, &mut g.cameras_each);
    }
    narrowed
}

/// What writes `--export-listeners`: the phase's mode and its listeners, as JSON.
fn listeners_writer(path: PathBuf) -> ListeningHook {
    Arc::new(move |mode: Mode, listeners: &[Listening]| {
        let doc = serde_json::json!({ "mode": mode, "listeners": listeners });
        let written = serde_json::to_vec_pretty(&doc)
            .map_err(std::io::Error::other)
            .and_then(|bytes| atomic::write(&path, &bytes));
        if let Err(e) = written {
            eprintln!("vmsbench: writing the listeners to {}: {e}", path.display());
        }
    })
}

/// Checks that `host`, named by `option`'s value `flag`, is a server of `s`.
fn check_server(s: &Scenario, option: &str, flag: &str, host: &str) -> anyhow::Result<()> {
    let hosts = s.server_hosts();
    if !hosts.iter().any(|h| h == host) {
        anyhow::bail!(
            "{option} {flag:?}: {host:?} is not a server of scenario {}; its servers are: {}",
            s.name,
            hosts.join(", ")
        );
    }
    Ok(())
}

/// Applies a `--listen IP` or `--listen HOST=IP` flag to `s`.
fn listen_flag(s: &mut Scenario, flag: &str) -> anyhow::Result<()> {
    let (host, ip) = match flag.split_once('=') {
        Some((host, ip)) => (Some(host), ip),
        None => (None, flag),
    };
    let ip: std::net::IpAddr = ip.trim().parse().map_err(|e| {
        anyhow::anyhow!("--listen {flag:?}: {ip:?} is not an IP address ({e}); write IP or HOST=IP")
    })?;
    let Some(host) = host else {
        s.listen.default = ip;
        return Ok(());
    };
    check_server(s, "--listen", flag, host)?;
    s.listen.hosts.insert(host.to_owned(), ip);
    Ok(())
}

/// A `--fault HOST=KIND` flag, checked against `s`.
fn fault_flag(s: &Scenario, flag: &str) -> anyhow::Result<Fault> {
    let Some((host, kind)) = flag.split_once('=') else {
        anyhow::bail!("--fault {flag:?}: write HOST=KIND, e.g. recorder-1.vms.test=expired");
    };
    check_server(s, "--fault", flag, host)?;
    let kind: FaultKind = kind
        .parse()
        .map_err(|why: String| anyhow::anyhow!("--fault {flag:?}: {why}"))?;
    if kind.needs_issuing() && s.certificates != Certificates::Generated {
        anyhow::bail!(
            "--fault {flag:?}: {} needs a certificate vmsbench issues itself, and scenario {} \
             brings its certificates from files; with files, only key_unreadable and \
             tls11_client can be staged",
            kind.as_str(),
            s.name
        );
    }
    Ok(Fault {
        host: host.to_owned(),
        kind,
    })
}

/// Pins `scenario`'s roles as `pin` asks, when this process runs them all (not
/// `distributed`) and may use at least 2 CPUs: the server roles on one half, every other
/// role on the other. Returns what was done, for the report.
fn pin_roles(
    pin: PinArg,
    scenario: &mut Scenario,
    distributed: bool,
    cores: usize,
) -> anyhow::Result<PinningRecord> {
    let not_pinned = |asked: &str, why: String| PinningRecord {
        asked: asked.to_owned(),
        pinned: false,
        server_cpus: Vec::new(),
        client_cpus: Vec::new(),
        roles: Default::default(),
        reason: Some(why),
    };
    if pin == PinArg::Off {
        return Ok(not_pinned("off", "--pin off".into()));
    }
    if distributed {
        return Ok(not_pinned(
            "auto",
            "a run across processes (--place) is not pinned: each process would need a \
             split of its own machine's CPUs"
                .into(),
        ));
    }
    let split = if cores >= 2 { split_cpus(None)? } else { None };
    let Some((server_cpus, client_cpus)) = split else {
        return Ok(not_pinned(
            "auto",
            format!(
                "this process may use {cores} CPU{} (affinity mask and CPU quota): nothing to \
                 split",
                if cores == 1 { "" } else { "s" }
            ),
        ));
    };
    let pinning = pin_servers(server_runtimes(scenario), &server_cpus, client_cpus.clone());
    let record = PinningRecord {
        asked: "auto".into(),
        pinned: true,
        roles: pinning.roles.clone(),
        server_cpus,
        client_cpus,
        reason: None,
    };
    scenario.pinning = Some(pinning);
    Ok(record)
}

/// The measurement a soak makes of `measure`: one window, in one mode (TLS unless plain
/// alone was asked for).
fn soak_measure(measure: &MeasureArgs, interval: Duration) -> anyhow::Result<MeasureArgs> {
    let t = measure.timing();
    if interval < Duration::from_millis(100) || interval > t.duration {
        anyhow::bail!(
            "--interval {interval:?}: a soak samples at least every 100ms and at most once a \
             window ({:?}); give a shorter --interval or a longer --duration",
            t.duration
        );
    }
    Ok(MeasureArgs {
        mode: match measure.mode {
            ModeArg::Plain => ModeArg::Plain,
            ModeArg::Tls | ModeArg::Both => ModeArg::Tls,
        },
        repeat: 1,
        ..measure.clone()
    })
}

/// `vmsbench run`: a deployment streaming video, in plaintext and TLS.
pub async fn run(args: &RunArgs, interrupt: &CancellationToken) -> anyhow::Result<Report> {
    let mut scenario = scenario_from(args)?;
    let distributed = !args.placement.place.is_empty();
    if !distributed {
        check_descriptors(&scenario)?;
    }
    if args.soak && distributed {
        anyhow::bail!(
            "--soak samples this process's memory, descriptors and CPU: run it without --place"
        );
    }
    let soaked = args
        .soak
        .then(|| soak_measure(&args.measure, args.interval))
        .transpose()?;
    let measure = soaked.as_ref().unwrap_or(&args.measure);
    let t = measure.checked_timing()?;
    if let Some(stall) = args.inject_stall {
        if stall.is_zero() || stall >= t.duration / 2 {
            anyhow::bail!(
                "--inject-stall {stall:?}: the stall starts in the middle of the window and \
                 must end inside it: give less than half of the window ({:?}), or a longer \
                 --duration",
                t.duration
            );
        }
        scenario.events.push(ScheduledEvent {
            at: t.duration / 2,
            action: EventAction::StallRecorders { duration: stall },
        });
        scenario.events.sort_by_key(|e| e.at);
    }
    let started_at = now_rfc3339();
    let environment = Environment::detect();
    args.placement.apply_wan(&mut scenario)?;
    let pinning = pin_roles(args.pin, &mut scenario, distributed, environment.cores)?;
    crate::output::progress::note(&format!("pinning: {}", pinning.line()));
    // This thread starts, drains and stops every phase: keep it off the servers' CPUs too.
    let _pinned = PinGuard::pin(&pinning.client_cpus)?;
    let agents = gather_agents(&args.placement, interrupt).await?;
    if let Some(a) = &agents {
        a.certify_addresses(&mut scenario);
    }
    let creds = Credentials::for_scenario(&scenario)?;
    if let Some(path) = &args.export_ca {
        atomic::write(path, creds.trust_pem().as_bytes())
            .with_context(|| format!("writing the run's CA to {}", path.display()))?;
    }
    let on_listening = args.export_listeners.clone().map(listeners_writer);
    let clock = RunClock::new();
    let (scenario_ref, creds_ref) = (&scenario, &creds);
    let phases =
        repeat_phases(measure, t, interrupt, |mode, mut options| {
            options.on_listening = on_listening.clone();
            options.agents = agents.clone();
            options.soak_interval = args.soak.then_some(args.interval);
            async move {
                run_phase_with(scenario_ref, creds_ref, mode, clock, t, interrupt, &options).await
            }
        })
        .await;
    if let Some(a) = &agents {
        a.bye().await;
    }
    let (completed, collector) = phases?;
    let header = Header {
        command: "run",
        started_at,
        environment,
        // What was simulated: where its threads ran is how it was measured (the report's
        // `pinning`), not what, so that runs pinned and not compare as the same scenario.
        scenario: serde_json::to_value(Scenario {
            pinning: None,
            ..scenario.clone()
        })?,
        certificates: creds.summary(),
        server_tls: scenario.tls.accepted_by_servers(),
    };
    let mut report = finish(header, measure, completed, collector, interrupt);
    report.pinning = Some(pinning);
    if args.soak {
        report.measurement.order = format!(
            "a soak: one {} window, the process sampled every {}",
            measure.mode.modes().first().copied().unwrap_or(Mode::Tls),
            humantime::format_duration(args.interval)
        );
    }
    if let Some(a) = &agents {
        record_placement(&mut report, a);
    }
    if let Some(stall) = args.inject_stall {
        report.measurement.inject_stall_s = Some(stall.as_secs_f64());
        report.warnings.push(format!(
            "a stall of {stall:?} was injected into every recording server in the middle of \
             each window (--inject-stall): latency and late-frame figures include it on purpose"
        ));
    }
    Ok(report)
}

/// Applies the TLS and thread flags to `s`.
pub(super) fn apply_common(s: &mut Scenario, tls: &TlsArgs, threads: &ThreadArgs) {
    tls.apply(&mut s.tls, &mut s.key);
    if let Some(t) = threads.server_threads {
        s.server_threads = t.max(1);
    }
    if let Some(t) = threads.client_threads {
        s.client_threads = t.max(1);
    }
}
