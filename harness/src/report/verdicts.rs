//! The rules that decide what a report's figures are worth: whether a cost ratio can be
//! trusted (enough plain/TLS pairs, a spread narrow enough), and which results fell short
//! of the frames due.

use super::stats::Spread;
use super::{Cost, LinkResult, Report, Sample};

/// A cost ratio is trusted when its max/min over the plain/TLS pairs is at most this.
///
/// The rule (checked for the goodput ratio and the p99-latency ratio of every link): with
/// fewer than [`MIN_PAIRS`] pairs, or with the largest pair's ratio more than 10 % above
/// the smallest, the median cannot be told apart from the noise between repeats; the report
/// then says so in `warnings` and marks the link's cost `reliable: false`. What helps: a
/// longer `--duration` (more frames per window, steadier percentiles) and more `--repeat`
/// (more pairs).
pub(crate) const MAX_RATIO_SPREAD: f64 = 1.10;

/// Fewest plain/TLS pairs whose spread can be judged at all (see [`MAX_RATIO_SPREAD`]).
pub(crate) const MIN_PAIRS: usize = 3;

/// max/min of a ratio over the pairs (infinite when the smallest is not positive).
pub(crate) fn ratio_spread(s: &Spread) -> f64 {
    if s.min > 0.0 && s.max.is_finite() {
        s.max / s.min
    } else {
        f64::INFINITY
    }
}

/// Whether a cost's ratio `key` spreads wider than the rule allows.
pub(crate) fn too_wide(c: &Cost, key: &str) -> bool {
    c.spread
        .get(key)
        .is_none_or(|s| ratio_spread(s) > MAX_RATIO_SPREAD)
}

/// A few words on whether a cost can be trusted.
pub(crate) fn trust(c: &Cost) -> String {
    if c.pairs < MIN_PAIRS {
        return format!(
            "⚠ {} pair{}: too few to judge",
            c.pairs,
            if c.pairs == 1 { "" } else { "s" }
        );
    }
    let mut wide = Vec::new();
    if too_wide(c, "goodput_ratio") {
        wide.push("goodput");
    }
    if too_wide(c, "latency_p99_ratio") {
        wide.push("p99");
    }
    if wide.is_empty() {
        format!("✓ {} pairs", c.pairs)
    } else {
        format!("⚠ {} spread wide", wide.join(" and "))
    }
}

/// The repeat that fell furthest short of the frames due, if any did.
pub(crate) fn worst_short(r: &LinkResult) -> Option<&Sample> {
    r.samples
        .iter()
        .filter(|s| s.frames_due > 0 && s.frames_received < s.frames_due)
        .max_by(|a, b| short_fraction(a).total_cmp(&short_fraction(b)))
}

fn short_fraction(s: &Sample) -> f64 {
    s.frames_due.saturating_sub(s.frames_received) as f64 / s.frames_due.max(1) as f64
}

/// The summary of results that fell short of the due frame rate, if any.
pub(crate) fn short_summary(report: &Report) -> Option<String> {
    let short: Vec<String> = report
        .results
        .iter()
        .filter_map(|r| {
            let w = worst_short(r)?;
            let n = r
                .samples
                .iter()
                .filter(|s| s.frames_due > 0 && s.frames_received < s.frames_due)
                .count();
            let worst = format!(
                "{} of {} frames due arrived, {:.1} % short",
                w.frames_received,
                w.frames_due,
                100.0 * short_fraction(w)
            );
            Some(if r.samples.len() > 1 {
                format!(
                    "{} ({}) in {n} of {} repeats (worst: {worst})",
                    r.link,
                    r.mode,
                    r.samples.len()
                )
            } else {
                format!("{} ({}): {worst}", r.link, r.mode)
            })
        })
        .collect();
    if short.is_empty() {
        return None;
    }
    Some(format!(
        "SHORT: {} of {} results fell short of the due frame rate: {}. Their latency figures \
         describe only the frames that arrived; the machine (or the link) did not keep up.",
        short.len(),
        report.results.len(),
        short.join("; ")
    ))
}
