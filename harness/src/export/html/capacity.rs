//! The capacity result as a self-contained HTML page: the answer first (cameras per
//! recording server in each mode, the cost of encryption, what limited each), then frame
//! latency and recording-server CPU against camera count, plaintext vs TLS, as inline SVG.

use std::fmt::Write as _;

use crate::output::escape_html as esc;
use crate::output::svg::{line_plot, LinePlot, Series, XAxis, YUnit, PLAIN, TLS};
use crate::report::capacity::{CapacityReport, ModeResult, Step};

/// One line per mode through its steps (sorted by camera count; repeated counts keep their
/// last run), of `y` against cameras.
fn series(report: &CapacityReport, y: fn(&Step) -> f64) -> Vec<Series> {
    let modes = [
        ("plaintext", PLAIN, report.modes.plain.as_ref()),
        ("TLS", TLS, report.modes.tls.as_ref()),
    ];
    modes
        .into_iter()
        .filter_map(|(label, color, mode)| {
            let mode = mode?;
            let mut points: Vec<(f64, f64)> = Vec::new();
            let mut steps: Vec<_> = mode.steps.iter().collect();
            steps.sort_by_key(|s| (s.cameras, s.index));
            for s in steps {
                let x = f64::from(s.cameras);
                match points.last_mut() {
                    Some(last) if last.0 == x => last.1 = y(s),
                    _ => points.push((x, y(s))),
                }
            }
            Some(Series {
                label: Some(label.to_owned()),
                color,
                dashed: false,
                points,
            })
        })
        .collect()
}

fn answer(name: &str, m: Option<&ModeResult>) -> String {
    let Some(m) = m else {
        return format!("<tr><td>{name}</td><td colspan=\"4\">not searched</td></tr>");
    };
    let cameras = m
        .max_cameras
        .map_or_else(|| "none".to_owned(), |c| c.to_string());
    let failing = m
        .first_failing_cameras
        .map_or_else(|| "–".to_owned(), |c| c.to_string());
    let limit = m
        .limit
        .as_ref()
        .and_then(|l| serde_json::to_value(l).ok())
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_else(|| "–".to_owned());
    let reasons = esc(&m.limit_reasons.join(", "));
    let per_camera = esc(&m.server_cpu_words().unwrap_or_else(|| "–".to_owned()));
    let range = m.range_words();
    let range = if range.is_empty() {
        range
    } else {
        format!("<br><small>{}</small>", esc(&range))
    };
    format!(
        "<tr><td>{name}</td><td class=\"n\"><b>{cameras}</b>{range}</td><td class=\"n\">{failing}</td>\
         <td>{} {reasons}</td><td class=\"n\">{per_camera}</td></tr>",
        esc(&limit)
    )
}

/// Renders the page.
pub(super) fn render(report: &CapacityReport) -> String {
    let mut out = String::new();
    let e = &report.environment;
    let _ = write!(
        out,
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <title>vmsbench capacity</title><style>\
         body{{font-family:sans-serif;max-width:1000px;margin:2em auto;color:#222}}\
         table{{border-collapse:collapse;margin:1em 0}}td,th{{border-bottom:1px solid #ddd;\
         padding:.3em .8em;text-align:left}}.n{{text-align:right}}\
         .plots{{display:flex;flex-wrap:wrap;gap:1em}}.note{{color:#555;font-size:.9em}}\
         </style></head><body><h1>How many cameras per recording server</h1>\
         <p class=\"note\">objective <code>{}</code> · {} {} cores · {} · rustls {} · {} build</p>",
        esc(&report.objective.text),
        esc(&e.cpu_model),
        e.cores,
        esc(&e.kernel),
        esc(&e.rustls_version),
        esc(&e.build_profile),
    );
    for line in crate::output::figures::placement_lines(report.placement.as_ref()) {
        let _ = write!(out, "<p class=\"note\">{}</p>", esc(&line));
    }
    let cost = esc(&report.cost_words().unwrap_or_else(|| "–".to_owned()));
    let _ = write!(
        out,
        "<table><tr><th>mode</th><th class=\"n\">cameras that meet the objective</th>\
         <th class=\"n\">first failing</th><th>limit</th>\
         <th class=\"n\">server CPU per camera</th></tr>{}{}</table>\
         <p>Capacity cost of encryption: <b>{cost}</b> of the plaintext capacity.</p>",
        answer("plaintext", report.modes.plain.as_ref()),
        answer("TLS", report.modes.tls.as_ref()),
    );
    if let Some(p) = &report.projection {
        let cams = |c: Option<u64>| c.map_or_else(|| "–".to_owned(), |c| c.to_string());
        let _ = write!(
            out,
            "<p><b>Linear projection</b> (not a measurement) to a recording server with {} \
             cores: {} cameras plaintext, {} with TLS. It assumes away: {}.</p>",
            p.cores,
            cams(p.plain_cameras),
            cams(p.tls_cameras),
            esc(&p.caveats.join("; "))
        );
    }
    out.push_str("<div class=\"plots\">");
    out.push_str(&line_plot(&LinePlot {
        title: "frame latency p99 against cameras".into(),
        x: XAxis::Linear("cameras on the recording server".into()),
        y_label: "p99 frame latency".into(),
        y_unit: YUnit::Micros,
        series: series(report, |s| s.latency_us.p99 as f64),
    }));
    out.push_str(&line_plot(&LinePlot {
        title: "recording-server CPU against cameras".into(),
        x: XAxis::Linear("cameras on the recording server".into()),
        y_label: "recording server".into(),
        y_unit: YUnit::Cores,
        series: series(report, |s| s.cpu_server_cores),
    }));
    out.push_str("</div>");
    if !report.warnings.is_empty() {
        out.push_str("<h2>Before trusting these figures</h2><ul>");
        for w in &report.warnings {
            let _ = write!(out, "<li>{}</li>", esc(w));
        }
        out.push_str("</ul>");
    }
    out.push_str("</body></html>\n");
    out
}
