//! The machine's CPUs during a measured window: the share of their time the hypervisor
//! gave to other guests (steal, from the `cpu` line of `/proc/stat`) and the frequency they
//! ran at (`scaling_cur_freq` in sysfs, which many virtual machines do not expose).
//!
//! A window is read at its opening and at its close: steal is the difference of the two
//! readings over all CPUs, the frequency the least and the most any CPU showed in either.

use std::fs;

use serde::{Deserialize, Serialize};

/// Where the kernel lists the CPUs, each with a `cpufreq/scaling_cur_freq` when the
/// frequency is exposed.
const CPU_DIR: &str = "/sys/devices/system/cpu";

/// CPU time since boot, all CPUs together, in jiffies (clock ticks).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct CpuTimes {
    /// Every state: user, nice, system, idle, iowait, irq, softirq, steal.
    pub total: u64,
    /// Time a hypervisor ran something else while this guest wanted the CPU.
    pub steal: u64,
}

/// The aggregate `cpu` line of `/proc/stat` text (`cpu user nice system idle iowait irq
/// softirq steal guest guest_nice`). Guest time is already counted in user and nice, so
/// the total leaves it out; kernels older than 2.6.11 list no steal (then 0). `None` when
/// the line is missing or malformed.
pub(crate) fn parse_stat(text: &str) -> Option<CpuTimes> {
    let line = text
        .lines()
        .find(|l| l.split_whitespace().next() == Some("cpu"))?;
    let fields: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .map(|f| f.parse().ok())
        .collect::<Option<_>>()?;
    if fields.len() < 4 {
        return None;
    }
    let total = fields
        .iter()
        .take(8)
        .try_fold(0u64, |sum, f| sum.checked_add(*f))?;
    Some(CpuTimes {
        total,
        steal: fields.get(7).copied().unwrap_or(0),
    })
}

/// A CPU's current frequency from `scaling_cur_freq` text (kHz), in MHz.
pub(crate) fn parse_frequency_mhz(text: &str) -> Option<f64> {
    let khz: u64 = text.trim().parse().ok()?;
    (khz > 0).then(|| khz as f64 / 1e3)
}

/// The CPUs at one moment.
#[derive(Clone, Debug, Default)]
pub(crate) struct Reading {
    /// `None` when `/proc/stat` could not be read.
    times: Option<CpuTimes>,
    /// Each CPU's frequency, MHz; empty when none is exposed.
    frequencies_mhz: Vec<f64>,
}

impl Reading {
    /// Reads `/proc/stat` and every CPU's current frequency now.
    pub(crate) fn now() -> Reading {
        let times = fs::read_to_string("/proc/stat")
            .ok()
            .and_then(|t| parse_stat(&t));
        let frequencies_mhz = fs::read_dir(CPU_DIR)
            .map(|dir| {
                dir.filter_map(Result::ok)
                    .filter(|e| {
                        let name = e.file_name();
                        let name = name.to_string_lossy();
                        name.strip_prefix("cpu")
                            .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
                    })
                    .filter_map(|e| {
                        fs::read_to_string(e.path().join("cpufreq/scaling_cur_freq")).ok()
                    })
                    .filter_map(|t| parse_frequency_mhz(&t))
                    .collect()
            })
            .unwrap_or_default();
        Reading {
            times,
            frequencies_mhz,
        }
    }
}

/// What the CPUs did during one window (or, summed, during every window of a run).
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct CpuWindow {
    /// Share of the CPUs' time stolen by the hypervisor, percent; `null` when `/proc/stat`
    /// could not be read.
    pub steal_pct: Option<f64>,
    /// CPU time that passed, all CPUs, jiffies (0 when unknown).
    pub total_jiffies: u64,
    /// Of which stolen, jiffies.
    pub steal_jiffies: u64,
    /// The lowest frequency any CPU showed at the window's ends, MHz; `null` when the
    /// kernel exposes none (most virtual machines).
    pub freq_min_mhz: Option<f64>,
    /// The highest, MHz; `null` when not exposed.
    pub freq_max_mhz: Option<f64>,
}

impl CpuWindow {
    /// What happened between `open` and `close`.
    pub(crate) fn between(open: &Reading, close: &Reading) -> CpuWindow {
        let (total, steal) = match (open.times, close.times) {
            (Some(a), Some(b)) => (
                Some(b.total.saturating_sub(a.total)),
                b.steal.saturating_sub(a.steal),
            ),
            _ => (None, 0),
        };
        let freqs = || open.frequencies_mhz.iter().chain(&close.frequencies_mhz);
        CpuWindow {
            steal_pct: total.map(|t| share_pct(steal, t)),
            total_jiffies: total.unwrap_or(0),
            steal_jiffies: steal,
            freq_min_mhz: freqs().copied().reduce(f64::min),
            freq_max_mhz: freqs().copied().reduce(f64::max),
        }
    }

