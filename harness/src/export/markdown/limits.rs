//! This machine's ceilings in Markdown, and the section a `--with-limits` report adds.

use std::fmt::Write as _;

use super::{cell, environment_section, list_section};
use crate::output::terminal::{floor_rows, handshake_rows, record_rows, summary_lines};
use crate::report::limits::{Limits, LimitsComparison, LimitsReport};

/// `rows` (a header first) as a Markdown table, the first `text` columns left-aligned.
fn table(out: &mut String, rows: &[Vec<String>], text: usize) {
    let Some((header, body)) = rows.split_first() else {
        return;
    };
    let _ = writeln!(out, "| {} |", header.join(" | "));
    let align: Vec<&str> = (0..header.len())
        .map(|i| if i < text { "---" } else { "---:" })
        .collect();
    let _ = writeln!(out, "|{}|", align.join("|"));
    for r in body {
        let cells: Vec<String> = r.iter().map(|c| cell(c)).collect();
        let _ = writeln!(out, "| {} |", cells.join(" | "));
    }
    out.push('\n');
}

/// The figures of `l`, under `###` headings.
fn figures(out: &mut String, l: &Limits) {
    for line in summary_lines(l) {
        let _ = writeln!(out, "- {}", cell(&line));
    }
    out.push('\n');
    let _ = writeln!(out, "### Record layer (one core, in memory)\n");
    table(out, &record_rows(l), 2);
    let _ = writeln!(
        out,
        "### Handshakes (one connection at a time over loopback)\n"
    );
    table(out, &handshake_rows(l), 4);
    let _ = writeln!(out, "### Latency floor (one frame at a time, idle link)\n");
    table(out, &floor_rows(l), 1);
}

/// Renders the document.
pub(super) fn render(r: &LimitsReport) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "# This machine's limits{}\n\n{} s per measurement, in one sitting.\n",
        if r.partial { " (PARTIAL)" } else { "" },
        r.limits.budget_s
    );
    figures(&mut out, &r.limits);
    list_section(&mut out, "Warnings", &r.warnings);
    environment_section(&mut out, &r.environment);
    out
}

/// The section a `--with-limits` report adds: a line per link and mode, then the limits.
pub(super) fn share_section(out: &mut String, c: Option<&LimitsComparison>) {
    let Some(c) = c else { return };
    let _ = writeln!(
        out,
        "\n## Against this machine's limits\n\n{}\n",
        cell(&c.note)
    );
    for s in &c.shares {
        let _ = writeln!(out, "- {}", cell(&s.line()));
    }
    out.push('\n');
    figures(out, &c.measured);
}
