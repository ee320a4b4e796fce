//! Plots as inline SVG, drawn by hand: no script, no font or style sheet from elsewhere, so
//! that an exported page reads the same offline and in ten years. Numbers are written with
//! one decimal, so that output is deterministic (snapshot tests).

use std::fmt::Write as _;

use super::escape_html as esc;

/// Colour of plaintext figures.
pub(crate) const PLAIN: &str = "#4c78a8";
/// Colour of TLS figures.
pub(crate) const TLS: &str = "#e4572e";

/// One line of a plot.
#[derive(Debug, Clone)]
pub(crate) struct Series {
    /// Legend text (`None`: not in the legend, e.g. a second repeat of the same thing).
    pub label: Option<String>,
    /// Stroke colour.
    pub color: &'static str,
    /// Dashed (uncorrected latency).
    pub dashed: bool,
    /// Points in data units.
    pub points: Vec<(f64, f64)>,
}

/// The x axis.
#[derive(Debug, Clone)]
pub(crate) enum XAxis {
    /// Linear from 0, with a label.
    Linear(String),
    /// Percentiles on HdrHistogram's log scale: x = log10(1 / (1 − q)), from 0 (p0) to
    /// `nines` (e.g. 4 = p99.99).
    Nines(u32),
}

/// What the y values are, for units and tick labels.
#[derive(Debug, Clone, Copy)]
pub(crate) enum YUnit {
    /// Microseconds, shown in µs, ms or s.
    Micros,
    /// Mbit/s, shown in kbit/s, Mbit/s or Gbit/s.
    Mbit,
    /// CPU cores (CPU seconds per second), shown as they are.
    Cores,
}

/// A line plot.
#[derive(Debug, Clone)]
pub(crate) struct LinePlot {
    /// Title above the plot.
    pub title: String,
    /// The x axis.
    pub x: XAxis,
    /// What the y axis shows (the unit is appended).
    pub y_label: String,
    /// The y values' unit.
    pub y_unit: YUnit,
    /// The lines.
    pub series: Vec<Series>,
}

const W: f64 = 440.0;
const H: f64 = 270.0;
const LEFT: f64 = 58.0;
const RIGHT: f64 = 24.0;
const TOP: f64 = 30.0;
const BOTTOM: f64 = 62.0;

/// A "nice" step (1, 2, 2.5 or 5 × 10^k) for about `n` ticks over `span`.
fn nice_step(span: f64, n: f64) -> f64 {
    if span <= 0.0 || !span.is_finite() {
        return 1.0;
    }
    let raw = span / n;
    let mag = 10f64.powf(raw.log10().floor());
    let norm = raw / mag;
    let nice = if norm <= 1.0 {
        1.0
    } else if norm <= 2.0 {
        2.0
    } else if norm <= 2.5 {
        2.5
    } else if norm <= 5.0 {
        5.0
    } else {
        10.0
    };
    nice * mag
}

/// Scale and unit for values of `unit` up to `max`.
fn y_scale(unit: YUnit, max: f64) -> (f64, &'static str) {
    match unit {
        YUnit::Micros if max >= 2e6 => (1e6, "s"),
        YUnit::Micros if max >= 2e3 => (1e3, "ms"),
        YUnit::Micros => (1.0, "µs"),
        YUnit::Mbit if max >= 2e3 => (1e3, "Gbit/s"),
        YUnit::Mbit if max < 1.0 => (1e-3, "kbit/s"),
        YUnit::Mbit => (1.0, "Mbit/s"),
        YUnit::Cores => (1.0, "cores"),
    }
}

fn num(v: f64) -> String {
    let s = format!("{v:.3}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    if s == "-0" {
        "0".to_owned()
    } else {
        s.to_owned()
    }
}

