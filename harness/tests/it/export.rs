//! The exports of real runs: every format from one run, checked against each other, the
//! JSON against its schema; the kernel cross-check; the stall demonstration.

use std::process::ExitCode;

use crate::checks::{hgrm_p50_p99, validate};
use crate::support::{read_json, result, run_report_in, try_run};
use serde_json::Value;

/// Links of the small preset that stream video (the kernel check applies to them).
const VIDEO_LINKS: [&str; 3] = ["viewer-recorder", "mobile-recorder", "phone-mobile"];

#[test]
fn one_run_writes_every_export_and_they_agree() {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = |name: &str| dir.path().join(name);
    let path = |name: &str| p(name).to_str().expect("utf-8 path").to_owned();
    let (json, md, html, ndjson, hgrm) = (
        path("r.json"),
        path("r.md"),
        path("r.html"),
        path("r.ndjson"),
        path("hgrm"),
    );
    let code = try_run(&[
        "run",
        "--duration",
        "2s",
        "--warmup",
        "1500ms",
        "--repeat",
        "1",
        "--export-json",
        &json,
        "--export-markdown",
        &md,
        "--export-html",
        &html,
        "--export-ndjson",
        &ndjson,
        "--export-hgrm",
        &hgrm,
    ])
    .expect("run succeeds");
    assert_eq!(code, ExitCode::SUCCESS);
    let report = read_json(&p("r.json"));
    validate(&report);

    // The .hgrm files describe the same frames as the JSON (one repeat: the merged
    // histogram is the repeat's).
    let results = report["results"].as_array().expect("results");
    let mut links = Vec::new();
    for r in results {
        let (link, mode) = (
            r["link"].as_str().expect("link"),
            r["mode"].as_str().expect("mode"),
        );
        if !links.contains(&link) {
            links.push(link);
        }
        for (kind, field) in [
            ("latency_ms", "latency_us"),
            ("uncorrected_latency_ms", "uncorrected_latency_us"),
        ] {
            let file = p("hgrm").join(format!("{link}.{mode}.{kind}.hgrm"));
            let text = std::fs::read_to_string(&file)
                .unwrap_or_else(|e| panic!("{}: {e}", file.display()));
            if r["frames_received"].as_u64().unwrap_or(0) == 0 {
                continue;
            }
            let (p50, (below, above)) = hgrm_p50_p99(&text);
            let json_p50 = r[field]["p50"].as_u64().expect("p50");
            let json_p99 = r[field]["p99"].as_u64().expect("p99");
            assert_eq!(p50, json_p50, "{link} {mode} {field}: p50");
            assert!(
                below <= json_p99 && json_p99 <= above,
                "{link} {mode} {field}: p99 {json_p99} outside the file's {below}..{above}"
            );
        }
    }

    // NDJSON: one line per second, link and mode (a 2 s window: 2 samples each).
    let text = std::fs::read_to_string(p("r.ndjson")).expect("ndjson");
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).expect("one JSON object per line"))
        .collect();
    for link in &links {
        for mode in ["plain", "tls"] {
            let n = lines
                .iter()
                .filter(|l| l["link"] == *link && l["mode"] == mode && l["repeat"] == 1)
                .count();
            assert_eq!(n, 2, "{link} {mode}: {text}");
        }
    }
    let video: f64 = lines
        .iter()
        .filter(|l| l["link"] == "viewer-recorder" && l["mode"] == "plain")
        .filter_map(|l| l["goodput_mbit_s"].as_f64())
        .sum::<f64>()
        / 2.0;
    let goodput = result(&report, "viewer-recorder", "plain")["goodput_mbit_s"]
        .as_f64()
        .expect("goodput");
    assert!(
        (video - goodput).abs() / goodput < 0.15,
        "per-second goodput {video} averages near the window's {goodput}"
    );

    // HTML: offline, one latency distribution plot per link.
    let page = std::fs::read_to_string(p("r.html")).expect("html");
    assert!(!page.contains("http://") && !page.contains("https://"));
    assert!(!page.contains("<script"));
    for link in &links {
        let label = format!("aria-label=\"{link}: frame latency by percentile\"");
        assert_eq!(page.matches(&label).count(), 1, "{link}");
    }
    let md = std::fs::read_to_string(p("r.md")).expect("markdown");
    assert!(md.starts_with("# vmsbench run: small"), "{md}");
    assert!(md.contains("## Cost of TLS per link"));

    // The kernel cross-check: on a run that keeps up, the application's and the kernel's
    // byte counts agree within 1 %, and the wire carries the payload plus 40 bytes of
    // header per frame (plaintext) and a little more (TLS records).
    for link in VIDEO_LINKS {
        for mode in ["plain", "tls"] {
            let k = &result(&report, link, mode)["kernel_check"];
            let num = |f: &str| {
                k[f].as_f64()
                    .unwrap_or_else(|| panic!("{link} {mode}: {k}"))
            };
            assert!(num("kernel_bytes") > 1e6, "{link} {mode}: {k}");
            assert!(num("discrepancy_pct").abs() < 1.0, "{link} {mode}: {k}");
            let (wire, payload, headers) = (
                num("app_wire_bytes"),
                num("payload_bytes"),
                num("header_bytes"),
            );
            let extra = (wire - payload - headers) / payload;
            if mode == "plain" {
                assert!(extra.abs() < 0.01, "{link} {mode}: {k}");
            } else {
                assert!(extra > 0.0 && extra < 0.01, "{link} {mode}: {k}");
            }
        }
    }
}

