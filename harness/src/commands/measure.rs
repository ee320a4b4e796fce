//! The measuring loop `run` and `bulk` share: every mode in every repeat, interleaved
//! (plain, tls, plain, tls, …), with live progress, collected into one report.

use simulators::transport::{Mode, TlsSettings};
use tokio_util::sync::CancellationToken;

use crate::cli::MeasureArgs;
use crate::engine::credentials::CertificateSummary;
use crate::engine::deployment::{PhaseOptions, PhaseOutcome, Timing};
use crate::output::progress::Progress;
use crate::report::{Collector, Measurement, Report, SCHEMA_VERSION};
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
        environment,
        scenario,
        certificates,
        server_tls,
    } = header;
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
        warnings: Vec::new(),
        histograms,
        intervals,
    };
    report.derive_warnings();
    report
}

/// The time now, RFC 3339 in UTC to the second.
pub(super) fn now_rfc3339() -> String {
    humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string()
}
