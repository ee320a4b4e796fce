//! `vmsbench limits` and `--with-limits` end to end, in-process through the real flag
//! parsing, against real sockets on 127.0.0.1: every ceiling present, positive and finite,
//! in the units its name says; a run measured with them sets each link beside them. No
//! assertion bounds how fast anything is.

use crate::checks::validate_limits;
use crate::support::{path_str, run_once};
use serde_json::Value;

/// `v` as a number that is finite and above zero.
fn positive(v: &Value, what: &str) -> f64 {
    let n = v
        .as_f64()
        .unwrap_or_else(|| panic!("{what} is not a number: {v}"));
    assert!(n.is_finite() && n > 0.0, "{what} = {n}");
    n
}

fn array<'a>(v: &'a Value, what: &str) -> &'a Vec<Value> {
    let a = v
        .as_array()
        .unwrap_or_else(|| panic!("{what} is not an array"));
    assert!(!a.is_empty(), "{what} is empty");
    a
}

/// Every figure of a `limits` object, and the consistency of its units. Memory per
/// connection is a difference of the process's resident memory: only in a process of its
/// own (`own_process`) must it have grown; among other tests it may not.
fn check_limits(l: &Value, own_process: bool) {
    let tcp = &l["tcp"];
    let mbit = positive(&tcp["goodput_mbit_s"], "tcp.goodput_mbit_s");
    let bytes = positive(&tcp["bytes"], "tcp.bytes");
    let window = positive(&tcp["window_s"], "tcp.window_s");
    assert!(
        (bytes * 8.0 / window / 1e6 - mbit).abs() <= 1e-6 * mbit,
        "Mbit/s from bytes"
    );

    let suites = array(&l["record_layer"], "record_layer");
    let versions: Vec<&str> = suites
        .iter()
        .filter_map(|s| s["version"].as_str())
        .collect();
    assert!(
        versions.contains(&"1.3") && versions.contains(&"1.2"),
        "{versions:?}"
    );
    for s in suites {
        let name = s["suite"].as_str().expect("suite name");
        let frames = array(&s["frames"], name);
        assert!(frames.len() >= 2, "{name}: every frame size");
        for f in frames {
            let size = positive(&f["frame_bytes"], "frame_bytes");
            for op in ["seal", "open"] {
                let us = positive(&f[format!("{op}_us_per_frame")], op);
                let mb = positive(&f[format!("{op}_mbyte_s")], op);
                // MB/s is payload bytes per µs: the two figures describe the same frames.
                assert!((size / us - mb).abs() <= 1e-6 * mb, "{name} {size} {op}");
            }
            array(&f["frames"], "the profiles' frames of this size");
        }
    }

    let cells = array(&l["handshakes"], "handshakes");
    for kind in ["full", "resumed"] {
        let c = cells
            .iter()
            .find(|c| c["resumption"] == kind)
            .unwrap_or_else(|| panic!("no {kind} handshake"));
        positive(&c["handshakes_per_s"], "handshakes_per_s");
        positive(&c["latency_us"]["p50"], "handshake p50");
        assert!(c["errors"].as_object().is_some_and(|e| e.is_empty()), "{c}");
    }

    let m = &l["memory"];
    positive(&m["connections"], "memory.connections");
    if own_process {
        positive(&m["bytes_per_connection"], "bytes_per_connection");
        assert!(m["rss_after_bytes"].as_u64() > m["rss_before_bytes"].as_u64());
    } else {
        let b = m["bytes_per_connection"].as_f64().expect("a number");
        assert!(b.is_finite() && b >= 0.0, "bytes_per_connection = {b}");
    }

    let floors = array(&l["latency_floor"], "latency_floor");
    for mode in ["plain", "tls"] {
        let f = floors
            .iter()
            .find(|f| f["mode"] == mode)
            .unwrap_or_else(|| panic!("no {mode} floor"));
        let p50 = positive(&f["latency_us"]["p50"], "floor p50");
        assert!(positive(&f["latency_us"]["p99"], "floor p99") >= p50);
        positive(&f["frames"], "floor frames");
        assert_eq!(f["tls"].is_null(), mode == "plain", "{f}");
    }
}

#[test]
fn limits_reports_every_ceiling_positive_and_in_consistent_units() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (md, html) = (dir.path().join("l.md"), dir.path().join("l.html"));
    let json = dir.path().join("limits.json");
    // A process of its own: memory per connection is a difference of the process's
    // resident memory, which the other tests of this binary would move.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_vmsbench"))
        .args([
            "limits",
            "--budget",
            "30ms",
            "--keys",
            "ecdsa-p256",
            "--idle-connections",
            "20",
            "--export-markdown",
            &path_str(&md),
            "--export-html",
            &path_str(&html),
            "--export-json",
            &path_str(&json),
        ])
        .output()
        .expect("vmsbench limits runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: Value =
        serde_json::from_str(&std::fs::read_to_string(&json).expect("JSON written"))
            .expect("JSON parses");
    validate_limits(&report);
    assert_eq!(report["command"], "limits");
    assert_eq!(report["partial"], false);
    assert_eq!(report["limits"]["memory"]["connections"], 20);
    check_limits(&report["limits"], true);
    let md = std::fs::read_to_string(md).expect("Markdown written");
    assert!(md.contains("# This machine's limits"), "{md}");
    let html = std::fs::read_to_string(html).expect("HTML written");
    assert!(html.contains("<svg"), "a chart");
}

#[test]
fn run_with_limits_sets_every_link_beside_this_machines_ceilings() {
    let dir = tempfile::tempdir().expect("tempdir");
    let md = dir.path().join("run.md");
    let report = run_once(
        dir.path(),
        &[],
        "1500ms",
        "1500ms",
        &[
            "--with-limits",
            "--limits-budget",
            "30ms",
            "--export-markdown",
            &path_str(&md),
        ],
    );
    crate::checks::validate(&report);
    let limits = &report["limits"];
    assert!(limits["note"]
        .as_str()
        .is_some_and(|n| n.contains("same sitting")));
    check_limits(&limits["measured"], false);
    let shares = array(&limits["shares"], "shares");
    let results = array(&report["results"], "results");
    assert_eq!(shares.len(), results.len(), "one share per link and mode");
    for r in results {
        let (link, mode) = (&r["link"], &r["mode"]);
        let s = shares
            .iter()
            .find(|s| &s["link"] == link && &s["mode"] == mode)
            .unwrap_or_else(|| panic!("no share for {link} {mode}"));
        let what = format!("{link} {mode}");
        assert!(
            s["ceiling"].as_str().is_some_and(|c| !c.is_empty()),
            "{what}"
        );
        if r["goodput_mbit_s"].as_f64().is_some_and(|g| g > 0.0) {
            positive(&s["goodput_share"], &what);
            positive(&s["ceiling_mbit_s"], &what);
        }
        if r["latency_us"]["p50"].as_u64().is_some_and(|p| p > 0) {
            positive(&s["latency_over_floor"], &what);
        }
        if mode == "tls" && r["handshake_us"].as_u64().is_some_and(|h| h > 0) {
            positive(&s["setup_over_floor"], &what);
        }
    }
    let vr = shares
        .iter()
        .find(|s| s["link"] == "viewer-recorder" && s["mode"] == "tls")
        .expect("viewer-recorder TLS");
    assert!(vr["ceiling"]
        .as_str()
        .is_some_and(|c| c.contains("record-layer seal")));
    let md = std::fs::read_to_string(md).expect("Markdown written");
    assert!(
        md.contains("viewer-recorder TLS: "),
        "one line per link: {md}"
    );
}
