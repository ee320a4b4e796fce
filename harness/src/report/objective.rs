//! The service objective a capacity search holds the recording server to, e.g.
//! `p99<=200ms,late<=0.1%,dropped=0`: what a step must meet to pass.
//!
//! Terms, separated by commas:
//!
//! | term                         | value                   | measured on                                     |
//! |------------------------------|-------------------------|-------------------------------------------------|
//! | `p50` `p90` `p99` `p999` `max` | a duration (`200ms`)  | frame latency, corrected for coordinated omission |
//! | `late`                       | a count or a percentage | frames late by more than one frame interval, or never delivered |
//! | `dropped`                    | a count or a percentage | frames the server dropped for slow consumers    |
//! | `failures`                   | a count                 | failed connections and TLS handshakes           |
//! | `cpu`                        | a percentage            | the recording server's CPU, of the cores it has |
//! | `rss`                        | a size (`2GiB`)         | peak resident memory of the process             |
//!
//! Latency, late and dropped frames are those of the streams the recording server serves
//! (viewers, integrations, the mobile server); percentages are of the frames due. The
//! operators are `<=`, `<` and `=` (`==`); `=` takes only 0 (`dropped=0`).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::report::Percentiles;
use crate::units::{format_bytes, format_duration_us, parse_duration, parse_size};

/// The objective `vmsbench capacity` uses unless told otherwise.
pub(crate) const DEFAULT_OBJECTIVE: &str = "p99<=200ms,late<=0.1%,dropped=0";

/// What a term measures.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Metric {
    /// Median frame latency.
    P50,
    /// 90th percentile of frame latency.
    P90,
    /// 99th percentile of frame latency.
    P99,
    /// 99.9th percentile of frame latency.
    P999,
    /// Largest frame latency.
    Max,
    /// Late frames (including frames due but never delivered).
    Late,
    /// Frames dropped by the server.
    Dropped,
    /// Failed connections and handshakes.
    Failures,
    /// The recording server's CPU, as a share of its cores.
    Cpu,
    /// Peak resident memory of the process.
    Rss,
}

impl Metric {
    const NAMES: &'static [(&'static str, Metric)] = &[
        ("p50", Metric::P50),
        ("p90", Metric::P90),
        ("p99", Metric::P99),
        ("p999", Metric::P999),
        ("max", Metric::Max),
        ("late", Metric::Late),
        ("dropped", Metric::Dropped),
        ("failures", Metric::Failures),
        ("cpu", Metric::Cpu),
        ("rss", Metric::Rss),
    ];

    fn name(self) -> &'static str {
        Self::NAMES
            .iter()
            .find(|(_, m)| *m == self)
            .map_or("?", |(n, _)| n)
    }

    /// The limit a violated term stands for.
    pub fn limit(self) -> Limit {
        match self {
            Metric::P50 | Metric::P90 | Metric::P99 | Metric::P999 | Metric::Max => Limit::Latency,
            Metric::Late => Limit::LateFrames,
            Metric::Dropped => Limit::DroppedFrames,
            Metric::Failures => Limit::HandshakeFailures,
            Metric::Cpu => Limit::ServerCpu,
            Metric::Rss => Limit::Memory,
        }
    }
}

/// What stopped a recording server from taking more cameras.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Limit {
    /// The recording server's cores were saturated (or over the objective's `cpu`).
    ServerCpu,
    /// The cores of everything else on this machine (clients, management, mobile server)
    /// were saturated: the measuring side ran out first, so the capacity found is a lower
    /// bound for the recording server.
    ClientCpu,
    /// Frame latency over the objective.
    Latency,
    /// Too many frames late or never delivered.
    LateFrames,
    /// Too many frames dropped for slow consumers.
    DroppedFrames,
    /// Memory: over the objective's `rss`, or near the machine's physical memory.
    Memory,
    /// Connections or TLS handshakes failed.
    HandshakeFailures,
}

impl Limit {
    /// A few words for people.
    pub fn describe(self) -> &'static str {
        match self {
            Limit::ServerCpu => "recording-server CPU",
            Limit::ClientCpu => "client-side CPU (this machine's measuring side, not the server)",
            Limit::Latency => "latency",
            Limit::LateFrames => "late frames",
            Limit::DroppedFrames => "dropped frames",
            Limit::Memory => "memory",
            Limit::HandshakeFailures => "connection/handshake failures",
        }
    }
}

/// A comparison.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Op {
    /// At most.
    #[serde(rename = "<=")]
    Le,
    /// Below.
    #[serde(rename = "<")]
    Lt,
    /// Exactly (only 0).
    #[serde(rename = "=")]
    Eq,
}

