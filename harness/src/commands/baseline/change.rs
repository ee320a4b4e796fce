//! The 95 % interval of a figure's change between a baseline and a result, from what each
//! report recorded about its own uncertainty:
//!
//! - **repeats** (`samples`, one figure per repeat, in `run` and `bulk` results): the
//!   difference of the two means, Welch's standard error and Student's t with the
//!   Welch–Satterthwaite degrees of freedom;
//! - **intervals** (`intervals.<figure>` of `cost` entries and capacity modes, or a range
//!   the metric names, like a capacity boundary's): each read as centre ± 1.96 standard
//!   errors and combined as independent normal estimates, on the log scale when both are
//!   positive.
//!
//! Either way the interval holds only the noise each report saw within its own sitting. When
//! the machine changes between sittings (other work, another load), two runs of one build can
//! differ by more than that: the check then flags a change that is the machine's, and the
//! notes show the load each report was made under.
//!
//! The change is per cent of the baseline's figure. A regression is a change whose whole
//! interval lies beyond the threshold: identical builds on a noisy machine then do not fail,
//! while a real loss larger than the threshold and than the noise still does.

use serde_json::Value;

use super::kinds::{pointer, Metric};
use crate::report::interval::{student_t_975, Interval};

/// The normal quantile an interval is read with (its half-width is this many standard
/// errors).
const Z: f64 = 1.96;

/// Per cent change of `metric` from `baseline` to `result`, with its 95 % interval: from
/// their repeats when both have at least two, else from their recorded intervals; `None`
/// when neither is there (the medians alone decide).
pub(super) fn change_interval(
    metric: &Metric,
    baseline: &Value,
    result: &Value,
) -> Option<Interval> {
    from_repeats(metric, baseline, result).or_else(|| from_intervals(metric, baseline, result))
}

/// The figure in every repeat of an entry.
fn repeats(metric: &Metric, entry: &Value) -> Vec<f64> {
    let at = pointer(metric.path);
    entry
        .get("samples")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|s| s.pointer(&at).and_then(Value::as_f64))
        .filter(|x| x.is_finite())
        .collect()
}

fn mean_and_variance(v: &[f64]) -> (f64, f64) {
    let n = v.len() as f64;
    let mean = v.iter().sum::<f64>() / n;
    let var = v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0);
    (mean, var)
}

fn from_repeats(metric: &Metric, baseline: &Value, result: &Value) -> Option<Interval> {
    let (b, n) = (repeats(metric, baseline), repeats(metric, result));
    if b.len() < 2 || n.len() < 2 {
        return None;
    }
    let (mb, vb) = mean_and_variance(&b);
    let (mn, vn) = mean_and_variance(&n);
    let (qb, qn) = (vb / b.len() as f64, vn / n.len() as f64);
    let se = (qb + qn).sqrt();
    // Welch–Satterthwaite; with no variance at all, the smaller sample's degrees.
    let df = if qb + qn > 0.0 {
        let denom = qb * qb / (b.len() - 1) as f64 + qn * qn / (n.len() - 1) as f64;
        ((qb + qn).powi(2) / denom).floor().max(1.0) as usize
    } else {
        b.len().min(n.len()) - 1
    };
    per_cent(mb, mn - mb, student_t_975(df) * se)
}

/// The interval a report recorded for the figure: `intervals.<path>`, or the metric's own
/// place for it.
fn recorded(metric: &Metric, entry: &Value) -> Option<(f64, f64)> {
    let i = match metric.interval_path {
        Some(p) => entry.pointer(&pointer(p))?,
        None => entry.get("intervals")?.get(metric.path)?,
    };
    let (low, high) = (i.get("low")?.as_f64()?, i.get("high")?.as_f64()?);
    (low.is_finite() && high.is_finite() && low <= high).then_some((low, high))
}

