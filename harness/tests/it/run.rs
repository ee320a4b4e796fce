//! `vmsbench run` and `vmsbench bulk` end to end.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use clap::Parser;
use serde_json::Value;
use vmsbench::Opts;

fn run_in_process(args: &[&str]) -> std::process::ExitCode {
    let opts = Opts::parse_from(std::iter::once("vmsbench").chain(args.iter().copied()));
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(vmsbench::run(opts)).expect("run succeeds")
}

fn read_json(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).expect("JSON written");
    serde_json::from_str(&text).expect("valid JSON")
}

fn result<'a>(report: &'a Value, link: &str, mode: &str) -> &'a Value {
    report["results"]
        .as_array()
        .expect("results array")
        .iter()
        .find(|r| r["link"] == link && r["mode"] == mode)
        .unwrap_or_else(|| panic!("no result for {link} {mode}"))
}

const NUMBER_FIELDS: &[&str] = &[
    "bytes_received",
    "goodput_mbit_s",
    "frames_due",
    "frames_received",
    "late_frames",
    "dropped_frames",
    "handshake_us",
    "ttff_us",
    "cpu_server_s",
    "cpu_client_s",
];

#[test]
fn default_run_reports_every_contract_field_for_both_modes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("out.json");
    let code = run_in_process(&[
        "run",
        "--duration",
        "2s",
        "--warmup",
        "1500ms",
        "--repeat",
        "1",
        "--json",
        out.to_str().expect("utf-8 path"),
    ]);
    assert_eq!(code, std::process::ExitCode::SUCCESS);
    let report = read_json(&out);
    assert_eq!(report["schema_version"], 1);
    assert_eq!(report["partial"], false);
    for key in [
        "cpu_model",
        "cpu_flags",
        "cores",
        "rustls_version",
        "crypto_provider",
        "build_profile",
    ] {
        assert!(
            !report["environment"][key].is_null(),
            "environment.{key} missing"
        );
    }
    for mode in ["plain", "tls"] {
        let r = result(&report, "viewer-recorder", mode);
        for f in NUMBER_FIELDS {
            assert!(r[f].is_number(), "{mode}: {f} is not a number: {}", r[f]);
        }
        for h in ["latency_us", "uncorrected_latency_us"] {
            for p in ["p50", "p90", "p99", "p999", "max"] {
                assert!(r[h][p].is_number(), "{mode}: {h}.{p} missing");
            }
        }
        assert!(
            r["errors"].as_object().expect("errors map").is_empty(),
            "{mode}: {}",
            r["errors"]
        );
        // 32 cameras × 4 Mbit/s watched by two viewers of 16: 128 Mbit/s offered.
        let goodput = r["goodput_mbit_s"].as_f64().expect("goodput");
        assert!(
            (goodput - 128.0).abs() / 128.0 < 0.03,
            "{mode}: goodput {goodput} Mbit/s"
        );
        let (due, got) = (r["frames_due"].as_u64(), r["frames_received"].as_u64());
        assert!(due.unwrap_or(0) > 0);
        assert_eq!(due, got, "{mode}: every frame due in the window arrived");
        assert_eq!(r["dropped_frames"], 0);
        eprintln!(
            "{mode}: {goodput:.1} Mbit/s, late {}, p99 {} µs",
            r["late_frames"], r["latency_us"]["p99"]
        );
    }
    assert!(result(&report, "viewer-recorder", "plain")["tls"].is_null());
    let tls = &result(&report, "viewer-recorder", "tls")["tls"];
    assert_eq!(tls["version"], "TLSv1_3");
    assert_eq!(tls["suite"], "TLS13_AES_256_GCM_SHA384");
    assert_eq!(tls["group"], "X25519MLKEM768");
    let cost = &report["cost"][0];
    assert_eq!(cost["link"], "viewer-recorder");
    for f in ["goodput_ratio", "latency_p99_ratio", "cpu_per_gb_ratio"] {
        assert!(
            cost[f].as_f64().is_some_and(|v| v > 0.0),
            "cost.{f}: {}",
            cost[f]
        );
    }
}

#[test]
fn bulk_reports_both_modes_with_negotiated_parameters() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("bulk.json");
    let code = run_in_process(&[
        "bulk",
        "--duration",
        "1s",
        "--warmup",
        "300ms",
        "--repeat",
        "1",
        "--connections",
        "2",
        "--frame-size",
        "32KiB",
        "--key",
        "ecdsa-p256",
        "--json",
        out.to_str().expect("utf-8 path"),
    ]);
    assert_eq!(code, std::process::ExitCode::SUCCESS);
    let report = read_json(&out);
    for mode in ["plain", "tls"] {
        let r = result(&report, "bulk", mode);
        let bytes = r["bytes_received"].as_u64().expect("bytes");
        let frames = r["frames_received"].as_u64().expect("frames");
        assert!(frames > 0, "{mode}: no frames");
        assert_eq!(bytes, frames * 32 * 1024, "{mode}: whole frames only");
        assert_eq!(r["connections"], 2);
        assert_eq!(r["sequence_gaps"], 0);
    }
    assert_eq!(result(&report, "bulk", "tls")["tls"]["version"], "TLSv1_3");
    assert!(report["cost"][0]["goodput_ratio"].is_number());
}

#[test]
fn ctrl_c_ends_the_run_cleanly_with_a_partial_report() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("partial.json");
    let mut child = Command::new(env!("CARGO_BIN_EXE_vmsbench"))
        .args([
            "run",
            "--duration",
            "60s",
            "--warmup",
            "1500ms",
            "--mode",
            "plain",
            "--json",
        ])
        .arg(&out)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn vmsbench");
    // Interrupt inside the measured window (after the warm-up).
    std::thread::sleep(Duration::from_millis(3000));
    // SAFETY: sending SIGINT to our own child process.
    let rc = unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGINT) };
    assert_eq!(rc, 0);
    let status = child.wait().expect("wait");
    assert_eq!(status.code(), Some(i32::from(vmsbench::EXIT_INTERRUPTED)));
    let report = read_json(&out);
    assert_eq!(report["partial"], true);
    let r = result(&report, "viewer-recorder", "plain");
    assert!(
        r["frames_received"].as_u64().unwrap_or(0) > 0,
        "something was measured"
    );
    let window = r["window_s"].as_f64().expect("window");
    assert!(window < 60.0, "the window was cut short: {window}");
}

#[test]
fn bad_flags_fail_with_a_message_naming_the_flag() {
    let out = Command::new(env!("CARGO_BIN_EXE_vmsbench"))
        .args(["run", "--duration", "ten seconds"])
        .output()
        .expect("run vmsbench");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--duration"), "{err}");
    let out = Command::new(env!("CARGO_BIN_EXE_vmsbench"))
        .args(["run", "--profile", "8k", "--duration", "1s"])
        .output()
        .expect("run vmsbench");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("unknown profile") && err.contains("1080p"),
        "{err}"
    );
}
