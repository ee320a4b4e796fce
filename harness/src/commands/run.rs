//! A measuring run: repeats of plaintext and TLS phases, interleaved, collected into a report.

use std::io::Write as _;
use std::path::Path;

use anyhow::Context;
use simulators::clock::RunClock;
use simulators::transport::Mode;
use tokio_util::sync::CancellationToken;

use crate::cli::{BulkArgs, MeasureArgs, RunArgs, ThreadArgs};
use crate::engine::credentials::{CertificateSummary, Credentials};
use crate::engine::deployment::{
    run_bulk_phase_with, run_phase_with, BulkLoad, PhaseOptions, PhaseOutcome, Timing,
};
use crate::engine::scenario::{
    file, CameraGroup, Certificates, EventAction, Fault, FaultKind, Scenario, ScheduledEvent,
};
use crate::output::progress::Progress;
use crate::report::{Collector, Measurement, Report, SCHEMA_VERSION};
use crate::sys::environment::Environment;
use simulators::video::Profile;

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
        s.queue_frames = q.max(1);
    }
    if let Some(seed) = args.seed {
        s.seed = seed;
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
    Ok(s)
}

/// A `--fault HOST=KIND` flag, checked against `s`.
fn fault_flag(s: &Scenario, flag: &str) -> anyhow::Result<Fault> {
    let Some((host, kind)) = flag.split_once('=') else {
        anyhow::bail!("--fault {flag:?}: write HOST=KIND, e.g. recorder-1.vms.test=expired");
    };
    let hosts = s.server_hosts();
    if !hosts.iter().any(|h| h == host) {
        anyhow::bail!(
            "--fault {flag:?}: {host:?} is not a server of scenario {}; its servers are: {}",
            s.name,
            hosts.join(", ")
        );
    }
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

fn apply_common(s: &mut Scenario, tls: &crate::cli::TlsArgs, threads: &ThreadArgs) {
    tls.apply(&mut s.tls, &mut s.key);
    if let Some(t) = threads.server_threads {
        s.server_threads = t.max(1);
    }
    if let Some(t) = threads.client_threads {
        s.client_threads = t.max(1);
    }
}

/// Cancels `token` on Ctrl-C, so that a run ends cleanly with what it measured.
pub fn cancel_on_ctrl_c(token: CancellationToken) {
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            eprintln!("\ninterrupted: finishing with what was measured so far");
            token.cancel();
        }
    });
}

/// Runs every phase of `measure` (each repeat, each mode) with live progress, adding
/// each phase's outcome to `collector`: `phase(mode, options)` runs one. Returns the repeats
/// completed; an interruption or a partial phase ends the run early.
async fn repeat_phases<F, Fut>(
    measure: &MeasureArgs,
    t: Timing,
    interrupt: &CancellationToken,
    collector: &mut Collector,
    mut phase: F,
) -> anyhow::Result<u32>
where
    F: FnMut(Mode, PhaseOptions) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<Option<PhaseOutcome>>>,
{
    let progress = Progress::new(phases(measure), t);
    let options = PhaseOptions {
        on_interval: Some(progress.hook()),
        ..PhaseOptions::default()
    };
    let modes = measure.mode.modes();
    let mut completed = 0;
    'repeats: for i in 1..=measure.repeat {
        for mode in &modes {
            if interrupt.is_cancelled() {
                break 'repeats;
            }
            progress.start_phase(i, measure.repeat, *mode);
            let outcome = phase(*mode, options.clone()).await;
            progress.end_phase();
            let Some(outcome) = outcome? else {
                break 'repeats;
            };
            let partial = outcome.partial;
            collector.add(&outcome);
            if partial {
                break 'repeats;
            }
        }
        completed = i;
    }
    Ok(completed)
}

fn timing(m: &MeasureArgs) -> Timing {
    crate::commands::baseline::scaled_timing(m)
}

/// How many phases a run has.
fn phases(m: &MeasureArgs) -> usize {
    m.repeat as usize * m.mode.modes().len()
}

