//! Markdown for pull-request comments and wikis: a short-fall line when a run fell short of
//! the due frame rate, the cost of TLS per link, then each link's key figures per mode, the
//! environment and the warnings.

use std::fmt::Write as _;

use simulators::transport::Mode;

mod capacity;
mod handshakes;
mod limits;

use super::{Document, Export, ExportError, Exporter};
use crate::output::figures::{
    frames, headline_latency, kernel, latency_note, machine_lines, measurement_line, negotiated,
    overhead, placement_lines, ratio_range, servers_accept, soak_rows, soak_trend_lines, title,
    wan_lines,
};
use crate::report::verdicts::{short_summary, trust};
use crate::report::Report;
use crate::units::{format_mbit, format_ratio, format_us};

/// `--export-markdown`.
#[derive(Debug, Default)]
pub(crate) struct MarkdownExporter;

impl Exporter for MarkdownExporter {
    fn export(&self, doc: Document<'_>) -> Result<Export, ExportError> {
        let text = match doc {
            Document::Run(r) => {
                let mut text = render(r);
                limits::share_section(&mut text, r.limits.as_ref());
                text
            }
            Document::Capacity(r) => {
                let mut text = capacity::render(r);
                limits::share_section(&mut text, r.limits.as_ref());
                text
            }
            Document::Handshakes(r) => handshakes::render(r),
            Document::Limits(r) => limits::render(r),
        };
        Ok(Export::Document(text.into_bytes()))
    }
}

/// A `## title` section listing `items`, if there are any.
pub(super) fn list_section(out: &mut String, title: &str, items: &[String]) {
    if items.is_empty() {
        return;
    }
    let _ = writeln!(out, "## {title}\n");
    for i in items {
        let _ = writeln!(out, "- {i}");
    }
    out.push('\n');
}

/// The closing section: the machine it was measured on.
pub(super) fn environment_section(out: &mut String, env: &crate::sys::environment::Environment) {
    let _ = writeln!(out, "## Environment\n\n{}", cell(&env.summary_line()));
}

/// Text for a table cell: a `|` would end the cell.
pub(super) fn cell(s: &str) -> String {
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
            if let Some(why) = crate::report::verdicts::no_cost_because(report, &c.link) {
                let _ = writeln!(
                    out,
                    "| {} | – | – | – | – | – | – | {} |",
                    cell(&c.link),
                    cell(&why)
                );
                continue;
            }
            let with_range = |v: Option<f64>, key: &str| {
                let r = ratio_range(c, key);
                if r.is_empty() {
                    format_ratio(v)
                } else {
                    format!("{} ({r})", format_ratio(v))
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
                format_ratio(c.cpu_server_per_gb_ratio),
                format_ratio(c.cpu_client_per_gb_ratio),
                format_us(c.handshake_us),
                trust(c),
            );
        }
        let _ = writeln!(out);
        out.push_str(&verdict_list(report));
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
        let latency = headline_latency(report, f);
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            cell(&r.link),
            r.mode,
            format_mbit(f.goodput_mbit_s),
            frames(r),
            f.late_frames,
            f.dropped_frames,
            format_us(latency.p50),
            format_us(latency.p99),
            format_us(latency.p999),
            format_us(latency.max),
            if r.mode == Mode::Tls && f.handshake_us > 0 {
                format_us(f.handshake_us)
            } else {
                "–".to_owned()
            },
            if f.ttff_us > 0 {
                format_us(f.ttff_us)
            } else {
                "–".to_owned()
            },
            gb(f.cpu_server_s_per_gb),
            gb(f.cpu_client_s_per_gb),
            overhead(r),
            kernel(r),
        );
    }
    if let Some(note) = latency_note(report) {
        let _ = writeln!(out, "\n{}", cell(&note));
    }
    let _ = writeln!(out);
    out.push_str(&how_measured(report));
    let _ = writeln!(out);
    out.push_str(&soak_section(report));
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

/// How the run was measured: the environment, the measurement, what TLS negotiated and
/// what the servers accepted, where the roles ran, the machine during the windows, WAN links.
fn how_measured(report: &Report) -> String {
    let mut out = String::new();
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
    if let Some(accepted) = servers_accept(report) {
        let _ = writeln!(out, "**Servers accepted:** {}  ", cell(&accepted));
    }
    for line in placement_lines(report.placement.as_ref()) {
        let _ = writeln!(out, "{}  ", cell(&line));
    }
    for line in machine_lines(report) {
        let _ = writeln!(out, "{}  ", cell(&line));
    }
    for line in wan_lines(report) {
        let _ = writeln!(out, "{}  ", cell(&line));
    }
    out
}

/// A soak's first, middle and last intervals and the trend of each figure (empty for other
/// runs).
fn soak_section(report: &Report) -> String {
    let mut out = String::new();
    let Some(rows) = soak_rows(report) else {
        return out;
    };
    let _ = writeln!(out, "## Soak\n\nFirst, middle and last intervals:\n");
    for (i, row) in rows.iter().enumerate() {
        let cells: Vec<String> = row.iter().map(|c| cell(c)).collect();
        let _ = writeln!(out, "| {} |", cells.join(" | "));
        if i == 0 {
            let _ = writeln!(out, "|{}", "---:|".repeat(row.len()));
        }
    }
    let _ = writeln!(out);
    for line in soak_trend_lines(report) {
        let _ = writeln!(out, "- {}", cell(&line));
    }
    let _ = writeln!(out);
    out
}

/// What the 95 % intervals say about each link's cost, as a list (empty without intervals).
fn verdict_list(report: &Report) -> String {
    let mut out = String::new();
    let verdicts: Vec<(&str, Vec<String>)> = report
        .cost
        .iter()
        .filter(|c| crate::report::verdicts::no_cost_because(report, &c.link).is_none())
        .map(|c| (c.link.as_str(), crate::report::verdicts::verdicts(c)))
        .filter(|(_, v)| !v.is_empty())
        .collect();
    if !verdicts.is_empty() {
        let _ = writeln!(out, "What the 95 % intervals say:\n");
        for (link, v) in verdicts {
            let _ = writeln!(out, "- **{}**: {}", cell(link), v.join("; "));
        }
        let _ = writeln!(out);
    }
    out
}
