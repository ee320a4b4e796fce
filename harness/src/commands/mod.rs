//! One module per subcommand, each owning its arguments and its way from them to a result;
//! [`Opts`] is the whole command line and [`run()`] executes it.
//!
//! Every command that makes a report hands it to [`deliver`]: the table on standard output
//! (unless an export goes there), every export asked for, and the exit code.

pub mod agent;
pub mod baseline;
pub mod bulk;
pub mod capacity;
pub mod certs;
pub mod handshakes;
pub mod limits;
mod measure;
pub mod run;
pub mod scenarios;

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use tokio_util::sync::CancellationToken;

use crate::export::{Document, ExportManager};

pub use certs::UsageError;

/// Exit status when a run was interrupted (128 + SIGINT), after writing what it measured.
pub const EXIT_INTERRUPTED: u8 = 130;

/// Exit status when the command line or the scenario was refused before anything ran (as
/// for a flag clap refuses).
pub const EXIT_USAGE: u8 = 2;

/// Whether `e` refused the command line or the scenario before anything ran: a
/// [`UsageError`] or a scenario that could not be loaded or checked.
pub fn is_usage_error(e: &anyhow::Error) -> bool {
    e.chain()
        .any(|c| c.is::<UsageError>() || c.is::<crate::engine::scenario::file::ScenarioError>())
}

/// What does TLS cost on each link of a video-management system? vmsbench simulates the
/// deployment on real sockets, measures every link in plaintext and over TLS, and reports
/// the difference.
#[derive(Debug, Parser)]
#[command(name = "vmsbench", version, about, long_about = None)]
pub struct Opts {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Stream video from a recording server to viewers, plaintext and TLS, and report the cost.
    Run(Box<run::RunArgs>),
    /// Push unpaced frames through one or more connections: the link's ceiling.
    Bulk(bulk::BulkArgs),
    /// Generate, inspect and check the certificates of a deployment.
    Certs(certs::CertsArgs),
    /// List the built-in scenario presets, print one as TOML, or resolve one to JSON.
    Scenarios(scenarios::ScenariosArgs),
    /// Measure TLS handshakes: versions × key types × key exchanges × full/resumed.
    Handshakes(handshakes::HandshakesArgs),
    /// Keep a result as the baseline, or check a result against one (exit 1 on a regression).
    Baseline(baseline::BaselineArgs),
    /// How many cameras one recording server holds within an objective, plaintext vs TLS.
    Capacity(capacity::CapacityArgs),
    /// Run one host's share of a distributed run: dial the coordinator (`run --place …`).
    Agent(agent::AgentArgs),
    /// This machine's ceilings: loopback TCP, record-layer seal/open, handshakes, memory
    /// per idle connection, the latency floor.
    Limits(limits::LimitsArgs),
}

/// Runs a parsed command line to completion; prints results on stdout, progress on stderr.
pub async fn run(opts: Opts) -> anyhow::Result<ExitCode> {
    let interrupt = CancellationToken::new();
    match &opts.command {
        Command::Certs(a) => return certs::run(a),
        Command::Baseline(a) => return baseline::run(a),
        Command::Scenarios(a) => return scenarios::run(a),
        Command::Agent(a) => {
            tokio::spawn(async {
                let why = stop_signal().await;
                crate::output::progress::note(&format!("\nagent: {why}: stopping every role"));
                std::process::exit(i32::from(EXIT_INTERRUPTED));
            });
            agent::run(a).await?;
            return Ok(ExitCode::SUCCESS);
        }
        _ => {}
    }
    cancel_on_stop_signal(interrupt.clone());
    match &opts.command {
        Command::Run(a) => {
            let exports = ExportManager::new(a.measure.export.requested())?;
            let key = || Ok(run::scenario_from(a)?.key);
            let limits = limits_first(&a.measure.limits, key, &interrupt).await?;
            let mut report = run::run(a, &interrupt).await?;
            if let Some(l) = limits {
                report.attach_limits(l);
            }
            deliver(Document::Run(&report), &exports)
        }
        Command::Bulk(a) => {
            let exports = ExportManager::new(a.measure.export.requested())?;
            let limits = limits_first(&a.measure.limits, || bulk::key(a), &interrupt).await?;
            let mut report = bulk::run(a, &interrupt).await?;
            if let Some(l) = limits {
                report.attach_limits(l);
            }
            deliver(Document::Run(&report), &exports)
        }
        Command::Limits(a) => {
            let exports = ExportManager::new(a.export.requested())?;
            let report = limits::run(a, &interrupt).await?;
            deliver(Document::Limits(&report), &exports)
        }
        Command::Handshakes(a) => {
            let exports = ExportManager::new(a.export.requested())?;
            let report = handshakes::measure(a, &interrupt).await?;
            deliver(Document::Handshakes(&report), &exports)
        }
        Command::Capacity(a) => {
            let exports = ExportManager::new(a.export.requested())?;
            let limits = limits_first(&a.limits, || capacity::key(a), &interrupt).await?;
            let mut report = capacity::run(a, &interrupt).await?;
            if let Some(l) = limits {
                report.attach_limits(l);
            }
            deliver(Document::Capacity(&report), &exports)
        }
        Command::Certs(_) | Command::Baseline(_) | Command::Scenarios(_) | Command::Agent(_) => {
            unreachable!("handled above")
        }
    }
}