/// Renders a line plot as an `<svg>` element.
pub(crate) fn line_plot(p: &LinePlot) -> String {
    let (pw, ph) = (W - LEFT - RIGHT, H - TOP - BOTTOM);
    let y_max_data = p
        .series
        .iter()
        .flat_map(|s| s.points.iter().map(|pt| pt.1))
        .filter(|v| v.is_finite())
        .fold(0.0f64, f64::max);
    let (scale, unit) = y_scale(p.y_unit, y_max_data);
    let y_step = nice_step(y_max_data / scale, 5.0);
    let y_top = ((y_max_data / scale) / y_step).ceil().max(1.0) * y_step;
    let (x_max, x_ticks): (f64, Vec<(f64, String)>) = match &p.x {
        XAxis::Nines(n) => {
            let labels = ["0%", "90%", "99%", "99.9%", "99.99%", "99.999%", "99.9999%"];
            let ticks = (0..=*n)
                .map(|i| {
                    let l = labels.get(i as usize).copied().unwrap_or("");
                    (f64::from(i), l.to_owned())
                })
                .collect();
            (f64::from(*n), ticks)
        }
        XAxis::Linear(_) => {
            let max = p
                .series
                .iter()
                .flat_map(|s| s.points.iter().map(|pt| pt.0))
                .filter(|v| v.is_finite())
                .fold(0.0f64, f64::max);
            let step = nice_step(max, 6.0);
            // A last sample a hair past a whole step (10.0003 s) does not open a new one.
            let top = (max / step - 1e-3).ceil().max(1.0) * step;
            let mut ticks = Vec::new();
            let mut t = 0.0;
            while t <= top + step * 1e-9 {
                ticks.push((t, num(t)));
                t += step;
            }
            (top, ticks)
        }
    };
    let x_label = match &p.x {
        XAxis::Nines(_) => "percentile".to_owned(),
        XAxis::Linear(l) => l.clone(),
    };
    let px = |x: f64| LEFT + (x / x_max.max(1e-12)).clamp(0.0, 1.0) * pw;
    let py = |y: f64| TOP + ph - (y / scale / y_top).clamp(0.0, 1.0) * ph;

    let mut s = String::new();
    let _ = write!(
        s,
        r#"<svg class="plot" viewBox="0 0 {W} {H}" width="{W}" height="{H}" role="img" aria-label="{}">"#,
        esc(&p.title)
    );
    let _ = write!(
        s,
        r#"<text class="title" x="{LEFT}" y="18">{}</text>"#,
        esc(&p.title)
    );
    // Grid and y ticks.
    let mut y = 0.0;
    while y <= y_top + y_step * 1e-9 {
        let yy = TOP + ph - y / y_top * ph;
        let _ = write!(
            s,
            r#"<line class="grid" x1="{LEFT}" y1="{yy:.1}" x2="{:.1}" y2="{yy:.1}"/><text class="tick" x="{:.1}" y="{:.1}" text-anchor="end">{}</text>"#,
            LEFT + pw,
            LEFT - 6.0,
            yy + 4.0,
            num(y)
        );
        y += y_step;
    }
    for (x, label) in &x_ticks {
        let xx = px(*x);
        let _ = write!(
            s,
            r#"<line class="grid" x1="{xx:.1}" y1="{TOP}" x2="{xx:.1}" y2="{:.1}"/><text class="tick" x="{xx:.1}" y="{:.1}" text-anchor="middle">{}</text>"#,
            TOP + ph,
            TOP + ph + 15.0,
            esc(label)
        );
    }
    let _ = write!(
        s,
        r#"<rect class="frame" x="{LEFT}" y="{TOP}" width="{pw:.1}" height="{ph:.1}"/>"#
    );
    let _ = write!(
        s,
        r#"<text class="axis" x="{:.1}" y="{:.1}" text-anchor="middle">{}</text>"#,
        LEFT + pw / 2.0,
        TOP + ph + 30.0,
        esc(&x_label)
    );
    let _ = write!(
        s,
        r#"<text class="axis" transform="translate(14 {:.1}) rotate(-90)" text-anchor="middle">{} ({unit})</text>"#,
        TOP + ph / 2.0,
        esc(&p.y_label)
    );
    for series in &p.series {
        if series.points.is_empty() {
            continue;
        }
        let pts: Vec<String> = series
            .points
            .iter()
            .filter(|(x, y)| x.is_finite() && y.is_finite())
            .map(|(x, y)| format!("{:.1},{:.1}", px(*x), py(*y)))
            .collect();
        let _ = write!(
            s,
            r#"<polyline class="line{}" stroke="{}" points="{}"/>"#,
            if series.dashed { " dashed" } else { "" },
            series.color,
            pts.join(" ")
        );
    }
    // Legend, in a row under the x axis label.
    let mut lx = LEFT;
    let ly = H - 10.0;
    for series in &p.series {
        let Some(label) = &series.label else { continue };
        let _ = write!(
            s,
            r#"<line class="line{}" stroke="{}" x1="{lx:.1}" y1="{:.1}" x2="{:.1}" y2="{:.1}"/><text class="legend" x="{:.1}" y="{ly:.1}">{}</text>"#,
            if series.dashed { " dashed" } else { "" },
            series.color,
            ly - 4.0,
            lx + 18.0,
            ly - 4.0,
            lx + 22.0,
            esc(label)
        );
        lx += 30.0 + 6.2 * label.chars().count() as f64;
    }
    if p.series.iter().all(|s| s.points.is_empty()) {
        let _ = write!(
            s,
            r#"<text class="empty" x="{:.1}" y="{:.1}" text-anchor="middle">no data</text>"#,
            LEFT + pw / 2.0,
            TOP + ph / 2.0
        );
    }
    s.push_str("</svg>");
    s
}

