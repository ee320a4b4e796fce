//! Checks of a report that the unit tests (on synthetic reports) and the end-to-end tests
//! (on real runs) share: included by both (`#[path]` in `src/export/tests.rs`).

use serde_json::Value;

/// Validates a report against the checked-in schema, listing every error.
pub fn validate(report: &Value) {
    let schema: Value = serde_json::from_str(include_str!("../../schema/report-v1.schema.json"))
        .expect("the schema is JSON");
    assert_valid(&schema, report);
}

/// Validates a `vmsbench limits` report against its definition in the checked-in schema
/// (`$defs/limits_report`), listing every error.
pub fn validate_limits(report: &Value) {
    let mut schema: Value =
        serde_json::from_str(include_str!("../../schema/report-v1.schema.json"))
            .expect("the schema is JSON");
    let defs = schema["$defs"].take();
    let schema = serde_json::json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$ref": "#/$defs/limits_report",
        "$defs": defs,
    });
    assert_valid(&schema, report);
}

/// Validates `report` against `schema`, listing every error.
fn assert_valid(schema: &Value, report: &Value) {
    let validator = jsonschema::draft202012::new(schema).expect("the schema is valid");
    let errors: Vec<String> = validator
        .iter_errors(report)
        .map(|e| format!("{e} at {}", e.instance_path()))
        .collect();
    assert!(errors.is_empty(), "{}", errors.join("\n"));
}

/// The p50 row's value and the values around p99 (the last row below it, the first at or
/// above it) of an `.hgrm` file, in µs.
pub fn hgrm_p50_p99(text: &str) -> (u64, (u64, u64)) {
    let rows: Vec<(f64, f64)> = text
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let mut cols = l.split_whitespace();
            let v: f64 = cols.next()?.parse().ok()?;
            let q: f64 = cols.next()?.parse().ok()?;
            Some((v, q))
        })
        .collect();
    let us = |ms: f64| (ms * 1000.0).round() as u64;
    let p50 = rows
        .iter()
        .find(|(_, q)| *q >= 0.5)
        .map(|(v, _)| us(*v))
        .expect("p50 row");
    let below = rows
        .iter()
        .rfind(|(_, q)| *q < 0.99)
        .map_or(0, |(v, _)| us(*v));
    let above = rows
        .iter()
        .find(|(_, q)| *q >= 0.99)
        .map(|(v, _)| us(*v))
        .expect("p99 row");
    (p50, (below, above))
}