#[test]
fn bulk_reports_validate_against_the_schema_too() {
    let dir = tempfile::tempdir().expect("tempdir");
    let report = run_report_in(
        dir.path(),
        &[
            "bulk",
            "--duration",
            "1s",
            "--warmup",
            "300ms",
            "--repeat",
            "1",
        ],
    );
    validate(&report);
    assert!(!report["histograms"]
        .as_array()
        .expect("histograms")
        .is_empty());
}

/// One recording server, one viewer of four 30 fps cameras.
const STALL: &str = r#"
name = "stall-test"
[[recorder]]
host = "recorder-1.vms.test"
cameras = [{ profile = "720p", count = 4 }]
[[viewer]]
name = "operator"
count = 1
view = 4
"#;

#[test]
fn an_injected_stall_shows_in_corrected_latency_and_not_in_uncorrected() {
    let dir = tempfile::tempdir().expect("tempdir");
    let scenario = dir.path().join("stall.toml");
    std::fs::write(&scenario, STALL).expect("write scenario");
    let out = dir.path().join("stall.json");
    let (window_s, stall_s) = (3.0, 1.0);
    let code = try_run(&[
        "run",
        scenario.to_str().expect("utf-8 path"),
        "--mode",
        "tls",
        "--duration",
        "3s",
        "--warmup",
        "1500ms",
        "--repeat",
        "1",
        "--inject-stall",
        "1s",
        "--json",
        out.to_str().expect("utf-8 path"),
    ])
    .expect("run succeeds");
    assert_eq!(code, ExitCode::SUCCESS);
    let report = read_json(&out);
    validate(&report);
    assert_eq!(report["measurement"]["inject_stall_s"], stall_s);
    assert!(report["scenario"]["events"]
        .as_array()
        .expect("events")
        .iter()
        .any(|e| e["action"]["action"] == "stall_recorders"));
    let r = result(&report, "viewer-recorder", "tls");
    // Every frame arrives (the queue holds the stalled second), many of them late.
    assert_eq!(r["frames_received"], r["frames_due"], "{r}");
    assert_eq!(r["dropped_frames"], 0);
    assert!(r["late_frames"].as_u64().unwrap_or(0) > 0);

    // Frames fall due evenly over the window. The stall starts in its middle and holds back
    // every frame due in the next second until it ends; a frame due in the stall's first
    // 5 % of the window (0.15 s) waits at least stall − 0.15 s. Those frames are 5 % of the
    // window's, five times the 1 % above p99: so p99 is at least that, by construction.
    let threshold_us = (stall_s - 0.05 * window_s) * 1e6;
    let p99 = r["latency_us"]["p99"].as_f64().expect("p99");
    let max = r["latency_us"]["max"].as_f64().expect("max");
    assert!(
        p99 >= threshold_us,
        "corrected p99 {p99} µs < {threshold_us} µs"
    );
    // The first frame held back waits the whole stall, less at most one frame interval.
    assert!(max >= (stall_s - 0.034) * 1e6, "corrected max {max} µs");
    // Uncorrected latency starts when a frame is finally sent, after the stall: it misses
    // the wait entirely and only sees the burst drain through the socket.
    let uncorrected = r["uncorrected_latency_us"]["p99"].as_f64().expect("p99");
    assert!(
        uncorrected < stall_s * 1e6 / 4.0,
        "uncorrected p99 {uncorrected} µs is not well below the stall"
    );
    assert!(report["warnings"]
        .as_array()
        .expect("warnings")
        .iter()
        .any(|w| w.as_str().is_some_and(|w| w.contains("--inject-stall"))));
}

#[test]
fn a_stall_that_would_not_end_inside_the_window_is_refused() {
    let err = try_run(&["run", "--duration", "3s", "--inject-stall", "2s"]).expect_err("refused");
    let msg = format!("{err:#}");
    assert!(
        msg.contains("--inject-stall") && msg.contains("--duration"),
        "{msg}"
    );
}

#[test]
fn two_exports_to_standard_output_are_refused_before_running() {
    let err = try_run(&[
        "run",
        "--duration",
        "60s",
        "--export-json",
        "-",
        "--export-markdown",
        "-",
    ])
    .expect_err("refused");
    assert!(format!("{err:#}").contains("--export-json and --export-markdown"));
}
