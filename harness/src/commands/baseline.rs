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
//! report later do not break them. What is compared comes from one table, [`KINDS`]: per
//! report `command`, which arrays hold entries, which fields identify an entry (`link`,
//! `mode`, …) and which figures are checked, each with its [`Direction`] (is more better or
//! worse?) and [`Family`] (whose threshold applies). A new kind of report (`handshakes`,
//! `capacity`) plugs in with one more row.
//!
//! Results are compared only when they measured the same thing: the same identity (the
//! `scenario` object of a run; the concurrency, threads and cipher of `handshakes`) on the
//! same machine and build (CPU model, cores, build profile, rustls version, crypto
//! provider). Anything else is refused with the field that differs, unless
//! `--allow-mismatch` is given.
//!
//! A figure regresses when its median is worse than the baseline's by more than its
//! family's threshold ([`Family::default_threshold_pct`], `--threshold`) and its absolute
//! floor ([`Metric::min_abs_change`]); it is judged only when enough samples stand behind it
//! in both reports ([`Metric::min_samples`]); and when both reports recorded the range of
//! their repeats, only if those ranges do not overlap ([`Verdict::WithinSpread`] otherwise,
//! reported without failing).
//!
//! Exit codes: 0 no regression, 1 at least one regression, 2 unusable input (a missing or
//! unreadable file, bad JSON, another schema version or command, a partial result, or a
//! mismatch without `--allow-mismatch`).

use std::collections::BTreeMap;
use std::fmt::{self, Write as _};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::str::FromStr;

use serde_json::Value;

use crate::report::SCHEMA_VERSION;

/// Exit code: no regression.
pub const EXIT_PASS: u8 = 0;
/// Exit code: at least one figure regressed beyond its threshold (or an entry is missing).
pub const EXIT_REGRESSION: u8 = 1;
/// Exit code: the input cannot be used (see the module documentation).
pub const EXIT_UNUSABLE: u8 = 2;

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

/// Whether a larger value of a figure is better or worse.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    /// More is better (goodput, frames/s): a drop is a regression.
    HigherIsBetter,
    /// Less is better (latency, CPU, handshake time, losses, instructions): a rise is a
    /// regression.
    LowerIsBetter,
}

/// Figures that share a threshold because they share a noise level.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Family {
    /// Goodput and frames per second (wall clock, fairly steady on one machine).
    Goodput,
    /// Frame-latency percentiles (wall clock, tails are noisy).
    Latency,
    /// CPU seconds per GB.
    Cpu,
    /// TLS handshake times.
    Handshake,
    /// Time to first frame (waits for a key frame, so it varies by up to a GOP).
    Ttff,
    /// Late, dropped and missing frames.
    Loss,
    /// Peak resident memory.
    Memory,
    /// TLS/plaintext ratios of the cost table.
    Cost,
    /// Instruction counts (callgrind): deterministic, so the threshold is tight.
    Instructions,
}

impl Family {
    /// Every family, in the order they are listed.
    pub const ALL: &'static [Family] = &[
        Family::Goodput,
        Family::Latency,
        Family::Cpu,
        Family::Handshake,
        Family::Ttff,
        Family::Loss,
        Family::Memory,
        Family::Cost,
        Family::Instructions,
    ];

    /// The name used by `--threshold`.
    pub fn name(self) -> &'static str {
        match self {
            Family::Goodput => "goodput",
            Family::Latency => "latency",
            Family::Cpu => "cpu",
            Family::Handshake => "handshake",
            Family::Ttff => "ttff",
            Family::Loss => "loss",
            Family::Memory => "memory",
            Family::Cost => "cost",
            Family::Instructions => "instructions",
        }
    }

    /// The default threshold, per cent. Wall-clock figures get room for the noise of a
    /// shared machine (goodput varies by a few per cent run to run, latency tails and
    /// handshake times by tens of per cent); instruction counts repeat to within 0.1 %, so
    /// 1 % catches one extra copy of a frame.
    pub fn default_threshold_pct(self) -> f64 {
        match self {
            Family::Goodput => 5.0,
            Family::Latency => 25.0,
            Family::Cpu => 15.0,
            Family::Handshake => 25.0,
            Family::Ttff => 25.0,
            Family::Loss => 10.0,
            Family::Memory => 20.0,
            Family::Cost => 10.0,
            Family::Instructions => 1.0,
        }
    }
}