/// This machine's limits, measured before the run when `--with-limits` asks for them
/// (handshakes with the key type `key` gives, the run's).
async fn limits_first(
    args: &crate::cli::WithLimitsArgs,
    key: impl FnOnce() -> anyhow::Result<simulators::pki::KeyType>,
    interrupt: &CancellationToken,
) -> anyhow::Result<Option<crate::report::limits::Limits>> {
    if !args.with_limits {
        return Ok(None);
    }
    let limits = limits::measure_for_run(args.limits_budget, key()?, interrupt).await?;
    Ok(Some(limits))
}

/// Prints `doc`'s table on standard output (unless an export goes there) and writes every
/// export; the exit code says whether the command was interrupted.
pub fn deliver(doc: Document<'_>, exports: &ExportManager) -> anyhow::Result<ExitCode> {
    if !exports.uses_stdout() {
        print!("{}", doc.terminal());
    }
    exports.write_all(doc)?;
    Ok(if doc.partial() {
        ExitCode::from(EXIT_INTERRUPTED)
    } else {
        ExitCode::SUCCESS
    })
}

/// Cancels `token` on Ctrl-C or SIGTERM (what `docker stop`, Kubernetes and CI runners
/// send), so that a run ends cleanly with what it measured and writes its reports; a
/// second signal ends the process at once.
fn cancel_on_stop_signal(token: CancellationToken) {
    tokio::spawn(async move {
        let why = stop_signal().await;
        crate::output::progress::note(&format!(
            "\n{why}: finishing with what was measured so far (again to stop at once)"
        ));
        token.cancel();
        let why = stop_signal().await;
        crate::output::progress::note(&format!("\n{why} again: stopping at once, no report"));
        std::process::exit(i32::from(EXIT_INTERRUPTED));
    });
}

/// Waits for Ctrl-C (SIGINT) or SIGTERM and says which came. A process that cannot listen
/// for them waits forever.
async fn stop_signal() -> &'static str {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).ok();
    let terminate = async {
        match term.as_mut() {
            Some(s) => {
                s.recv().await;
            }
            None => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        Ok(()) = tokio::signal::ctrl_c() => "interrupted",
        () = terminate => "terminated (SIGTERM)",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    use crate::cli::ModeArg;
    use simulators::pki::KeyType;
    use simulators::transport::{KxGroup, TlsSettings, TlsVersion};

    #[test]
    fn defaults_and_human_units_parse() {
        let o = Opts::parse_from(["vmsbench", "run"]);
        let Command::Run(r) = o.command else {
            panic!("run")
        };
        assert_eq!(r.measure.mode, ModeArg::Both);
        assert_eq!(r.measure.repeat, 3);
        assert!(r.scenario.is_none() && r.tls.versions.is_none());

        let o = Opts::parse_from([
            "vmsbench",
            "bulk",
            "--duration",
            "1.5s",
            "--frame-size",
            "128KiB",
            "--mode",
            "tls",
            "--connections",
            "4",
            "--tls-version",
            "1.2,1.3",
            "--group",
            "x25519",
        ]);
        let Command::Bulk(b) = o.command else {
            panic!("bulk")
        };
        assert_eq!(b.measure.duration, Duration::from_millis(1500));
        assert_eq!(b.frame_size, 128 * 1024);
        assert_eq!(b.connections, 4);
        let (mut tls, mut key) = (TlsSettings::default(), KeyType::Rsa2048);
        b.tls.apply(&mut tls, &mut key);
        assert_eq!(tls.versions, vec![TlsVersion::Tls12, TlsVersion::Tls13]);
        assert_eq!(tls.groups, vec![KxGroup::X25519]);
        assert_eq!(tls.ciphers, TlsSettings::default().ciphers);
        let o = Opts::parse_from(["vmsbench", "run", "medium", "--scale", "0.2"]);
        let Command::Run(r) = o.command else {
            panic!("run")
        };
        assert_eq!(
            (r.scenario.as_deref(), r.scale),
            (Some("medium"), Some(0.2))
        );
        assert!(Opts::try_parse_from(["vmsbench", "run", "--scale", "0"]).is_err());
        assert!(Opts::try_parse_from(["vmsbench", "bulk", "--frame-size", "1GiB"]).is_err());
        assert!(Opts::try_parse_from(["vmsbench", "run", "--repeat", "0"]).is_err());
        assert!(Opts::try_parse_from(["vmsbench", "run", "--cipher", "rc4"]).is_err());
    }
}
