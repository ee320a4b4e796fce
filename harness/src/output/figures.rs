//! Figures as every format writes them (terminal, Markdown, HTML): a ratio's range, frames
//! received of those due, the kernel cross-check, the TLS parameters negotiated, the
//! measurement in one line, the report's title.

use std::fmt::Write as _;

use crate::report::verdicts::worst_short;
use crate::report::{Cost, LinkResult, Percentiles, PlacementRecord, Report, Sample};

/// A ratio's range over the pairs as `1.20–1.31` (empty with fewer than two pairs).
pub(crate) fn ratio_range(c: &Cost, key: &str) -> String {
    match c.spread.get(key) {
        Some(s) if c.pairs > 1 => format!("{:.2}–{:.2}", s.min, s.max),
        _ => String::new(),
    }
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

/// What the TLS servers accepted, in one line (`None` for reports that do not say).
pub(crate) fn servers_accept(report: &Report) -> Option<String> {
    let t = report.server_tls.as_ref()?;
    let names = |v: Vec<&str>| v.join(", ");
    Some(format!(
        "TLS {}; {}; groups {} (clients pin the first of each)",
        names(t.versions.iter().map(|v| v.name()).collect()),
        names(t.ciphers.iter().map(|c| c.name()).collect()),
        names(t.groups.iter().map(|g| g.name()).collect()),
    ))
}

/// The latency a table shows for `f`: frame latency from the schedule, unless the run
/// spread over hosts whose clocks were not shown to agree — then the delay variation,
/// which a clock offset cannot distort ([`latency_note`] says so under the table).
pub(crate) fn headline_latency<'a>(report: &Report, f: &'a Sample) -> &'a Percentiles {
    if clocks_disagree(report) {
        &f.delay_variation_us
    } else {
        &f.latency_us
    }
}

/// What the latency columns of a table are, when they are not the usual frame latency.
pub(crate) fn latency_note(report: &Report) -> Option<String> {
    clocks_disagree(report).then(|| {
        "Latency columns: delay variation (each frame against its stream's best), since the \
         hosts' clocks were not shown to agree; latency_us in the JSON keeps the one-way \
         figure"
            .to_owned()
    })
}

fn clocks_disagree(report: &Report) -> bool {
    report.placement.as_ref().is_some_and(|p| !p.clocks_agree)
}

/// One line per link and mode whose clients crossed a WAN relay: its settings, and what
/// it counted over the phase (medians over the repeats). Empty without relays.
pub(crate) fn wan_lines(report: &Report) -> Vec<String> {
    report
        .results
        .iter()
        .filter_map(|r| {
            let w = r.figures.wan.as_ref()?;
            let configured = w.configured.as_ref().map_or_else(
                || "settings differ between relays".to_owned(),
                |c| {
                    let mut s = format!("delay {} ms", c.delay_ms);
                    if c.jitter_ms > 0.0 {
                        let _ = write!(s, " + jitter ≤ {} ms", c.jitter_ms);
                    }
                    if c.loss > 0.0 {
                        let _ = write!(s, ", loss {} %", c.loss * 100.0);
                    }
                    if let Some(rate) = c.rate_bps {
                        let _ = write!(s, ", cap {}", crate::units::format_mbit(rate as f64 / 1e6));
                    }
                    s
                },
            );
            let mut line = format!(
                "WAN on {} ({}): {configured} · {} segments, {} retransmitted ({:.2} %)",
                r.link,
                r.mode,
                w.segments,
                w.retransmissions,
                w.retransmission_share * 100.0
            );
            if w.configured.is_none_or(|c| c.rate_bps.is_some()) {
                let _ = write!(line, ", rate queue up to {:.1} ms", w.max_rate_queue_ms);
            }
            Some(line)
        })
        .collect()
}

