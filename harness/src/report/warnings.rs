//! The warnings a report carries: what a reader must know before trusting its figures
//! (a debug build, a busy machine, certificates near their end, staged faults, frames that
//! fell short or came late, failures, a kernel count that disagrees, cost ratios that spread
//! too wide).

use simulators::transport::Mode;

use super::run::{short_serial, HostResult, Report};
use super::verdicts::{no_cost_because, undecided, MAX_RELATIVE_HALF_WIDTH, MIN_PAIRS};

/// The kernel cross-check flags a link whose application and kernel byte counts are
/// further apart than this, in percent (when at least [`KERNEL_CHECK_MIN_BYTES`] moved).
pub(crate) const KERNEL_CHECK_TOLERANCE_PCT: f64 = 1.0;

/// A load average (before the run) of this much per core or more means the machine was
/// busy with other work: the report says so.
pub(crate) const BUSY_LOAD_PER_CORE: f64 = 0.75;

/// A window in which the hypervisor stole more than this share of the CPUs' time (percent)
/// ran on CPUs shared with other guests: its figures are noisier.
pub(crate) const STEAL_WARNING_PCT: f64 = 2.0;

/// CPU frequencies seen at the windows' ends that differ by more than this (percent of the
/// highest) mean windows ran at different speeds: their CPU figures do not compare.
pub(crate) const FREQUENCY_MOVE_PCT: f64 = 10.0;

/// A certificate brought from files that expires within this many days is warned about.
pub(crate) const EXPIRY_WARNING_DAYS: f64 = 30.0;

/// A recording server whose frames leave later than this behind schedule (ms) had not
/// caught up with its ramp when the window opened.
pub(crate) const CAUGHT_UP_MS: f64 = 10.0;

/// Below this many bytes the kernel cross-check is reported but not judged.
pub(crate) const KERNEL_CHECK_MIN_BYTES: u64 = 1 << 20;

impl Report {
    /// Warnings derived from the figures themselves: shortfalls, late and dropped frames,
    /// failures, a debug build.
    pub fn derive_warnings(&mut self) {
        self.warnings
            .extend(self.environment.debug_build_warning("figures"));
        if self.partial {
            self.warnings
                .push("the run was interrupted: figures cover only what was measured".into());
        }
        let env = &self.environment;
        if env.cores > 0 && env.load_average_1m >= (env.cores as f64 * BUSY_LOAD_PER_CORE).max(1.0)
        {
            self.warnings.push(format!(
                "the machine was busy before the run started (1-minute load average {:.2} on \
                 {} cores): other work competed for the CPUs, so figures are noisier; measure \
                 on a quiet machine",
                env.load_average_1m, env.cores
            ));
        }
        self.derive_machine_warnings();
        self.derive_soak_warnings();
        for r in self
            .ramps
            .iter()
            .filter(|r| r.outcome.server_lag_ms > CAUGHT_UP_MS)
        {
            self.warnings.push(format!(
                "{} repeat {}: the recording servers were still {:.0} ms behind schedule when \
                 the window opened, {:.1} s into the phase: the window includes the backlog of \
                 the ramp; give a longer --warmup or a lower connect_rate",
                r.mode, r.repeat, r.outcome.server_lag_ms, r.outcome.window_opened_s
            ));
        }
        // Certificates brought from files can be near their end (or past it); generated
        // ones are made for the run.
        if let Some(c) = self.certificates.as_ref().filter(|c| c.source == "files") {
            for h in c.hosts.iter().filter(|h| h.days_left < EXPIRY_WARNING_DAYS) {
                let when = if h.days_left < 0.0 {
                    format!("expired {:.0} day(s) ago", -h.days_left)
                } else {
                    format!("expires in {:.0} day(s)", h.days_left)
                };
                self.warnings.push(format!(
                    "the certificate of {} (serial {}) {when}: renew it before it does; the \
                     seed system does not warn, and clients stop connecting once it has",
                    h.host,
                    short_serial(&h.serial)
                ));
            }
        }
        let faulty: Vec<&HostResult> = self
            .hosts
            .iter()
            .filter(|h| h.mode == Mode::Tls && h.outcome.fault.is_some())
            .collect();
        if !faulty.is_empty() {
            let mut links: Vec<&str> = faulty
                .iter()
                .flat_map(|h| h.outcome.links.iter().map(String::as_str))
                .collect();
            links.sort_unstable();
            links.dedup();
            self.warnings.push(format!(
                "certificate faults were staged: in the TLS phase the links to the faulty hosts \
                 ({}) carry failed clients, so their TLS/plain cost ratios measure the faults, \
                 not the cost of TLS",
                links.join(", ")
            ));
        }
        for h in &faulty {
            let o = &h.outcome;
            let Some(fault) = &o.fault else { continue };
            let Ok(kind) = fault.parse::<crate::engine::scenario::FaultKind>() else {
                continue;
            };
            let category = kind.category();
            if !o.client_errors.contains_key(category) && !o.server_errors.contains_key(category) {
                self.warnings.push(format!(
                    "fault {fault} on {}: no connection failed as {category}; are its links \
                     encrypted in the TLS phase, and does anything connect to it?",
                    o.host
                ));
            }
        }
        for r in &self.results {
            let f = &r.figures;
            let name = format!("{} ({})", r.link, r.mode);
            let short: Vec<String> = r
                .samples
                .iter()
                .enumerate()
                .filter(|(_, s)| s.frames_due > 0 && s.frames_received < s.frames_due)
                .map(|(i, s)| {
                    format!(
                        "{}{} of {} frames due arrived ({:.1} % short)",
                        if r.samples.len() > 1 {
                            format!("in repeat {}, ", i + 1)
                        } else {
                            String::new()
                        },
                        s.frames_received,
                        s.frames_due,
                        100.0 * (s.frames_due - s.frames_received) as f64 / s.frames_due as f64
                    )
                })
                .collect();
            if !short.is_empty() {
                self.warnings.push(format!(
                    "{name}: fell short of the due frame rate: {}; latency figures describe \
                     only the frames that arrived",
                    short.join(", ")
                ));
            }
            if f.late_frames > 0 {
                self.warnings.push(format!(
                    "{name}: {} frames arrived more than one frame interval late",
                    f.late_frames
                ));
            }
            if f.dropped_frames > 0 {
                self.warnings.push(format!(
                    "{name}: the recording server dropped {} frames for slow consumers",
                    f.dropped_frames
                ));
            }
            if !r.errors.is_empty() {
                let list: Vec<String> = r.errors.iter().map(|(k, v)| format!("{k} ×{v}")).collect();
                self.warnings
                    .push(format!("{name}: failures: {}", list.join(", ")));
            }
            if let Some(k) = &f.kernel_check {
                if k.kernel_bytes >= KERNEL_CHECK_MIN_BYTES
                    && k.discrepancy_pct.abs() > KERNEL_CHECK_TOLERANCE_PCT
                {
                    self.warnings.push(format!(
                        "{name}: the application read {} bytes from its sockets where the kernel \
                         received {} ({:+.2} %, more than {KERNEL_CHECK_TOLERANCE_PCT} %): the \
                         byte counts, and so goodput, are in doubt",
                        k.app_wire_bytes, k.kernel_bytes, k.discrepancy_pct
                    ));
                }
            }
        }
        self.derive_spread_warnings();
    }