impl Op {
    fn holds(self, value: f64, bound: f64) -> bool {
        match self {
            Op::Le => value <= bound,
            Op::Lt => value < bound,
            Op::Eq => value == bound,
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            Op::Le => "<=",
            Op::Lt => "<",
            Op::Eq => "=",
        }
    }

    fn negated(self) -> &'static str {
        match self {
            Op::Le => ">",
            Op::Lt => ">=",
            Op::Eq => "≠",
        }
    }
}

/// A term's bound, in the unit of its metric.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Bound {
    /// Microseconds (latency).
    Us(u64),
    /// A number of frames or failures.
    Count(u64),
    /// A percentage (of frames due, or of the server's cores).
    Percent(f64),
    /// Bytes (memory).
    Bytes(u64),
}

/// One term of an objective.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Term {
    /// What it measures.
    pub metric: Metric,
    /// How it compares.
    pub op: Op,
    /// Against what.
    pub bound: Bound,
}

impl fmt::Display for Term {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}", self.metric.name(), self.op.as_str())?;
        match self.bound {
            Bound::Us(us) => f.write_str(&compact_us(us)),
            Bound::Count(n) => write!(f, "{n}"),
            Bound::Percent(p) => write!(f, "{p}%"),
            Bound::Bytes(b) => f.write_str(&compact_bytes(b)),
        }
    }
}

/// Exact, and in the largest binary unit that divides it: `2GiB`, `1536KiB`, `1000B`.
fn compact_bytes(b: u64) -> String {
    for (unit, size) in [
        ("TiB", 1u64 << 40),
        ("GiB", 1 << 30),
        ("MiB", 1 << 20),
        ("KiB", 1 << 10),
    ] {
        if b >= size && b.is_multiple_of(size) {
            return format!("{}{unit}", b / size);
        }
    }
    format!("{b}B")
}

fn compact_us(us: u64) -> String {
    if us.is_multiple_of(1_000_000) {
        format!("{}s", us / 1_000_000)
    } else if us.is_multiple_of(1_000) {
        format!("{}ms", us / 1_000)
    } else {
        format!("{us}us")
    }
}

/// A service objective: every term must hold for a step to pass.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Objective {
    /// The terms.
    pub terms: Vec<Term>,
}

impl fmt::Display for Objective {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, t) in self.terms.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{t}")?;
        }
        Ok(())
    }
}

/// An objective that could not be parsed: the term at fault and why.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("objective term {term:?}: {reason}")]
pub struct ObjectiveError {
    /// The term as written.
    pub term: String,
    /// What is wrong and what would be valid.
    pub reason: String,
}

const EXAMPLE: &str = "e.g. p99<=200ms,late<=0.1%,dropped=0";

impl FromStr for Objective {
    type Err = ObjectiveError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut terms = Vec::new();
        for raw in s.split(',') {
            let text = raw.trim();
            let err = |reason: String| ObjectiveError {
                term: text.to_owned(),
                reason,
            };
            if text.is_empty() {
                return Err(err(format!("empty term; {EXAMPLE}")));
            }
            let Some(at) = text.find(['<', '=', '>']) else {
                return Err(err(format!(
                    "no comparison; write NAME<=VALUE, NAME<VALUE or NAME=0, {EXAMPLE}"
                )));
            };
            let (name, rest) = text.split_at(at);
            let (op, value) = if let Some(v) = rest.strip_prefix("<=") {
                (Op::Le, v)
            } else if let Some(v) = rest.strip_prefix("==") {
                (Op::Eq, v)
            } else if let Some(v) = rest.strip_prefix('<') {
                (Op::Lt, v)
            } else if let Some(v) = rest.strip_prefix('=') {
                (Op::Eq, v)
            } else {
                return Err(err(
                    "an objective bounds from above: use <=, < or =0 (not > or >=)".into(),
                ));
            };
            let (name, value) = (name.trim().to_ascii_lowercase(), value.trim());
            let Some(metric) = Metric::NAMES
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, m)| *m)
            else {
                let names: Vec<&str> = Metric::NAMES.iter().map(|(n, _)| *n).collect();
                return Err(err(format!(
                    "unknown measure {name:?}; measures are: {}",
                    names.join(", ")
                )));
            };
            let bound = parse_bound(metric, value).map_err(err)?;
            let is_zero = match bound {
                Bound::Us(v) | Bound::Count(v) | Bound::Bytes(v) => v == 0,
                Bound::Percent(p) => p == 0.0,
            };
            if op == Op::Eq && !is_zero {
                return Err(err(format!(
                    "= takes only 0 (as in dropped=0); use <= for a bound, {EXAMPLE}"
                )));
            }
            terms.push(Term { metric, op, bound });
        }
        Ok(Objective { terms })
    }
}

