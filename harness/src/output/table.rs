//! The terminal's column renderer, shared by every command's table.

use std::fmt::Write as _;

/// Renders `rows` (the first one a header, underlined) in columns: left-aligned where
/// `left_aligned(column)` says so, right-aligned elsewhere.
pub(crate) fn render_rows(
    out: &mut String,
    rows: &[Vec<String>],
    left_aligned: impl Fn(usize) -> bool,
) {
    let cols = rows.first().map_or(0, Vec::len);
    let widths: Vec<usize> = (0..cols)
        .map(|c| {
            rows.iter()
                .map(|r| r.get(c).map_or(0, |s| s.chars().count()))
                .max()
                .unwrap_or(0)
        })
        .collect();
    for (i, row) in rows.iter().enumerate() {
        let mut line = String::new();
        for (c, cell) in row.iter().enumerate() {
            let pad = widths
                .get(c)
                .copied()
                .unwrap_or(0)
                .saturating_sub(cell.chars().count());
            if left_aligned(c) {
                line.push_str(cell);
                line.push_str(&" ".repeat(pad));
            } else {
                line.push_str(&" ".repeat(pad));
                line.push_str(cell);
            }
            line.push_str("  ");
        }
        let _ = writeln!(out, "{}", line.trim_end());
        if i == 0 {
            let total: usize = widths.iter().map(|w| w + 2).sum();
            let _ = writeln!(out, "{}", "─".repeat(total.saturating_sub(2)));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_align_and_the_header_is_underlined() {
        let rows = vec![
            vec!["link".to_owned(), "Mbit/s".to_owned()],
            vec!["viewer-recorder".to_owned(), "4.0".to_owned()],
            vec!["bulk".to_owned(), "1234.5".to_owned()],
        ];
        let mut out = String::new();
        render_rows(&mut out, &rows, |c| c == 0);
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines[0], "link             Mbit/s");
        assert_eq!(lines[1], "─".repeat(23));
        assert_eq!(lines[2], "viewer-recorder     4.0");
        assert_eq!(lines[3], "bulk             1234.5");
    }
}