    /// Warnings on the machine during the windows: the hypervisor stole more than
    /// [`STEAL_WARNING_PCT`] of the CPUs' time in some, or the CPUs' frequency moved by more
    /// than [`FREQUENCY_MOVE_PCT`] between them; each names the windows.
    fn derive_machine_warnings(&mut self) {
        let stolen: Vec<String> = self
            .cpu_windows
            .iter()
            .filter_map(|w| {
                let s = w.cpus.steal_pct.filter(|s| *s > STEAL_WARNING_PCT)?;
                Some(format!("{} {s:.1} %", w.name()))
            })
            .collect();
        if !stolen.is_empty() {
            self.warnings.push(format!(
                "the hypervisor took CPU time from this machine during {} window{} (steal above \
                 {STEAL_WARNING_PCT} % of CPU time: {}): other guests competed for the CPUs, \
                 so those windows' figures are noisier",
                stolen.len(),
                if stolen.len() == 1 { "" } else { "s" },
                stolen.join(", ")
            ));
        }
        let lowest = self
            .cpu_windows
            .iter()
            .filter_map(|w| Some((w, w.cpus.freq_min_mhz?)))
            .min_by(|a, b| a.1.total_cmp(&b.1));
        let highest = self
            .cpu_windows
            .iter()
            .rev()
            .filter_map(|w| Some((w, w.cpus.freq_max_mhz?)))
            .max_by(|a, b| a.1.total_cmp(&b.1));
        if let (Some((lo_w, lo)), Some((hi_w, hi))) = (lowest, highest) {
            let moved = 100.0 * (hi - lo) / hi.max(f64::EPSILON);
            if moved > FREQUENCY_MOVE_PCT {
                self.warnings.push(format!(
                    "the CPUs' frequency moved by {moved:.0} % across the windows (more than \
                     {FREQUENCY_MOVE_PCT} %): {lo:.0} MHz in {}, {hi:.0} MHz in {}; CPU figures \
                     of windows at different speeds do not compare: fix the frequency (governor \
                     performance) or measure on a quieter machine",
                    lo_w.name(),
                    hi_w.name()
                ));
            }
        }
    }

    /// Warnings on a soak: each figure that grew over it (see [`super::soak`]).
    fn derive_soak_warnings(&mut self) {
        for t in self.soak_trend.iter().filter(|t| t.grows) {
            let (what, show): (&str, fn(f64) -> String) = match t.figure.as_str() {
                "rss_bytes" => ("resident memory", |v| crate::units::format_bytes(v as u64)),
                "open_fds" => ("open descriptors", |v| format!("{v:.0}")),
                _ => ("CPU per GB", |v| format!("{v:.2} s/GB")),
            };
            self.warnings.push(format!(
                "soak: the process's {what} grew over the run: {} in the first interval, {} in \
                 the last; a least-squares line over the {} intervals after the first {:.0} % \
                 rises by {:+.1} % ({} an hour): a leak, or a load that is not steady",
                show(t.first),
                show(t.last),
                t.intervals_fitted,
                super::soak::WARM_UP_SHARE * 100.0,
                t.change_pct.unwrap_or(0.0),
                show(t.slope_per_hour.unwrap_or(0.0)),
            ));
        }
    }