/// One bar of a bar chart.
#[derive(Debug, Clone)]
pub(crate) struct Bar {
    /// What it is (left of the bar).
    pub label: String,
    /// Its value.
    pub value: f64,
    /// The value as shown (right of the bar).
    pub text: String,
    /// Fill colour.
    pub color: &'static str,
}

/// A group of bars under a heading (one link, one role).
#[derive(Debug, Clone)]
pub(crate) struct BarGroup {
    /// The group's heading.
    pub name: String,
    /// Its bars.
    pub bars: Vec<Bar>,
}

/// Renders horizontal bars, grouped. With `per_group_scale` every group is scaled to its
/// own largest bar (groups of very different magnitude stay readable; values are printed).
pub(crate) fn bar_chart(title: &str, groups: &[BarGroup], per_group_scale: bool) -> String {
    const WIDTH: f64 = 620.0;
    const LABEL: f64 = 170.0;
    const BAR_H: f64 = 14.0;
    const GAP: f64 = 4.0;
    const HEAD: f64 = 20.0;
    const VALUE: f64 = 150.0;
    let rows: usize = groups.iter().map(|g| g.bars.len()).sum();
    let height = 28.0 + groups.len() as f64 * (HEAD + 6.0) + rows as f64 * (BAR_H + GAP);
    let global_max = groups
        .iter()
        .flat_map(|g| g.bars.iter().map(|b| b.value))
        .filter(|v| v.is_finite())
        .fold(0.0f64, f64::max);
    let mut s = String::new();
    let _ = write!(
        s,
        r#"<svg class="bars" viewBox="0 0 {WIDTH} {height:.1}" width="{WIDTH}" height="{height:.1}" role="img" aria-label="{}">"#,
        esc(title)
    );
    let _ = write!(
        s,
        r#"<text class="title" x="0" y="18">{}</text>"#,
        esc(title)
    );
    let mut y = 28.0;
    let span = WIDTH - LABEL - VALUE;
    for g in groups {
        let _ = write!(
            s,
            r#"<text class="group" x="0" y="{:.1}">{}</text>"#,
            y + 15.0,
            esc(&g.name)
        );
        y += HEAD + 6.0;
        let max = if per_group_scale {
            g.bars
                .iter()
                .map(|b| b.value)
                .filter(|v| v.is_finite())
                .fold(0.0f64, f64::max)
        } else {
            global_max
        };
        for b in &g.bars {
            let w = if max > 0.0 && b.value.is_finite() {
                (b.value / max).clamp(0.0, 1.0) * span
            } else {
                0.0
            };
            let _ = write!(
                s,
                r#"<text class="tick" x="{:.1}" y="{:.1}" text-anchor="end">{}</text><rect x="{LABEL}" y="{y:.1}" width="{w:.1}" height="{BAR_H}" fill="{}"><title>{}: {}</title></rect><text class="value" x="{:.1}" y="{:.1}">{}</text>"#,
                LABEL - 8.0,
                y + BAR_H - 3.0,
                esc(&b.label),
                b.color,
                esc(&b.label),
                esc(&b.text),
                LABEL + w + 6.0,
                y + BAR_H - 3.0,
                esc(&b.text)
            );
            y += BAR_H + GAP;
        }
    }
    s.push_str("</svg>");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nice_steps() {
        assert_eq!(nice_step(10.0, 5.0), 2.0);
        assert_eq!(nice_step(1000.0, 5.0), 200.0);
        assert_eq!(nice_step(0.9, 5.0), 0.2);
        assert_eq!(nice_step(0.0, 5.0), 1.0);
        assert_eq!(num(0.30000000000000004), "0.3");
        assert_eq!(num(1200.0), "1200");
    }
}
