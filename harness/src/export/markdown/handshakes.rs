//! The handshake matrix in Markdown: one row per cell, the cells skipped, the warnings.

use std::fmt::Write as _;

use super::cell;
use crate::output::terminal::cpu_cell;
use crate::report::handshakes::HandshakesReport;
use crate::units::format_duration_us;

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
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {:.0} | {} | {} | {} | {} | {:.0} % | {} | {} |",
            c.version,
            c.key,
            c.group,
            c.resumption.as_str(),
            c.handshakes_per_s,
            format_duration_us(c.latency_us.p50 as f64),
            format_duration_us(c.latency_us.p99 as f64),
            cpu_cell(c.cpu_server_us_per_handshake),
            cpu_cell(c.cpu_client_us_per_handshake),
            c.resumed_fraction * 100.0,
            c.negotiated.as_ref().map_or("–", |n| n.suite.as_str()),
            c.errors.values().sum::<u64>(),
        );
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
    if !r.warnings.is_empty() {
        out.push_str("## Warnings\n\n");
        for w in &r.warnings {
            let _ = writeln!(out, "- {w}");
        }
        out.push('\n');
    }
    let _ = writeln!(
        out,
        "## Environment\n\n{}",
        cell(&r.environment.summary_line())
    );
    out
}
