//! 95 % intervals for what TLS changes on a link, from the interleaved plain/TLS pairs.
//!
//! The unit of the design is the pair: one plaintext phase and the TLS phase after it, in
//! the same sitting. Frames within a window are not independent (a descheduled thread, a
//! full socket buffer, a burst of key frames delay many neighbours at once), so they are
//! never resampled one by one; neither are a window's one-second blocks once there are
//! pairs, because a window's own noise is already inside its pair's figure, and resampling
//! both levels would count it twice. What varies from pair to pair (other work on the
//! machine, frequency changes, where the scheduler put the threads) is the uncertainty a
//! reader cares about, and only repeats show it.
//!
//! So each cost is estimated per pair — a ratio on the log scale (TLS ÷ plain), a
//! difference in the figure's unit (TLS − plain) — and the pairs are resampled with
//! replacement (a seeded bootstrap, so that a report is reproducible). The spread of the
//! bootstrap means is the standard error; with few pairs it is too small by a factor
//! √((n−1)/n) and the normal quantile too optimistic, so the interval is the mean ± the
//! Student t quantile for n−1 degrees of freedom times the corrected standard error. Its
//! coverage is checked on synthetic pairs with a known effect in the tests below.
//!
//! One pair gives no interval: nothing says how much the next pair would differ.

use serde::{Deserialize, Serialize};

/// Bootstrap resamples per interval.
const RESAMPLES: usize = 2000;

/// The seed of every bootstrap: the same pairs give the same interval.
const SEED: u64 = 0x766d_7362_656e_6368;

/// An interval that covers the true figure with probability 0.95.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Interval {
    /// Lower end.
    pub low: f64,
    /// Upper end.
    pub high: f64,
}

impl Interval {
    /// Whether `x` lies inside.
    pub fn contains(&self, x: f64) -> bool {
        self.low <= x && x <= self.high
    }

    /// Half the width relative to the middle: 0.1 reads as "±10 %". Infinite when the
    /// middle is zero.
    pub fn relative_half_width(&self) -> f64 {
        let mid = (self.low + self.high) / 2.0;
        if mid == 0.0 {
            f64::INFINITY
        } else {
            ((self.high - self.low) / 2.0 / mid).abs()
        }
    }
}

/// The interval of TLS ÷ plain over `pairs` of (plain, tls) figures: the geometric mean of
/// the per-pair ratios and its interval. Pairs with a zero, negative or missing figure are
/// left out; `None` under two usable pairs.
pub(crate) fn ratio(pairs: &[(f64, f64)]) -> Option<Interval> {
    let logs: Vec<f64> = pairs
        .iter()
        .filter(|(p, t)| p.is_finite() && t.is_finite() && *p > 0.0 && *t > 0.0)
        .map(|(p, t)| (t / p).ln())
        .collect();
    let i = mean_interval(&logs)?;
    Some(Interval {
        low: i.low.exp(),
        high: i.high.exp(),
    })
}

/// The interval of TLS − plain over `pairs` of (plain, tls) figures; `None` under two
/// usable pairs.
pub(crate) fn difference(pairs: &[(f64, f64)]) -> Option<Interval> {
    let diffs: Vec<f64> = pairs
        .iter()
        .filter(|(p, t)| p.is_finite() && t.is_finite())
        .map(|(p, t)| t - p)
        .collect();
    mean_interval(&diffs)
}

/// The interval of the mean of `values` (one figure per repeat, e.g. a handshake time that
/// plaintext does not have); `None` under two values.
pub(crate) fn mean(values: &[f64]) -> Option<Interval> {
    let v: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
    mean_interval(&v)
}

/// Mean ± t(n−1) × bootstrap standard error × √(n/(n−1)).
fn mean_interval(values: &[f64]) -> Option<Interval> {
    let n = values.len();
    if n < 2 {
        return None;
    }
    let centre = values.iter().sum::<f64>() / n as f64;
    let mut rng = fastrand::Rng::with_seed(SEED ^ n as u64);
    let mut sum = 0.0;
    let mut sum_sq = 0.0;
    for _ in 0..RESAMPLES {
        let m = (0..n).map(|_| values[rng.usize(..n)]).sum::<f64>() / n as f64;
        sum += m;
        sum_sq += m * m;
    }
    let r = RESAMPLES as f64;
    let var = (sum_sq / r - (sum / r).powi(2)).max(0.0);
    let se = (var * n as f64 / (n - 1) as f64).sqrt();
    let half = student_t_975(n - 1) * se;
    Some(Interval {
        low: centre - half,
        high: centre + half,
    })
}

/// The 97.5th percentile of Student's t distribution with `df` degrees of freedom (a
/// two-sided 95 % interval).
pub(crate) fn student_t_975(df: usize) -> f64 {
    const TABLE: [f64; 30] = [
        12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160,
        2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056,
        2.052, 2.048, 2.045, 2.042,
    ];
    match df {
        0 => f64::INFINITY,
        d if d <= TABLE.len() => TABLE[d - 1],
        d if d <= 60 => 2.000 + (2.042 - 2.000) * (60 - d) as f64 / 30.0,
        _ => 1.960,
    }
}