impl fmt::Display for Family {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One figure that is checked.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Metric {
    /// Dotted path inside an entry (`goodput_mbit_s`, `latency_us.p99`).
    pub path: &'static str,
    /// Is more better or worse?
    pub direction: Direction,
    /// Whose threshold applies.
    pub family: Family,
    /// Changes of at most this much (in the figure's own unit) are never flagged: below it
    /// a per-cent change means nothing (a p50 of 40 µs moving by 15 µs, 0 → 2 late frames).
    pub min_abs_change: f64,
    /// The figure is compared only if both entries rest on at least this many samples: the
    /// p99 of a link that carried 2 messages in the window is not a measurement. A percentile
    /// q needs about 10 / (1 − q) samples before its value means something (p99: 1000,
    /// p99.9: 10 000); rates, medians and CPU per byte get 100 frames, medians of per-connection
    /// figures 20 connections. 0: always compared.
    pub min_samples: u64,
    /// Where the sample count is (a dotted path in the entry: `connections`, `streams`);
    /// `None`: the section's own count ([`Section::samples`], frames for links).
    pub samples_path: Option<&'static str>,
}

/// A figure compared whatever its sample count.
const fn m(path: &'static str, direction: Direction, family: Family, min_abs: f64) -> Metric {
    Metric {
        path,
        direction,
        family,
        min_abs_change: min_abs,
        min_samples: 0,
        samples_path: None,
    }
}

/// A figure compared only when both entries rest on `min_samples` of the section's samples.
const fn ms(
    path: &'static str,
    direction: Direction,
    family: Family,
    min_abs: f64,
    min_samples: u64,
) -> Metric {
    Metric {
        min_samples,
        ..m(path, direction, family, min_abs)
    }
}

/// A figure compared only when both entries have `min_samples` in their field `samples`.
const fn mc(
    path: &'static str,
    direction: Direction,
    family: Family,
    min_abs: f64,
    samples: &'static str,
    min_samples: u64,
) -> Metric {
    Metric {
        min_samples,
        samples_path: Some(samples),
        ..m(path, direction, family, min_abs)
    }
}

use Direction::{HigherIsBetter as Higher, LowerIsBetter as Lower};

/// Samples behind a rate, a median or a CPU-per-byte figure.
const RATE: u64 = 100;
/// Samples behind a 99th percentile.
const P99: u64 = 1_000;
/// Samples behind a 99.9th percentile.
const P999: u64 = 10_000;
/// Connections (or streams) behind a median of per-connection figures.
const PER_CONNECTION: u64 = 20;

/// The figures of `run` and `bulk` results (one entry per link and mode).
pub const LINK_METRICS: &[Metric] = &[
    ms("goodput_mbit_s", Higher, Family::Goodput, 0.0, RATE),
    ms("frames_per_s", Higher, Family::Goodput, 0.0, RATE),
    ms("latency_us.p50", Lower, Family::Latency, 20.0, RATE),
    ms("latency_us.p90", Lower, Family::Latency, 20.0, RATE),
    ms("latency_us.p99", Lower, Family::Latency, 20.0, P99),
    ms("latency_us.p999", Lower, Family::Latency, 20.0, P999),
    ms("cpu_server_s_per_gb", Lower, Family::Cpu, 0.0, RATE),
    ms("cpu_client_s_per_gb", Lower, Family::Cpu, 0.0, RATE),
    mc(
        "transfer_us",
        Lower,
        Family::Latency,
        1_000.0,
        "connections",
        PER_CONNECTION,
    ),
    mc(
        "handshake_us",
        Lower,
        Family::Handshake,
        50.0,
        "connections",
        PER_CONNECTION,
    ),
    mc(
        "handshake_us_p99",
        Lower,
        Family::Handshake,
        50.0,
        "connections",
        P99,
    ),
    mc(
        "server_handshake_us",
        Lower,
        Family::Handshake,
        50.0,
        "connections",
        PER_CONNECTION,
    ),
    mc(
        "ttff_us",
        Lower,
        Family::Ttff,
        10_000.0,
        "streams",
        PER_CONNECTION,
    ),
    mc("ttff_us_p99", Lower, Family::Ttff, 10_000.0, "streams", P99),
    m("recovery_us_max", Lower, Family::Ttff, 10_000.0),
    m("late_frames", Lower, Family::Loss, 5.0),
    m("dropped_frames", Lower, Family::Loss, 5.0),
    m("sequence_gaps", Lower, Family::Loss, 5.0),
    m("peak_rss_bytes", Lower, Family::Memory, 1_048_576.0),
];

/// The figures of the cost table (one entry per link: TLS / plaintext).
pub const COST_METRICS: &[Metric] = &[
    ms("goodput_ratio", Higher, Family::Cost, 0.0, RATE),
    ms("latency_p99_ratio", Lower, Family::Cost, 0.0, P99),
    ms("cpu_per_gb_ratio", Lower, Family::Cost, 0.0, RATE),
];

/// The figures of the instruction-count bench (one entry per case).
pub const INSTRUCTION_METRICS: &[Metric] = &[
    m("instructions_per_frame", Lower, Family::Instructions, 0.0),
    m(
        "instructions_per_handshake",
        Lower,
        Family::Instructions,
        0.0,
    ),
];

/// The figures of `handshakes` cells (one entry per version, key, group and resumption).
pub const HANDSHAKE_METRICS: &[Metric] = &[
    ms("handshakes_per_s", Higher, Family::Handshake, 0.0, RATE),
    ms("latency_us.p50", Lower, Family::Handshake, 50.0, RATE),
    ms("latency_us.p99", Lower, Family::Handshake, 50.0, P99),
    ms("cpu_server_us_per_handshake", Lower, Family::Cpu, 0.0, RATE),
    ms("cpu_client_us_per_handshake", Lower, Family::Cpu, 0.0, RATE),
];

/// How many samples an entry rests on, given the whole report and the entry (`None`: not
/// known, so never a reason to skip a figure).
pub type Samples = fn(&Value, &Value) -> Option<f64>;

/// Frames received by a link in one mode.
fn frames_received(_report: &Value, entry: &Value) -> Option<f64> {
    entry.get("frames_received").and_then(Value::as_f64)
}

/// Frames received by the link of a cost entry: the fewer of its plaintext and TLS results.
fn link_frames_received(report: &Value, entry: &Value) -> Option<f64> {
    let link = entry.get("link")?;
    report
        .get("results")?
        .as_array()?
        .iter()
        .filter(|r| r.get("link") == Some(link))
        .filter_map(|r| r.get("frames_received").and_then(Value::as_f64))
        .reduce(f64::min)
}

/// Handshakes completed in a cell's window.
fn handshakes_completed(_report: &Value, entry: &Value) -> Option<f64> {
    entry.get("handshakes").and_then(Value::as_f64)
}

/// Instruction counts are exact: no sample size.
fn exact(_report: &Value, _entry: &Value) -> Option<f64> {
    None
}

/// How an entry's key is shown: the table's `link` and `mode` columns.
pub type Label = fn(&[String]) -> (String, String);

/// `link`, then the other key fields (`tls`, `tls tls13_aes256gcm`).
fn link_and_mode(key: &[String]) -> (String, String) {
    let link = key.first().cloned().unwrap_or_default();
    let rest: Vec<&str> = key
        .iter()
        .skip(1)
        .map(String::as_str)
        .filter(|s| !s.is_empty())
        .collect();
    (link, rest.join(" "))
}

/// A cost-table entry: the link, TLS relative to plaintext.
fn link_cost(key: &[String]) -> (String, String) {
    (key.join(" "), "tls/plain".to_owned())
}

/// A handshake cell: `TLS 1.3 rsa2048 x25519 full`.
fn handshake_cell(key: &[String]) -> (String, String) {
    (format!("TLS {}", key.join(" ")), "tls".to_owned())
}

/// One array of entries in a report.
#[derive(Clone, Copy, Debug)]
pub struct Section {
    /// The top-level field holding the array (`results`, `cost`).
    pub array: &'static str,
    /// The fields that identify an entry (absent fields count as empty).
    pub key: &'static [&'static str],
    /// What is checked in each entry.
    pub metrics: &'static [Metric],
    /// How an entry is named in the summary.
    pub label: Label,
    /// How many samples an entry rests on (for [`Metric::min_samples`]).
    pub samples: Samples,
}

