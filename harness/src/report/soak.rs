//! A soak: one mode at a steady load for a long window, sampled every interval — the
//! process's resident memory, its open descriptors, its CPU per GB of payload — and whether
//! any of them grew over the run.
//!
//! The growth rule: leave out the first [`WARM_UP_SHARE`] of the intervals (connections
//! settle, pools and caches fill), fit a least-squares line to the rest, and call a figure
//! growing when the line rises over that part by more than the figure's threshold, both in
//! its own unit and relative to where the line starts (see [`RULES`]). A fit needs at
//! least [`MIN_FITTED`] intervals. A straight line through the whole steady part is not
//! moved much by one noisy interval, and a jump during the warm-up is left out of it.

use serde::{Deserialize, Serialize};

use crate::engine::sampler::ProcessSample;

/// Share of the intervals left out of the fit at the start of a soak.
pub(crate) const WARM_UP_SHARE: f64 = 0.2;

/// Fewest intervals a fit is made on.
pub(crate) const MIN_FITTED: usize = 4;

/// Each figure's threshold: (figure, change in its unit, change in percent). A figure grows
/// when its fitted change exceeds both.
pub(crate) const RULES: [(&str, f64, f64); 3] = [
    ("rss_bytes", 4.0 * 1024.0 * 1024.0, 5.0),
    ("open_fds", 5.0, 2.0),
    ("cpu_s_per_gb", 0.0, 10.0),
];

/// What the process was and did in one interval of a soak.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SoakInterval {
    /// End of the interval, seconds after the window opened.
    pub t_s: f64,
    /// Length of the interval, seconds.
    pub interval_s: f64,
    /// Resident memory of the process at its end, bytes.
    pub rss_bytes: u64,
    /// Open descriptors of the process at its end.
    pub open_fds: u64,
    /// CPU seconds (user + system) of the whole process in the interval.
    pub cpu_s: f64,
    /// Those per 10⁹ payload bytes received in it; `null` when none arrived.
    pub cpu_s_per_gb: Option<f64>,
    /// Payload received in the interval over its length, Mbit/s (every link).
    pub goodput_mbit_s: f64,
    /// Frames scheduled in the interval, every link.
    pub frames_due: u64,
    /// Frames received in the interval: frames in flight at its ends make it differ from
    /// `frames_due` by a few; the whole window's counts are exact.
    pub frames_received: u64,
}

impl From<&ProcessSample> for SoakInterval {
    fn from(p: &ProcessSample) -> Self {
        SoakInterval {
            t_s: p.t_s,
            interval_s: p.interval_s,
            rss_bytes: p.rss_bytes,
            open_fds: p.open_fds,
            cpu_s: p.cpu_s,
            cpu_s_per_gb: (p.bytes > 0).then(|| p.cpu_s / (p.bytes as f64 / 1e9)),
            goodput_mbit_s: if p.interval_s > 0.0 {
                p.bytes as f64 * 8.0 / p.interval_s / 1e6
            } else {
                0.0
            },
            frames_due: p.frames_due,
            frames_received: p.frames,
        }
    }
}

impl SoakInterval {
    /// The value of `figure` (one of [`RULES`]' names) in this interval.
    fn figure(&self, figure: &str) -> Option<f64> {
        match figure {
            "rss_bytes" => Some(self.rss_bytes as f64),
            "open_fds" => Some(self.open_fds as f64),
            "cpu_s_per_gb" => self.cpu_s_per_gb,
            _ => None,
        }
    }
}

/// How one figure moved over a soak.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SoakTrend {
    /// `rss_bytes`, `open_fds` or `cpu_s_per_gb`.
    pub figure: String,
    /// Its value in the first interval that has one.
    pub first: f64,
    /// In the last.
    pub last: f64,
    /// Intervals the line was fitted to (those after the warm-up share).
    pub intervals_fitted: usize,
    /// Slope of the fitted line, per hour; `null` with fewer than the fewest intervals.
    pub slope_per_hour: Option<f64>,
    /// How far the line rises over the fitted part, in the figure's unit.
    pub change: Option<f64>,
    /// The same relative to where the line starts, percent.
    pub change_pct: Option<f64>,
    /// Whether the change exceeds the figure's thresholds.
    pub grows: bool,
}

/// The trend of every figure of [`RULES`] over `intervals` (none without intervals).
pub(crate) fn trends(intervals: &[SoakInterval]) -> Vec<SoakTrend> {
    if intervals.is_empty() {
        return Vec::new();
    }
    RULES
        .iter()
        .map(|(figure, floor, pct)| {
            let points: Vec<(f64, f64)> = intervals
                .iter()
                .filter_map(|i| Some((i.t_s, i.figure(figure)?)))
                .filter(|(t, v)| t.is_finite() && v.is_finite())
                .collect();
            trend(figure, &points, *floor, *pct)
        })
        .collect()
}