fn from_intervals(metric: &Metric, baseline: &Value, result: &Value) -> Option<Interval> {
    let ((bl, bh), (nl, nh)) = (recorded(metric, baseline)?, recorded(metric, result)?);
    // Combined where the intervals are symmetric: on the log scale for positive figures
    // (ratios are intervals of geometric means; counts and CPU per camera are positive),
    // on the figure's own scale otherwise.
    if bl > 0.0 && nl > 0.0 {
        let (b, n) = (log_centre_and_se(bl, bh), log_centre_and_se(nl, nh));
        let d = n.0 - b.0;
        let half = Z * (b.1 * b.1 + n.1 * n.1).sqrt();
        return Some(Interval {
            low: ((d - half).exp() - 1.0) * 100.0,
            high: ((d + half).exp() - 1.0) * 100.0,
        });
    }
    let (mb, mn) = ((bl + bh) / 2.0, (nl + nh) / 2.0);
    let (sb, sn) = ((bh - bl) / 2.0 / Z, (nh - nl) / 2.0 / Z);
    per_cent(mb, mn - mb, Z * (sb * sb + sn * sn).sqrt())
}

/// The centre and standard error of a positive interval on the log scale.
fn log_centre_and_se(low: f64, high: f64) -> (f64, f64) {
    let (l, h) = (low.ln(), high.ln());
    ((l + h) / 2.0, (h - l) / 2.0 / Z)
}

/// `difference ± half` as per cent of `base`.
fn per_cent(base: f64, difference: f64, half: f64) -> Option<Interval> {
    (base != 0.0 && half.is_finite()).then(|| Interval {
        low: (difference - half) / base.abs() * 100.0,
        high: (difference + half) / base.abs() * 100.0,
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::commands::baseline::kinds::{m, Direction, Family};

    const GOODPUT: Metric = m(
        "goodput_mbit_s",
        Direction::HigherIsBetter,
        Family::Goodput,
        0.0,
    );

    fn entry(values: &[f64]) -> Value {
        json!({ "samples": values.iter().map(|v| json!({ "goodput_mbit_s": v })).collect::<Vec<_>>() })
    }

    #[test]
    fn repeats_give_an_interval_around_the_change() {
        let i = change_interval(
            &GOODPUT,
            &entry(&[100.0, 102.0, 98.0]),
            &entry(&[90.0, 92.0, 88.0]),
        )
        .expect("an interval");
        assert!(i.contains(-10.0), "{i:?}");
        assert!(
            i.high < -5.0,
            "a 10 % loss with 2 % noise lies beyond 5 %: {i:?}"
        );
        // The same runs again: the interval holds zero.
        let same = change_interval(
            &GOODPUT,
            &entry(&[100.0, 102.0, 98.0]),
            &entry(&[101.0, 99.0, 100.0]),
        )
        .expect("an interval");
        assert!(same.contains(0.0), "{same:?}");
    }

    #[test]
    fn one_repeat_falls_back_to_recorded_intervals_or_none() {
        assert_eq!(
            change_interval(&GOODPUT, &entry(&[100.0]), &entry(&[90.0])),
            None
        );
        let with = |low: f64, high: f64| json!({ "intervals": { "goodput_mbit_s": { "low": low, "high": high } } });
        let i = change_interval(&GOODPUT, &with(98.0, 102.0), &with(88.0, 92.0))
            .expect("from intervals");
        // About −10 % ± √(2² + 2²) %, combined on the log scale.
        assert!(i.contains(-10.0), "{i:?}");
        assert!(i.low > -14.0 && i.high < -6.5, "{i:?}");
        // A figure that can be negative is combined on its own scale: −10 ± √8.
        let i = change_interval(&GOODPUT, &with(-2.0, 202.0), &with(-12.0, 192.0))
            .expect("from intervals");
        let sd: f64 = 102.0 / 1.96;
        let half = 1.96 * (2.0 * sd * sd).sqrt();
        assert!((i.low - (-10.0 - half)).abs() < 1e-9, "{i:?}");
        let range = Metric {
            interval_path: Some("max_cameras_range"),
            ..m(
                "max_cameras",
                Direction::HigherIsBetter,
                Family::Capacity,
                0.0,
            )
        };
        let mode = |low: u32, high: u32| json!({ "max_cameras": low, "max_cameras_range": { "low": low, "high": high } });
        let i = change_interval(&range, &mode(300, 349), &mode(200, 229)).expect("from ranges");
        assert!(i.high < 0.0 && i.low > -50.0, "{i:?}");
    }
}
