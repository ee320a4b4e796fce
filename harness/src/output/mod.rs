//! What vmsbench shows and writes besides the report documents themselves: terminal
//! tables (one column renderer), live progress on standard error, files written
//! atomically, and the SVG plots of the HTML pages.

pub(crate) mod atomic;
pub(crate) mod figures;
pub(crate) mod progress;
pub(crate) mod svg;
pub(crate) mod table;
pub(crate) mod terminal;

/// Escapes text for HTML (element content and quoted attribute values).
pub(crate) fn escape_html(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}