/// `vmsbench run`: a deployment streaming video, in plaintext and TLS.
pub async fn run(args: &RunArgs, interrupt: &CancellationToken) -> anyhow::Result<Report> {
    let mut scenario = scenario_from(args)?;
    let t = timing(&args.measure);
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
    let creds = Credentials::for_scenario(&scenario)?;
    let clock = RunClock::new();
    let mut collector = Collector::default();
    let (scenario_ref, creds_ref) = (&scenario, &creds);
    let completed = repeat_phases(
        &args.measure,
        t,
        interrupt,
        &mut collector,
        |mode, options| async move {
            run_phase_with(scenario_ref, creds_ref, mode, clock, t, interrupt, &options).await
        },
    )
    .await?;
    let description = serde_json::to_value(&scenario)?;
    let mut report = finish(
        "run",
        started_at,
        environment,
        description,
        &args.measure,
        completed,
        collector,
        creds.summary(),
        interrupt,
    );
    if let Some(stall) = args.inject_stall {
        report.measurement.inject_stall_s = Some(stall.as_secs_f64());
        report.warnings.push(format!(
            "a stall of {stall:?} was injected into every recording server in the middle of \
             each window (--inject-stall): latency and late-frame figures include it on purpose"
        ));
    }
    Ok(report)
}

/// `vmsbench bulk`: the unpaced link ceiling.
pub async fn bulk(args: &BulkArgs, interrupt: &CancellationToken) -> anyhow::Result<Report> {
    let mut scenario = file::load_preset("small")?;
    scenario.name = format!(
        "bulk: {} connection(s), {} B frames",
        args.connections, args.frame_size
    );
    apply_common(&mut scenario, &args.tls, &args.threads);
    let started_at = now_rfc3339();
    let environment = Environment::detect();
    let creds = Credentials::for_scenario(&scenario)?;
    let clock = RunClock::new();
    let load = BulkLoad {
        connections: args.connections,
        frame_size: args.frame_size,
    };
    let mut collector = Collector::default();
    let t = timing(&args.measure);
    let (scenario_ref, creds_ref) = (&scenario, &creds);
    let completed = repeat_phases(
        &args.measure,
        t,
        interrupt,
        &mut collector,
        |mode, options| async move {
            run_bulk_phase_with(
                scenario_ref,
                creds_ref,
                mode,
                load,
                clock,
                t,
                interrupt,
                &options,
            )
            .await
        },
    )
    .await?;
    let description = serde_json::json!({
        "name": scenario.name,
        "connections": args.connections,
        "frame_size_bytes": args.frame_size,
        "tls": scenario.tls,
        "key": scenario.key,
        "server_threads": scenario.server_threads,
        "client_threads": scenario.client_threads,
    });
    Ok(finish(
        "bulk",
        started_at,
        environment,
        description,
        &args.measure,
        completed,
        collector,
        creds.summary(),
        interrupt,
    ))
}

#[allow(clippy::too_many_arguments)]
fn finish(
    command: &str,
    started_at: String,
    environment: Environment,
    scenario: serde_json::Value,
    measure: &MeasureArgs,
    completed: u32,
    collector: Collector,
    certificates: CertificateSummary,
    interrupt: &CancellationToken,
) -> Report {
    let (results, cost) = collector.finish();
    let (histograms, intervals) = (collector.histograms(), collector.intervals());
    let (roles, failovers, incompatibilities) = (
        collector.roles(),
        collector.failovers(),
        collector.incompatibilities(),
    );
    let mut report = Report {
        schema_version: SCHEMA_VERSION,
        command: command.to_owned(),
        started_at,
        partial: interrupt.is_cancelled(),
        environment,
        scenario,
        measurement: Measurement {
            warmup_s: timing(measure).warmup.as_secs_f64(),
            duration_s: timing(measure).duration.as_secs_f64(),
            multiplier: measure.multiplier,
            inject_stall_s: None,
            repeat: measure.repeat,
            repeats_completed: completed,
            modes: measure.mode.modes(),
            order: "interleaved (plain, tls, plain, tls, …) in one process, one sitting".into(),
        },
        results,
        cost,
        roles,
        failovers,
        incompatibilities,
        hosts: collector.hosts(),
        certificate_events: collector.certificate_events(),
        certificates: Some(certificates),
        warnings: Vec::new(),
        histograms,
        intervals,
    };
    report.derive_warnings();
    report
}

fn now_rfc3339() -> String {
    humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string()
}

/// Writes the report as JSON to `path` (`-` for stdout), via a temporary file and a rename
/// so that a reader never sees half a report.
pub fn write_json<T: serde::Serialize>(report: &T, path: &Path) -> anyhow::Result<()> {
    let json = serde_json::to_string_pretty(report)?;
    if path == Path::new("-") {
        let mut out = std::io::stdout().lock();
        writeln!(out, "{json}")?;
        return Ok(());
    }
    let tmp = path.with_extension("json.tmp");
    std::fs::write(&tmp, json + "\n").with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}
