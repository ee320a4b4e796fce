//! One self-contained HTML page: readable offline, no script, no resource from elsewhere
//! (inline CSS, SVG drawn here).
//!
//! From the top: what fell short (if anything), the cost of TLS per link in one table,
//! the warnings, then per link the frame-latency percentile distribution plaintext vs TLS
//! (HdrHistogram's log percentile axis up to p99.99, corrected solid, uncorrected dashed),
//! goodput and p99 latency per second of each window, and its key figures; then CPU per GB
//! per link and side, CPU by role, connection setup per link, and every figure.

use std::fmt::Write as _;

use hdrhistogram::Histogram;
use simulators::transport::Mode;

mod capacity;
mod handshakes;
mod limits;

use super::{Document, Export, ExportError, Exporter};
use crate::output::escape_html as esc;
use crate::output::figures::{
    frames, headline_latency, kernel, latency_note, machine_lines, measurement_line, negotiated,
    overhead, placement_lines, ratio_range, scenario_name, servers_accept, soak_rows,
    soak_trend_lines, title,
};
use crate::output::svg::{
    bar_chart, line_plot, Bar, BarGroup, LinePlot, Series, XAxis, YUnit, PLAIN, TLS,
};
use crate::report::verdicts::{short_summary, too_wide, trust};
use crate::report::{Cost, LinkResult, Report};
use crate::units::{format_mbit, format_ratio, format_us};

/// `--export-html`.
#[derive(Debug, Default)]
pub(crate) struct HtmlExporter;

impl Exporter for HtmlExporter {
    fn export(&self, doc: Document<'_>) -> Result<Export, ExportError> {
        let page = match doc {
            Document::Run(r) => {
                let mut page = render(r);
                limits::add_share_section(&mut page, r.limits.as_ref());
                page
            }
            Document::Capacity(r) => {
                let mut page = capacity::render(r);
                limits::add_share_section(&mut page, r.limits.as_ref());
                page
            }
            Document::Handshakes(r) => handshakes::render(r),
            Document::Limits(r) => limits::render(r),
        };
        Ok(Export::Document(page.into_bytes()))
    }
}

/// How far the percentile plots go: 4 nines, p99.99.
const NINES: u32 = 4;
/// Points per decade of the percentile axis.
const POINTS_PER_NINE: u32 = 20;
/// Links with fewer frames a second than this (median over the samples) get no
/// per-second plots.
const MIN_FRAMES_PER_SECOND: u64 = 5;

