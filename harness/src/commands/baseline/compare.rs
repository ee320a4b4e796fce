//! Comparing a result with its baseline: are they comparable at all (same identity, same
//! machine and build), and which figures regressed beyond their thresholds.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use serde_json::Value;

use super::change::change_interval;
use super::kinds::{
    kind, known_metric, pointer, Direction, Family, Metric, ReportKind, Section, KINDS,
};
use crate::report::interval::Interval;
use crate::report::SCHEMA_VERSION;

/// Exit code: no regression.
pub const EXIT_PASS: u8 = 0;

/// Exit code: at least one figure regressed beyond its threshold (or an entry is missing).
pub const EXIT_REGRESSION: u8 = 1;

/// Exit code: the input cannot be used (see the module documentation).
pub const EXIT_UNUSABLE: u8 = 2;

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
pub(super) struct Thresholds {
    by_family: BTreeMap<Family, f64>,
    by_metric: BTreeMap<String, f64>,
}

impl Thresholds {
    /// The defaults with `args` applied (later ones win).
    pub(super) fn new(args: &[ThresholdArg]) -> Self {
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
    pub(super) fn for_metric(&self, metric: &Metric) -> f64 {
        self.by_metric
            .get(metric.path)
            .or_else(|| self.by_family.get(&metric.family))
            .copied()
            .unwrap_or_else(|| metric.family.default_threshold_pct())
    }

    /// The families' thresholds in force, for the summary (`goodput 5 %, …`).
    pub(super) fn describe(&self, kind: &ReportKind) -> String {
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
pub(super) enum Verdict {
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
pub(super) fn judge(
    metric: &Metric,
    baseline: f64,
    new: f64,
    threshold_pct: f64,
) -> (Verdict, f64) {
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
pub(super) enum BaselineError {
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
pub(super) struct Mismatch {
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
pub(super) struct LoadedReport {
    /// Where it came from.
    pub path: PathBuf,
    /// The whole report.
    pub json: Value,
    /// Its kind (from `command`).
    pub kind: &'static ReportKind,
    /// The raw bytes, for `save`.
    pub(super) raw: Vec<u8>,
}

impl LoadedReport {
    /// Reads and validates `path`.
    pub(super) fn read(path: &Path) -> Result<Self, BaselineError> {
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

    pub(super) fn field(&self, name: &str) -> &str {
        self.json.get(name).and_then(Value::as_str).unwrap_or("?")
    }
}

/// Checks that `json` is a complete report of a known kind and schema version.
pub(super) fn validate(json: &Value) -> Result<&'static ReportKind, String> {
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
        if !(entries.is_array() || entries.is_object()) {
            return Err(format!("{} is not an array", section.array));
        }
        for (i, e) in section_entries(json, section).iter().enumerate() {
            if !e.is_object() || e.get(section.key[0]).and_then(Value::as_str).is_none() {
                return Err(format!(
                    "{}[{i}] has no {:?} to identify it",
                    section.array, section.key[0]
                ));
            }
        }
    }
    let first = kind.sections.first().map_or("results", |s| s.array);
    if kind
        .sections
        .first()
        .is_none_or(|s| section_entries(json, s).is_empty())
    {
        return Err(format!("no {first}: nothing was measured"));
    }
    Ok(kind)
}

pub(super) fn show(v: Option<&Value>) -> String {
    v.map_or_else(|| "absent".to_owned(), Value::to_string)
}

/// Every path at which `a` and `b` differ, under `path`.
pub(super) fn diff(path: &str, a: Option<&Value>, b: Option<&Value>, out: &mut Vec<Mismatch>) {
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
pub(super) fn mismatches(baseline: &LoadedReport, result: &LoadedReport) -> Vec<Mismatch> {
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
pub(super) fn measurement_notes(baseline: &LoadedReport, result: &LoadedReport) -> Vec<String> {
    let mut found = Vec::new();
    // How a run was measured (`measurement`), or how a capacity search ran (`search`).
    for section in ["measurement", "search"] {
        diff(
            section,
            baseline.json.get(section),
            result.json.get(section),
            &mut found,
        );
    }
    let mut notes: Vec<String> = found
        .iter()
        .filter(|m| !baseline.kind.identity.contains(&m.field.as_str()))
        .filter(|m| m.field != "search.elapsed_s")
        .map(|m| {
            format!(
                "`{}` differs: baseline {}, result {}",
                m.field, m.baseline, m.result
            )
        })
        .collect();
    let load = |r: &LoadedReport| {
        r.json
            .pointer("/environment/load_average_1m")
            .and_then(Value::as_f64)
    };
    if let (Some(b), Some(n)) = (load(baseline), load(result)) {
        notes.push(format!(
            "load average before each run (1 min): baseline {b:.2}, result {n:.2}; the \
             intervals hold only the noise within each sitting"
        ));
    }
    notes
}

/// One compared figure.
#[derive(Clone, Debug, PartialEq)]
pub(super) struct Row {
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
    /// The 95 % interval of the change, per cent (from the repeats or the recorded
    /// intervals; see `change.rs`), when the reports give one.
    pub change_interval_pct: Option<Interval>,
}

/// The result of a check.
#[derive(Clone, Debug, Default)]
pub(super) struct Outcome {
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
    pub(super) fn regressions(&self) -> impl Iterator<Item = &Row> {
        self.rows
            .iter()
            .filter(|r| r.verdict == Verdict::Regression)
    }

    /// Whether nothing regressed and nothing is missing.
    pub(super) fn passed(&self) -> bool {
        self.regressions().next().is_none() && self.missing.is_empty()
    }

    /// 0 when passed, 1 otherwise.
    pub(super) fn exit_code(&self) -> u8 {
        if self.passed() {
            EXIT_PASS
        } else {
            EXIT_REGRESSION
        }
    }
}

pub(super) fn entry_key(entry: &Value, key: &[&str]) -> Vec<String> {
    key.iter()
        .map(|k| match entry.get(*k) {
            Some(Value::String(s)) => s.clone(),
            Some(Value::Null) | None => String::new(),
            Some(v) => v.to_string(),
        })
        .collect()
}

/// The `[min, max]` of a figure over an entry's repeats (its `spread` map), if recorded.
pub(super) fn spread(entry: &Value, path: &str) -> Option<(f64, f64)> {
    let s = entry.get("spread")?.get(path)?;
    Some((s.get("min")?.as_f64()?, s.get("max")?.as_f64()?))
}

/// Whether the ranges of a figure over the repeats of both entries overlap. A single repeat
/// has no spread: then there is nothing to overlap and the threshold alone decides.
pub(super) fn spreads_overlap(baseline: &Value, result: &Value, path: &str) -> bool {
    match (spread(baseline, path), spread(result, path)) {
        (Some((b_min, b_max)), Some((n_min, n_max))) => n_min <= b_max && b_min <= n_max,
        _ => false,
    }
}

/// The entries of a section: its array, or its object's values with the key as the
/// entry's first key field.
pub(super) fn section_entries(json: &Value, section: &Section) -> Vec<Value> {
    match json.get(section.array) {
        Some(Value::Array(a)) => a.clone(),
        Some(Value::Object(o)) => o
            .iter()
            .filter(|(_, v)| v.is_object())
            .map(|(k, v)| {
                let mut v = v.clone();
                if let (Some(field), Some(obj)) = (section.key.first(), v.as_object_mut()) {
                    obj.insert((*field).to_owned(), Value::from(k.as_str()));
                }
                v
            })
            .collect(),
        _ => Vec::new(),
    }
}

/// Whether the whole interval of a change (per cent) lies beyond the threshold, in either
/// direction: worse for a regression, better for an improvement.
fn beyond(metric: &Metric, change: Interval, threshold_pct: f64) -> bool {
    // How much worse, per cent, at each end of the interval.
    let (least_worse, most_worse) = match metric.direction {
        Direction::HigherIsBetter => (-change.high, -change.low),
        Direction::LowerIsBetter => (change.low, change.high),
    };
    least_worse > threshold_pct || -most_worse > threshold_pct
}

/// Compares `result` with `baseline` figure by figure. A figure regresses when its median
/// is worse by more than its threshold (and its absolute floor) and, when both reports
/// recorded the range of their repeats, the ranges do not overlap (otherwise the verdict is
/// [`Verdict::WithinSpread`]).
pub(super) fn compare(
    baseline: &LoadedReport,
    result: &LoadedReport,
    thresholds: &Thresholds,
) -> Outcome {
    let mut out = Outcome::default();
    for section in baseline.kind.sections {
        let entries = |r: &LoadedReport| section_entries(&r.json, section);
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
                let interval = change_interval(metric, b, n);
                if verdict != Verdict::Unchanged {
                    let noise = match interval {
                        Some(i) => !beyond(metric, i, threshold_pct),
                        None => spreads_overlap(b, n, metric.path),
                    };
                    if noise {
                        verdict = match verdict {
                            Verdict::Regression => Verdict::WithinSpread,
                            _ => Verdict::Unchanged,
                        };
                    }
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
                    change_interval_pct: interval,
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
pub(super) fn fmt_num(v: f64) -> String {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::commands::baseline::kinds::*;
    use crate::commands::baseline::markdown::fmt_change;
    use Direction::{HigherIsBetter as Higher, LowerIsBetter as Lower};

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
