//! The handshake matrix as a self-contained HTML page: handshakes per second and CPU per
//! handshake per cell as bar charts, then the table.

use std::fmt::Write as _;

use crate::output::escape_html as esc;
use crate::output::svg::{bar_chart, Bar, BarGroup, PLAIN, TLS};
use crate::output::terminal::cell_row;
use crate::report::handshakes::{CellResult, HandshakesReport, Resumption};

fn color(c: &CellResult) -> &'static str {
    match c.resumption {
        Resumption::Full => TLS,
        Resumption::Resumed => PLAIN,
    }
}

/// One bar group per version, key and group; a bar per full/resumed cell.
fn groups(
    r: &HandshakesReport,
    value: fn(&CellResult) -> Option<f64>,
    unit: &str,
) -> Vec<BarGroup> {
    let mut groups: Vec<BarGroup> = Vec::new();
    for c in &r.results {
        let Some(v) = value(c) else { continue };
        let name = format!("TLS {} {} {}", c.version, c.key, c.group);
        let bar = Bar {
            label: c.resumption.as_str().to_owned(),
            value: v,
            text: format!("{v:.0} {unit}"),
            color: color(c),
        };
        match groups.iter_mut().find(|g| g.name == name) {
            Some(g) => g.bars.push(bar),
            None => groups.push(BarGroup {
                name,
                bars: vec![bar],
            }),
        }
    }
    groups
}

/// Renders the page.
pub(super) fn render(r: &HandshakesReport) -> String {
    let mut out = String::new();
    let e = &r.environment;
    let m = &r.measurement;
    let _ = write!(
        out,
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <title>vmsbench handshakes</title><style>{}</style></head><body><main>\
         <h1>TLS handshakes{}</h1><p class=\"meta\">{} s per cell after {} s warm-up · {} \
         connection(s) in flight · {} · {} {} cores · rustls {} · {} build</p>",
        super::STYLE,
        if r.partial { " (PARTIAL)" } else { "" },
        m.duration_s,
        m.warmup_s,
        m.concurrency,
        esc(&m.cipher.to_string()),
        esc(&e.cpu_model),
        e.cores,
        esc(&e.rustls_version),
        esc(&e.build_profile),
    );
    out.push_str("<div class=\"charts\">");
    out.push_str(&bar_chart(
        "handshakes per second (full and resumed)",
        &groups(r, |c| Some(c.handshakes_per_s), "/s"),
        false,
    ));
    out.push_str(&bar_chart(
        "server CPU per handshake, µs",
        &groups(r, |c| c.cpu_server_us_per_handshake, "µs"),
        false,
    ));
    out.push_str(
        "</div><div class=\"scroll\"><table><tr><th class=\"text\">cell</th>\
                  <th>handshakes/s</th><th>p50</th><th>p99</th><th>server CPU/hs</th>\
                  <th>client CPU/hs</th><th>resumed</th><th class=\"text\">suite</th>\
                  <th>errors</th></tr>",
    );
    for c in &r.results {
        let row = cell_row(c);
        let _ = write!(
            out,
            "<tr><td class=\"text\">TLS {}</td>",
            esc(&row[..4].join(" "))
        );
        for (i, v) in row[4..].iter().enumerate() {
            let class = if i == 6 { " class=\"text\"" } else { "" };
            let _ = write!(out, "<td{class}>{}</td>", esc(v));
        }
        out.push_str("</tr>");
    }
    out.push_str("</table></div>");
    if !r.skipped.is_empty() {
        out.push_str("<h2>Skipped</h2><ul>");
        for s in &r.skipped {
            let _ = write!(
                out,
                "<li>TLS {} {} {} {}: {}</li>",
                s.version,
                s.key,
                s.group,
                s.resumption.as_str(),
                esc(&s.reason)
            );
        }
        out.push_str("</ul>");
    }
    super::close_page(&mut out, &r.warnings);
    out
}
