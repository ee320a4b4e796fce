//! Markdown for pull-request comments and wikis: a short-fall line when a run fell short of
//! the due frame rate, the cost of TLS per link, then each link's key figures per mode, the
//! environment and the warnings.

use std::fmt::Write as _;

use simulators::transport::Mode;

use super::{Export, ExportError, Exporter};
use crate::report::{ratio_spread, Cost, LinkResult, Report, MAX_RATIO_SPREAD, MIN_PAIRS};
use crate::units::{format_duration_us, format_mbit};

/// `--export-markdown`.
#[derive(Debug, Default)]
pub struct MarkdownExporter;

impl Exporter for MarkdownExporter {
    fn export(&self, report: &Report) -> Result<Export, ExportError> {
        Ok(Export::Document(render(report).into_bytes()))
    }
}

/// A ratio as `×1.23` (`–` when unknown).
pub(crate) fn ratio(v: Option<f64>) -> String {
    v.map_or_else(|| "–".to_owned(), |v| format!("×{v:.2}"))
}

/// A ratio's range over the pairs as `1.20–1.31` (empty with fewer than two pairs).
pub(crate) fn ratio_range(c: &Cost, key: &str) -> String {
    match c.spread.get(key) {
        Some(s) if c.pairs > 1 => format!("{:.2}–{:.2}", s.min, s.max),
        _ => String::new(),
    }
}

/// Whether a cost's ratio `key` spreads wider than the rule allows.
pub(crate) fn too_wide(c: &Cost, key: &str) -> bool {
    c.spread
        .get(key)
        .is_none_or(|s| ratio_spread(s) > MAX_RATIO_SPREAD)
}

/// A few words on whether a cost can be trusted.
pub(crate) fn trust(c: &Cost) -> String {
    if c.pairs < MIN_PAIRS {
        return format!(
            "⚠ {} pair{}: too few to judge",
            c.pairs,
            if c.pairs == 1 { "" } else { "s" }
        );
    }
    let mut wide = Vec::new();
    if too_wide(c, "goodput_ratio") {
        wide.push("goodput");
    }
    if too_wide(c, "latency_p99_ratio") {
        wide.push("p99");
    }
    if wide.is_empty() {
        format!("✓ {} pairs", c.pairs)
    } else {
        format!("⚠ {} spread wide", wide.join(" and "))
    }
}

/// Microseconds for people.
pub(crate) fn us(v: u64) -> String {
    format_duration_us(v as f64)
}

/// The repeat that fell furthest short of the frames due, if any did.
pub(crate) fn worst_short(r: &LinkResult) -> Option<&crate::report::Sample> {
    r.samples
        .iter()
        .filter(|s| s.frames_due > 0 && s.frames_received < s.frames_due)
        .max_by(|a, b| short_fraction(a).total_cmp(&short_fraction(b)))
}

fn short_fraction(s: &crate::report::Sample) -> f64 {
    s.frames_due.saturating_sub(s.frames_received) as f64 / s.frames_due.max(1) as f64
}

/// Frames received of those due (medians); when some repeat fell short, that repeat's
/// figures instead, marked `SHORT`.
pub(crate) fn frames(r: &LinkResult) -> String {
    if let Some(w) = worst_short(r) {
        return format!("{}/{} SHORT", w.frames_received, w.frames_due);
    }
    let f = &r.figures;
    if f.frames_due == 0 {
        return format!("{}", f.frames_received);
    }
    format!("{}/{}", f.frames_received, f.frames_due)
}

/// The summary of results that fell short of the due frame rate, if any.
pub(crate) fn short_summary(report: &Report) -> Option<String> {
    let short: Vec<String> = report
        .results
        .iter()
        .filter_map(|r| {
            let w = worst_short(r)?;
            let n = r
                .samples
                .iter()
                .filter(|s| s.frames_due > 0 && s.frames_received < s.frames_due)
                .count();
            let worst = format!(
                "{} of {} frames due arrived, {:.1} % short",
                w.frames_received,
                w.frames_due,
                100.0 * short_fraction(w)
            );
            Some(if r.samples.len() > 1 {
                format!(
                    "{} ({}) in {n} of {} repeats (worst: {worst})",
                    r.link,
                    r.mode,
                    r.samples.len()
                )
            } else {
                format!("{} ({}): {worst}", r.link, r.mode)
            })
        })
        .collect();
    if short.is_empty() {
        return None;
    }
    Some(format!(
        "SHORT: {} of {} results fell short of the due frame rate: {}. Their latency figures \
         describe only the frames that arrived; the machine (or the link) did not keep up.",
        short.len(),
        report.results.len(),
        short.join("; ")
    ))
}

/// The kernel cross-check in a few characters: `Δ −0.01 %`.
pub(crate) fn kernel(r: &LinkResult) -> String {
    r.figures.kernel_check.map_or_else(
        || "–".to_owned(),
        |k| format!("Δ {:+.2} %", k.discrepancy_pct),
    )
}

/// Wire bytes beyond the payload, percent.
pub(crate) fn overhead(r: &LinkResult) -> String {
    r.figures
        .kernel_check
        .map_or_else(|| "–".to_owned(), |k| format!("{:.2} %", k.overhead_pct))
}

/// The TLS parameters negotiated, once if every link agrees.
pub(crate) fn negotiated(report: &Report) -> Vec<String> {
    let tls: Vec<(&str, String)> = report
        .results
        .iter()
        .filter_map(|r| {
            let t = r.tls.as_ref()?;
            Some((
                r.link.as_str(),
                format!("{} {} {}", t.version, t.suite, t.group),
            ))
        })
        .collect();
    let Some((_, first)) = tls.first() else {
        return Vec::new();
    };
    if tls.iter().all(|(_, t)| t == first) {
        return vec![format!("{first} (every encrypted link)")];
    }
    tls.iter().map(|(l, t)| format!("{l}: {t}")).collect()
}