fn parse_bound(metric: Metric, value: &str) -> Result<Bound, String> {
    if value.is_empty() {
        return Err(format!("no value after the comparison; {EXAMPLE}"));
    }
    let percent = |v: &str| -> Result<f64, String> {
        let p: f64 = v
            .trim()
            .parse()
            .map_err(|_| format!("{value:?} is not a percentage (e.g. 0.1%)"))?;
        if !(0.0..=100.0).contains(&p) {
            return Err(format!("a percentage must be 0–100, not {p}"));
        }
        Ok(p)
    };
    match metric {
        Metric::P50 | Metric::P90 | Metric::P99 | Metric::P999 | Metric::Max => {
            if value.chars().all(|c| c.is_ascii_digit() || c == '.') && value != "0" {
                return Err(format!(
                    "a latency needs a unit: {value}ms, {value}us or {value}s"
                ));
            }
            let d = parse_duration(value)?;
            Ok(Bound::Us(u64::try_from(d.as_micros()).unwrap_or(u64::MAX)))
        }
        Metric::Late | Metric::Dropped => match value.strip_suffix('%') {
            Some(p) => Ok(Bound::Percent(percent(p)?)),
            None => value.parse().map(Bound::Count).map_err(|_| {
                format!("{value:?} is neither a frame count (10) nor a percentage (0.1%)")
            }),
        },
        Metric::Failures => value
            .parse()
            .map(Bound::Count)
            .map_err(|_| format!("{value:?} is not a count of failures (e.g. failures=0)")),
        Metric::Cpu => match value.strip_suffix('%') {
            Some(p) => Ok(Bound::Percent(percent(p)?)),
            None => Err(format!(
                "the server's CPU is a percentage of its cores: cpu<={value}%?"
            )),
        },
        Metric::Rss => parse_size(value).map(Bound::Bytes),
    }
}

/// What one step measured, as far as the objective is concerned.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Measured {
    /// Frame latency of the recording server's streams (corrected), µs.
    pub latency_us: Percentiles,
    /// Frames due in the window on those streams.
    pub frames_due: u64,
    /// Frames late, or due and never delivered nor dropped.
    pub late_frames: u64,
    /// Frames the server dropped.
    pub dropped_frames: u64,
    /// Failed connections and handshakes, all links.
    pub failures: u64,
    /// Cores the recording server used.
    pub server_cores: f64,
    /// Cores it had (its pinned CPUs, or its threads when not pinned).
    pub server_cpus: usize,
    /// Peak resident memory of the process, bytes.
    pub peak_rss_bytes: u64,
}

/// A term that did not hold.
#[derive(Clone, Debug, PartialEq)]
pub struct Violation {
    /// The limit it stands for.
    pub limit: Limit,
    /// What was measured against what was allowed, e.g. `p99 312 ms > 200 ms`.
    pub reason: String,
}

impl Objective {
    /// The terms `m` violates (none: the step passes).
    pub fn check(&self, m: &Measured) -> Vec<Violation> {
        let pct = |n: u64| {
            if m.frames_due == 0 {
                0.0
            } else {
                100.0 * n as f64 / m.frames_due as f64
            }
        };
        let mut out = Vec::new();
        for t in &self.terms {
            let (value, bound, shown, allowed) = match (t.metric, t.bound) {
                (metric, Bound::Us(b)) => {
                    let v = match metric {
                        Metric::P50 => m.latency_us.p50,
                        Metric::P90 => m.latency_us.p90,
                        Metric::P99 => m.latency_us.p99,
                        Metric::P999 => m.latency_us.p999,
                        _ => m.latency_us.max,
                    };
                    (
                        v as f64,
                        b as f64,
                        format_duration_us(v as f64),
                        format_duration_us(b as f64),
                    )
                }
                (Metric::Cpu, Bound::Percent(p)) => {
                    let v = 100.0 * m.server_cores / m.server_cpus.max(1) as f64;
                    (v, p, format!("{v:.1} %"), format!("{p} %"))
                }
                (metric, Bound::Percent(p)) => {
                    let n = if metric == Metric::Late {
                        m.late_frames
                    } else {
                        m.dropped_frames
                    };
                    let v = pct(n);
                    (v, p, format!("{v:.3} % ({n} frames)"), format!("{p} %"))
                }
                (metric, Bound::Count(b)) => {
                    let v = match metric {
                        Metric::Late => m.late_frames,
                        Metric::Dropped => m.dropped_frames,
                        _ => m.failures,
                    };
                    (v as f64, b as f64, v.to_string(), b.to_string())
                }
                (_, Bound::Bytes(b)) => (
                    m.peak_rss_bytes as f64,
                    b as f64,
                    format_bytes(m.peak_rss_bytes),
                    format_bytes(b),
                ),
            };
            if !t.op.holds(value, bound) {
                out.push(Violation {
                    limit: t.metric.limit(),
                    reason: format!("{} {shown} {} {allowed}", t.metric.name(), t.op.negated()),
                });
            }
        }
        out
    }
}

