//! Which reports `vmsbench baseline` knows and which of their figures it checks: one table,
//! [`KINDS`], per report `command` — the arrays that hold entries, the fields that identify
//! an entry, and each figure with its [`Direction`] (is more better or worse?) and
//! [`Family`] (whose threshold applies). A new kind of report plugs in with one more row.

use std::fmt;

use serde_json::Value;

use Direction::{HigherIsBetter as Higher, LowerIsBetter as Lower};

/// Whether a larger value of a figure is better or worse.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Direction {
    /// More is better (goodput, frames/s): a drop is a regression.
    HigherIsBetter,
    /// Less is better (latency, CPU, handshake time, losses, instructions): a rise is a
    /// regression.
    LowerIsBetter,
}

/// Figures that share a threshold because they share a noise level.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum Family {
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
    /// A capacity boundary: cameras per recording server.
    Capacity,
}

impl Family {
    /// Every family, in the order they are listed.
    pub(super) const ALL: &'static [Family] = &[
        Family::Goodput,
        Family::Latency,
        Family::Cpu,
        Family::Handshake,
        Family::Ttff,
        Family::Loss,
        Family::Memory,
        Family::Cost,
        Family::Instructions,
        Family::Capacity,
    ];

    /// The name used by `--threshold`.
    pub(super) fn name(self) -> &'static str {
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
            Family::Capacity => "capacity",
        }
    }

    /// The default threshold, per cent. Wall-clock figures get room for the noise of a
    /// shared machine (goodput varies by a few per cent run to run, latency tails and
    /// handshake times by tens of per cent); instruction counts repeat to within 0.1 %, so
    /// 1 % catches one extra copy of a frame.
    pub(super) fn default_threshold_pct(self) -> f64 {
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
            // A boundary found by bisection to 5 % moves by about as much between runs.
            Family::Capacity => 10.0,
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
pub(super) struct Metric {
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
    /// Where the entry records the figure's interval (a dotted path), when not under
    /// `intervals.<path>`: a capacity boundary's range is `max_cameras_range`.
    pub interval_path: Option<&'static str>,
}

/// A figure compared whatever its sample count.
pub(super) const fn m(
    path: &'static str,
    direction: Direction,
    family: Family,
    min_abs: f64,
) -> Metric {
    Metric {
        path,
        direction,
        family,
        min_abs_change: min_abs,
        min_samples: 0,
        samples_path: None,
        interval_path: None,
    }
}

/// A figure compared only when both entries rest on `min_samples` of the section's samples.
pub(super) const fn ms(
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
pub(super) const fn mc(
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

/// Samples behind a rate, a median or a CPU-per-byte figure.
pub(super) const RATE: u64 = 100;

/// Samples behind a 99th percentile.
pub(super) const P99: u64 = 1_000;

/// Samples behind a 99.9th percentile.
pub(super) const P999: u64 = 10_000;

/// Connections (or streams) behind a median of per-connection figures.
pub(super) const PER_CONNECTION: u64 = 20;

/// The figures of `run` and `bulk` results (one entry per link and mode).
pub(super) const LINK_METRICS: &[Metric] = &[
    ms("goodput_mbit_s", Higher, Family::Goodput, 0.0, RATE),
    ms("frames_per_s", Higher, Family::Goodput, 0.0, RATE),
    ms("latency_us.p50", Lower, Family::Latency, 20.0, RATE),
    ms("latency_us.p90", Lower, Family::Latency, 20.0, RATE),
    ms("latency_us.p99", Lower, Family::Latency, 20.0, P99),
    ms("latency_us.p999", Lower, Family::Latency, 20.0, P999),
    ms("cpu_server_s_per_gb", Lower, Family::Cpu, 0.0, RATE),
    ms("cpu_client_s_per_gb", Lower, Family::Cpu, 0.0, RATE),
    ms("cpu_server_us_per_frame", Lower, Family::Cpu, 0.0, RATE),
    ms("cpu_client_us_per_frame", Lower, Family::Cpu, 0.0, RATE),
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
    mc(
        "rss_per_connection_bytes",
        Lower,
        Family::Memory,
        4_096.0,
        "connections",
        PER_CONNECTION,
    ),
];

/// The figures of the cost table (one entry per link: TLS / plaintext).
pub(super) const COST_METRICS: &[Metric] = &[
    ms("goodput_ratio", Higher, Family::Cost, 0.0, RATE),
    ms("latency_p99_ratio", Lower, Family::Cost, 0.0, P99),
    ms("cpu_per_gb_ratio", Lower, Family::Cost, 0.0, RATE),
];

/// The figures of a `capacity` mode (one entry per mode): the boundary, and what one
/// camera costs the recording server and everything else near it.
pub(super) const CAPACITY_METRICS: &[Metric] = &[
    Metric {
        interval_path: Some("max_cameras_range"),
        ..m("max_cameras", Higher, Family::Capacity, 1.0)
    },
    m("cpu_per_camera_server_s", Lower, Family::Cpu, 0.0),
    m("cpu_per_camera_client_s", Lower, Family::Cpu, 0.0),
];

/// The figures of the instruction-count bench (one entry per case).
pub(super) const INSTRUCTION_METRICS: &[Metric] = &[
    m("instructions_per_frame", Lower, Family::Instructions, 0.0),
    m(
        "instructions_per_handshake",
        Lower,
        Family::Instructions,
        0.0,
    ),
];

/// The figures of `handshakes` cells (one entry per version, key, group and resumption).
pub(super) const HANDSHAKE_METRICS: &[Metric] = &[
    ms("handshakes_per_s", Higher, Family::Handshake, 0.0, RATE),
    ms("latency_us.p50", Lower, Family::Handshake, 50.0, RATE),
    ms("latency_us.p99", Lower, Family::Handshake, 50.0, P99),
    ms("cpu_server_us_per_handshake", Lower, Family::Cpu, 0.0, RATE),
    ms("cpu_client_us_per_handshake", Lower, Family::Cpu, 0.0, RATE),
];

/// How many samples an entry rests on, given the whole report and the entry (`None`: not
/// known, so never a reason to skip a figure).
pub(super) type Samples = fn(&Value, &Value) -> Option<f64>;

/// Frames received by a link in one mode.
pub(super) fn frames_received(_report: &Value, entry: &Value) -> Option<f64> {
    entry.get("frames_received").and_then(Value::as_f64)
}

/// Frames received by the link of a cost entry: the fewer of its plaintext and TLS results.
pub(super) fn link_frames_received(report: &Value, entry: &Value) -> Option<f64> {
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
pub(super) fn handshakes_completed(_report: &Value, entry: &Value) -> Option<f64> {
    entry.get("handshakes").and_then(Value::as_f64)
}

/// Instruction counts are exact: no sample size.
pub(super) fn exact(_report: &Value, _entry: &Value) -> Option<f64> {
    None
}

/// How an entry's key is shown: the table's `link` and `mode` columns.
pub(super) type Label = fn(&[String]) -> (String, String);

/// `link`, then the other key fields (`tls`, `tls tls13_aes256gcm`).
pub(super) fn link_and_mode(key: &[String]) -> (String, String) {
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
pub(super) fn link_cost(key: &[String]) -> (String, String) {
    (key.join(" "), "tls/plain".to_owned())
}

/// A handshake cell: `TLS 1.3 rsa2048 x25519 full`.
pub(super) fn handshake_cell(key: &[String]) -> (String, String) {
    (format!("TLS {}", key.join(" ")), "tls".to_owned())
}

/// One array of entries in a report.
#[derive(Clone, Copy, Debug)]
pub(super) struct Section {
    /// The top-level field holding the array (`results`, `cost`), or an object whose keys
    /// become the entries' first `key` field (`modes` of a capacity report).
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
pub(super) struct ReportKind {
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
pub(super) const WALL_CLOCK_ENVIRONMENT: &[&str] = &[
    "cpu_model",
    "cores",
    "build_profile",
    "rustls_version",
    "crypto_provider",
];

/// Environment fields that decide instruction counts (the compiler and valgrind too).
pub(super) const INSTRUCTION_ENVIRONMENT: &[&str] = &[
    "cpu_model",
    "cores",
    "build_profile",
    "rustls_version",
    "crypto_provider",
    "rustc_version",
    "valgrind_version",
];

pub(super) const LINK_SECTIONS: &[Section] = &[
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
pub(super) const KINDS: &[ReportKind] = &[
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
        command: "capacity",
        identity: &["scenario", "objective.text"],
        sections: &[Section {
            // An object keyed by mode (`plain`, `tls`): each value is an entry whose
            // `mode` is its key.
            array: "modes",
            key: &["mode"],
            metrics: CAPACITY_METRICS,
            label: capacity_mode,
            samples: exact,
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

/// A capacity mode is named by its mode.
pub(super) fn capacity_mode(key: &[String]) -> (String, String) {
    (
        "capacity".to_owned(),
        key.first().cloned().unwrap_or_default(),
    )
}

/// The JSON pointer of a dotted path (`latency_us.p99` → `/latency_us/p99`).
pub(super) fn pointer(path: &str) -> String {
    format!("/{}", path.replace('.', "/"))
}

/// The kind of report with this `command`.
pub(super) fn kind(command: &str) -> Option<&'static ReportKind> {
    KINDS.iter().find(|k| k.command == command)
}

/// The metric at `path` in any kind's table.
pub(super) fn known_metric(path: &str) -> bool {
    KINDS
        .iter()
        .flat_map(|k| k.sections)
        .flat_map(|s| s.metrics)
        .any(|m| m.path == path)
}
