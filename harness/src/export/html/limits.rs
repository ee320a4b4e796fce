//! This machine's ceilings as a self-contained HTML page: seal and open throughput per
//! suite as bar charts, then every figure; and the section a `--with-limits` report adds.

use std::fmt::Write as _;

use crate::output::escape_html as esc;
use crate::output::svg::{bar_chart, Bar, BarGroup, PLAIN, TLS};
use crate::output::terminal::{floor_rows, handshake_rows, record_rows, summary_lines};
use crate::report::limits::{Limits, LimitsComparison, LimitsReport};

/// `rows` (a header first) as a table, the first `text` columns left-aligned.
fn table(out: &mut String, rows: &[Vec<String>], text: usize) {
    let Some((header, body)) = rows.split_first() else {
        return;
    };
    out.push_str("<div class=\"scroll\"><table><tr>");
    for (i, h) in header.iter().enumerate() {
        let class = if i < text { " class=\"text\"" } else { "" };
        let _ = write!(out, "<th{class}>{}</th>", esc(h));
    }
    out.push_str("</tr>");
    for r in body {
        out.push_str("<tr>");
        for (i, c) in r.iter().enumerate() {
            let class = if i < text { " class=\"text\"" } else { "" };
            let _ = write!(out, "<td{class}>{}</td>", esc(c));
        }
        out.push_str("</tr>");
    }
    out.push_str("</table></div>");
}

/// Seal (TLS colour) and open (plain colour) MB/s at each frame size, a group per suite.
fn chart(l: &Limits) -> String {
    let groups: Vec<BarGroup> = l
        .record_layer
        .iter()
        .map(|s| BarGroup {
            name: s.suite.clone(),
            bars: s
                .frames
                .iter()
                .flat_map(|f| {
                    [
                        (format!("seal {} B", f.frame_bytes), f.seal_mbyte_s, TLS),
                        (format!("open {} B", f.frame_bytes), f.open_mbyte_s, PLAIN),
                    ]
                })
                .map(|(label, value, color)| Bar {
                    text: format!("{value:.0} MB/s"),
                    label,
                    value,
                    color,
                })
                .collect(),
        })
        .collect();
    bar_chart("record layer, MB/s per core (seal, open)", &groups, false)
}

/// The figures of `l`.
fn figures(out: &mut String, l: &Limits) {
    out.push_str("<ul>");
    for line in summary_lines(l) {
        let _ = write!(out, "<li>{}</li>", esc(&line));
    }
    out.push_str("</ul><div class=\"charts\">");
    out.push_str(&chart(l));
    out.push_str("</div><h3>Record layer (one core, in memory)</h3>");
    table(out, &record_rows(l), 2);
    out.push_str("<h3>Handshakes (one connection at a time over loopback)</h3>");
    table(out, &handshake_rows(l), 4);
    out.push_str("<h3>Latency floor (one frame at a time, idle link)</h3>");
    table(out, &floor_rows(l), 1);
}

/// Renders the page.
pub(super) fn render(r: &LimitsReport) -> String {
    let mut out = String::new();
    let e = &r.environment;
    let _ = write!(
        out,
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <title>vmsbench limits</title><style>{}</style></head><body><main>\
         <h1>This machine's limits{}</h1><p class=\"meta\">{} s per measurement, one sitting · \
         {} {} cores · rustls {} ({}) · {} · {} build</p>",
        super::STYLE,
        if r.partial { " (PARTIAL)" } else { "" },
        r.limits.budget_s,
        esc(&e.cpu_model),
        e.cores,
        esc(&e.rustls_version),
        esc(&e.crypto_provider),
        esc(&e.allocator),
        esc(&e.build_profile),
    );
    figures(&mut out, &r.limits);
    super::close_page(&mut out, &r.warnings);
    out
}

/// Adds the section of a `--with-limits` report to `page`, at the end of its main part.
pub(super) fn add_share_section(page: &mut String, c: Option<&LimitsComparison>) {
    let Some(c) = c else { return };
    let mut s = format!(
        "<h2>Against this machine's limits</h2><p class=\"explain\">{}</p><ul>",
        esc(&c.note)
    );
    for share in &c.shares {
        let _ = write!(s, "<li>{}</li>", esc(&share.line()));
    }
    s.push_str("</ul>");
    figures(&mut s, &c.measured);
    match page.rfind("</main>") {
        Some(at) => page.insert_str(at, &s),
        None => page.push_str(&s),
    }
}
