//! The terminal table of a capacity search: every step, the capacity found and what
//! limited it.

use std::fmt::Write as _;

use crate::output::table::render_rows;
use crate::report::capacity::{CapacityReport, Step, SATURATED};
use crate::units::{format_bytes, format_duration_us};

fn opt(v: Option<u32>) -> String {
    v.map_or_else(|| "–".to_owned(), |v| v.to_string())
}

impl CapacityReport {
    /// The lines above the table: the machine, where the roles ran, the search's settings.
    fn heading(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "{}", self.environment.summary_line());
        for line in crate::output::figures::placement_lines(self.placement.as_ref()) {
            let _ = writeln!(out, "{line}");
        }
        let s = &self.search;
        let pinned = if s.server_cpus.is_empty() && self.placement.is_some() {
            format!(
                "{} on an agent of its own ({} threads), not pinned",
                s.server_role, s.server_threads
            )
        } else if s.server_cpus.is_empty() {
            "not pinned (one CPU): server and clients share it".to_owned()
        } else {
            format!(
                "{} on CPU {:?}, everything else on CPU {:?}",
                s.server_role, s.server_cpus, s.client_cpus
            )
        };
        let _ = writeln!(
            out,
            "capacity · objective {} · {} s warm-up, {} s per step · {pinned}{}",
            self.objective.text,
            s.warmup_s,
            s.step_duration_s,
            if self.partial {
                " · PARTIAL (interrupted)"
            } else {
                ""
            }
        );
        out
    }

    /// The terminal table and summary.
    pub fn render_table(&self) -> String {
        let mut out = self.heading();
        let s = &self.search;
        let _ = writeln!(out);
        let header = [
            "mode",
            "cameras",
            "streams",
            "stage",
            "result",
            "p50",
            "p99",
            "max",
            "late",
            "drop",
            "fail",
            "srv cores",
            "cli cores",
            "srv CPU/cam",
            "peak RSS",
            "why",
        ];
        let mut rows: Vec<Vec<String>> = vec![header.iter().map(|h| (*h).to_owned()).collect()];
        for (name, m) in self.each_mode() {
            let mut steps: Vec<&Step> = m.steps.iter().collect();
            steps.sort_by_key(|s| (s.cameras, s.index));
            for st in steps {
                rows.push(vec![
                    name.to_owned(),
                    st.cameras.to_string(),
                    st.streams.to_string(),
                    st.stage.as_str().to_owned(),
                    if st.pass { "pass" } else { "FAIL" }.to_owned(),
                    format_duration_us(st.latency_us.p50 as f64),
                    format_duration_us(st.latency_us.p99 as f64),
                    format_duration_us(st.latency_us.max as f64),
                    st.late_frames.to_string(),
                    st.dropped_frames.to_string(),
                    st.failures.to_string(),
                    format!("{:.2}/{}", st.cpu_server_cores, st.server_cpus),
                    format!("{:.2}/{}", st.cpu_clients_cores, st.client_cpus),
                    format!("{:.2} ms", st.cpu_per_camera_server_s * 1e3),
                    format_bytes(st.peak_rss_bytes),
                    st.reasons.join("; "),
                ]);
            }
        }
        // Text columns left-aligned, figures right-aligned.
        let cols = header.len();
        render_rows(&mut out, &rows, |c| {
            c == 0 || c == 3 || c == 4 || c + 1 == cols
        });
        let _ = writeln!(out);
        let _ = writeln!(
            out,
            "Cameras one recording server ({}) holds within the objective:",
            s.server_role
        );
        for (name, m) in self.each_mode() {
            let limit = match (m.limit, m.first_failing_cameras) {
                (Some(l), Some(f)) => format!(
                    "first failure at {f}: {} ({}{}; CPU: server {:.2}/{}, clients {:.2}/{})",
                    l.describe(),
                    m.limit_reasons.join("; "),
                    m.limit_link
                        .as_ref()
                        .map_or(String::new(), |l| format!("; mostly on {l}")),
                    m.limit_cpu_server_cores.unwrap_or(0.0),
                    s.server_threads,
                    m.limit_cpu_clients_cores.unwrap_or(0.0),
                    s.client_cpus.len(),
                ),
                _ => m.stopped.describe().to_owned(),
            };
            let bracket = if m.complete {
                String::new()
            } else {
                format!(
                    " [bracket reached: {}..{}; {}]",
                    opt(m.max_cameras),
                    opt(m.first_failing_cameras),
                    m.stopped.describe()
                )
            };
            let cpu = m
                .server_cpu_words()
                .map_or(String::new(), |c| format!(" · server CPU {c} per camera"));
            let range = m.range_words();
            let range = if range.is_empty() {
                range
            } else {
                format!(" ({range})")
            };
            let _ = writeln!(
                out,
                "  {name:<5} {:>6} cameras{range} — {limit}{cpu}{bracket}",
                opt(m.max_cameras)
            );
        }
        if let Some(c) = self.cost_words() {
            let _ = writeln!(
                out,
                "Encryption costs {c} of the recording server's capacity (same machine, \
                 steps interleaved)."
            );
        }
        if let Some(p) = &self.projection {
            let n = |v: Option<u64>| v.map_or_else(|| "–".to_owned(), |v| v.to_string());
            let _ = writeln!(
                out,
                "Linear projection to {} recording-server cores ({} × {SATURATED} / measured CPU \
                 per camera; not a measurement): plain ≈ {} cameras, tls ≈ {} cameras{}.",
                p.cores,
                p.cores,
                n(p.plain_cameras),
                n(p.tls_cameras),
                p.capacity_cost_pct
                    .map_or(String::new(), |c| format!(", cost {c:.1} %"))
            );
            let _ = writeln!(
                out,
                "  It does not scale linearly with: memory bandwidth, the NIC and kernel TLS, \
                 lock contention, and clients that shared this machine."
            );
        }
        for n in &self.notes {
            let _ = writeln!(out, "note: {n}");
        }
        for w in &self.warnings {
            let _ = writeln!(out, "warning: {w}");
        }
        out
    }
}
