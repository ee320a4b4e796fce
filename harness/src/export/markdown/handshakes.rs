//! The handshake matrix in Markdown: one row per cell, the cells skipped, the warnings.

use std::fmt::Write as _;

use super::{cell, environment_section, list_section};
use crate::output::terminal::cell_row;
use crate::report::handshakes::HandshakesReport;

/// Renders the document.
pub(super) fn render(r: &HandshakesReport) -> String {
    let mut out = String::new();
    let m = &r.measurement;
    let _ = writeln!(
        out,
        "# TLS handshakes{}\n",
        if r.partial { " (PARTIAL)" } else { "" }
    );
    let _ = writeln!(
        out,
        "{} s per cell after {} s warm-up · {} connection(s) in flight · server {} thread(s), \
         clients {} thread(s) · {} · {}\n",
        m.duration_s,
        m.warmup_s,
        m.concurrency,
        m.server_threads,
        m.client_threads,
        m.cipher,
        cell(&m.method)
    );
    out.push_str(
        "| version | key | group | handshake | handshakes/s | p50 | p99 | server CPU/hs | client CPU/hs | resumed | suite | errors |\n\
         |---|---|---|---|---:|---:|---:|---:|---:|---:|---|---:|\n",
    );
    for c in &r.results {
        let _ = writeln!(out, "| {} |", cell_row(c).join(" | "));
    }
    out.push('\n');
    if !r.skipped.is_empty() {
        out.push_str("## Skipped\n\n");
        for s in &r.skipped {
            let _ = writeln!(
                out,
                "- TLS {} {} {} {}: {}",
                s.version,
                s.key,
                s.group,
                s.resumption.as_str(),
                s.reason
            );
        }
        out.push('\n');
    }
    list_section(&mut out, "Warnings", &r.warnings);
    environment_section(&mut out, &r.environment);
    out
}
