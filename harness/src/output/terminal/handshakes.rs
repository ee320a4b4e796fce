//! The terminal table of `vmsbench handshakes`.

use std::fmt::Write as _;

use crate::report::handshakes::{CellResult, HandshakesReport};
use crate::units::format_duration_us;

pub(crate) fn cpu_cell(v: Option<f64>) -> String {
    v.map_or_else(|| "–".to_owned(), format_duration_us)
}

impl HandshakesReport {
    /// The terminal table.
    pub fn render_table(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "{}", self.environment.summary_line());
        let m = &self.measurement;
        let _ = writeln!(
            out,
            "handshakes · {} s per cell after {} s warm-up · {} client connection(s) in flight · \
             server {} thread(s), clients {} thread(s) · {} · loopback{}",
            m.duration_s,
            m.warmup_s,
            m.concurrency,
            m.server_threads,
            m.client_threads,
            m.cipher,
            if self.partial {
                " · PARTIAL (interrupted)"
            } else {
                ""
            }
        );
        let _ = writeln!(out);
        crate::output::table::render_rows(&mut out, &table_rows(&self.results), |c| c < 4);
        for s in &self.skipped {
            let _ = writeln!(
                out,
                "skipped: TLS {} {} {} {}: {}",
                s.version,
                s.key,
                s.group,
                s.resumption.as_str(),
                s.reason
            );
        }
        for w in &self.warnings {
            let _ = writeln!(out, "warning: {w}");
        }
        out
    }
}

/// The handshake table: its header, then one row per cell (see [`cell_row`]).
pub(crate) fn table_rows(cells: &[CellResult]) -> Vec<Vec<String>> {
    let header = [
        "version",
        "key",
        "group",
        "handshake",
        "hs/s",
        "p50",
        "p99",
        "srv CPU/hs",
        "cli CPU/hs",
        "resumed",
        "suite",
        "errors",
    ];
    let mut rows: Vec<Vec<String>> = vec![header.iter().map(|s| (*s).to_owned()).collect()];
    rows.extend(cells.iter().map(cell_row));
    rows
}

/// One cell's figures as text, in the table's columns: version, key, group, handshake,
/// handshakes/s, p50, p99, server and client CPU per handshake, resumed, suite, errors.
pub(crate) fn cell_row(r: &CellResult) -> Vec<String> {
    vec![
        r.version.to_string(),
        r.key.to_string(),
        r.group.to_string(),
        r.resumption.as_str().to_owned(),
        format!("{:.0}", r.handshakes_per_s),
        format_duration_us(r.latency_us.p50 as f64),
        format_duration_us(r.latency_us.p99 as f64),
        cpu_cell(r.cpu_server_us_per_handshake),
        cpu_cell(r.cpu_client_us_per_handshake),
        format!("{:.0} %", r.resumed_fraction * 100.0),
        r.negotiated
            .as_ref()
            .map_or_else(|| "–".to_owned(), |n| n.suite.clone()),
        r.errors.values().sum::<u64>().to_string(),
    ]
}
