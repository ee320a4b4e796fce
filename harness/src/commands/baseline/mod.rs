//! `vmsbench baseline`: keep one result as the reference, then check later results against
//! it — the piece CI runs on every pull request.
//!
//! ```text
//! vmsbench baseline save RESULT.json --to BASELINE.json
//! vmsbench baseline check RESULT.json --against BASELINE.json \
//!     [--threshold FAMILY=PCT …] [--allow-mismatch] [--markdown FILE]
//! ```
//!
//! Both work on the JSON reports themselves ([`serde_json::Value`]), so fields added to the
//! report later do not break them. What is compared comes from one table, `KINDS` (in `kinds.rs`): per
//! report `command`, which arrays hold entries, which fields identify an entry (`link`,
//! `mode`, …) and which figures are checked, each with its `Direction` (is more better or
//! worse?) and `Family` (whose threshold applies). A new kind of report (`handshakes`,
//! `capacity`) plugs in with one more row.
//!
//! Results are compared only when they measured the same thing: the same identity (the
//! `scenario` object of a run; the concurrency, threads and cipher of `handshakes`) on the
//! same machine and build (CPU model, cores, build profile, rustls version, crypto
//! provider). Anything else is refused with the field that differs, unless
//! `--allow-mismatch` is given.
//!
//! A figure regresses when its median is worse than the baseline's by more than its
//! family's threshold (`Family::default_threshold_pct`, `--threshold`) and its absolute
//! floor (`Metric::min_abs_change`); it is judged only when enough samples stand behind it
//! in both reports (`Metric::min_samples`); and only if the 95 % interval of the change
//! lies wholly beyond the threshold (`change.rs`: from both reports' repeats, or from the
//! intervals they recorded — a capacity boundary's range, the cost table's intervals).
//! Without an interval (a single repeat), the ranges of the repeats must not overlap.
//! Otherwise the figure is `Verdict::WithinSpread`: reported, not failing.
//!
//! Exit codes: 0 no regression, 1 at least one regression, 2 unusable input (a missing or
//! unreadable file, bad JSON, another schema version or command, a partial result, or a
//! mismatch without `--allow-mismatch`).

mod change;
mod compare;
mod kinds;
mod markdown;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use serde_json::Value;

use compare::{
    compare, fmt_num, mismatches, BaselineError, LoadedReport, ThresholdArg, Thresholds,
};
pub use compare::{EXIT_PASS, EXIT_REGRESSION, EXIT_UNUSABLE};
use markdown::{entry_columns, fmt_change, markdown};

/// `vmsbench baseline`: save a result as the baseline, or check a result against one.
#[derive(Debug, clap::Args)]
pub struct BaselineArgs {
    /// What to do.
    #[command(subcommand)]
    pub command: BaselineCommand,
}

/// The `baseline` subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum BaselineCommand {
    /// Check RESULT.json, keep it as the baseline (copied unchanged).
    Save(SaveArgs),
    /// Compare RESULT.json with a baseline; exit 1 on a regression, 2 on unusable input.
    Check(CheckArgs),
}

/// `vmsbench baseline save`.
#[derive(Debug, clap::Args)]
pub struct SaveArgs {
    /// A report written by `vmsbench run|bulk|handshakes --json` (or the instruction-count
    /// bench).
    #[arg(value_name = "RESULT.json")]
    pub result: PathBuf,
    /// Where to keep it.
    #[arg(long, value_name = "BASELINE.json")]
    pub to: PathBuf,
}

/// `vmsbench baseline check`.
#[derive(Debug, clap::Args)]
pub struct CheckArgs {
    /// The new report.
    #[arg(value_name = "RESULT.json")]
    pub result: PathBuf,
    /// The baseline to compare it with.
    #[arg(long, value_name = "BASELINE.json")]
    pub against: PathBuf,
    /// Allowed change before a figure counts as a regression, per family (goodput, latency,
    /// cpu, handshake, ttff, loss, memory, cost, instructions) or per metric
    /// (`latency_us.p99`); e.g. `--threshold latency=40`. Repeatable.
    #[arg(long = "threshold", value_name = "FAMILY=PCT")]
    pub thresholds: Vec<ThresholdArg>,
    /// Compare even when the scenario or the environment differ (the summary says which).
    #[arg(long)]
    pub allow_mismatch: bool,
    /// Write the Markdown summary to FILE (`-` for stdout) instead of stdout.
    #[arg(long, value_name = "FILE")]
    pub markdown: Option<PathBuf>,
}