/// What one kind of report (by its `command`) is compared on.
#[derive(Clone, Copy, Debug)]
pub struct ReportKind {
    /// The report's `command`.
    pub command: &'static str,
    /// Fields (dotted paths) that say what was measured: they must be present, and equal
    /// in the result and the baseline (`scenario` for runs).
    pub identity: &'static [&'static str],
    /// Its arrays of entries.
    pub sections: &'static [Section],
    /// `environment` fields that must match for the figures to be comparable.
    pub environment: &'static [&'static str],
}

/// Environment fields that decide wall-clock figures.
const WALL_CLOCK_ENVIRONMENT: &[&str] = &[
    "cpu_model",
    "cores",
    "build_profile",
    "rustls_version",
    "crypto_provider",
];

/// Environment fields that decide instruction counts (the compiler and valgrind too).
const INSTRUCTION_ENVIRONMENT: &[&str] = &[
    "cpu_model",
    "cores",
    "build_profile",
    "rustls_version",
    "crypto_provider",
    "rustc_version",
    "valgrind_version",
];

const LINK_SECTIONS: &[Section] = &[
    Section {
        array: "results",
        key: &["link", "mode"],
        metrics: LINK_METRICS,
        label: link_and_mode,
        samples: frames_received,
    },
    Section {
        array: "cost",
        key: &["link"],
        metrics: COST_METRICS,
        label: link_cost,
        samples: link_frames_received,
    },
];

/// Every kind of report `baseline` knows; a new one (`capacity`) plugs in with a row.
pub const KINDS: &[ReportKind] = &[
    ReportKind {
        command: "run",
        identity: &["scenario"],
        sections: LINK_SECTIONS,
        environment: WALL_CLOCK_ENVIRONMENT,
    },
    ReportKind {
        command: "bulk",
        identity: &["scenario"],
        sections: LINK_SECTIONS,
        environment: WALL_CLOCK_ENVIRONMENT,
    },
    ReportKind {
        command: "handshakes",
        identity: &[
            "measurement.concurrency",
            "measurement.server_threads",
            "measurement.client_threads",
            "measurement.cipher",
            "measurement.server_name",
        ],
        sections: &[Section {
            array: "results",
            key: &["version", "key", "group", "resumption"],
            metrics: HANDSHAKE_METRICS,
            label: handshake_cell,
            samples: handshakes_completed,
        }],
        environment: WALL_CLOCK_ENVIRONMENT,
    },
    ReportKind {
        command: "instructions",
        identity: &["scenario"],
        sections: &[Section {
            array: "results",
            key: &["link", "mode", "suite"],
            metrics: INSTRUCTION_METRICS,
            label: link_and_mode,
            samples: exact,
        }],
        environment: INSTRUCTION_ENVIRONMENT,
    },
];

/// The JSON pointer of a dotted path (`latency_us.p99` → `/latency_us/p99`).
fn pointer(path: &str) -> String {
    format!("/{}", path.replace('.', "/"))
}

/// The kind of report with this `command`.
pub fn kind(command: &str) -> Option<&'static ReportKind> {
    KINDS.iter().find(|k| k.command == command)
}

/// The metric at `path` in any kind's table.
fn known_metric(path: &str) -> bool {
    KINDS
        .iter()
        .flat_map(|k| k.sections)
        .flat_map(|s| s.metrics)
        .any(|m| m.path == path)
}