    /// Warnings on costs whose 95 % intervals cannot be quoted: too few pairs for any
    /// interval, or a headline figure undecided (its interval wider than ±10 % and holding
    /// "no change"; see [`undecided`]), with what to change.
    fn derive_spread_warnings(&mut self) {
        let few = self
            .cost
            .iter()
            .map(|c| c.pairs)
            .filter(|p| *p < MIN_PAIRS)
            .max();
        if let Some(pairs) = few {
            self.warnings.push(format!(
                "the costs of TLS come from {pairs} plain/TLS pair{}: {}; run with --repeat 5 \
                 or more",
                if pairs == 1 { "" } else { "s" },
                if pairs < 2 {
                    "no interval can be given, nothing shows how much the next pair would differ"
                } else {
                    "their intervals are wide (few degrees of freedom)"
                }
            ));
        }
        for (what, key) in [
            ("goodput", "goodput_ratio"),
            ("p99", "latency_p99_ratio"),
            ("CPU per GB", "cpu_per_gb_ratio"),
        ] {
            let open: Vec<String> = self
                .cost
                .iter()
                .filter(|c| c.pairs >= 2 && undecided(c).contains(&what))
                .filter(|c| no_cost_because(self, &c.link).is_none())
                .filter_map(|c| {
                    let i = c.intervals.get(key)?;
                    Some(format!("{} ×{:.2}…×{:.2}", c.link, i.low, i.high))
                })
                .collect();
            if open.is_empty() {
                continue;
            }
            self.warnings.push(format!(
                "the cost of TLS on {what} is undecided on {} link{}: {} (95 % intervals wider \
                 than ±{:.0} % that hold no change); run with a longer --duration (steadier \
                 windows), more --repeat (more pairs) or on a quieter machine",
                open.len(),
                if open.len() == 1 { "" } else { "s" },
                open.join(", "),
                MAX_RELATIVE_HALF_WIDTH * 100.0,
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::export::tests::synthetic_report;

    fn machine_warnings(r: &crate::report::Report) -> Vec<&String> {
        r.warnings
            .iter()
            .filter(|w| w.contains("hypervisor") || w.contains("frequency"))
            .collect()
    }

    #[test]
    fn steal_and_a_moving_frequency_are_warned_about_naming_the_windows() {
        let mut r = synthetic_report();
        assert!(machine_warnings(&r).is_empty(), "{:?}", r.warnings);
        for w in &mut r.cpu_windows {
            w.cpus.freq_min_mhz = Some(2400.0);
            w.cpus.freq_max_mhz = Some(2450.0);
        }
        r.warnings.clear();
        r.derive_warnings();
        assert!(
            machine_warnings(&r).is_empty(),
            "2 % apart: {:?}",
            r.warnings
        );
        let w = &mut r.cpu_windows[3];
        assert_eq!(w.name(), "tls repeat 2");
        w.cpus.steal_pct = Some(3.5);
        w.cpus.freq_min_mhz = Some(1800.0);
        r.warnings.clear();
        r.derive_warnings();
        let found = machine_warnings(&r);
        assert_eq!(found.len(), 2, "{found:?}");
        assert!(found[0].contains("1 window") && found[0].contains("tls repeat 2 3.5 %"));
        assert!(
            found[1].contains("27 %")
                && found[1].contains("1800 MHz in tls repeat 2")
                && found[1].contains("2450 MHz in plain repeat 1"),
            "{}",
            found[1]
        );
    }
}

#[cfg(test)]
mod soak_tests {
    use crate::export::tests::synthetic_report;
    use crate::report::soak::SoakTrend;

    #[test]
    fn a_growing_soak_figure_is_warned_about_in_one_sentence() {
        let mut r = synthetic_report();
        r.soak_trend = vec![SoakTrend {
            figure: "cpu_s_per_gb".into(),
            first: 3.0,
            last: 4.5,
            intervals_fitted: 48,
            slope_per_hour: Some(9.0),
            change: Some(1.4),
            change_pct: Some(46.7),
            grows: true,
        }];
        r.warnings.clear();
        r.derive_warnings();
        let w: Vec<&String> = r
            .warnings
            .iter()
            .filter(|w| w.starts_with("soak"))
            .collect();
        assert_eq!(w.len(), 1, "{:?}", r.warnings);
        assert!(
            w[0].contains("CPU per GB grew over the run: 3.00 s/GB in the first interval, 4.50 s/GB in the last;")
                && w[0].contains("48 intervals after the first 20 % rises by +46.7 % (9.00 s/GB an hour)"),
            "{}",
            w[0]
        );
        assert!(
            r.warnings.iter().all(|w| !w.contains("  ")),
            "{:?}",
            r.warnings
        );
    }
}