/// Runs a baseline subcommand, printing to stdout and stderr; see [`run_with`].
pub fn run(args: &BaselineArgs) -> anyhow::Result<ExitCode> {
    let stdout = std::io::stdout();
    let stderr = std::io::stderr();
    run_with(args, &mut stdout.lock(), &mut stderr.lock())
}

/// Runs a baseline subcommand. Unusable input is reported on `err` with exit code 2; `Err`
/// only when `out` or `err` themselves cannot be written.
pub fn run_with(
    args: &BaselineArgs,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> anyhow::Result<ExitCode> {
    let result = match &args.command {
        BaselineCommand::Save(a) => save(a, out),
        BaselineCommand::Check(a) => check(a, out),
    };
    match result {
        Ok(code) => Ok(ExitCode::from(code)),
        Err(e) => {
            writeln!(err, "Error: {e}")?;
            Ok(ExitCode::from(EXIT_UNUSABLE))
        }
    }
}

/// Writes `bytes` to `path` through a temporary file and a rename.
fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), BaselineError> {
    let write_err = |source| BaselineError::Write {
        path: path.to_owned(),
        source,
    };
    crate::output::atomic::write(path, bytes).map_err(write_err)
}

fn save(args: &SaveArgs, out: &mut dyn Write) -> Result<u8, BaselineError> {
    let report = LoadedReport::read(&args.result)?;
    // Copied byte for byte: a baseline is exactly the report it was made from.
    write_atomically(&args.to, &report.raw)?;
    let entries = report
        .json
        .get("results")
        .and_then(Value::as_array)
        .map_or(0, Vec::len);
    let _ = writeln!(
        out,
        "saved {} ({} report, {entries} results) as the baseline {}",
        args.result.display(),
        report.kind.command,
        args.to.display()
    );
    Ok(EXIT_PASS)
}

fn check(args: &CheckArgs, out: &mut dyn Write) -> Result<u8, BaselineError> {
    let baseline = LoadedReport::read(&args.against)?;
    let result = LoadedReport::read(&args.result)?;
    let found = mismatches(&baseline, &result);
    let command_differs = found.iter().any(|m| m.field == "command");
    if !found.is_empty() && (!args.allow_mismatch || command_differs) {
        return Err(BaselineError::Mismatch(found));
    }
    let thresholds = Thresholds::new(&args.thresholds);
    let mut outcome = compare(&baseline, &result, &thresholds);
    outcome.allowed_mismatches = found;
    let md = markdown(&outcome, &baseline, &result, &thresholds);
    match args.markdown.as_deref() {
        None => {
            let _ = write!(out, "{md}");
        }
        Some(p) if p == Path::new("-") => {
            let _ = write!(out, "{md}");
        }
        Some(path) => {
            write_atomically(path, md.as_bytes())?;
            let _ = writeln!(
                out,
                "{}: {} figures compared, {} regressed{}; summary in {}",
                if outcome.passed() {
                    "pass"
                } else {
                    "REGRESSION"
                },
                outcome.rows.len(),
                outcome.regressions().count(),
                if outcome.missing.is_empty() {
                    String::new()
                } else {
                    format!(", {} entries missing", outcome.missing.len())
                },
                path.display()
            );
            for r in outcome.regressions() {
                let (link, mode) = entry_columns(&r.entry);
                let _ = writeln!(
                    out,
                    "  {} {link} {mode}: {} → {} ({}, threshold {} %)",
                    r.metric,
                    fmt_num(r.baseline),
                    fmt_num(r.new),
                    fmt_change(r.change_pct),
                    fmt_num(r.threshold_pct)
                );
            }
        }
    }
    Ok(outcome.exit_code())
}