/// `--threshold FAMILY=PCT` (or `METRIC=PCT`).
#[derive(Clone, Debug, PartialEq)]
pub struct ThresholdArg {
    /// A family name or a metric path.
    pub target: String,
    /// Allowed change, per cent.
    pub pct: f64,
}

impl FromStr for ThresholdArg {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let Some((target, pct)) = s.split_once('=') else {
            return Err(format!("{s:?} is not FAMILY=PCT (e.g. latency=40)"));
        };
        let target = target.trim().to_ascii_lowercase();
        let families: Vec<&str> = Family::ALL.iter().map(|f| f.name()).collect();
        if !families.contains(&target.as_str()) && !known_metric(&target) {
            return Err(format!(
                "unknown family or metric {target:?}; families: {}",
                families.join(", ")
            ));
        }
        let pct_text = pct.trim().trim_end_matches('%').trim();
        let pct = pct_text
            .parse::<f64>()
            .ok()
            .filter(|p| p.is_finite() && *p >= 0.0)
            .ok_or_else(|| format!("{pct:?} is not a percentage (a number ≥ 0, e.g. 7.5)"))?;
        Ok(ThresholdArg { target, pct })
    }
}

/// Thresholds in force: the defaults, overridden per family, overridden per metric.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Thresholds {
    by_family: BTreeMap<Family, f64>,
    by_metric: BTreeMap<String, f64>,
}

impl Thresholds {
    /// The defaults with `args` applied (later ones win).
    pub fn new(args: &[ThresholdArg]) -> Self {
        let mut t = Thresholds::default();
        for a in args {
            match Family::ALL.iter().find(|f| f.name() == a.target) {
                Some(f) => {
                    t.by_family.insert(*f, a.pct);
                }
                None => {
                    t.by_metric.insert(a.target.clone(), a.pct);
                }
            }
        }
        t
    }

    /// The threshold for `metric`, per cent.
    pub fn for_metric(&self, metric: &Metric) -> f64 {
        self.by_metric
            .get(metric.path)
            .or_else(|| self.by_family.get(&metric.family))
            .copied()
            .unwrap_or_else(|| metric.family.default_threshold_pct())
    }

    /// The families' thresholds in force, for the summary (`goodput 5 %, …`).
    fn describe(&self, kind: &ReportKind) -> String {
        let mut families: Vec<Family> = kind
            .sections
            .iter()
            .flat_map(|s| s.metrics)
            .map(|m| m.family)
            .collect();
        families.sort();
        families.dedup();
        let mut parts: Vec<String> = families
            .iter()
            .map(|f| {
                let pct = self
                    .by_family
                    .get(f)
                    .copied()
                    .unwrap_or_else(|| f.default_threshold_pct());
                format!("{f} {} %", fmt_num(pct))
            })
            .collect();
        parts.extend(
            self.by_metric
                .iter()
                .map(|(m, p)| format!("`{m}` {} %", fmt_num(*p))),
        );
        parts.join(", ")
    }
}

/// What a comparison of one figure concluded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Worse by more than the threshold.
    Regression,
    /// Better by more than the threshold.
    Improvement,
    /// Within the threshold (or within the metric's absolute noise floor).
    Unchanged,
    /// Worse by more than the threshold, but the range of the result's repeats overlaps the
    /// baseline's: as likely noise as a change, so reported without failing the check.
    WithinSpread,
}

/// Judges one figure. `change_pct` is signed: (new − baseline) / baseline × 100 (infinite
/// when the baseline is 0 and the new value is not).
pub fn judge(metric: &Metric, baseline: f64, new: f64, threshold_pct: f64) -> (Verdict, f64) {
    let delta = new - baseline;
    let change_pct = if baseline != 0.0 {
        delta / baseline.abs() * 100.0
    } else if delta == 0.0 {
        0.0
    } else {
        f64::INFINITY.copysign(delta)
    };
    if delta.abs() <= metric.min_abs_change {
        return (Verdict::Unchanged, change_pct);
    }
    let worse_pct = match metric.direction {
        Direction::HigherIsBetter => -change_pct,
        Direction::LowerIsBetter => change_pct,
    };
    let verdict = if worse_pct > threshold_pct {
        Verdict::Regression
    } else if -worse_pct > threshold_pct {
        Verdict::Improvement
    } else {
        Verdict::Unchanged
    };
    (verdict, change_pct)
}

/// Why a report cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum BaselineError {
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// What the system said.
        source: std::io::Error,
    },
    /// The file is not JSON.
    #[error("{path} is not valid JSON: {source}")]
    Json {
        /// The file.
        path: PathBuf,
        /// What the parser said.
        source: serde_json::Error,
    },
    /// The JSON is not a vmsbench report this version can compare.
    #[error("{path}: {reason}")]
    Schema {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The two reports did not measure the same thing.
    #[error(
        "the result and the baseline are not comparable:\n{}\n(re-create the baseline, or \
         pass --allow-mismatch to compare anyway)",
        .0.iter().map(|m| format!("  {m}")).collect::<Vec<_>>().join("\n")
    )]
    Mismatch(Vec<Mismatch>),
    /// Writing the output failed.
    #[error("cannot write {path}: {source}")]
    Write {
        /// The file.
        path: PathBuf,
        /// What the system said.
        source: std::io::Error,
    },
}

