//! The rules that decide what a report's figures are worth: whether a cost ratio can be
//! trusted (enough plain/TLS pairs, a spread narrow enough), and which results fell short
//! of the frames due.

use simulators::transport::Mode;

use super::interval::{Finding, Interval};
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

/// A headline interval this wide (half-width over its middle) or wider is too wide to
/// quote unless it excludes "no change".
pub(crate) const MAX_RELATIVE_HALF_WIDTH: f64 = 0.10;

/// The headline figures of a cost whose intervals decide its trust mark, with their names
/// for people and the value that means "no change".
const HEADLINES: [(&str, &str, f64); 3] = [
    ("goodput_ratio", "goodput", 1.0),
    ("latency_p99_ratio", "p99", 1.0),
    ("cpu_per_gb_ratio", "CPU per GB", 1.0),
];

/// The headline figures whose interval is undecided: wider than ±10 % and holding "no
/// change", so that neither the size nor the direction of the cost is known. A missing
/// interval (under two pairs) counts as undecided.
pub(crate) fn undecided(c: &Cost) -> Vec<&'static str> {
    HEADLINES
        .iter()
        .filter(|(key, _, no_change)| {
            c.intervals.get(*key).is_none_or(|i| {
                i.relative_half_width() > MAX_RELATIVE_HALF_WIDTH
                    && Finding::of(i, *no_change) == Finding::NoDifference
            })
        })
        .map(|(_, name, _)| *name)
        .collect()
}

/// A few words on whether a cost can be trusted, from its intervals.
pub(crate) fn trust(c: &Cost) -> String {
    if c.pairs < 2 {
        return format!(
            "⚠ {} pair{}: no interval",
            c.pairs,
            if c.pairs == 1 { "" } else { "s" }
        );
    }
    let open = undecided(c);
    if open.is_empty() {
        format!("✓ {} pairs", c.pairs)
    } else {
        format!("⚠ {} undecided", open.join(", "))
    }
}

/// What the intervals of a cost say, one phrase per figure, for people: "TLS adds
/// 0.21–0.29 s of CPU per GB on the client", "p99 frame latency: no difference detectable
/// (−0.3…+1.1 ms)". Empty under two pairs.
pub(crate) fn verdicts(c: &Cost) -> Vec<String> {
    let mut out = Vec::new();
    let get = |k: &str| c.intervals.get(k);
    if let Some(i) = get("goodput_ratio") {
        out.push(match Finding::of(i, 1.0) {
            Finding::Less => format!("TLS delivers less: goodput ×{:.3}–×{:.3}", i.low, i.high),
            Finding::More => format!("TLS delivers more: goodput ×{:.3}–×{:.3}", i.low, i.high),
            Finding::NoDifference => format!(
                "goodput: no difference detectable (×{:.3}…×{:.3})",
                i.low, i.high
            ),
        });
    }
    for (key, what) in [
        ("latency_diff_us.p50", "median frame latency"),
        ("latency_diff_us.p99", "p99 frame latency"),
    ] {
        if let Some(i) = get(key) {
            out.push(difference_phrase(i, what, &|x| signed_us(x), ""));
        }
    }
    for (key, side) in [
        ("cpu_server_s_per_gb_diff", "the server"),
        ("cpu_client_s_per_gb_diff", "the client"),
    ] {
        if let Some(i) = get(key) {
            let what = format!("CPU per GB on {side}");
            out.push(difference_phrase(
                i,
                &what,
                &|x| format!("{}{:.3}", if x < 0.0 { "−" } else { "+" }, x.abs()),
                " s",
            ));
        }
    }
    if let Some(i) = get("handshake_us") {
        out.push(format!(
            "a TLS handshake takes {}–{}",
            crate::units::format_duration_us(i.low.max(0.0)),
            crate::units::format_duration_us(i.high)
        ));
    }
    out
}

/// "TLS adds 0.21–0.29 s of WHAT", "TLS saves …", or "WHAT: no difference detectable
/// (−a…+b)"; `show` writes a signed value, `unit` follows a range of magnitudes.
fn difference_phrase(i: &Interval, what: &str, show: &dyn Fn(f64) -> String, unit: &str) -> String {
    let bare = |x: f64| show(x).trim_start_matches(['+', '-', '−']).to_owned();
    match Finding::of(i, 0.0) {
        Finding::More => format!("TLS adds {}–{}{unit} of {what}", bare(i.low), bare(i.high)),
        Finding::Less => format!(
            "TLS saves {}–{}{unit} of {what}",
            bare(-i.high),
            bare(-i.low)
        ),
        Finding::NoDifference => format!(
            "{what}: no difference detectable ({}…{}{unit})",
            show(i.low),
            show(i.high)
        ),
    }
}

/// A signed duration in µs, e.g. `+40.0 µs`, `−1.20 ms`.
pub(crate) fn signed_us(x: f64) -> String {
    let sign = if x < 0.0 { "−" } else { "+" };
    format!("{sign}{}", crate::units::format_duration_us(x.abs()))
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

/// Why a link has no cost of TLS to give, if it has none: a client group its server refused
/// (incompatible, with the reason), a link encrypted in neither phase (its differences are
/// the machine's, not TLS's), or a link with no traffic in either window.
pub(crate) fn no_cost_because(report: &Report, link: &str) -> Option<String> {
    let incompatible: Vec<String> = report
        .incompatibilities
        .iter()
        .filter(|i| i.link == link)
        .map(|i| format!("{} → {}: {}", i.client, i.server, i.reason))
        .collect();
    if !incompatible.is_empty() {
        return Some(format!("incompatible ({})", incompatible.join("; ")));
    }
    let of = |mode| {
        report
            .results
            .iter()
            .find(|r| r.link == link && r.mode == mode)
    };
    let (plain, tls) = (of(Mode::Plain), of(Mode::Tls));
    if tls.is_some_and(|t| !t.encrypted) {
        return Some(
            "not encrypted in either phase: its differences are the machine's, not TLS's".into(),
        );
    }
    let silent = |r: Option<&LinkResult>| r.is_none_or(|r| r.figures.frames_received == 0);
    if silent(plain) && silent(tls) {
        return Some("no traffic in the window".into());
    }
    None
}