const STYLE: &str = r#"
:root { --plain: #4c78a8; --tls: #e4572e; --ink: #1d2430; --muted: #5c6573; --line: #d8dde5; --bg: #ffffff; --soft: #f4f6f9; }
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, Helvetica, Arial, sans-serif; color: var(--ink); background: var(--bg); }
main { max-width: 1380px; margin: 0 auto; padding: 20px 24px 48px; }
h1 { font-size: 24px; margin: 0 0 4px; }
h2 { font-size: 19px; margin: 32px 0 8px; padding-bottom: 4px; border-bottom: 2px solid var(--line); }
h3 { font-size: 16px; margin: 0 0 2px; }
p { margin: 4px 0; }
.sub, .meta, .explain, footer { color: var(--muted); }
.explain { max-width: 1000px; }
table { border-collapse: collapse; margin: 8px 0; }
th, td { padding: 5px 10px; border-bottom: 1px solid var(--line); text-align: right; white-space: nowrap; }
th { background: var(--soft); font-weight: 600; }
th:first-child, td:first-child, td.text, th.text { text-align: left; }
table.cost td { font-size: 15px; }
table.cost td.ratio { font-weight: 600; }
table.cost small { display: block; font-size: 11px; font-weight: 400; color: var(--muted); }
td.good { background: #e7f5ea; } td.meh { background: #fdf3dc; } td.bad { background: #fbe3dc; }
td.wide small { color: #a33d1b; }
.banner { margin: 14px 0; padding: 10px 14px; border-radius: 6px; border-left: 5px solid; }
.banner.short { background: #fbe3dc; border-color: #c0392b; font-weight: 600; }
.banner.note { background: #eef3fa; border-color: var(--plain); }
.warnings { background: #fdf3dc; border-left: 5px solid #d4a017; padding: 8px 14px 8px 30px; margin: 10px 0; border-radius: 6px; }
.warnings li { margin: 3px 0; }
.badge { display: inline-block; font-size: 11px; font-weight: 700; padding: 1px 6px; border-radius: 4px; vertical-align: middle; }
.badge.short { background: #c0392b; color: #fff; }
.badge.tls { background: var(--tls); color: #fff; } .badge.plain { background: var(--plain); color: #fff; }
.key { display: inline-block; width: 14px; height: 4px; vertical-align: middle; margin: 0 4px 0 10px; }
section.link { margin: 18px 0 26px; padding: 12px 14px; border: 1px solid var(--line); border-radius: 8px; }
.plots { display: grid; grid-template-columns: repeat(auto-fill, minmax(360px, 1fr)); gap: 10px; margin-top: 8px; }
.plots svg { width: 100%; height: auto; }
.charts { display: flex; flex-wrap: wrap; gap: 24px; margin-top: 8px; align-items: flex-start; }
svg { max-width: 100%; height: auto; background: #fff; }
.scroll { overflow-x: auto; }
p.note { color: var(--muted); align-self: center; max-width: 520px; }
table.figs { font-size: 13px; }
table.figs th { white-space: normal; vertical-align: bottom; }
svg text { font: 11px system-ui, -apple-system, "Segoe UI", Roboto, Helvetica, Arial, sans-serif; fill: var(--ink); }
svg text.title { font-size: 13px; font-weight: 600; }
svg text.group { font-size: 12px; font-weight: 600; }
svg text.axis, svg text.empty { fill: var(--muted); }
svg text.value { fill: var(--muted); }
svg .grid { stroke: #eceff3; stroke-width: 1; }
svg .frame { fill: none; stroke: #aab2bd; stroke-width: 1; }
svg .line { fill: none; stroke-width: 1.8; stroke-linejoin: round; }
svg .line.dashed { stroke-dasharray: 5 3; stroke-width: 1.3; opacity: 0.8; }
details summary { cursor: pointer; color: var(--muted); margin: 6px 0; }
"#;

fn ratio_class(v: Option<f64>, higher_is_worse: bool) -> &'static str {
    let Some(v) = v else { return "" };
    let cost = if higher_is_worse {
        v
    } else {
        1.0 / v.max(1e-9)
    };
    if cost <= 1.1 {
        "good"
    } else if cost <= 2.0 {
        "meh"
    } else {
        "bad"
    }
}

fn ratio_cell(c: &Cost, v: Option<f64>, key: &str, higher_is_worse: bool) -> String {
    let range = ratio_range(c, key);
    let wide = c.pairs > 1 && too_wide(c, key) && key != "cpu_per_gb_ratio";
    let mut class = format!("ratio {}", ratio_class(v, higher_is_worse));
    if wide {
        class.push_str(" wide");
    }
    let small = if range.is_empty() {
        String::new()
    } else {
        format!(
            "<small>{}{}</small>",
            esc(&range),
            if wide { " wide" } else { "" }
        )
    };
    format!(
        r#"<td class="{}">{}{small}</td>"#,
        class.trim(),
        esc(&format_ratio(v))
    )
}

/// Latency percentile points of `h`: x = log10(1 / (1 − q)).
fn percentile_points(h: &Histogram<u64>) -> Vec<(f64, f64)> {
    if h.is_empty() {
        return Vec::new();
    }
    (0..=NINES * POINTS_PER_NINE)
        .map(|i| {
            let x = f64::from(i) / f64::from(POINTS_PER_NINE);
            let q = 1.0 - 10f64.powf(-x);
            (x, h.value_at_quantile(q) as f64)
        })
        .collect()
}

fn mode_color(mode: Mode) -> &'static str {
    match mode {
        Mode::Plain => PLAIN,
        Mode::Tls => TLS,
    }
}

fn mode_name(mode: Mode) -> &'static str {
    match mode {
        Mode::Plain => "plaintext",
        Mode::Tls => "TLS",
    }
}

fn latency_plot(report: &Report, link: &str) -> String {
    let mut series = Vec::new();
    let mut missing = false;
    for mode in [Mode::Plain, Mode::Tls] {
        let Some(h) = report
            .histograms
            .iter()
            .find(|h| h.link == link && h.mode == mode)
        else {
            continue;
        };
        match (h.latency(), h.uncorrected_latency()) {
            (Some(c), Some(u)) => {
                series.push(Series {
                    label: Some(format!("{} (n={})", mode_name(mode), c.len())),
                    color: mode_color(mode),
                    dashed: false,
                    points: percentile_points(&c),
                });
                series.push(Series {
                    label: None,
                    color: mode_color(mode),
                    dashed: true,
                    points: percentile_points(&u),
                });
            }
            _ => missing = true,
        }
    }
    // One legend entry for both dashed lines.
    series.push(Series {
        label: Some("uncorrected".into()),
        color: "#6b7280",
        dashed: true,
        points: Vec::new(),
    });
    let mut title = format!("{link}: frame latency by percentile");
    if missing {
        title.push_str(" (histogram damaged)");
    }
    line_plot(&LinePlot {
        title,
        x: XAxis::Nines(NINES),
        y_label: "latency".into(),
        y_unit: YUnit::Micros,
        series,
    })
}

/// Lines per mode and repeat of a figure of the interval samples.
fn over_time(
    report: &Report,
    link: &str,
    f: impl Fn(&crate::report::IntervalRecord) -> Option<f64>,
) -> Vec<Series> {
    let mut series: Vec<Series> = Vec::new();
    for mode in [Mode::Plain, Mode::Tls] {
        let mut repeats: Vec<usize> = report
            .intervals
            .iter()
            .filter(|i| i.link == link && i.mode == mode)
            .map(|i| i.repeat)
            .collect();
        repeats.dedup();
        for (n, repeat) in repeats.iter().enumerate() {
            let points = report
                .intervals
                .iter()
                .filter(|i| i.link == link && i.mode == mode && i.repeat == *repeat)
                .filter_map(|i| Some((i.t_s, f(i)?)))
                .collect();
            series.push(Series {
                label: (n == 0).then(|| {
                    if repeats.len() > 1 {
                        format!("{} (each repeat)", mode_name(mode))
                    } else {
                        mode_name(mode).to_owned()
                    }
                }),
                color: mode_color(mode),
                dashed: false,
                points,
            });
        }
    }
    series
}

fn goodput_plot(report: &Report, link: &str) -> String {
    line_plot(&LinePlot {
        title: format!("{link}: goodput per second"),
        x: XAxis::Linear("seconds into the window".into()),
        y_label: "goodput".into(),
        y_unit: YUnit::Mbit,
        series: over_time(report, link, |i| Some(i.goodput_mbit_s)),
    })
}

fn p99_plot(report: &Report, link: &str) -> String {
    line_plot(&LinePlot {
        title: format!("{link}: p99 frame latency per second"),
        x: XAxis::Linear("seconds into the window".into()),
        y_label: "p99 latency".into(),
        y_unit: YUnit::Micros,
        series: over_time(report, link, |i| {
            (i.frames > 0).then_some(i.latency_us.p99 as f64)
        }),
    })
}

fn figures_table(report: &Report, rows: &[&LinkResult]) -> String {
    let mut s = String::from(
        r#"<div class="scroll"><table class="figs"><tr><th class="text">mode</th><th>goodput</th><th>frames recv/due</th><th>late</th><th>dropped</th><th>p50</th><th>p99</th><th>p99.9</th><th>max</th><th>uncorrected p99</th><th>handshake</th><th>time to first frame</th><th>server CPU s/GB</th><th>client CPU s/GB</th><th>wire overhead</th><th>kernel check</th></tr>"#,
    );
    let gb = |v: Option<f64>| v.map_or_else(|| "–".to_owned(), |v| format!("{v:.2}"));
    for r in rows {
        let f = &r.figures;
        let latency = headline_latency(report, f);
        let _ = write!(
            s,
            r#"<tr><td class="text"><span class="badge {}">{}</span></td><td>{}</td><td>{}{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>"#,
            r.mode,
            r.mode,
            esc(&format_mbit(f.goodput_mbit_s)),
            esc(&frames(r).replace(" SHORT", "")),
            if r.short {
                r#" <span class="badge short">SHORT</span>"#
            } else {
                ""
            },
            f.late_frames,
            f.dropped_frames,
            esc(&format_us(latency.p50)),
            esc(&format_us(latency.p99)),
            esc(&format_us(latency.p999)),
            esc(&format_us(latency.max)),
            esc(&format_us(f.uncorrected_latency_us.p99)),
            if r.mode == Mode::Tls && f.handshake_us > 0 {
                esc(&format_us(f.handshake_us))
            } else {
                "–".to_owned()
            },
            if f.ttff_us > 0 {
                esc(&format_us(f.ttff_us))
            } else {
                "–".to_owned()
            },
            gb(f.cpu_server_s_per_gb),
            gb(f.cpu_client_s_per_gb),
            esc(&overhead(r)),
            esc(&kernel(r)),
        );
    }
    s.push_str("</table></div>");
    s
}

fn cost_table(report: &Report) -> String {
    let mut s = String::from(
        r#"<table class="cost"><tr><th class="text">link</th><th>goodput</th><th>p99 frame latency</th><th>CPU per GB</th><th>server CPU per GB</th><th>client CPU per GB</th><th>handshake adds</th><th class="text">trust</th></tr>"#,
    );
    for c in &report.cost {
        if let Some(why) = crate::report::verdicts::no_cost_because(report, &c.link) {
            let _ = write!(
                s,
                r#"<tr><td class="text">{}</td><td colspan="6">–</td><td class="text">{}</td></tr>"#,
                esc(&c.link),
                esc(&why)
            );
            continue;
        }
        let short = report.results.iter().any(|r| r.link == c.link && r.short);
        let _ = write!(
            s,
            r##"<tr><td class="text"><a href="#link-{}">{}</a>{}</td>{}{}{}<td>{}</td><td>{}</td><td>+{}</td><td class="text">{}</td></tr>"##,
            esc(&c.link),
            esc(&c.link),
            if short {
                r#" <span class="badge short">SHORT</span>"#
            } else {
                ""
            },
            ratio_cell(c, c.goodput_ratio, "goodput_ratio", false),
            ratio_cell(c, c.latency_p99_ratio, "latency_p99_ratio", true),
            ratio_cell(c, c.cpu_per_gb_ratio, "cpu_per_gb_ratio", true),
            esc(&format_ratio(c.cpu_server_per_gb_ratio)),
            esc(&format_ratio(c.cpu_client_per_gb_ratio)),
            esc(&format_us(c.handshake_us)),
            esc(&trust(c)),
        );
    }
    s.push_str("</table>");
    let verdicts: Vec<String> = report
        .cost
        .iter()
        .filter(|c| crate::report::verdicts::no_cost_because(report, &c.link).is_none())
        .filter_map(|c| {
            let v = crate::report::verdicts::verdicts(c);
            (!v.is_empty())
                .then(|| format!("<li><b>{}</b>: {}</li>", esc(&c.link), esc(&v.join("; "))))
        })
        .collect();
    if !verdicts.is_empty() {
        let _ = write!(
            s,
            "<p>What the 95 % intervals say:</p><ul class=\"verdicts\">{}</ul>",
            verdicts.concat()
        );
    }
    s
}

fn cpu_per_gb_chart(report: &Report) -> String {
    let mut groups = Vec::new();
    for c in &report.cost {
        let find = |mode| {
            report
                .results
                .iter()
                .find(|r| r.link == c.link && r.mode == mode)
        };
        let (Some(p), Some(t)) = (find(Mode::Plain), find(Mode::Tls)) else {
            continue;
        };
        let mut bars = Vec::new();
        for (side, get) in [
            (
                "server",
                (|r: &LinkResult| r.figures.cpu_server_s_per_gb) as fn(&LinkResult) -> Option<f64>,
            ),
            ("client", |r: &LinkResult| r.figures.cpu_client_s_per_gb),
        ] {
            for r in [p, t] {
                if let Some(v) = get(r) {
                    bars.push(Bar {
                        label: format!("{side}, {}", mode_name(r.mode)),
                        value: v,
                        text: format!("{v:.2} s/GB"),
                        color: mode_color(r.mode),
                    });
                }
            }
        }
        if !bars.is_empty() {
            groups.push(BarGroup {
                name: format!("{} ({})", c.link, p.cpu_attribution.replace('_', " ")),
                bars,
            });
        }
    }
    bar_chart(
        "CPU seconds per GB delivered, per link and side (each link scaled to its largest bar)",
        &groups,
        true,
    )
}

fn roles_chart(report: &Report) -> String {
    let mut names: Vec<&str> = report.roles.iter().map(|r| r.role.as_str()).collect();
    names.dedup();
    let groups: Vec<BarGroup> = names
        .iter()
        .map(|name| BarGroup {
            name: (*name).to_owned(),
            bars: report
                .roles
                .iter()
                .filter(|r| r.role == *name)
                .map(|r| Bar {
                    label: mode_name(r.mode).to_owned(),
                    value: r.cores,
                    text: format!("{:.3} cores ({:.2} s)", r.cores, r.cpu_s),
                    color: mode_color(r.mode),
                })
                .collect(),
        })
        .collect();
    bar_chart(
        "CPU by simulated role: cores busy during the window (one scale)",
        &groups,
        false,
    )
}

fn handshake_chart(report: &Report) -> String {
    let groups: Vec<BarGroup> = report
        .results
        .iter()
        .filter(|r| r.mode == Mode::Tls && r.figures.handshake_us > 0)
        .map(|r| {
            let f = &r.figures;
            let bar = |label: &str, v: u64| Bar {
                label: label.to_owned(),
                value: v as f64,
                text: format_us(v),
                color: TLS,
            };
            let mut bars = vec![Bar {
                label: "TCP connect".into(),
                value: f.connect_us as f64,
                text: format_us(f.connect_us),
                color: PLAIN,
            }];
            bars.push(bar("TLS client, median", f.handshake_us));
            bars.push(bar("TLS client, p99", f.handshake_us_p99));
            if f.server_handshake_us > 0 {
                bars.push(bar("TLS server, median", f.server_handshake_us));
            }
            BarGroup {
                name: r.link.clone(),
                bars,
            }
        })
        .collect();
    bar_chart(
        "Connection setup per link: TCP connect and TLS handshake (one scale)",
        &groups,
        false,
    )
}

/// The run report's page, section by section from the top.
fn render(report: &Report) -> String {
    let mut s = String::new();
    page_head(&mut s, report);
    heading(&mut s, report);
    cost_section(&mut s, report);
    warnings_section(&mut s, report);
    links_section(&mut s, report);
    cpu_section(&mut s, report);
    setup_section(&mut s, report);
    events_section(&mut s, report);
    certificates_section(&mut s, report);
    footer(&mut s, report);
    s
}

/// The document up to the opening of `<main>`: title and style.
fn page_head(s: &mut String, report: &Report) {
    let _ = write!(
        s,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n<title>{}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n<main>\n",
        esc(&title(report))
    );
}

/// The title, what was measured where, what TLS negotiated, and the banners: what fell
/// short, and an injected stall.
fn heading(s: &mut String, report: &Report) {
    let name = scenario_name(report);
    let _ = write!(
        s,
        "<h1>What TLS costs, link by link</h1>\n<p class=\"sub\">Scenario <b>{}</b> · {}</p>\n<p class=\"sub\">{}</p>\n",
        esc(&name),
        esc(&measurement_line(report)),
        esc(&report.environment.summary_line())
    );
    for t in negotiated(report) {
        let _ = writeln!(s, "<p class=\"sub\">TLS negotiated: {}</p>", esc(&t));
    }
    if let Some(accepted) = servers_accept(report) {
        let _ = writeln!(
            s,
            "<p class=\"sub\">Servers accepted: {}</p>",
            esc(&accepted)
        );
    }
    for line in placement_lines(report.placement.as_ref()) {
        let _ = writeln!(s, "<p class=\"sub\">{}</p>", esc(&line));
    }
    for line in machine_lines(report) {
        let _ = writeln!(s, "<p class=\"sub\">{}</p>", esc(&line));
    }
    if let Some(rows) = soak_rows(report) {
        let _ = writeln!(s, "<h2 id=\"soak\">Soak</h2>\n<table>");
        for (i, row) in rows.iter().enumerate() {
            let tag = if i == 0 { "th" } else { "td" };
            let cells: String = row
                .iter()
                .map(|c| format!("<{tag}>{}</{tag}>", esc(c)))
                .collect();
            let _ = writeln!(s, "<tr>{cells}</tr>");
        }
        let _ = writeln!(s, "</table>");
        for line in soak_trend_lines(report) {
            let _ = writeln!(s, "<p class=\"sub\">{}</p>", esc(&line));
        }
    }
    if let Some(short) = short_summary(report) {
        let _ = writeln!(s, "<div class=\"banner short\">⚠ {}</div>", esc(&short));
    }
    if let Some(stall) = report.measurement.inject_stall_s {
        let _ = writeln!(
            s,
            "<div class=\"banner note\">A stall of {stall} s was injected into every recording server in the middle of each window (<code>--inject-stall</code>): the corrected latency (solid lines) counts the wait from each frame's due time, the uncorrected latency (dashed) does not.</div>"
        );
    }
}

/// "Cost of TLS per link": how to read the ratios, and the table.
fn cost_section(s: &mut String, report: &Report) {
    let pairs = report.cost.iter().map(|c| c.pairs).max().unwrap_or(0);
    let _ = writeln!(s, "<h2 id=\"cost\">Cost of TLS per link</h2>");
    if report.cost.is_empty() {
        let _ = writeln!(s, "<p>No link was measured in both modes.</p>");
    } else {
        let _ = writeln!(
            s,
            "<p class=\"explain\">Each figure is <b>TLS ÷ plaintext</b>, the median over {pairs} interleaved pair{} of windows (the range over the pairs is below it). Goodput below ×1 means TLS delivered less; p99 latency and CPU per GB above ×1 mean TLS costs more (×1.40 = 40 % more). The handshake column is the time a TLS handshake adds to each new connection.</p>",
            if pairs == 1 { "" } else { "s" }
        );
        s.push_str(&cost_table(report));
        s.push('\n');
    }
}

/// "Before trusting these figures": the report's warnings, if any.
fn warnings_section(s: &mut String, report: &Report) {
    if !report.warnings.is_empty() {
        let _ = writeln!(
            s,
            "<h2 id=\"warnings\">Before trusting these figures</h2>\n<ul class=\"warnings\">"
        );
        for w in &report.warnings {
            let _ = writeln!(s, "<li>{}</li>", esc(w));
        }
        s.push_str("</ul>\n");
    }
}

/// Ends a one-page report (handshakes, limits): its warnings under "Before trusting these
/// figures", if any, then the closing tags.
fn close_page(out: &mut String, warnings: &[String]) {
    if !warnings.is_empty() {
        out.push_str("<h2>Before trusting these figures</h2><ul class=\"warnings\">");
        for w in warnings {
            let _ = write!(out, "<li>{}</li>", esc(w));
        }
        out.push_str("</ul>");
    }
    out.push_str("</main></body></html>\n");
}

/// "Per link": how to read the plots and tables, then one section per link in the
/// order the results first name them.
fn links_section(s: &mut String, report: &Report) {
    let _ = writeln!(
        s,
        "<h2 id=\"links\">Per link</h2>\n<p class=\"explain\">Frame latency is the time from a frame's <i>scheduled</i> instant to its last byte read (corrected for coordinated omission, solid); dashed lines are the uncorrected latency from the moment it was sent. Percentiles use every repeat's frames together; the tables show medians over the repeats. <i>Wire overhead</i>: bytes on the wire beyond the payload (40-byte frame headers, and TLS records). <i>Kernel check</i>: the bytes the application read from its sockets against the bytes the kernel handed it (TCP_INFO), Δ in percent; 0 means goodput is counted from exactly what crossed the wire. <span class=\"key\" style=\"background:var(--plain)\"></span>plaintext <span class=\"key\" style=\"background:var(--tls)\"></span>TLS</p>"
    );
    let mut links: Vec<&str> = Vec::new();
    for r in &report.results {
        if !links.contains(&r.link.as_str()) {
            links.push(&r.link);
        }
    }
    for link in links {
        link_section(s, report, link);
    }
}

/// One link's section: its heading and setup, its plots, and its figures per mode.
fn link_section(s: &mut String, report: &Report, link: &str) {
    let rows: Vec<&LinkResult> = report.results.iter().filter(|r| r.link == link).collect();
    let short = rows.iter().any(|r| r.short);
    let first = rows.first();
    let _ = write!(
        s,
        "<section class=\"link\" id=\"link-{}\"><h3>{}{}</h3>",
        esc(link),
        esc(link),
        if short {
            " <span class=\"badge short\">SHORT</span>"
        } else {
            ""
        }
    );
    if let Some(r) = first {
        let f = &r.figures;
        let _ = write!(
            s,
            "<p class=\"meta\">encryption group {} · {} stream(s) on {} connection(s){}</p>",
            esc(r.group.as_deref().unwrap_or("–")),
            f.streams,
            f.connections,
            if f.offered_mbit_s > 0.0 {
                format!(" · offered {}", esc(&format_mbit(f.offered_mbit_s)))
            } else {
                String::new()
            }
        );
    }
    link_plots(s, report, link);
    let repeats = rows.iter().map(|r| r.repeats).max().unwrap_or(0);
    if repeats > 1 {
        let _ = write!(
            s,
            "<p class=\"meta\">Figures below are medians over the {repeats} repeats; the percentile plot pools every repeat's frames, so its tail shows the worst repeat's.</p>"
        );
    }
    s.push_str(&figures_table(report, &rows));
    if let Some(note) = latency_note(report) {
        let _ = writeln!(s, "<p class=\"sub\">{}</p>", esc(&note));
    }
    s.push_str("</section>\n");
}

/// A link's plots: the latency percentiles and, when the link carries at least
/// [`MIN_FRAMES_PER_SECOND`] frames a second (median), goodput and p99 per second.
fn link_plots(s: &mut String, report: &Report, link: &str) {
    let mut per_second: Vec<u64> = report
        .intervals
        .iter()
        .filter(|i| i.link == link)
        .map(|i| i.frames)
        .collect();
    per_second.sort_unstable();
    let median_per_second = per_second.get(per_second.len() / 2).copied().unwrap_or(0);
    if median_per_second >= MIN_FRAMES_PER_SECOND {
        let _ = write!(
            s,
            "<div class=\"plots\">{}{}{}</div>",
            latency_plot(report, link),
            goodput_plot(report, link),
            p99_plot(report, link)
        );
    } else {
        let _ = write!(
            s,
            "<div class=\"plots\">{}<p class=\"note\">Fewer than {MIN_FRAMES_PER_SECOND} frames or calls a second on this link: per-second goodput and latency would show single messages, not a rate, so they are not plotted. With this few frames a high percentile is close to the largest value (n = frames measured).</p></div>",
            latency_plot(report, link),
        );
    }
}

/// "CPU": CPU per GB per link and side, and CPU by role.
fn cpu_section(s: &mut String, report: &Report) {
    let _ = writeln!(s, "<h2 id=\"cpu\">CPU</h2>\n<p class=\"explain\">CPU seconds per GB of payload delivered, for the server and the client side of each link (a role serving several links has its CPU split among them by bytes: “shared by bytes”), and the CPU each simulated role used.</p>");
    let _ = writeln!(
        s,
        "<div class=\"charts\">{}{}</div>",
        cpu_per_gb_chart(report),
        roles_chart(report)
    );
}

/// "Connection setup": TCP connect and TLS handshake per link.
fn setup_section(s: &mut String, report: &Report) {
    let _ = writeln!(s, "<h2 id=\"handshakes\">Connection setup</h2>");
    let _ = writeln!(s, "<div class=\"charts\">{}</div>", handshake_chart(report));
}

/// "Failovers and incompatibilities", if there were any.
fn events_section(s: &mut String, report: &Report) {
    if !report.failovers.is_empty() || !report.incompatibilities.is_empty() {
        let _ = writeln!(
            s,
            "<h2 id=\"events\">Failovers and incompatibilities</h2><ul>"
        );
        for f in &report.failovers {
            let o = &f.outcome;
            let _ = writeln!(
                s,
                "<li>{} repeat {}: {} stopped at {} s; {} of {} streams recovered, all within {}; {} frames lost</li>",
                f.mode,
                f.repeat,
                esc(&o.host),
                o.at_s,
                o.streams_recovered,
                o.streams,
                esc(&format_us(o.recovery_all_us)),
                o.frames_lost
            );
        }
        for i in &report.incompatibilities {
            let _ = writeln!(s, "<li>{}: {}</li>", esc(&i.link), esc(&i.reason));
        }
        s.push_str("</ul>\n");
    }
}

/// "Certificate faults and events", if there were any.
fn certificates_section(s: &mut String, report: &Report) {
    let certificates = report.certificate_lines();
    if !certificates.is_empty() {
        let _ = writeln!(
            s,
            "<h2 id=\"certificates\">Certificate faults and events</h2><ul>"
        );
        for line in &certificates {
            let _ = writeln!(s, "<li>{}</li>", esc(line));
        }
        s.push_str("</ul>\n");
    }
}

/// The footer, and the end of the document.
fn footer(s: &mut String, report: &Report) {
    let _ = writeln!(
        s,
        "<footer><p>vmsbench {} · report schema version {} · the same report as JSON: <code>--export-json</code></p></footer>\n</main>\n</body>\n</html>",
        esc(&report.environment.vmsbench_version),
        report.schema_version
    );
}