/// A field that differs between the result and the baseline.
#[derive(Clone, Debug, PartialEq)]
pub struct Mismatch {
    /// Dotted path, e.g. `scenario.cameras` or `environment.cpu_model`.
    pub field: String,
    /// The baseline's value (JSON; `absent` when missing).
    pub baseline: String,
    /// The result's value.
    pub result: String,
}

impl fmt::Display for Mismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} differs: baseline {}, result {}",
            self.field, self.baseline, self.result
        )
    }
}

/// A report read from a file and checked for the fields `baseline` relies on.
#[derive(Clone, Debug)]
pub struct LoadedReport {
    /// Where it came from.
    pub path: PathBuf,
    /// The whole report.
    pub json: Value,
    /// Its kind (from `command`).
    pub kind: &'static ReportKind,
    /// The raw bytes, for `save`.
    raw: Vec<u8>,
}

impl LoadedReport {
    /// Reads and validates `path`.
    pub fn read(path: &Path) -> Result<Self, BaselineError> {
        let raw = std::fs::read(path).map_err(|source| BaselineError::Read {
            path: path.to_owned(),
            source,
        })?;
        let json: Value = serde_json::from_slice(&raw).map_err(|source| BaselineError::Json {
            path: path.to_owned(),
            source,
        })?;
        let kind = validate(&json).map_err(|reason| BaselineError::Schema {
            path: path.to_owned(),
            reason,
        })?;
        Ok(LoadedReport {
            path: path.to_owned(),
            json,
            kind,
            raw,
        })
    }

    fn field(&self, name: &str) -> &str {
        self.json.get(name).and_then(Value::as_str).unwrap_or("?")
    }
}

/// Checks that `json` is a complete report of a known kind and schema version.
pub fn validate(json: &Value) -> Result<&'static ReportKind, String> {
    let Some(obj) = json.as_object() else {
        return Err("not a vmsbench report (the top level is not a JSON object)".into());
    };
    match obj.get("schema_version").and_then(Value::as_u64) {
        Some(v) if v == u64::from(SCHEMA_VERSION) => {}
        Some(v) => {
            return Err(format!(
                "schema_version {v}, but this vmsbench reads schema_version {SCHEMA_VERSION}; \
                 compare it with the vmsbench that wrote it, or re-create it"
            ))
        }
        None => return Err("not a vmsbench report (no schema_version)".into()),
    }
    let Some(command) = obj.get("command").and_then(Value::as_str) else {
        return Err("not a vmsbench report (no command)".into());
    };
    let known: Vec<&str> = KINDS.iter().map(|k| k.command).collect();
    let Some(kind) = kind(command) else {
        return Err(format!(
            "a {command:?} report, which baseline cannot compare (it knows: {})",
            known.join(", ")
        ));
    };
    if obj.get("partial").and_then(Value::as_bool) == Some(true) {
        return Err("the run was interrupted (partial: true); its figures are incomplete".into());
    }
    if !obj.get("environment").is_some_and(Value::is_object) {
        return Err("no environment object".into());
    }
    for field in kind.identity {
        if json.pointer(&pointer(field)).is_none() {
            return Err(format!("no {field}: cannot tell what was measured"));
        }
    }
    for section in kind.sections {
        let Some(entries) = obj.get(section.array) else {
            continue;
        };
        let Some(entries) = entries.as_array() else {
            return Err(format!("{} is not an array", section.array));
        };
        for (i, e) in entries.iter().enumerate() {
            if !e.is_object() || e.get(section.key[0]).and_then(Value::as_str).is_none() {
                return Err(format!(
                    "{}[{i}] has no {:?} to identify it",
                    section.array, section.key[0]
                ));
            }
        }
    }
    let first = kind.sections.first().map_or("results", |s| s.array);
    if obj
        .get(first)
        .and_then(Value::as_array)
        .is_none_or(|a| a.is_empty())
    {
        return Err(format!("no {first}: nothing was measured"));
    }
    Ok(kind)
}

fn show(v: Option<&Value>) -> String {
    v.map_or_else(|| "absent".to_owned(), Value::to_string)
}

/// Every path at which `a` and `b` differ, under `path`.
fn diff(path: &str, a: Option<&Value>, b: Option<&Value>, out: &mut Vec<Mismatch>) {
    match (a, b) {
        (Some(Value::Object(x)), Some(Value::Object(y))) => {
            let mut keys: Vec<&String> = x.keys().chain(y.keys()).collect();
            keys.sort();
            keys.dedup();
            for k in keys {
                diff(&format!("{path}.{k}"), x.get(k), y.get(k), out);
            }
        }
        (a, b) if a != b => out.push(Mismatch {
            field: path.to_owned(),
            baseline: show(a),
            result: show(b),
        }),
        _ => {}
    }
}

/// What makes two reports incomparable: another command, scenario or environment.
pub fn mismatches(baseline: &LoadedReport, result: &LoadedReport) -> Vec<Mismatch> {
    let mut out = Vec::new();
    diff(
        "command",
        baseline.json.get("command"),
        result.json.get("command"),
        &mut out,
    );
    for field in baseline.kind.identity {
        diff(
            field,
            baseline.json.pointer(&pointer(field)),
            result.json.pointer(&pointer(field)),
            &mut out,
        );
    }
    for field in baseline.kind.environment {
        diff(
            &format!("environment.{field}"),
            baseline.json.pointer(&format!("/environment/{field}")),
            result.json.pointer(&format!("/environment/{field}")),
            &mut out,
        );
    }
    out
}