/// The trend of `points` (time, value), growing when the fitted change exceeds `floor`
/// and `pct` percent.
fn trend(figure: &str, points: &[(f64, f64)], floor: f64, pct: f64) -> SoakTrend {
    let skip = ((points.len() as f64 * WARM_UP_SHARE).ceil() as usize).max(1);
    let fitted = points.get(skip..).unwrap_or_default();
    let line = (fitted.len() >= MIN_FITTED)
        .then(|| least_squares(fitted))
        .flatten();
    let (change, change_pct) = match (line, fitted.first(), fitted.last()) {
        (Some((a, b)), Some((t0, _)), Some((t1, _))) => {
            let start = a + b * t0;
            let change = b * (t1 - t0);
            (
                Some(change),
                (start.abs() > f64::EPSILON).then(|| 100.0 * change / start.abs()),
            )
        }
        _ => (None, None),
    };
    SoakTrend {
        figure: figure.to_owned(),
        first: points.first().map_or(0.0, |p| p.1),
        last: points.last().map_or(0.0, |p| p.1),
        intervals_fitted: fitted.len(),
        slope_per_hour: line.map(|(_, b)| b * 3600.0),
        change,
        change_pct,
        grows: change.is_some_and(|c| c > floor) && change_pct.is_some_and(|p| p > pct),
    }
}

/// Intercept and slope of the least-squares line through `points`; `None` when their
/// times do not vary.
fn least_squares(points: &[(f64, f64)]) -> Option<(f64, f64)> {
    let n = points.len() as f64;
    let mean_t = points.iter().map(|p| p.0).sum::<f64>() / n;
    let mean_v = points.iter().map(|p| p.1).sum::<f64>() / n;
    let (mut stt, mut stv) = (0.0, 0.0);
    for (t, v) in points {
        stt += (t - mean_t) * (t - mean_t);
        stv += (t - mean_t) * (v - mean_v);
    }
    (stt > 0.0).then(|| {
        let b = stv / stt;
        (mean_v - b * mean_t, b)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A soak of `n` 10 s intervals whose RSS (MiB), descriptors and CPU per GB follow `f`.
    fn soak(n: usize, f: impl Fn(usize) -> (f64, u64, f64)) -> Vec<SoakInterval> {
        (0..n)
            .map(|i| {
                let (rss_mib, fds, cpu_per_gb) = f(i);
                SoakInterval {
                    t_s: 10.0 * (i + 1) as f64,
                    interval_s: 10.0,
                    rss_bytes: (rss_mib * 1024.0 * 1024.0) as u64,
                    open_fds: fds,
                    cpu_s: cpu_per_gb * 0.05,
                    cpu_s_per_gb: Some(cpu_per_gb),
                    goodput_mbit_s: 40.0,
                    frames_due: 300,
                    frames_received: 300,
                }
            })
            .collect()
    }

    fn growing(t: &[SoakTrend]) -> Vec<&str> {
        t.iter()
            .filter(|t| t.grows)
            .map(|t| t.figure.as_str())
            .collect()
    }

    /// Small, repeatable noise in −1…1.
    fn noise(i: usize) -> f64 {
        ((i * 7919) % 13) as f64 / 6.0 - 1.0
    }

    #[test]
    fn a_flat_soak_does_not_grow() {
        let t = trends(&soak(60, |i| {
            (120.0 + noise(i), 2010, 3.0 + 0.1 * noise(i))
        }));
        assert_eq!(growing(&t), Vec::<&str>::new(), "{t:#?}");
        assert_eq!(t[0].intervals_fitted, 48, "the first 20 % left out");
        assert!(t
            .iter()
            .all(|t| t.slope_per_hour.is_some_and(f64::is_finite)));
    }

    #[test]
    fn a_steady_leak_grows() {
        // 0.5 MiB, two descriptors and 1 % more CPU per GB every interval.
        let t = trends(&soak(60, |i| {
            (
                120.0 + 0.5 * i as f64 + noise(i),
                2010 + 2 * i as u64,
                3.0 * (1.0 + 0.01 * i as f64),
            )
        }));
        assert_eq!(growing(&t), vec!["rss_bytes", "open_fds", "cpu_s_per_gb"]);
        let rss = &t[0];
        assert!(rss.change_pct.is_some_and(|p| p > 15.0), "{rss:?}");
        assert!(
            rss.slope_per_hour
                .is_some_and(|s| (s / (1024.0 * 1024.0) - 180.0).abs() < 10.0),
            "0.5 MiB per 10 s is 180 MiB an hour: {rss:?}"
        );
    }

    #[test]
    fn a_jump_during_the_warm_up_then_flat_does_not_grow() {
        let t = trends(&soak(60, |i| {
            if i < 5 {
                (60.0 + 10.0 * i as f64, 1000 + 200 * i as u64, 6.0)
            } else {
                (120.0 + noise(i), 2010, 3.0 + 0.1 * noise(i))
            }
        }));
        assert_eq!(growing(&t), Vec::<&str>::new(), "{t:#?}");
        assert_eq!((t[1].first, t[1].last), (1000.0, 2010.0));
    }

    #[test]
    fn too_few_intervals_give_no_verdict() {
        let t = trends(&soak(4, |i| (100.0 * (i + 1) as f64, 10, 3.0)));
        assert!(t
            .iter()
            .all(|t| !t.grows && t.slope_per_hour.is_none() && t.change_pct.is_none()));
        assert!(trends(&[]).is_empty(), "not a soak");
        assert_eq!(least_squares(&[(1.0, 2.0), (1.0, 3.0)]), None);
    }
}