/// The measurement in one line.
pub(crate) fn measurement_line(report: &Report) -> String {
    let m = &report.measurement;
    let mut s = format!(
        "vmsbench {} · {} s warm-up, {} s window, {} of {} repeats, {} · started {}",
        report.command,
        m.warmup_s,
        m.duration_s,
        m.repeats_completed,
        m.repeat,
        m.order,
        report.started_at
    );
    if let Some(stall) = m.inject_stall_s {
        let _ = write!(s, " · {stall} s stall injected mid-window");
    }
    if report.partial {
        s.push_str(" · PARTIAL (interrupted)");
    }
    s
}

/// The scenario's name, if it has one.
pub(crate) fn scenario_name(report: &Report) -> String {
    report
        .scenario
        .get("name")
        .and_then(|n| n.as_str())
        .unwrap_or("")
        .to_owned()
}

/// `vmsbench run: small`, `vmsbench bulk: 1 connection(s), …`.
pub(crate) fn title(report: &Report) -> String {
    let name = scenario_name(report);
    let prefix = format!("{}: ", report.command);
    match name.strip_prefix(&prefix) {
        Some(rest) => format!("vmsbench {}: {rest}", report.command),
        None => format!("vmsbench {}: {name}", report.command),
    }
}

fn cell(s: &str) -> String {
    s.replace('|', "\\|")
}

fn render(report: &Report) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "# {}\n", cell(&title(report)));
    if let Some(short) = short_summary(report) {
        let _ = writeln!(out, "> **⚠ {}**\n", cell(&short));
    }

    let pairs = report.cost.iter().map(|c| c.pairs).max().unwrap_or(0);
    let _ = writeln!(out, "## Cost of TLS per link\n");
    if report.cost.is_empty() {
        let _ = writeln!(out, "No link was measured in both modes.\n");
    } else {
        let _ = writeln!(
            out,
            "TLS ÷ plaintext, median over {pairs} interleaved pair{} (range over the pairs \
             below each ratio). Goodput below ×1 means TLS delivered less; latency and CPU \
             above ×1 mean TLS costs more.\n",
            if pairs == 1 { "" } else { "s" }
        );
        let _ = writeln!(
            out,
            "| link | goodput | p99 latency | CPU per GB | server CPU per GB | client CPU per GB | handshake | trust |"
        );
        let _ = writeln!(out, "|---|---:|---:|---:|---:|---:|---:|---|");
        for c in &report.cost {
            let with_range = |v: Option<f64>, key: &str| {
                let r = ratio_range(c, key);
                if r.is_empty() {
                    ratio(v)
                } else {
                    format!("{} ({r})", ratio(v))
                }
            };
            let short = report.results.iter().any(|r| r.link == c.link && r.short);
            let _ = writeln!(
                out,
                "| {}{} | {} | {} | {} | {} | {} | +{} | {} |",
                cell(&c.link),
                if short { " **SHORT**" } else { "" },
                with_range(c.goodput_ratio, "goodput_ratio"),
                with_range(c.latency_p99_ratio, "latency_p99_ratio"),
                with_range(c.cpu_per_gb_ratio, "cpu_per_gb_ratio"),
                ratio(c.cpu_server_per_gb_ratio),
                ratio(c.cpu_client_per_gb_ratio),
                us(c.handshake_us),
                trust(c),
            );
        }
        let _ = writeln!(out);
    }

    let _ = writeln!(out, "## Per link and mode\n");
    let _ = writeln!(out, "Medians over the repeats. Latency is frame latency corrected for coordinated omission (last byte read − scheduled time).\n");
    let _ = writeln!(
        out,
        "| link | mode | goodput | frames recv/due | late | dropped | p50 | p99 | p99.9 | max | handshake | ttff | server CPU s/GB | client CPU s/GB | wire overhead | kernel check |"
    );
    let _ = writeln!(
        out,
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    );
    let gb = |v: Option<f64>| v.map_or_else(|| "–".to_owned(), |v| format!("{v:.2}"));
    for r in &report.results {
        let f = &r.figures;
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            cell(&r.link),
            r.mode,
            format_mbit(f.goodput_mbit_s),
            frames(r),
            f.late_frames,
            f.dropped_frames,
            us(f.latency_us.p50),
            us(f.latency_us.p99),
            us(f.latency_us.p999),
            us(f.latency_us.max),
            if r.mode == Mode::Tls && f.handshake_us > 0 {
                us(f.handshake_us)
            } else {
                "–".to_owned()
            },
            if f.ttff_us > 0 {
                us(f.ttff_us)
            } else {
                "–".to_owned()
            },
            gb(f.cpu_server_s_per_gb),
            gb(f.cpu_client_s_per_gb),
            overhead(r),
            kernel(r),
        );
    }
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "**Environment:** {}  ",
        cell(&report.environment.summary_line())
    );
    let _ = writeln!(
        out,
        "**Measurement:** {}  ",
        cell(&measurement_line(report))
    );
    for t in negotiated(report) {
        let _ = writeln!(out, "**TLS negotiated:** {}  ", cell(&t));
    }
    let _ = writeln!(out);
    let certificates = report.certificate_lines();
    if !certificates.is_empty() {
        let _ = writeln!(out, "## Certificate faults and events\n");
        for line in &certificates {
            let _ = writeln!(out, "- {}", cell(line));
        }
        let _ = writeln!(out);
    }
    if !report.warnings.is_empty() {
        let _ = writeln!(out, "## Warnings\n");
        for w in &report.warnings {
            let _ = writeln!(out, "- {w}");
        }
        let _ = writeln!(out);
    }
    out
}