/// Differences in how the two were measured (window, repeats, multiplier): reported, not
/// refused, since CI deliberately runs shorter than a capacity study.
fn measurement_notes(baseline: &LoadedReport, result: &LoadedReport) -> Vec<String> {
    let mut found = Vec::new();
    diff(
        "measurement",
        baseline.json.get("measurement"),
        result.json.get("measurement"),
        &mut found,
    );
    found
        .iter()
        .filter(|m| !baseline.kind.identity.contains(&m.field.as_str()))
        .map(|m| {
            format!(
                "`{}` differs: baseline {}, result {}",
                m.field, m.baseline, m.result
            )
        })
        .collect()
}

/// One compared figure.
#[derive(Clone, Debug, PartialEq)]
pub struct Row {
    /// The entry, as shown: its `link` and `mode` columns.
    pub entry: Vec<String>,
    /// The metric's path.
    pub metric: &'static str,
    /// Its family.
    pub family: Family,
    /// Baseline value.
    pub baseline: f64,
    /// New value.
    pub new: f64,
    /// Signed change, per cent.
    pub change_pct: f64,
    /// Threshold applied, per cent.
    pub threshold_pct: f64,
    /// The conclusion.
    pub verdict: Verdict,
}

/// The result of a check.
#[derive(Clone, Debug, Default)]
pub struct Outcome {
    /// Every compared figure.
    pub rows: Vec<Row>,
    /// Baseline entries the result does not have (each counts as a regression).
    pub missing: Vec<Vec<String>>,
    /// Result entries the baseline does not have.
    pub added: Vec<Vec<String>>,
    /// Figures left out, per entry, for resting on too few samples ([`Metric::min_samples`]).
    pub too_few_samples: Vec<(Vec<String>, Vec<&'static str>)>,
    /// Mismatches that were allowed (`--allow-mismatch`).
    pub allowed_mismatches: Vec<Mismatch>,
    /// Other things the reader should know.
    pub notes: Vec<String>,
}

impl Outcome {
    /// The figures that regressed.
    pub fn regressions(&self) -> impl Iterator<Item = &Row> {
        self.rows
            .iter()
            .filter(|r| r.verdict == Verdict::Regression)
    }

    /// Whether nothing regressed and nothing is missing.
    pub fn passed(&self) -> bool {
        self.regressions().next().is_none() && self.missing.is_empty()
    }

