//! The measuring loop `run` and `bulk` share: every mode in every repeat, interleaved
//! (plain, tls, plain, tls, …), with live progress, collected into one report.

use simulators::transport::{Mode, TlsSettings};
use tokio_util::sync::CancellationToken;

use crate::cli::MeasureArgs;
use crate::engine::control::Rendezvous;
use crate::engine::credentials::CertificateSummary;
use crate::engine::deployment::{
    resolve_targets, Agents, PhaseOptions, PhaseOutcome, Placement, Timing,
};
use crate::output::progress::Progress;
use crate::report::{
    AgentRecord, ClockRecord, Collector, Measurement, PlacementRecord, Report, SCHEMA_VERSION,
};
use crate::sys::cpu::CpuWindow;
use crate::sys::environment::Environment;

/// Runs every phase of `measure` (each repeat, each mode) with live progress:
/// `phase(mode, options)` runs one. Returns the repeats completed and every phase's outcome
/// collected; an interruption or a partial phase ends the run early.
pub(super) async fn repeat_phases<F, Fut>(
    measure: &MeasureArgs,
    t: Timing,
    interrupt: &CancellationToken,
    mut phase: F,
) -> anyhow::Result<(u32, Collector)>
where
    F: FnMut(Mode, PhaseOptions) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<Option<PhaseOutcome>>>,
{
    let mut collector = Collector::default();
    let progress = Progress::new(measure.phases(), t);
    let options = PhaseOptions {
        on_interval: Some(progress.hook()),
        on_listening: None,
        agents: None,
        soak_interval: None,
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
    Ok((completed, collector))
}

/// What a measuring command knows besides its phases' outcomes.
pub(super) struct Header {
    /// `run` or `bulk`.
    pub command: &'static str,
    /// When it started (RFC 3339, UTC).
    pub started_at: String,
    /// The machine.
    pub environment: Environment,
    /// What was measured, as the report describes it.
    pub scenario: serde_json::Value,
    /// The certificates the servers presented.
    pub certificates: CertificateSummary,
    /// What the TLS servers accepted (the clients pin the scenario's settings).
    pub server_tls: TlsSettings,
}

/// The report of `completed` repeats, with its warnings.
pub(super) fn finish(
    header: Header,
    measure: &MeasureArgs,
    completed: u32,
    collector: Collector,
    interrupt: &CancellationToken,
) -> Report {
    let Header {
        command,
        started_at,
        mut environment,
        scenario,
        certificates,
        server_tls,
    } = header;
    let cpu_windows = collector.cpu_windows();
    environment.during_windows = CpuWindow::summed(cpu_windows.iter().map(|w| &w.cpus));
    let soak = collector.soak();
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
            warmup_s: measure.timing().warmup.as_secs_f64(),
            duration_s: measure.timing().duration.as_secs_f64(),
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
        ramps: collector.ramps(),
        incompatibilities,
        hosts: collector.hosts(),
        certificate_events: collector.certificate_events(),
        certificates: Some(certificates),
        server_tls: Some(server_tls),
        placement: None,
        warnings: Vec::new(),
        histograms,
        intervals,
        limits: None,
        pinning: None,
        cpu_windows,
        soak_trend: crate::report::soak::trends(&soak),
        soak,
    };
    report.derive_warnings();
    report
}

/// The time now, RFC 3339 in UTC to the second.
pub(super) fn now_rfc3339() -> String {
    humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string()
}

/// The agents a measuring command coordinates, gathered (none when the placement keeps
/// every role here). Losing one later cancels `interrupt`, so that the run ends with a
/// partial report.
pub(super) async fn gather_agents(
    args: &crate::cli::PlacementArgs,
    interrupt: &CancellationToken,
) -> anyhow::Result<Option<std::sync::Arc<Agents>>> {
    let placement = Placement::parse(&args.place)?;
    if placement.is_local() {
        return Ok(None);
    }
    let token = match &args.token {
        Some(t) if !t.is_empty() => t.clone(),
        _ => {
            let t = crate::engine::control::channel::random_token()?;
            crate::output::progress::note(&format!(
                "no --token given; agents must be started with --token {t}"
            ));
            t
        }
    };
    let names = placement.agents();
    let rendezvous = Rendezvous::bind(args.control_listen, token).await?;
    crate::output::progress::note(&format!(
        "vmsbench: waiting for {} agent(s) ({}) on {}",
        names.len(),
        names.join(", "),
        rendezvous.local_addr()?
    ));
    let gathered = tokio::select! {
        g = rendezvous.gather(&names, args.agents_timeout) => g?,
        _ = interrupt.cancelled() => anyhow::bail!("interrupted while waiting for agents"),
    };
    let targets = args.host_targets()?;
    let hosts = tokio::select! {
        h = resolve_targets(&targets, args.agents_timeout) => h?,
        _ = interrupt.cancelled() => anyhow::bail!("interrupted while resolving --host names"),
    };
    Ok(Some(std::sync::Arc::new(Agents::new(
        placement,
        gathered,
        hosts,
        args.resolve,
        interrupt.clone(),
    ))))
}

/// Records in `report` where its roles ran: the placement section, how many processes took
/// part, and warnings when an agent was lost or the clocks disagree.
pub(super) fn record_placement(report: &mut Report, agents: &Agents) {
    let record = placement_record(agents);
    report.measurement.order = format!(
        "interleaved (plain, tls, plain, tls, …), one sitting, across {} processes: this one \
         and agents {}",
        record.agents.len() + 1,
        agents.placement().agents().join(", ")
    );
    if let Some(why) = &record.aborted {
        report.partial = true;
        report.warnings.push(format!(
            "the run was aborted: {why}; the figures cover what was measured before"
        ));
    }
    if !record.clocks_agree {
        report.warnings.push(format!("latency: {}", record.latency));
    }
    report.placement = Some(record);
}

/// The placement section of a report: the rules, each agent, and what the clocks say of
/// the one-way latency figures.
pub(super) fn placement_record(agents: &Agents) -> PlacementRecord {
    let worst = agents.worst_clock_us();
    let (agree, latency) = match worst {
        Some(us) if us <= CLOCKS_AGREE_US => (
            true,
            format!(
                "one-way from the sender's schedule: the hosts' clocks agree within {us:.0} µs"
            ),
        ),
        Some(us) => (
            false,
            format!(
                "one-way from the sender's schedule across hosts whose clocks differ by up to \
                 {us:.0} µs: latency_us figures include that offset; delay_variation_us does \
                 not"
            ),
        ),
        None => (
            true,
            "one-way from the sender's schedule, one clock".to_owned(),
        ),
    };
    PlacementRecord {
        rules: agents
            .placement()
            .rules()
            .iter()
            .map(|r| format!("{}={}", r.key, r.agents.join(",")))
            .collect(),
        agents: agents
            .report()
            .into_iter()
            .map(|a| AgentRecord {
                name: a.name,
                address: a.address,
                environment: a.environment,
                clock: a.clock.map(|c| ClockRecord {
                    offset_us: c.offset_us,
                    rtt_us: c.rtt_us,
                }),
                lost: a.lost,
            })
            .collect(),
        clocks_agree: agree,
        worst_clock_offset_us: worst,
        latency: latency.clone(),
        aborted: agents.lost(),
    }
}

/// Clock disagreement below which one-way latency across hosts is reported as is, µs:
/// a tenth of a 30 fps frame interval would be coarse; 1 ms is what NTP on a LAN gives.
pub(super) const CLOCKS_AGREE_US: f64 = 1_000.0;
