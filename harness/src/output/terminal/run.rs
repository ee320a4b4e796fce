//! The terminal table of a `run` or `bulk` report: the short-fall line, the environment,
//! each link's figures per mode, the cost of TLS per link, per-host and certificate
//! sections, and the warnings.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use simulators::transport::Mode;

use crate::report::run::short_serial;
use crate::report::verdicts::{short_summary, trust, worst_short};
use crate::report::warnings::CAUGHT_UP_MS;
use crate::report::{HostResult, Report};
use crate::units::{format_bytes, format_mbit, format_ratio, format_us};

impl Report {
    /// The terminal table.
    pub fn render_table(&self) -> String {
        let mut out = String::new();
        if let Some(short) = short_summary(self) {
            let _ = writeln!(out, "{short}\n");
        }
        let _ = writeln!(out, "{}", self.environment.summary_line());
        let m = &self.measurement;
        let _ = writeln!(
            out,
            "{} · {} s warm-up, {} s window, {} of {} repeats, {}{}",
            self.command,
            m.warmup_s,
            m.duration_s,
            m.repeats_completed,
            m.repeat,
            m.order,
            if self.partial {
                " · PARTIAL (interrupted)"
            } else {
                ""
            }
        );
        let _ = writeln!(out);
        let header = [
            "link",
            "mode",
            "goodput",
            "frames due/recv",
            "late",
            "drop",
            "p50",
            "p99",
            "p99.9",
            "max",
            "connect",
            "handshake",
            "ttff",
            "srv CPU s/GB",
            "cli CPU s/GB",
            "peak RSS",
        ];
        let mut rows: Vec<Vec<String>> = vec![header.iter().map(|s| (*s).to_owned()).collect()];
        for r in &self.results {
            let f = &r.figures;
            let latency = crate::output::figures::headline_latency(self, f);
            let gb = |v: Option<f64>| v.map_or_else(|| "–".to_owned(), |v| format!("{v:.2}"));
            rows.push(vec![
                r.link.clone(),
                r.mode.to_string(),
                format_mbit(f.goodput_mbit_s),
                if let Some(w) = worst_short(r) {
                    format!("{}/{} SHORT", w.frames_due, w.frames_received)
                } else if f.frames_due > 0 {
                    format!("{}/{}", f.frames_due, f.frames_received)
                } else {
                    format!("–/{}", f.frames_received)
                },
                f.late_frames.to_string(),
                f.dropped_frames.to_string(),
                us_or_dash(latency.p50, f.frames_received),
                us_or_dash(latency.p99, f.frames_received),
                us_or_dash(latency.p999, f.frames_received),
                us_or_dash(latency.max, f.frames_received),
                format_us(f.connect_us),
                if r.mode == Mode::Tls {
                    format_us(f.handshake_us)
                } else {
                    "–".into()
                },
                if f.ttff_us > 0 {
                    format_us(f.ttff_us)
                } else {
                    "–".into()
                },
                gb(f.cpu_server_s_per_gb),
                gb(f.cpu_client_s_per_gb),
                format_bytes(f.peak_rss_bytes),
            ]);
        }
        crate::output::table::render_rows(&mut out, &rows, |c| c < 2);
        if let Some(note) = crate::output::figures::latency_note(self) {
            let _ = writeln!(out, "{note}");
        }
        let _ = writeln!(out);
        for r in self.results.iter().filter(|r| r.mode == Mode::Tls) {
            let group = r
                .group
                .as_deref()
                .map(|g| format!(" (group {g})"))
                .unwrap_or_default();
            match (&r.tls, r.encrypted) {
                (Some(t), _) => {
                    let _ = writeln!(
                        out,
                        "TLS on {}{group}: {} {} {}",
                        r.link, t.version, t.suite, t.group
                    );
                }
                (None, false) => {
                    let _ = writeln!(out, "{}{group}: not encrypted in the TLS phase", r.link);
                }
                (None, true) if r.figures.connections == 0 && r.figures.frames_received == 0 => {
                    let _ = writeln!(out, "{}{group}: no traffic in the TLS window", r.link);
                }
                (None, true) => {
                    let _ = writeln!(out, "{}{group}: no TLS connection succeeded", r.link);
                }
            }
        }
        if let Some(accepted) = crate::output::figures::servers_accept(self) {
            let _ = writeln!(out, "Servers accepted: {accepted}");
        }
        for line in crate::output::figures::placement_lines(self.placement.as_ref()) {
            let _ = writeln!(out, "{line}");
        }
        for line in crate::output::figures::machine_lines(self) {
            let _ = writeln!(out, "{line}");
        }
        if let Some(rows) = crate::output::figures::soak_rows(self) {
            let _ = writeln!(out, "\nSoak (first, middle and last intervals):");
            crate::output::table::render_rows(&mut out, &rows, |_| false);
            for line in crate::output::figures::soak_trend_lines(self) {
                let _ = writeln!(out, "{line}");
            }
        }
        for line in crate::output::figures::wan_lines(self) {
            let _ = writeln!(out, "{line}");
        }
        for line in self.cost_lines() {
            let _ = writeln!(out, "{line}");
        }
        for line in self.ramp_lines() {
            let _ = writeln!(out, "{line}");
        }
        for line in self.certificate_lines() {
            let _ = writeln!(out, "{line}");
        }
        for w in &self.warnings {
            let _ = writeln!(out, "warning: {w}");
        }
        out
    }