/// Where the roles ran, for a run spread over agents: the rules, each agent (its address,
/// machine and clock against the coordinator's), and which latency the figures are. Empty
/// for a run in one process.
pub(crate) fn placement_lines(placement: Option<&PlacementRecord>) -> Vec<String> {
    let Some(p) = placement else {
        return Vec::new();
    };
    let mut lines = vec![format!(
        "Placement: {} (roles not named ran in the coordinator's process)",
        p.rules.join(", ")
    )];
    for a in &p.agents {
        let clock = a.clock.map_or_else(String::new, |c| {
            format!(
                " · clock {:+.0} µs (±{:.0} µs)",
                c.offset_us,
                c.rtt_us / 2.0
            )
        });
        let lost = a
            .lost
            .as_ref()
            .map_or_else(String::new, |l| format!(" · LOST: {l}"));
        lines.push(format!(
            "Agent {} at {}: {}{clock}{lost}",
            a.name,
            a.address,
            a.environment.summary_line()
        ));
    }
    lines.push(format!("Latency: {}", p.latency));
    lines
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

/// How the machine was used during the windows, a line each: where the roles ran
/// (pinning) and what the CPUs did (steal, frequency).
pub(crate) fn machine_lines(report: &Report) -> Vec<String> {
    let mut lines = Vec::new();
    if let Some(p) = &report.pinning {
        lines.push(format!("Pinning: {}", p.line()));
    }
    if let Some(w) = &report.environment.during_windows {
        let worst = report
            .cpu_windows
            .iter()
            .filter_map(|c| Some((c, c.cpus.steal_pct?)))
            .max_by(|a, b| a.1.total_cmp(&b.1))
            .filter(|(_, s)| (s - w.steal_pct.unwrap_or(0.0)).abs() >= 0.05)
            .map_or_else(String::new, |(c, s)| {
                format!(" (most: {s:.1} % in {})", c.name())
            });
        lines.push(format!("CPUs during the windows: {}{worst}", w.describe()));
    }
    lines
}

/// A soak as a table: the header, then the first, middle and last intervals (every one
/// when there are three or fewer); `None` when the report is not a soak.
pub(crate) fn soak_rows(report: &Report) -> Option<Vec<Vec<String>>> {
    let soak = &report.soak;
    let last = soak.len().checked_sub(1)?;
    let mut picked = vec![0, last / 2, last];
    picked.dedup();
    let header = [
        "t",
        "RSS",
        "descriptors",
        "CPU s",
        "CPU s/GB",
        "goodput",
        "frames recv/due",
    ];
    let mut rows = vec![header.iter().map(|h| (*h).to_owned()).collect::<Vec<_>>()];
    for i in picked {
        let s = &soak[i];
        rows.push(vec![
            format!("{:.1} s", s.t_s),
            crate::units::format_bytes(s.rss_bytes),
            s.open_fds.to_string(),
            format!("{:.2}", s.cpu_s),
            s.cpu_s_per_gb.map_or("–".into(), |c| format!("{c:.2}")),
            crate::units::format_mbit(s.goodput_mbit_s),
            format!("{}/{}", s.frames_received, s.frames_due),
        ]);
    }
    Some(rows)
}

/// A soak's trend per figure, a line each: first and last values, the fitted change and
/// whether it grew.
pub(crate) fn soak_trend_lines(report: &Report) -> Vec<String> {
    report
        .soak_trend
        .iter()
        .map(|t| {
            let show = |v: f64| match t.figure.as_str() {
                "rss_bytes" => crate::units::format_bytes(v.max(0.0) as u64),
                "open_fds" => format!("{v:.0}"),
                _ => format!("{v:.2} s/GB"),
            };
            let fit = match t.change_pct {
                Some(p) => format!(
                    "{p:+.1} % by a line fitted to {} intervals{}",
                    t.intervals_fitted,
                    if t.grows { " — GROWS" } else { ", steady" }
                ),
                None => format!(
                    "too few intervals after the warm-up to fit ({})",
                    t.intervals_fitted
                ),
            };
            format!(
                "Soak trend of {}: {} → {}, {fit}",
                t.figure,
                show(t.first),
                show(t.last)
            )
        })
        .collect()
}