    /// Every window of `windows` together: steal over their summed time, the frequency's
    /// extremes over all of them. `None` when there is none.
    pub fn summed<'a>(windows: impl IntoIterator<Item = &'a CpuWindow>) -> Option<CpuWindow> {
        windows.into_iter().fold(None, |sum, w| {
            let Some(s) = sum else { return Some(*w) };
            let (total, steal) = (
                s.total_jiffies + w.total_jiffies,
                s.steal_jiffies + w.steal_jiffies,
            );
            let pick = |a: Option<f64>, b: Option<f64>, f: fn(f64, f64) -> f64| match (a, b) {
                (Some(a), Some(b)) => Some(f(a, b)),
                (a, b) => a.or(b),
            };
            Some(CpuWindow {
                steal_pct: s.steal_pct.or(w.steal_pct).map(|_| share_pct(steal, total)),
                total_jiffies: total,
                steal_jiffies: steal,
                freq_min_mhz: pick(s.freq_min_mhz, w.freq_min_mhz, f64::min),
                freq_max_mhz: pick(s.freq_max_mhz, w.freq_max_mhz, f64::max),
            })
        })
    }

    /// One line for people, e.g. `steal 0.4 % of CPU time, frequency 2450–2450 MHz` or
    /// `steal 0.0 % of CPU time, frequency not exposed`.
    pub fn describe(&self) -> String {
        let steal = self
            .steal_pct
            .map_or("steal unknown (no /proc/stat)".to_owned(), |s| {
                format!("steal {s:.1} % of CPU time")
            });
        let freq = match (self.freq_min_mhz, self.freq_max_mhz) {
            (Some(lo), Some(hi)) => format!("frequency {lo:.0}–{hi:.0} MHz"),
            _ => "frequency not exposed".to_owned(),
        };
        format!("{steal}, {freq}")
    }
}

/// `part` of `whole` in percent (0 when `whole` is 0).
fn share_pct(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        100.0 * part as f64 / whole as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const STAT_OPEN: &str = "cpu  4705 356 584 3699 23 23 0 100 0 0\n\
        cpu0 1393 280 290 1847 14 17 0 50 0 0\n\
        cpu1 3312 76 294 1852 9 6 0 50 0 0\n\
        intr 114930548 113199788 3 0 5 263 0 4 [... lots more numbers ...]\n\
        ctxt 1990473\n";
    const STAT_CLOSE: &str = "cpu  5705 356 584 4599 23 23 0 200 40 0\n\
        cpu0 1893 280 290 2297 14 17 0 100 20 0\n";

    #[test]
    fn parses_the_aggregate_cpu_line() {
        let open = parse_stat(STAT_OPEN).expect("parses");
        assert_eq!(open.steal, 100);
        assert_eq!(open.total, 4705 + 356 + 584 + 3699 + 23 + 23 + 100);
        // Guest time is in user already: not counted twice.
        let close = parse_stat(STAT_CLOSE).expect("parses");
        assert_eq!(close.total - open.total, 1000 + 900 + 100);
        // An old kernel without steal, and lines that are not a cpu line.
        assert_eq!(
            parse_stat("cpu 10 0 10 80\n"),
            Some(CpuTimes {
                total: 100,
                steal: 0
            })
        );
        for bad in [
            "",
            "cpu0 1 2 3 4\n",
            "cpu 1 2 x 4\n",
            "cpu 1 2\n",
            "intr 5\n",
        ] {
            assert_eq!(parse_stat(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn steal_is_the_share_of_the_time_between_the_readings() {
        let at = |stat: &str, mhz: &[f64]| Reading {
            times: parse_stat(stat),
            frequencies_mhz: mhz.to_vec(),
        };
        let w = CpuWindow::between(
            &at(STAT_OPEN, &[2400.0, 2500.0]),
            &at(STAT_CLOSE, &[2200.0, 2450.0]),
        );
        assert_eq!((w.total_jiffies, w.steal_jiffies), (2000, 100));
        assert_eq!(w.steal_pct, Some(5.0));
        assert_eq!(
            (w.freq_min_mhz, w.freq_max_mhz),
            (Some(2200.0), Some(2500.0))
        );
        assert_eq!(
            w.describe(),
            "steal 5.0 % of CPU time, frequency 2200–2500 MHz"
        );
        // No frequency exposed, no /proc/stat: null, and said so.
        let none = CpuWindow::between(&Reading::default(), &Reading::default());
        assert_eq!((none.steal_pct, none.freq_min_mhz), (None, None));
        assert!(none.describe().ends_with("frequency not exposed"));
        // Summed over windows: steal over the summed time, the extremes of all.
        let quiet = CpuWindow::between(&at(STAT_OPEN, &[]), &at(STAT_OPEN, &[]));
        let all = CpuWindow::summed([&w, &quiet, &w]).expect("windows");
        assert_eq!(all.steal_pct, Some(5.0));
        assert_eq!(all.freq_max_mhz, Some(2500.0));
        assert_eq!(CpuWindow::summed([]), None);
    }

    #[test]
    fn parses_frequencies_and_reads_this_machine() {
        assert_eq!(parse_frequency_mhz("2450000\n"), Some(2450.0));
        assert_eq!(parse_frequency_mhz("0"), None);
        assert_eq!(parse_frequency_mhz("fast"), None);
        let r = Reading::now();
        #[cfg(target_os = "linux")]
        assert!(r.times.is_some_and(|t| t.total > 0), "{r:?}");
        assert!(r.frequencies_mhz.iter().all(|f| f.is_finite() && *f > 0.0));
    }
}
