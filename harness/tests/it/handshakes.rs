//! `vmsbench handshakes` end to end, in-process through the real flag parsing, against
//! real servers on 127.0.0.1: one result per cell with the parameters it pins, resumed
//! cells that really resume, full ones that do not, impossible cells left out and listed.
//! No assertion bounds how fast anything runs.

use crate::support::{run_report, try_run};
use serde_json::Value;

fn results(report: &Value) -> &Vec<Value> {
    report["results"].as_array().expect("results array")
}

fn cell<'a>(
    report: &'a Value,
    version: &str,
    key: &str,
    group: &str,
    resumption: &str,
) -> &'a Value {
    let matching: Vec<&Value> = results(report)
        .iter()
        .filter(|r| {
            r["version"] == version
                && r["key"] == key
                && r["group"] == group
                && r["resumption"] == resumption
        })
        .collect();
    assert_eq!(
        matching.len(),
        1,
        "expected one result for {version} {key} {group} {resumption}"
    );
    matching[0]
}

fn rustls_version(v: &str) -> &'static str {
    match v {
        "1.2" => "TLSv1_2",
        "1.3" => "TLSv1_3",
        other => panic!("unexpected version {other}"),
    }
}

#[test]
fn short_matrix_reports_every_cell_with_what_it_negotiated_and_whether_it_resumed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("handshakes.json");
    let args = [
        "handshakes",
        "--duration",
        "200ms",
        "--warmup",
        "100ms",
        "--keys",
        "ecdsa-p256,rsa2048",
        "--versions",
        "1.2,1.3",
        "--groups",
        "x25519",
        "--resumption",
        "both",
        "--concurrency",
        "2",
    ];
    let (md, html) = (dir.path().join("hs.md"), dir.path().join("hs.html"));
    let mut with_exports: Vec<&str> = args.to_vec();
    let (md_arg, html_arg) = (md.display().to_string(), html.display().to_string());
    with_exports.extend(["--export-markdown", &md_arg, "--export-html", &html_arg]);
    let report = run_report(&with_exports, "--json", &out);
    // Markdown and HTML carry one row per cell.
    let markdown = std::fs::read_to_string(&md).expect("Markdown written");
    let page = std::fs::read_to_string(&html).expect("HTML written");
    for version in ["1.2", "1.3"] {
        for key in ["ecdsa-p256", "rsa2048"] {
            for resumption in ["full", "resumed"] {
                let row = format!("| {version} | {key} | x25519 | {resumption} |");
                assert_eq!(markdown.matches(&row).count(), 1, "{row}\n{markdown}");
                let label = format!("TLS {version} {key} x25519 {resumption}</td>");
                assert_eq!(page.matches(&label).count(), 1, "{label}");
            }
        }
    }

    assert_eq!(report["schema_version"], 1);
    assert_eq!(report["command"], "handshakes");
    assert_eq!(report["partial"], false);
    assert!(report["environment"]["cpu_model"].is_string());
    assert!(report["environment"]["rustls_version"].is_string());
    assert_eq!(report["measurement"]["concurrency"], 2);
    assert_eq!(report["measurement"]["duration_s"], 0.2);
    assert_eq!(report["skipped"].as_array().map(Vec::len), Some(0));

    // 2 versions × 2 keys × 1 group × 2 kinds of handshake.
    assert_eq!(results(&report).len(), 8);
    for version in ["1.2", "1.3"] {
        for key in ["ecdsa-p256", "rsa2048"] {
            for resumption in ["full", "resumed"] {
                let r = cell(&report, version, key, "x25519", resumption);
                let what = format!("{version} {key} {resumption}: {r:#}");
                let handshakes = r["handshakes"].as_u64().expect("handshakes");
                assert!(handshakes > 0, "{what}");
                assert!(
                    r["handshakes_per_s"].as_f64().expect("rate") > 0.0,
                    "{what}"
                );
                let latency = &r["latency_us"];
                for q in ["p50", "p90", "p99", "p999", "max"] {
                    assert!(latency[q].as_u64().expect("percentile") > 0, "{what}");
                }
                assert!(latency["p50"].as_u64() <= latency["p99"].as_u64(), "{what}");
                assert!(latency["p99"].as_u64() <= latency["max"].as_u64(), "{what}");
                for side in ["cpu_server_us_per_handshake", "cpu_client_us_per_handshake"] {
                    assert!(r[side].as_f64().expect("CPU per handshake") > 0.0, "{what}");
                }
                let n = &r["negotiated"];
                assert_eq!(n["version"], rustls_version(version), "{what}");
                assert!(
                    n["suite"].as_str().expect("suite").contains("AES_256_GCM"),
                    "{what}"
                );
                let resumed = r["resumed_fraction"].as_f64().expect("fraction");
                match resumption {
                    "full" => {
                        assert_eq!(resumed, 0.0, "{what}");
                        assert_eq!(r["mechanism"], "none", "{what}");
                    }
                    _ => {
                        assert!(resumed > 0.9, "{what}");
                        let mechanism = if version == "1.2" {
                            "session_id"
                        } else {
                            "ticket"
                        };
                        assert_eq!(r["mechanism"], mechanism, "{what}");
                    }
                }
                match (version, resumption) {
                    // A resumed TLS 1.2 handshake exchanges no key.
                    ("1.2", "resumed") => assert_eq!(n["group"], "none", "{what}"),
                    // TLS 1.3 resumption still runs the (EC)DHE key exchange.
                    _ => assert_eq!(n["group"], "X25519", "{what}"),
                }
                assert_eq!(r["errors"].as_object().map(|e| e.len()), Some(0), "{what}");
            }
        }
    }
    let warnings: Vec<&str> = report["warnings"]
        .as_array()
        .expect("warnings")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(
        !warnings.iter().any(|w| w.contains("resumed")),
        "{warnings:#?}"
    );
}

#[test]
fn post_quantum_key_exchange_with_tls12_is_skipped_and_listed_not_attempted() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("pq.json");
    let args = [
        "handshakes",
        "--duration",
        "100ms",
        "--warmup",
        "0s",
        "--keys",
        "ecdsa-p256",
        "--versions",
        "1.2,1.3",
        "--groups",
        "x25519mlkem768",
        "--resumption",
        "full",
        "--concurrency",
        "1",
    ];
    let report = run_report(&args, "--export-json", &out);
    let r = results(&report);
    assert_eq!(r.len(), 1, "{r:#?}");
    let pq = cell(&report, "1.3", "ecdsa-p256", "x25519mlkem768", "full");
    assert!(pq["handshakes"].as_u64() > Some(0));
    assert_eq!(pq["negotiated"]["group"], "X25519MLKEM768");
    let skipped = report["skipped"].as_array().expect("skipped");
    assert_eq!(skipped.len(), 1);
    assert_eq!(skipped[0]["version"], "1.2");
    assert_eq!(skipped[0]["group"], "x25519mlkem768");
    assert!(skipped[0]["reason"]
        .as_str()
        .is_some_and(|s| s.contains("TLS 1.3")));
}

#[test]
fn a_matrix_with_only_impossible_cells_is_an_error_that_says_why() {
    let err = try_run(&[
        "handshakes",
        "--versions",
        "1.2",
        "--groups",
        "x25519mlkem768",
        "--keys",
        "ecdsa-p256",
    ])
    .expect_err("nothing to measure");
    let shown = format!("{err:#}");
    assert!(
        shown.contains("X25519MLKEM768") && shown.contains("TLS 1.3"),
        "{shown}"
    );
}
