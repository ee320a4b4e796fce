//! The comparison as Markdown, for a pull-request comment (`baseline check --markdown`).

use std::fmt::Write as _;

use super::compare::{fmt_num, LoadedReport, Outcome, Row, Thresholds, Verdict};
use serde_json::Value;

pub(super) fn fmt_change(pct: f64) -> String {
    if pct.is_infinite() {
        return if pct > 0.0 { "new" } else { "gone" }.to_owned();
    }
    format!("{pct:+.1} %")
}

/// The entry's `link` and `mode` columns.
pub(super) fn entry_columns(entry: &[String]) -> (String, String) {
    let link = entry.first().cloned().unwrap_or_default();
    let mode = entry.get(1).cloned().unwrap_or_default();
    (link, mode)
}

pub(super) fn md_escape(s: &str) -> String {
    s.replace('|', "\\|")
}

/// The Markdown summary, for a pull-request comment.
pub(super) fn markdown(
    outcome: &Outcome,
    baseline: &LoadedReport,
    result: &LoadedReport,
    thresholds: &Thresholds,
) -> String {
    let mut md = String::new();
    let regressions: Vec<&Row> = outcome.regressions().collect();
    let improvements = outcome
        .rows
        .iter()
        .filter(|r| r.verdict == Verdict::Improvement)
        .count();
    let verdict = if outcome.passed() {
        "✅ no regression".to_owned()
    } else {
        let n = regressions.len() + outcome.missing.len();
        format!("❌ {n} regression{}", if n == 1 { "" } else { "s" })
    };
    let _ = writeln!(md, "## vmsbench `{}`: {verdict}", result.kind.command);
    let _ = writeln!(md);
    let _ = writeln!(
        md,
        "Result `{}` (started {}) against baseline `{}` (started {}): {} figures compared, \
         {} regressed, {} worse within the spread of the repeats, {} improved. Thresholds: {}.",
        md_escape(&result.path.display().to_string()),
        result.field("started_at"),
        md_escape(&baseline.path.display().to_string()),
        baseline.field("started_at"),
        outcome.rows.len(),
        regressions.len(),
        outcome
            .rows
            .iter()
            .filter(|r| r.verdict == Verdict::WithinSpread)
            .count(),
        improvements,
        thresholds.describe(result.kind),
    );
    let _ = writeln!(md);
    let header =
        "| | metric | link | mode | baseline | new | change | threshold | change, 95 % |\n\
                  |---|---|---|---|---:|---:|---:|---:|---:|";
    if !regressions.is_empty() {
        let _ = writeln!(md, "### Regressions\n\n{header}");
        for r in &regressions {
            md.push_str(&row(r));
        }
        let _ = writeln!(md);
    }
    let noisy: Vec<&Row> = outcome
        .rows
        .iter()
        .filter(|r| r.verdict == Verdict::WithinSpread)
        .collect();
    if !noisy.is_empty() {
        let _ = writeln!(
            md,
            "### Worse beyond the threshold, within the spread of the repeats (not failing)\n\n\
             The 95 % interval of the change reaches back within the threshold (or, without \
             one, the ranges of the repeats overlap): as likely noise as a change.\n\n\
             {header}"
        );
        for r in &noisy {
            md.push_str(&row(r));
        }
        let _ = writeln!(md);
    }
    if !outcome.missing.is_empty() {
        let _ = writeln!(md, "### Missing from the result (counted as regressions)\n");
        for k in &outcome.missing {
            let _ = writeln!(md, "- {}", md_escape(&k.join(" ")));
        }
        let _ = writeln!(md);
    }
    if !outcome.rows.is_empty() {
        let _ = writeln!(
            md,
            "<details><summary>All {} figures</summary>\n\n{header}",
            outcome.rows.len()
        );
        for r in &outcome.rows {
            md.push_str(&row(r));
        }
        let _ = writeln!(md, "\n</details>\n");
    }
    let mut notes: Vec<String> = Vec::new();
    for m in &outcome.allowed_mismatches {
        notes.push(format!(
            "compared despite a mismatch (--allow-mismatch): `{}` differs: baseline {}, result {}",
            m.field, m.baseline, m.result
        ));
    }
    if !outcome.too_few_samples.is_empty() {
        let n: usize = outcome.too_few_samples.iter().map(|(_, m)| m.len()).sum();
        let list: Vec<String> = outcome
            .too_few_samples
            .iter()
            .map(|(k, m)| format!("{} ({})", k.join(" "), m.join(", ")))
            .collect();
        notes.push(format!(
            "{n} figures not compared: too few frames, connections or handshakes behind them \
             (rates and medians need 100, p99 1000, p99.9 10000; per-connection medians 20): {}",
            list.join("; ")
        ));
    }
    for k in &outcome.added {
        notes.push(format!(
            "new in the result, not in the baseline: {}",
            k.join(" ")
        ));
    }
    notes.extend(outcome.notes.iter().cloned());
    if let Some(w) = result.json.get("warnings").and_then(Value::as_array) {
        notes.extend(
            w.iter()
                .filter_map(Value::as_str)
                .map(|w| format!("result warning: {w}")),
        );
    }
    if !notes.is_empty() {
        let _ = writeln!(md, "Notes:\n");
        for n in notes {
            let _ = writeln!(md, "- {}", md_escape(&n));
        }
    }
    md
}

/// One figure's row of the table.
fn row(r: &Row) -> String {
    let (link, mode) = entry_columns(&r.entry);
    let mark = match r.verdict {
        Verdict::Regression => "❌",
        Verdict::Improvement => "🟢",
        Verdict::WithinSpread => "⚠️",
        Verdict::Unchanged => "",
    };
    format!(
        "| {mark} | `{}` | {} | {} | {} | {} | {} | {} % | {} |\n",
        r.metric,
        md_escape(&link),
        md_escape(&mode),
        fmt_num(r.baseline),
        fmt_num(r.new),
        fmt_change(r.change_pct),
        fmt_num(r.threshold_pct),
        r.change_interval_pct.map_or_else(
            || "–".to_owned(),
            |i| format!("{} … {}", fmt_change(i.low), fmt_change(i.high))
        ),
    )
}