    /// 0 when passed, 1 otherwise.
    pub fn exit_code(&self) -> u8 {
        if self.passed() {
            EXIT_PASS
        } else {
            EXIT_REGRESSION
        }
    }
}

fn entry_key(entry: &Value, key: &[&str]) -> Vec<String> {
    key.iter()
        .map(|k| match entry.get(*k) {
            Some(Value::String(s)) => s.clone(),
            Some(Value::Null) | None => String::new(),
            Some(v) => v.to_string(),
        })
        .collect()
}

/// The `[min, max]` of a figure over an entry's repeats (its `spread` map), if recorded.
fn spread(entry: &Value, path: &str) -> Option<(f64, f64)> {
    let s = entry.get("spread")?.get(path)?;
    Some((s.get("min")?.as_f64()?, s.get("max")?.as_f64()?))
}

/// Whether the ranges of a figure over the repeats of both entries overlap. A single repeat
/// has no spread: then there is nothing to overlap and the threshold alone decides.
fn spreads_overlap(baseline: &Value, result: &Value, path: &str) -> bool {
    match (spread(baseline, path), spread(result, path)) {
        (Some((b_min, b_max)), Some((n_min, n_max))) => n_min <= b_max && b_min <= n_max,
        _ => false,
    }
}

/// Compares `result` with `baseline` figure by figure. A figure regresses when its median
/// is worse by more than its threshold (and its absolute floor) and, when both reports
/// recorded the range of their repeats, the ranges do not overlap (otherwise the verdict is
/// [`Verdict::WithinSpread`]).
pub fn compare(baseline: &LoadedReport, result: &LoadedReport, thresholds: &Thresholds) -> Outcome {
    let mut out = Outcome::default();
    for section in baseline.kind.sections {
        let entries = |r: &LoadedReport| -> Vec<Value> {
            r.json
                .get(section.array)
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default()
        };
        let (old, new) = (entries(baseline), entries(result));
        let display = |k: &[String]| {
            let (link, mode) = (section.label)(k);
            vec![link, mode]
        };
        for b in &old {
            let key = entry_key(b, section.key);
            let Some(n) = new.iter().find(|n| entry_key(n, section.key) == key) else {
                out.missing.push(display(&key));
                continue;
            };
            let too_few = |metric: &Metric| {
                let count = |report: &LoadedReport, entry: &Value| match metric.samples_path {
                    Some(p) => entry.pointer(&pointer(p)).and_then(Value::as_f64),
                    None => (section.samples)(&report.json, entry),
                };
                [count(baseline, b), count(result, n)]
                    .iter()
                    .flatten()
                    .any(|c| *c < metric.min_samples as f64)
            };
            let mut skipped = Vec::new();
            for metric in section.metrics {
                if too_few(metric) {
                    skipped.push(metric.path);
                    continue;
                }
                let at = pointer(metric.path);
                let (Some(bv), Some(nv)) = (
                    b.pointer(&at).and_then(Value::as_f64),
                    n.pointer(&at).and_then(Value::as_f64),
                ) else {
                    continue;
                };
                let threshold_pct = thresholds.for_metric(metric);
                let (mut verdict, change_pct) = judge(metric, bv, nv, threshold_pct);
                if verdict != Verdict::Unchanged && spreads_overlap(b, n, metric.path) {
                    verdict = match verdict {
                        Verdict::Regression => Verdict::WithinSpread,
                        _ => Verdict::Unchanged,
                    };
                }
                out.rows.push(Row {
                    entry: display(&key),
                    metric: metric.path,
                    family: metric.family,
                    baseline: bv,
                    new: nv,
                    change_pct,
                    threshold_pct,
                    verdict,
                });
            }
            if !skipped.is_empty() {
                out.too_few_samples.push((display(&key), skipped));
            }
        }
        for n in &new {
            let key = entry_key(n, section.key);
            if !old.iter().any(|b| entry_key(b, section.key) == key) {
                out.added.push(display(&key));
            }
        }
    }
    out.notes = measurement_notes(baseline, result);
    out
}

/// A number for a table: integers as integers, others with 4 significant digits.
fn fmt_num(v: f64) -> String {
    if !v.is_finite() {
        return v.to_string();
    }
    if v == v.trunc() && v.abs() < 1e15 {
        return format!("{v:.0}");
    }
    let a = v.abs();
    let decimals = if a >= 1000.0 {
        0
    } else if a >= 100.0 {
        1
    } else if a >= 10.0 {
        2
    } else if a >= 1.0 {
        3
    } else {
        4
    };
    format!("{v:.decimals$}")
}

fn fmt_change(pct: f64) -> String {
    if pct.is_infinite() {
        return if pct > 0.0 { "new" } else { "gone" }.to_owned();
    }
    format!("{pct:+.1} %")
}

/// The entry's `link` and `mode` columns.
fn entry_columns(entry: &[String]) -> (String, String) {
    let link = entry.first().cloned().unwrap_or_default();
    let mode = entry.get(1).cloned().unwrap_or_default();
    (link, mode)
}

fn md_escape(s: &str) -> String {
    s.replace('|', "\\|")
}

/// The Markdown summary, for a pull-request comment.
pub fn markdown(
    outcome: &Outcome,
    baseline: &LoadedReport,
    result: &LoadedReport,
    thresholds: &Thresholds,
) -> String {
    let mut md = String::new();
    let regressions: Vec<&Row> = outcome.regressions().collect();
    let improvements = outcome
        .rows
        .iter()
        .filter(|r| r.verdict == Verdict::Improvement)
        .count();
    let verdict = if outcome.passed() {
        "✅ no regression".to_owned()
    } else {
        let n = regressions.len() + outcome.missing.len();
        format!("❌ {n} regression{}", if n == 1 { "" } else { "s" })
    };
    let _ = writeln!(md, "## vmsbench `{}`: {verdict}", result.kind.command);
    let _ = writeln!(md);
    let _ = writeln!(
        md,
        "Result `{}` (started {}) against baseline `{}` (started {}): {} figures compared, \
         {} regressed, {} worse within the spread of the repeats, {} improved. Thresholds: {}.",
        md_escape(&result.path.display().to_string()),
        result.field("started_at"),
        md_escape(&baseline.path.display().to_string()),
        baseline.field("started_at"),
        outcome.rows.len(),
        regressions.len(),
        outcome
            .rows
            .iter()
            .filter(|r| r.verdict == Verdict::WithinSpread)
            .count(),
        improvements,
        thresholds.describe(result.kind),
    );
    let _ = writeln!(md);
    let header = "| | metric | link | mode | baseline | new | change | threshold |\n\
                  |---|---|---|---|---:|---:|---:|---:|";
    let row = |md: &mut String, r: &Row| {
        let (link, mode) = entry_columns(&r.entry);
        let mark = match r.verdict {
            Verdict::Regression => "❌",
            Verdict::Improvement => "🟢",
            Verdict::WithinSpread => "⚠️",
            Verdict::Unchanged => "",
        };
        let _ = writeln!(
            md,
            "| {mark} | `{}` | {} | {} | {} | {} | {} | {} % |",
            r.metric,
            md_escape(&link),
            md_escape(&mode),
            fmt_num(r.baseline),
            fmt_num(r.new),
            fmt_change(r.change_pct),
            fmt_num(r.threshold_pct)
        );
    };
    if !regressions.is_empty() {
        let _ = writeln!(md, "### Regressions\n\n{header}");
        for r in &regressions {
            row(&mut md, r);
        }
        let _ = writeln!(md);
    }
    let noisy: Vec<&Row> = outcome
        .rows
        .iter()
        .filter(|r| r.verdict == Verdict::WithinSpread)
        .collect();
    if !noisy.is_empty() {
        let _ = writeln!(
            md,
            "### Worse beyond the threshold, within the spread of the repeats (not failing)\n\n\
             {header}"
        );
        for r in &noisy {
            row(&mut md, r);
        }
        let _ = writeln!(md);
    }
    if !outcome.missing.is_empty() {
        let _ = writeln!(md, "### Missing from the result (counted as regressions)\n");
        for k in &outcome.missing {
            let _ = writeln!(md, "- {}", md_escape(&k.join(" ")));
        }
        let _ = writeln!(md);
    }
    if !outcome.rows.is_empty() {
        let _ = writeln!(
            md,
            "<details><summary>All {} figures</summary>\n\n{header}",
            outcome.rows.len()
        );
        for r in &outcome.rows {
            row(&mut md, r);
        }
        let _ = writeln!(md, "\n</details>\n");
    }
    let mut notes: Vec<String> = Vec::new();
    for m in &outcome.allowed_mismatches {
        notes.push(format!(
            "compared despite a mismatch (--allow-mismatch): `{}` differs: baseline {}, result {}",
            m.field, m.baseline, m.result
        ));
    }
    if !outcome.too_few_samples.is_empty() {
        let n: usize = outcome.too_few_samples.iter().map(|(_, m)| m.len()).sum();
        let list: Vec<String> = outcome
            .too_few_samples
            .iter()
            .map(|(k, m)| format!("{} ({})", k.join(" "), m.join(", ")))
            .collect();
        notes.push(format!(
            "{n} figures not compared: too few frames, connections or handshakes behind them \
             (rates and medians need 100, p99 1000, p99.9 10000; per-connection medians 20): {}",
            list.join("; ")
        ));
    }
    for k in &outcome.added {
        notes.push(format!(
            "new in the result, not in the baseline: {}",
            k.join(" ")
        ));
    }
    notes.extend(outcome.notes.iter().cloned());
    if let Some(w) = result.json.get("warnings").and_then(Value::as_array) {
        notes.extend(
            w.iter()
                .filter_map(Value::as_str)
                .map(|w| format!("result warning: {w}")),
        );
    }
    if !notes.is_empty() {
        let _ = writeln!(md, "Notes:\n");
        for n in notes {
            let _ = writeln!(md, "- {}", md_escape(&n));
        }
    }
    md
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

#[cfg(test)]
mod tests {
    use super::*;

    const GOODPUT: Metric = m("goodput_mbit_s", Higher, Family::Goodput, 0.0);
    const P99: Metric = m("latency_us.p99", Lower, Family::Latency, 20.0);
    const LATE: Metric = m("late_frames", Lower, Family::Loss, 5.0);

    #[test]
    fn direction_decides_what_is_worse() {
        assert_eq!(judge(&GOODPUT, 100.0, 90.0, 5.0).0, Verdict::Regression);
        assert_eq!(judge(&GOODPUT, 100.0, 110.0, 5.0).0, Verdict::Improvement);
        assert_eq!(judge(&GOODPUT, 100.0, 96.0, 5.0).0, Verdict::Unchanged);
        assert_eq!(judge(&P99, 1000.0, 1300.0, 25.0).0, Verdict::Regression);
        assert_eq!(judge(&P99, 1000.0, 700.0, 25.0).0, Verdict::Improvement);
        assert_eq!(judge(&P99, 1000.0, 1200.0, 25.0).0, Verdict::Unchanged);
        let (v, pct) = judge(&GOODPUT, 200.0, 180.0, 5.0);
        assert_eq!(v, Verdict::Regression);
        assert!((pct + 10.0).abs() < 1e-9, "{pct}");
    }

    #[test]
    fn absolute_floors_and_zero_baselines() {
        // 40 µs → 55 µs is +37 % but within the 20 µs floor.
        assert_eq!(judge(&P99, 40.0, 55.0, 25.0).0, Verdict::Unchanged);
        // 0 → 3 late frames: within the 5-frame floor; 0 → 50 is a regression ("new").
        assert_eq!(judge(&LATE, 0.0, 3.0, 10.0).0, Verdict::Unchanged);
        let (v, pct) = judge(&LATE, 0.0, 50.0, 10.0);
        assert_eq!(v, Verdict::Regression);
        assert_eq!(fmt_change(pct), "new");
        assert_eq!(judge(&LATE, 0.0, 0.0, 10.0), (Verdict::Unchanged, 0.0));
        // Exactly at the threshold is not beyond it.
        assert_eq!(judge(&GOODPUT, 100.0, 95.0, 5.0).0, Verdict::Unchanged);
    }

    #[test]
    fn thresholds_default_then_family_then_metric() {
        let t = Thresholds::new(&[]);
        assert_eq!(t.for_metric(&GOODPUT), 5.0);
        assert_eq!(t.for_metric(&P99), 25.0);
        assert_eq!(
            t.for_metric(&INSTRUCTION_METRICS[0]),
            Family::Instructions.default_threshold_pct()
        );
        let args: Vec<ThresholdArg> = ["latency=40", "latency_us.p99=60%", "goodput = 2.5"]
            .iter()
            .map(|s| s.parse().expect("valid"))
            .collect();
        let t = Thresholds::new(&args);
        assert_eq!(t.for_metric(&P99), 60.0);
        assert_eq!(
            t.for_metric(&LINK_METRICS[2]),
            40.0,
            "p50 takes the family's"
        );
        assert_eq!(t.for_metric(&GOODPUT), 2.5);
        assert!("latency".parse::<ThresholdArg>().is_err());
        assert!("speed=5".parse::<ThresholdArg>().is_err());
        assert!("latency=-1".parse::<ThresholdArg>().is_err());
        assert!("latency=lots".parse::<ThresholdArg>().is_err());
    }

    #[test]
    fn every_metric_path_is_unique_within_its_section() {
        for kind in KINDS {
            for s in kind.sections {
                let mut paths: Vec<&str> = s.metrics.iter().map(|m| m.path).collect();
                paths.sort_unstable();
                let n = paths.len();
                paths.dedup();
                assert_eq!(paths.len(), n, "{} {}", kind.command, s.array);
            }
        }
    }
}
