//! A capacity search in Markdown: the answer per mode, the cost of encryption, the
//! projection, every step, the notes and the warnings.

use std::fmt::Write as _;

use super::{cell, environment_section, list_section};
use crate::report::capacity::{CapacityReport, ModeResult, Step};
use crate::units::{format_bytes, format_duration_us};

fn count(v: Option<u32>) -> String {
    v.map_or_else(|| "–".to_owned(), |v| v.to_string())
}

fn answer(name: &str, m: &ModeResult) -> String {
    let limit = m.limit.map_or_else(
        || m.stopped.describe().to_owned(),
        |l| l.describe().to_owned(),
    );
    let per_camera = m.server_cpu_words().unwrap_or_else(|| "–".to_owned());
    let range = m.range_words();
    let range = if range.is_empty() {
        range
    } else {
        format!(" ({range})")
    };
    format!(
        "| {name} | **{}**{range} | {} | {} | {} | {per_camera} |",
        count(m.max_cameras),
        count(m.first_failing_cameras),
        cell(&limit),
        cell(&m.limit_reasons.join("; ")),
    )
}

fn step_row(mode: &str, s: &Step) -> String {
    format!(
        "| {mode} | {} | {} | {} | {} | {} | {} | {} | {} | {:.2}/{} | {:.2}/{} | {} |",
        s.cameras,
        s.streams,
        s.stage.as_str(),
        if s.pass { "pass" } else { "FAIL" },
        format_duration_us(s.latency_us.p50 as f64),
        format_duration_us(s.latency_us.p99 as f64),
        s.late_frames,
        s.dropped_frames,
        s.cpu_server_cores,
        s.server_cpus,
        s.cpu_clients_cores,
        s.client_cpus,
        format_bytes(s.peak_rss_bytes),
    )
}

/// Renders the document.
pub(super) fn render(r: &CapacityReport) -> String {
    let mut out = String::new();
    let s = &r.search;
    let _ = writeln!(
        out,
        "# Cameras per recording server: {}{}\n",
        s.server_role,
        if r.partial { " (PARTIAL)" } else { "" }
    );
    let _ = writeln!(
        out,
        "Objective `{}` · {} s warm-up, {} s per step · budget {} s, {:.0} s used\n",
        r.objective.text, s.warmup_s, s.step_duration_s, s.budget_s, s.elapsed_s
    );
    out.push_str(
        "| mode | cameras within the objective | first failing | limit | why | server CPU per camera |\n\
         |---|---:|---:|---|---|---:|\n",
    );
    for (name, m) in r.each_mode() {
        let _ = writeln!(out, "{}", answer(name, m));
    }
    out.push('\n');
    if let Some(c) = r.cost_words() {
        let _ = writeln!(
            out,
            "Encryption costs **{c}** of the recording server's capacity.\n"
        );
    }
    if let Some(p) = &r.projection {
        let n = |v: Option<u64>| v.map_or_else(|| "–".to_owned(), |v| v.to_string());
        let _ = writeln!(
            out,
            "Linear projection (not a measurement) to {} cores: plain ≈ {} cameras, TLS ≈ {} \
             cameras. It assumes away: {}.\n",
            p.cores,
            n(p.plain_cameras),
            n(p.tls_cameras),
            p.caveats.join("; ")
        );
    }
    out.push_str("## Steps\n\n");
    out.push_str(
        "| mode | cameras | streams | stage | result | p50 | p99 | late | dropped | server cores | client cores | peak RSS |\n\
         |---|---:|---:|---|---|---:|---:|---:|---:|---:|---:|---:|\n",
    );
    for (name, m) in r.each_mode() {
        let mut steps: Vec<&Step> = m.steps.iter().collect();
        steps.sort_by_key(|s| (s.cameras, s.index));
        for st in steps {
            let _ = writeln!(out, "{}", step_row(name, st));
        }
    }
    out.push('\n');
    list_section(&mut out, "Notes", &r.notes);
    list_section(&mut out, "Warnings", &r.warnings);
    environment_section(&mut out, &r.environment);
    let placement = crate::output::figures::placement_lines(r.placement.as_ref());
    list_section(&mut out, "Placement", &placement);
    out
}
