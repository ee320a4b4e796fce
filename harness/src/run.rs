//! A measuring run: repeats of plaintext and TLS phases, interleaved, collected into a report.

use std::io::Write as _;
use std::path::Path;

use anyhow::Context;
use simulators::clock::RunClock;
use simulators::pki::Pki;
use simulators::transport::Mode;
use tokio_util::sync::CancellationToken;

use crate::cli::{BulkArgs, MeasureArgs, RunArgs, ThreadArgs};
use crate::deployment::{run_bulk_phase, run_phase, BulkLoad, PhaseOutcome, Timing};
use crate::environment::Environment;
use crate::report::{Collector, Measurement, Report, SCHEMA_VERSION};
use crate::scenario::{Scenario, RECORDER_HOST};
use simulators::video::Profile;

/// How long the generated certificates are valid.
const CERT_DAYS: u32 = 30;

/// Builds the scenario `vmsbench run` describes: the built-in default with the flags applied.
pub fn scenario_from(args: &RunArgs) -> anyhow::Result<Scenario> {
    let mut s = Scenario::small_site();
    if let Some(p) = &args.profile {
        s.profile = Profile::preset(p)?;
    }
    if let Some(c) = args.cameras {
        s.cameras = c;
    }
    if let Some(v) = args.viewers {
        s.viewers = v;
    }
    s.cameras_per_viewer = match args.cameras_per_viewer {
        Some(k) => k,
        None if args.cameras.is_some() || args.viewers.is_some() => {
            (s.cameras / s.viewers.max(1)).clamp(1, 16)
        }
        None => s.cameras_per_viewer,
    };
    if let Some(q) = args.queue_frames {
        s.queue_frames = q;
    }
    if let Some(seed) = args.seed {
        s.seed = seed;
    }
    apply_common(&mut s, &args.tls, &args.threads);
    if args.cameras.is_some() || args.viewers.is_some() || args.profile.is_some() {
        s.name = format!(
            "1 recording server, {} × {}, {} viewers × {}",
            s.cameras, s.profile.name, s.viewers, s.cameras_per_viewer
        );
    }
    s.validate().map_err(anyhow::Error::msg)?;
    Ok(s)
}

fn apply_common(s: &mut Scenario, tls: &crate::cli::TlsArgs, threads: &ThreadArgs) {
    s.tls = tls.settings();
    s.key = tls.key;
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

/// The repeats of a run, whatever a phase is.
struct Repeats<'a> {
    measure: &'a MeasureArgs,
    interrupt: &'a CancellationToken,
}

impl Repeats<'_> {
    async fn run<F, Fut>(&self, mut phase: F, collector: &mut Collector) -> anyhow::Result<u32>
    where
        F: FnMut(Mode) -> Fut,
        Fut: std::future::Future<Output = anyhow::Result<Option<(PhaseOutcome, f64, u64)>>>,
    {
        let modes = self.measure.mode.modes();
        let mut completed = 0;
        'repeats: for i in 1..=self.measure.repeat {
            for mode in &modes {
                if self.interrupt.is_cancelled() {
                    break 'repeats;
                }
                eprintln!(
                    "repeat {i}/{} {mode}: warm-up {:?}, measuring {:?}",
                    self.measure.repeat, self.measure.warmup, self.measure.duration
                );
                let Some((outcome, offered, streams)) = phase(*mode).await? else {
                    break 'repeats;
                };
                let partial = outcome.partial;
                collector.add(&outcome, offered, streams);
                if partial {
                    break 'repeats;
                }
            }
            completed = i;
        }
        Ok(completed)
    }
}

fn timing(m: &MeasureArgs) -> Timing {
    Timing {
        warmup: m.warmup,
        duration: m.duration,
    }
}

fn generate_pki(scenario: &Scenario) -> anyhow::Result<Pki> {
    Pki::generate(&[RECORDER_HOST], scenario.key, CERT_DAYS)
        .context("generating the deployment's certificates")
}

/// `vmsbench run`: the paced video scenario.
pub async fn run(args: &RunArgs, interrupt: &CancellationToken) -> anyhow::Result<Report> {
    let scenario = scenario_from(args)?;
    let started_at = now_rfc3339();
    let pki = generate_pki(&scenario)?;
    let clock = RunClock::new();
    let mut collector = Collector::default();
    let streams =
        u64::from(scenario.viewers) * u64::from(scenario.cameras_per_viewer.min(scenario.cameras));
    let offered = scenario.offered_bps();
    let t = timing(&args.measure);
    let repeats = Repeats {
        measure: &args.measure,
        interrupt,
    };
    let completed = repeats
        .run(
            |mode| {
                let (scenario, pki) = (&scenario, &pki);
                async move {
                    let o = run_phase(scenario, pki, mode, clock, t, interrupt).await?;
                    Ok(o.map(|o| (o, offered, streams)))
                }
            },
            &mut collector,
        )
        .await?;
    let description = serde_json::to_value(&scenario)?;
    Ok(finish(
        "run",
        started_at,
        description,
        &args.measure,
        completed,
        collector,
        interrupt,
    ))
}

/// `vmsbench bulk`: the unpaced link ceiling.
pub async fn bulk(args: &BulkArgs, interrupt: &CancellationToken) -> anyhow::Result<Report> {
    let mut scenario = Scenario::small_site();
    scenario.name = format!(
        "bulk: {} connection(s), {} B frames",
        args.connections, args.frame_size
    );
    apply_common(&mut scenario, &args.tls, &args.threads);
    let started_at = now_rfc3339();
    let pki = generate_pki(&scenario)?;
    let clock = RunClock::new();
    let load = BulkLoad {
        connections: args.connections,
        frame_size: args.frame_size,
    };
    let mut collector = Collector::default();
    let t = timing(&args.measure);
    let repeats = Repeats {
        measure: &args.measure,
        interrupt,
    };
    let streams = u64::from(args.connections);
    let completed = repeats
        .run(
            |mode| {
                let (scenario, pki) = (&scenario, &pki);
                async move {
                    let o = run_bulk_phase(scenario, pki, mode, load, clock, t, interrupt).await?;
                    Ok(o.map(|o| (o, 0.0, streams)))
                }
            },
            &mut collector,
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
        description,
        &args.measure,
        completed,
        collector,
        interrupt,
    ))
}

fn finish(
    command: &str,
    started_at: String,
    scenario: serde_json::Value,
    measure: &MeasureArgs,
    completed: u32,
    collector: Collector,
    interrupt: &CancellationToken,
) -> Report {
    let (results, cost) = collector.finish();
    let mut report = Report {
        schema_version: SCHEMA_VERSION,
        command: command.to_owned(),
        started_at,
        partial: interrupt.is_cancelled(),
        environment: Environment::detect(),
        scenario,
        measurement: Measurement {
            warmup_s: measure.warmup.as_secs_f64(),
            duration_s: measure.duration.as_secs_f64(),
            repeat: measure.repeat,
            repeats_completed: completed,
            modes: measure.mode.modes(),
            order: "interleaved (plain, tls, plain, tls, …) in one process, one sitting".into(),
        },
        results,
        cost,
        warnings: Vec::new(),
    };
    report.derive_warnings();
    report
}

fn now_rfc3339() -> String {
    humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string()
}

/// Writes the report as JSON to `path` (`-` for stdout), via a temporary file and a rename
/// so that a reader never sees half a report.
pub fn write_json(report: &Report, path: &Path) -> anyhow::Result<()> {
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