/// Parses `--objective` (clap's `value_parser` signature).
pub(crate) fn parse_objective(s: &str) -> Result<Objective, String> {
    s.parse().map_err(|e: ObjectiveError| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<Objective, ObjectiveError> {
        s.parse()
    }

    #[test]
    fn the_default_parses_and_prints_back() {
        let o = parse(DEFAULT_OBJECTIVE).expect("default");
        assert_eq!(
            o.terms,
            vec![
                Term {
                    metric: Metric::P99,
                    op: Op::Le,
                    bound: Bound::Us(200_000)
                },
                Term {
                    metric: Metric::Late,
                    op: Op::Le,
                    bound: Bound::Percent(0.1)
                },
                Term {
                    metric: Metric::Dropped,
                    op: Op::Eq,
                    bound: Bound::Count(0)
                },
            ]
        );
        assert_eq!(o.to_string(), DEFAULT_OBJECTIVE);
        let o = parse(" P999 < 1.5s , failures==0, cpu<=90%, rss<=2GiB, late<=10 ").expect("ok");
        assert_eq!(
            o.to_string(),
            "p999<1500ms,failures=0,cpu<=90%,rss<=2GiB,late<=10"
        );
    }

    #[test]
    fn errors_name_the_term_at_fault() {
        for (text, term, needle) in [
            ("p99<=200ms,lat<=1%", "lat<=1%", "unknown measure"),
            ("p99<=200", "p99<=200", "needs a unit"),
            ("p99>=200ms", "p99>=200ms", "bounds from above"),
            ("dropped=5", "dropped=5", "= takes only 0"),
            ("late<=150%", "late<=150%", "0–100"),
            ("late<=lots", "late<=lots", "neither a frame count"),
            ("cpu<=0.9", "cpu<=0.9", "percentage of its cores"),
            ("p99", "p99", "no comparison"),
            ("p99<=200ms,,late=0", "", "empty term"),
            ("p99<=", "p99<=", "no value"),
            ("p99<=2 parsecs", "p99<=2 parsecs", "unit"),
        ] {
            let e = parse(text).expect_err(text);
            assert_eq!(e.term, term, "{text}");
            assert!(e.to_string().contains(needle), "{text}: {e}");
            assert!(e.to_string().contains(&format!("{term:?}")), "{e}");
        }
    }

    #[test]
    fn checks_every_term_against_what_was_measured() {
        let o = parse("p99<=200ms,late<=0.1%,dropped=0,failures=0,cpu<=90%,rss<=1GiB").expect("ok");
        let good = Measured {
            latency_us: Percentiles {
                p50: 100,
                p90: 1000,
                p99: 200_000,
                p999: 900_000,
                max: 1_000_000,
            },
            frames_due: 10_000,
            late_frames: 10,
            dropped_frames: 0,
            failures: 0,
            server_cores: 0.9,
            server_cpus: 1,
            peak_rss_bytes: 1 << 30,
        };
        assert_eq!(o.check(&good), vec![]);
        let bad = Measured {
            latency_us: Percentiles {
                p99: 200_001,
                ..good.latency_us
            },
            late_frames: 11,
            dropped_frames: 1,
            failures: 2,
            server_cores: 0.95,
            peak_rss_bytes: (1 << 30) + 1,
            ..good
        };
        let v = o.check(&bad);
        let limits: Vec<Limit> = v.iter().map(|v| v.limit).collect();
        assert_eq!(
            limits,
            vec![
                Limit::Latency,
                Limit::LateFrames,
                Limit::DroppedFrames,
                Limit::HandshakeFailures,
                Limit::ServerCpu,
                Limit::Memory
            ]
        );
        assert!(
            v[0].reason.starts_with("p99 200 ms > 200 ms"),
            "{}",
            v[0].reason
        );
        assert!(
            v[1].reason.contains("0.110 % (11 frames) > 0.1 %"),
            "{}",
            v[1].reason
        );
        assert_eq!(v[2].reason, "dropped 1 ≠ 0");
        // Nothing due: percentages are 0, not NaN.
        let none = Measured {
            frames_due: 0,
            late_frames: 0,
            ..good
        };
        assert_eq!(o.check(&none), vec![]);
    }
}