    /// The cost of TLS per link, a line each, with what its 95 % intervals say beneath it;
    /// a link without a cost says why.
    fn cost_lines(&self) -> Vec<String> {
        let mut out = Vec::new();
        for c in &self.cost {
            if let Some(why) = crate::report::verdicts::no_cost_because(self, &c.link) {
                out.push(format!("Cost of TLS on {}: – ({why})", c.link));
                continue;
            }
            out.push(format!(
                "Cost of TLS on {} (TLS/plain, median of {} pairs): goodput {}, p99 latency {}{}, \
                 CPU per GB {} (server {}, client {}), handshake +{} · {}",
                c.link,
                c.pairs,
                format_ratio(c.goodput_ratio),
                format_ratio(c.latency_p99_ratio),
                c.latency_diff_us
                    .map(|d| format!(" ({})", crate::report::verdicts::signed_us(d.p99)))
                    .unwrap_or_default(),
                format_ratio(c.cpu_per_gb_ratio),
                format_ratio(c.cpu_server_per_gb_ratio),
                format_ratio(c.cpu_client_per_gb_ratio),
                format_us(c.handshake_us),
                trust(c),
            ));
            let verdicts = crate::report::verdicts::verdicts(c);
            if !verdicts.is_empty() {
                out.push(format!("  95 %: {}", verdicts.join("; ")));
            }
        }
        out
    }

