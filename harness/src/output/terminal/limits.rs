//! The terminal table of `vmsbench limits`, and the lines that set a run's figures beside
//! them (`--with-limits`). The rows serve the Markdown and HTML exports as well.

use std::fmt::Write as _;

use crate::report::limits::{Limits, LimitsComparison, LimitsReport};
use crate::units::format_duration_us;

use super::handshakes::table_rows;

impl LimitsReport {
    /// The terminal table.
    pub fn render_table(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "{}", self.environment.summary_line());
        let _ = writeln!(
            out,
            "limits · {} s per measurement · one sitting{}",
            self.limits.budget_s,
            if self.partial {
                " · PARTIAL (interrupted)"
            } else {
                ""
            }
        );
        let _ = writeln!(out);
        for line in summary_lines(&self.limits) {
            let _ = writeln!(out, "{line}");
        }
        let _ = writeln!(out);
        let _ = writeln!(out, "record layer (one core, in memory):");
        crate::output::table::render_rows(&mut out, &record_rows(&self.limits), |c| c < 2);
        let _ = writeln!(out);
        let _ = writeln!(out, "handshakes (one connection at a time over loopback):");
        crate::output::table::render_rows(&mut out, &handshake_rows(&self.limits), |c| c < 4);
        let _ = writeln!(out);
        let _ = writeln!(out, "latency floor (one frame at a time, idle link):");
        crate::output::table::render_rows(&mut out, &floor_rows(&self.limits), |c| c == 0);
        for w in &self.warnings {
            let _ = writeln!(out, "warning: {w}");
        }
        out
    }
}

/// The one-line figures: loopback TCP and memory per idle connection.
pub(crate) fn summary_lines(l: &Limits) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(t) = &l.tcp {
        out.push(format!(
            "loopback TCP, one connection, plaintext: {:.0} Mbit/s",
            t.goodput_mbit_s
        ));
    }
    if let Some(m) = &l.memory {
        out.push(format!(
            "memory per idle TLS connection (both ends, {}, {} connections, {}): {:.1} KiB",
            m.key,
            m.connections,
            m.allocator,
            m.bytes_per_connection / 1024.0
        ));
    }
    out
}

/// The record layer, a header row then a row per suite and frame size.
pub(crate) fn record_rows(l: &Limits) -> Vec<Vec<String>> {
    let header = [
        "suite",
        "frames",
        "bytes",
        "seal",
        "seal MB/s",
        "open",
        "open MB/s",
    ];
    let mut rows: Vec<Vec<String>> = vec![header.iter().map(|s| (*s).to_owned()).collect()];
    for s in &l.record_layer {
        for f in &s.frames {
            rows.push(vec![
                s.suite.clone(),
                f.frames.join(", "),
                f.frame_bytes.to_string(),
                format_duration_us(f.seal_us_per_frame),
                format!("{:.0}", f.seal_mbyte_s),
                format_duration_us(f.open_us_per_frame),
                format!("{:.0}", f.open_mbyte_s),
            ]);
        }
    }
    rows
}

/// The handshakes, in the handshake matrix's columns.
pub(crate) fn handshake_rows(l: &Limits) -> Vec<Vec<String>> {
    table_rows(&l.handshakes)
}

/// The latency floor per mode.
pub(crate) fn floor_rows(l: &Limits) -> Vec<Vec<String>> {
    let header = ["mode", "frame bytes", "frames", "p50", "p99", "max"];
    let mut rows: Vec<Vec<String>> = vec![header.iter().map(|s| (*s).to_owned()).collect()];
    for f in &l.latency_floor {
        rows.push(vec![
            f.mode.to_string(),
            f.frame_bytes.to_string(),
            f.frames.to_string(),
            format_duration_us(f.latency_us.p50 as f64),
            format_duration_us(f.latency_us.p99 as f64),
            format_duration_us(f.latency_us.max as f64),
        ]);
    }
    rows
}

/// The lines a `--with-limits` report adds: how the limits were measured, then one line per
/// link and mode.
pub(crate) fn share_lines(c: Option<&LimitsComparison>) -> Vec<String> {
    let Some(c) = c else { return Vec::new() };
    let mut out = vec![format!("this machine's limits: {}", c.note)];
    out.extend(summary_lines(&c.measured));
    out.extend(c.shares.iter().map(|s| s.line()));
    out
}