/// What an interval of a difference says, in words a planner can quote.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Finding {
    /// The whole interval lies above no change: TLS adds.
    More,
    /// The whole interval lies below no change: TLS takes away.
    Less,
    /// The interval holds no change: no difference detectable.
    NoDifference,
}

impl Finding {
    /// Of an interval of a ratio (no change: 1) or a difference (no change: 0).
    pub(crate) fn of(i: &Interval, no_change: f64) -> Finding {
        if i.low > no_change {
            Finding::More
        } else if i.high < no_change {
            Finding::Less
        } else {
            Finding::NoDifference
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Normal deviates from a seeded generator (Box–Muller).
    fn normal(rng: &mut fastrand::Rng) -> f64 {
        let u1 = rng.f64().max(f64::MIN_POSITIVE);
        let u2 = rng.f64();
        (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
    }

    /// `pairs` pairs of a figure near 100 whose TLS value is `effect` times the plain one,
    /// each phase with its own noise (sd `noise` on the log scale) and each pair sharing a
    /// sitting's drift (the machine got busier: both phases move together).
    fn synthetic(
        rng: &mut fastrand::Rng,
        pairs: usize,
        effect: f64,
        noise: f64,
    ) -> Vec<(f64, f64)> {
        (0..pairs)
            .map(|_| {
                let drift = 0.2 * normal(rng);
                let plain = 100.0 * (drift + noise * normal(rng)).exp();
                let tls = 100.0 * effect * (drift + noise * normal(rng)).exp();
                (plain, tls)
            })
            .collect()
    }

    #[test]
    fn intervals_cover_a_known_effect_in_at_least_nine_trials_of_ten() {
        let mut rng = fastrand::Rng::with_seed(7);
        for pairs in [3, 5, 10] {
            for (effect, noise) in [(1.3, 0.05), (1.05, 0.1), (0.8, 0.2)] {
                let trials = 500;
                let covered = (0..trials)
                    .filter(|_| {
                        let data = synthetic(&mut rng, pairs, effect, noise);
                        ratio(&data).is_some_and(|i| i.contains(effect))
                    })
                    .count();
                assert!(
                    covered * 10 >= trials * 9,
                    "{pairs} pairs, effect ×{effect}, noise {noise}: covered {covered} of {trials}"
                );
            }
        }
    }

    /// In how many of `trials` sets of 5 synthetic pairs (`effect`, `noise`) `holds` is true.
    fn trials_where(
        rng: &mut fastrand::Rng,
        trials: usize,
        effect: f64,
        noise: f64,
        holds: impl Fn(&[(f64, f64)]) -> bool,
    ) -> usize {
        (0..trials)
            .filter(|_| holds(&synthetic(rng, 5, effect, noise)))
            .count()
    }

    #[test]
    fn a_large_effect_is_detected_and_no_effect_reads_as_none_detectable() {
        let mut rng = fastrand::Rng::with_seed(11);
        let trials = 500;
        let detected = trials_where(&mut rng, trials, 1.3, 0.05, |data| {
            ratio(data).is_some_and(|i| Finding::of(&i, 1.0) == Finding::More)
        });
        assert!(
            detected * 10 >= trials * 9,
            "×1.3 detected in {detected} of {trials}"
        );
        let quiet = trials_where(&mut rng, trials, 1.0, 0.1, |data| {
            ratio(data).is_some_and(|i| Finding::of(&i, 1.0) == Finding::NoDifference)
        });
        assert!(
            quiet * 10 >= trials * 9,
            "no effect: none detectable in {quiet} of {trials}"
        );
        // The same on differences, in the figure's unit.
        let quiet = trials_where(&mut rng, trials, 1.0, 0.1, |data| {
            difference(data).is_some_and(|i| Finding::of(&i, 0.0) == Finding::NoDifference)
        });
        assert!(quiet * 10 >= trials * 9, "differences: {quiet} of {trials}");
    }

    #[test]
    fn the_same_pairs_give_the_same_interval_and_one_pair_gives_none() {
        let pairs = [(100.0, 120.0), (101.0, 119.0), (99.0, 125.0)];
        assert_eq!(ratio(&pairs), ratio(&pairs));
        let i = ratio(&pairs).expect("three pairs");
        assert!(i.low > 1.0 && i.high < 1.4, "{i:?}");
        assert_eq!(ratio(&pairs[..1]), None);
        assert_eq!(difference(&pairs[..1]), None);
        assert_eq!(mean(&[5.0]), None);
        // A pair with a zero figure cannot give a ratio; it still gives a difference.
        let with_zero = [(0.0, 1.0), (100.0, 120.0)];
        assert_eq!(ratio(&with_zero), None);
        assert!(difference(&with_zero).is_some());
    }

    #[test]
    fn findings_follow_the_interval() {
        let up = Interval {
            low: 1.1,
            high: 1.3,
        };
        let across = Interval {
            low: 0.9,
            high: 1.2,
        };
        let down = Interval {
            low: -3.0,
            high: -1.0,
        };
        assert_eq!(Finding::of(&up, 1.0), Finding::More);
        assert_eq!(Finding::of(&across, 1.0), Finding::NoDifference);
        assert_eq!(Finding::of(&down, 0.0), Finding::Less);
        assert!((up.relative_half_width() - 0.1 / 1.2).abs() < 1e-12);
    }
}