    /// What the certificate faults and events did, a line each (empty when there were
    /// none): the faulty hosts' failures, that the other hosts ran untouched, and what a
    /// watcher saw around each certificate event.
    pub fn certificate_lines(&self) -> Vec<String> {
        let mut lines = Vec::new();
        let tls: Vec<&HostResult> = self.hosts.iter().filter(|h| h.mode == Mode::Tls).collect();
        let faulty: Vec<&&HostResult> = tls.iter().filter(|h| h.outcome.fault.is_some()).collect();
        for h in &faulty {
            let o = &h.outcome;
            lines.push(format!(
                "fault {} on {}: {} connection(s) set up, {} frame(s) received; failures on {}: \
                 clients {}, server {}",
                o.fault.as_deref().unwrap_or_default(),
                o.host,
                o.connections,
                o.frames,
                if o.links.is_empty() {
                    "its links".to_owned()
                } else {
                    o.links.join(", ")
                },
                counts(&o.client_errors),
                counts(&o.server_errors),
            ));
        }
        if !faulty.is_empty() {
            let others: Vec<&&HostResult> =
                tls.iter().filter(|h| h.outcome.fault.is_none()).collect();
            let failures = |h: &HostResult| -> u64 {
                h.outcome.client_errors.values().sum::<u64>()
                    + h.outcome.server_errors.values().sum::<u64>()
            };
            let connections: u64 = others.iter().map(|h| h.outcome.connections).sum();
            let total: u64 = others.iter().map(|h| failures(h)).sum();
            // Hosts whose certificate expired mid-run fail some handshakes on purpose.
            let changing: Vec<String> = others
                .iter()
                .filter(|h| {
                    failures(h) > 0
                        && self
                            .certificate_events
                            .iter()
                            .any(|e| e.outcome.host == h.outcome.host)
                })
                .map(|h| format!("{} on {}", failures(h), h.outcome.host))
                .collect();
            lines.push(format!(
                "the {} other host(s): {connections} connection(s), {total} failure(s){}",
                others.len(),
                if changing.is_empty() {
                    String::new()
                } else {
                    format!(
                        " ({}, whose certificate changed mid-run)",
                        changing.join(", ")
                    )
                }
            ));
        }
        if !self.certificate_events.is_empty() {
            lines.push(format!(
                "certificate events: a watcher dialled each host every {} ms, once with a full \
                 handshake and once resuming a session; the servers' failure counts include \
                 its refused handshakes",
                crate::engine::watcher::WATCH_INTERVAL.as_millis()
            ));
        }
        for e in &self.certificate_events {
            let o = &e.outcome;
            let what = if o.action == "expire_certificate" {
                "expired"
            } else {
                "was renewed"
            };
            let tally = |t: &crate::engine::watcher::Tally| {
                format!(
                    "full handshakes {} ok{}, resumed {} ok{}",
                    t.full_ok,
                    if t.full_failed.is_empty() {
                        String::new()
                    } else {
                        format!(", failed {}", counts(&t.full_failed))
                    },
                    t.resumed_ok,
                    if t.resumed_failed.is_empty() {
                        String::new()
                    } else {
                        format!(", failed {}", counts(&t.resumed_failed))
                    },
                )
            };
            lines.push(format!(
                "certificate of {} {what} at {:.1} s (repeat {}; serial {} → {}): before: {}; \
                 after: {}; established streams: {} frame(s) lost, {} connection(s) broken",
                o.host,
                o.at_s,
                e.repeat,
                short_serial(&o.serial_before),
                short_serial(&o.serial_after),
                tally(&o.before),
                tally(&o.after),
                o.frames_lost,
                o.connections_broken,
            ));
        }
        lines
    }
}

/// `a ×3, b ×1`, or `none`.
fn counts(map: &BTreeMap<String, u64>) -> String {
    if map.is_empty() {
        return "none".into();
    }
    map.iter()
        .map(|(k, v)| format!("{k} ×{v}"))
        .collect::<Vec<_>>()
        .join(", ")
}

impl Report {
    /// One line per mode on how the clients started (the slowest repeat's ramp).
    pub(crate) fn ramp_lines(&self) -> Vec<String> {
        [Mode::Plain, Mode::Tls]
            .into_iter()
            .filter_map(|mode| {
                let r = self
                    .ramps
                    .iter()
                    .filter(|r| r.mode == mode)
                    .max_by(|a, b| a.outcome.seconds.total_cmp(&b.outcome.seconds))?;
                let o = &r.outcome;
                let unsettled = o.clients.saturating_sub(o.settled);
                let mut line = format!(
                    "Ramp ({mode}): {} clients set up {} connections in {:.2} s ({:.0} per s); window opened at {:.2} s",
                    o.clients, o.connections, o.seconds, r.connections_per_s, o.window_opened_s,
                );
                if unsettled > 0 {
                    line += &format!("; {unsettled} had not settled");
                }
                if o.server_lag_ms > CAUGHT_UP_MS {
                    line += &format!(
                        "; recording servers still {:.0} ms behind schedule",
                        o.server_lag_ms
                    );
                }
                Some(line)
            })
            .collect()
    }
}

/// A latency figure, or `–` when no frame arrived (a zero would read as "instant").
fn us_or_dash(us: u64, frames: u64) -> String {
    if frames == 0 {
        "–".into()
    } else {
        format_us(us)
    }
}
