//! `vmsbench run` and `vmsbench bulk` end to end.

use std::process::Command;
use std::time::Duration;

use crate::support::{read_json, result, run_once, run_report_in, write_scenario};
use serde_json::Value;

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

/// Checks the contract fields of every result and that every due frame arrived.
fn check_results(report: &Value, links: &[&str]) {
    for link in links {
        for mode in ["plain", "tls"] {
            let r = result(report, link, mode);
            for f in NUMBER_FIELDS {
                assert!(
                    r[f].is_number(),
                    "{link} {mode}: {f} is not a number: {}",
                    r[f]
                );
            }
            for h in ["latency_us", "uncorrected_latency_us"] {
                for p in ["p50", "p90", "p99", "p999", "max"] {
                    assert!(r[h][p].is_number(), "{link} {mode}: {h}.{p} missing");
                }
            }
            let errors = r["errors"].as_object().expect("errors map");
            assert!(
                errors.is_empty(),
                "{link} {mode}: {errors:?} {}",
                r["error_messages"]
            );
            let (due, got) = (r["frames_due"].as_u64(), r["frames_received"].as_u64());
            assert!(due.unwrap_or(0) > 0, "{link} {mode}: nothing was due");
            assert_eq!(
                due, got,
                "{link} {mode}: every frame due in the window arrived"
            );
            assert_eq!(r["dropped_frames"], 0, "{link} {mode}");
            let offered = r["offered_mbit_s"].as_f64().expect("offered");
            let goodput = r["goodput_mbit_s"].as_f64().expect("goodput");
            // Goodput counts the bytes of the frames due in the window; the offered rate is
            // the profiles' average. They differ by whole frames: in a 2 s window each of
            // the investigator's four 4×-playback streams (one 146 KB I-frame every 250 ms)
            // may have one I-frame more or less inside it, up to ±3.3 % of viewer-recorder.
            if offered > 0.0 {
                let error = (goodput - offered).abs() / offered;
                assert!(
                    error < 0.05,
                    "{link} {mode}: goodput {goodput} vs offered {offered}"
                );
            }
            let encrypted = r["encrypted"].as_bool().expect("encrypted");
            assert_eq!(encrypted, mode == "tls", "{link} {mode}: every group is on");
            if encrypted {
                assert_eq!(r["tls"]["version"], "TLSv1_3", "{link}");
                assert_eq!(r["tls"]["suite"], "TLS13_AES_256_GCM_SHA384", "{link}");
                assert_eq!(r["tls"]["group"], "X25519MLKEM768", "{link}");
            } else {
                assert!(r["tls"].is_null(), "{link} {mode}");
            }
            eprintln!(
                "{link} {mode}: {goodput:.2} of {offered:.2} Mbit/s, late {}, p99 {} µs",
                r["late_frames"], r["latency_us"]["p99"]
            );
        }
    }
}

#[test]
fn default_run_reports_every_contract_field_for_every_link_and_mode() {
    let dir = tempfile::tempdir().expect("tempdir");
    // Logged-in clients check their configuration every 500 ms, so that a 2 s window sees
    // client-mgmt calls.
    let report = run_once(
        dir.path(),
        &[],
        "2s",
        "1500ms",
        &["--config-check", "500ms"],
    );
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
    // The small preset: viewers, the mobile server and its phones, events, logins and
    // registrations.
    let links = [
        "viewer-recorder",
        "mobile-recorder",
        "phone-mobile",
        "client-event",
        "client-mgmt",
        "recorder-mgmt",
        "event-mgmt",
        "mobile-mgmt",
    ];
    check_results(&report, &links);
    let costs = report["cost"].as_array().expect("cost");
    assert_eq!(costs.len(), links.len());
    let cost = &costs[0];
    assert_eq!(cost["link"], "viewer-recorder");
    for f in ["goodput_ratio", "latency_p99_ratio", "cpu_per_gb_ratio"] {
        assert!(
            cost[f].as_f64().is_some_and(|v| v > 0.0),
            "cost.{f}: {}",
            cost[f]
        );
    }
    let roles = report["roles"].as_array().expect("roles");
    for role in ["recorder-1", "mgmt", "viewers", "mobile", "phones", "event"] {
        assert!(
            roles
                .iter()
                .any(|r| r["role"] == role && r["cpu_s"].as_f64().is_some()),
            "role {role} missing"
        );
    }
}

/// A recording server with a failover, stopped in the middle of the window.
const FAILOVER: &str = r#"
name = "failover-test"
[[recorder]]
host = "recorder-1.vms.test"
failover = "failover-1.vms.test"
cameras = [{ profile = "720p", count = 6 }]
[[failover]]
host = "failover-1.vms.test"
[[viewer]]
name = "operator"
count = 2
view = 3
[[integration]]
name = "archiver"
count = 1
streams = 2
[[event]]
at = "1s"
action = "stop_recorder"
host = "recorder-1.vms.test"
"#;

#[test]
fn failover_reconnects_every_stream_of_the_stopped_recorder() {
    let dir = tempfile::tempdir().expect("tempdir");
    let scenario = write_scenario(dir.path(), "failover.toml", FAILOVER);
    let report = run_once(dir.path(), &[&scenario], "3500ms", "1500ms", &[]);
    let failovers = report["failovers"].as_array().expect("failovers");
    assert_eq!(failovers.len(), 2, "one per mode: {failovers:?}");
    for f in failovers {
        assert_eq!(f["host"], "recorder-1.vms.test");
        assert_eq!(f["failover"], "failover-1.vms.test");
        // Two viewers of 3 streams and one integration of 2: every client reconnected and
        // every stream flowed again from the failover server.
        assert_eq!(f["clients"], 3, "{f}");
        assert_eq!(f["reconnects"], 3, "{f}");
        assert_eq!(f["streams"], 8, "{f}");
        assert_eq!(f["streams_recovered"], 8, "{f}");
        assert!(f["recovery_all_us"].as_u64().unwrap_or(0) > 0, "{f}");
        eprintln!(
            "{}: recovered in {} µs (all streams), {} frames lost",
            f["mode"], f["recovery_all_us"], f["frames_lost"]
        );
    }
    for mode in ["plain", "tls"] {
        let r = result(&report, "viewer-recorder", mode);
        assert_eq!(r["reconnects"], 2, "{mode}");
        assert_eq!(r["connections"], 4, "{mode}: two connections per viewer");
    }
}

/// A recording server with a plaintext-only integration among TLS-capable ones.
const MIXED: &str = r#"
name = "mixed-test"
[[recorder]]
host = "recorder-1.vms.test"
cameras = [{ profile = "sub", count = 4 }]
[[integration]]
name = "modern"
count = 1
streams = 2
[[integration]]
name = "legacy"
count = 1
streams = 2
tls = false
"#;

#[test]
fn a_plaintext_only_integration_is_reported_incompatible_and_the_rest_runs_on() {
    let dir = tempfile::tempdir().expect("tempdir");
    let scenario = write_scenario(dir.path(), "mixed.toml", MIXED);
    let report = run_once(dir.path(), &[&scenario], "1500ms", "1500ms", &[]);
    let incompatible = report["incompatibilities"].as_array().expect("list");
    assert_eq!(incompatible.len(), 1, "{incompatible:?}");
    assert_eq!(incompatible[0]["client"], "legacy");
    assert_eq!(incompatible[0]["link"], "sdk-recorder");
    assert!(incompatible[0]["reason"]
        .as_str()
        .unwrap_or("")
        .contains("cannot speak TLS"));
    let plain = result(&report, "sdk-recorder", "plain");
    assert_eq!(plain["frames_received"], plain["frames_due"]);
    assert!(plain["errors"].as_object().expect("map").is_empty());
    // With TLS on, the legacy integration's connection fails; the modern one streams.
    let tls = result(&report, "sdk-recorder", "tls");
    let errors = tls["errors"].as_object().expect("map");
    assert!(!errors.is_empty(), "the legacy integration failed: {tls}");
    assert!(tls["frames_received"].as_u64().unwrap_or(0) > 0);
    // Its plaintext bytes reach a TLS port: the server's handshake fails, the client sees
    // the connection end; both are counted, with a message.
    assert!(
        !tls["error_messages"].as_array().expect("list").is_empty(),
        "{tls}"
    );
}

#[test]
fn medium_preset_scaled_down_reports_every_link_it_uses_in_both_modes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let report = run_once(
        dir.path(),
        &["medium", "--scale", "0.05"],
        "2s",
        "1500ms",
        &["--config-check", "500ms"],
    );
    let links: Vec<String> = report["results"]
        .as_array()
        .expect("results")
        .iter()
        .map(|r| r["link"].as_str().unwrap_or("").to_owned())
        .collect();
    for link in [
        "viewer-recorder",
        "sdk-recorder",
        "mobile-recorder",
        "phone-mobile",
        "client-event",
        "client-mgmt",
        "recorder-mgmt",
        "event-mgmt",
        "mobile-mgmt",
    ] {
        for mode in ["plain", "tls"] {
            let r = result(&report, link, mode);
            assert!(
                r["frames_received"].as_u64().unwrap_or(0) > 0,
                "{link} {mode}"
            );
            assert!(r["group"].is_string(), "{link}");
        }
        assert!(links.iter().any(|l| l == link));
    }
}

#[test]
fn bulk_reports_both_modes_with_negotiated_parameters() {
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
            "--connections",
            "2",
            "--frame-size",
            "32KiB",
            "--key",
            "ecdsa-p256",
        ],
    );
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
    signal_ends_the_run_cleanly_with_a_partial_report(libc::SIGINT);
}

#[test]
fn sigterm_ends_the_run_cleanly_with_a_partial_report() {
    signal_ends_the_run_cleanly_with_a_partial_report(libc::SIGTERM);
}

/// A plaintext run of 60 s that reports to `out`, once its window is open: the child, the
/// rest of its stderr, and what it said so far. The window is open once the run says it
/// measures and a moment more, however long the ramp took on this machine.
fn run_inside_its_window(
    out: &std::path::Path,
) -> (
    std::process::Child,
    std::io::Lines<std::io::BufReader<std::process::ChildStderr>>,
    String,
) {
    use std::io::{BufRead, BufReader};
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
        .arg(out)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn vmsbench");
    let stderr = child.stderr.take().expect("stderr piped");
    let mut lines = BufReader::new(stderr).lines();
    let mut said = String::new();
    for line in lines.by_ref().map_while(Result::ok) {
        said.push_str(&line);
        said.push('\n');
        if line.contains("measuring") {
            break;
        }
    }
    assert!(said.contains("measuring"), "{said}");
    std::thread::sleep(Duration::from_millis(2500));
    (child, lines, said)
}

/// Sends `signal` once the window is open and checks the partial report.
fn signal_ends_the_run_cleanly_with_a_partial_report(signal: libc::c_int) {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("partial.json");
    let (mut child, lines, _) = run_inside_its_window(&out);
    std::thread::spawn(move || lines.for_each(drop));
    // SAFETY: sending a signal to our own child process.
    let rc = unsafe { libc::kill(child.id() as libc::pid_t, signal) };
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

/// A second signal while the run finishes ends it at once. Whichever comes first — the
/// second signal, or the report being written — the run exits as interrupted, and the report
/// file is either absent or whole: it is written to a temporary file and renamed, so nobody
/// ever reads half of one.
#[test]
fn a_second_signal_ends_the_run_at_once_and_never_leaves_half_a_report() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("partial.json");
    let (mut child, mut lines, mut said) = run_inside_its_window(&out);
    let pid = child.id() as libc::pid_t;
    // SAFETY: sending signals to our own child process.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGINT) }, 0);
    for line in lines.by_ref().map_while(Result::ok) {
        said.push_str(&line);
        said.push('\n');
        if line.contains("again to stop at once") {
            break;
        }
    }
    assert!(said.contains("again to stop at once"), "{said}");
    // SAFETY: as above.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGTERM) }, 0);
    let rest: Vec<String> = lines.map_while(Result::ok).collect();
    let status = child.wait().expect("wait");
    assert_eq!(status.code(), Some(i32::from(vmsbench::EXIT_INTERRUPTED)));
    if rest
        .iter()
        .any(|l| l.contains("again: stopping at once, no report"))
    {
        if out.exists() {
            assert_eq!(read_json(&out)["partial"], true, "a whole report or none");
        }
    } else {
        // The report was written before the second signal came.
        assert_eq!(read_json(&out)["partial"], true);
    }
    let strays: Vec<_> = std::fs::read_dir(dir.path())
        .expect("read the directory")
        .filter_map(Result::ok)
        .map(|e| e.file_name())
        .filter(|n| n != "partial.json")
        .collect();
    assert!(strays.is_empty(), "temporary files left behind: {strays:?}");
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
    // Zero connections or cameras would measure nothing: refused before anything runs.
    for args in [
        &["bulk", "--connections", "0"][..],
        &["run", "--cameras", "0"],
        &["run", "--cameras-per-viewer", "0"],
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_vmsbench"))
            .args(args)
            .output()
            .expect("run vmsbench");
        assert!(!out.status.success(), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains(args[1]) && err.contains("must be at least 1"),
            "{args:?}: {err}"
        );
    }
}

/// Runs the `vmsbench` binary with `args`; its exit code and standard error.
fn refused(args: &[&str]) -> (Option<i32>, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_vmsbench"))
        .args(args)
        .output()
        .expect("run vmsbench");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn bad_numbers_are_refused_before_anything_runs_saying_what_would_be_valid() {
    for (args, says) in [
        (
            &["run", "--duration", "0s"][..],
            "must be at least 100ms and at most 7d, got 0s",
        ),
        (
            &["run", "--duration", "36500d"],
            "must be at least 100ms and at most 7d, got 36500d",
        ),
        (
            &["run", "--warmup", "2h"],
            "must be at least 0s and at most 1h, got 2h",
        ),
        (
            &["run", "--repeat", "1000"],
            "must be at least 1 and at most 100, got 1000",
        ),
        (
            &["run", "--cameras", "1M"],
            "must be at least 1 and at most 100000, got 1000000",
        ),
        (
            &["run", "--queue-frames", "0"],
            "must be at least 1 and at most 1000000, got 0",
        ),
        (
            &["run", "--server-threads", "1M"],
            "must be at least 1 and at most 1024",
        ),
        (
            &["run", "--multiplier", "1000"],
            "must be above 0 and at most 100, got 1000",
        ),
        (
            &["bulk", "--connections", "1M"],
            "must be at least 1 and at most 10000",
        ),
        (
            &["bulk", "--frame-size", "10GB"],
            "frame size must be 1 B to 16777216 B",
        ),
        (
            &["handshakes", "--duration", "0s"],
            "must be at least 100ms and at most 1h, got 0s",
        ),
        (
            &["capacity", "--budget", "0s"],
            "must be at least 1s and at most 7d, got 0s",
        ),
        (
            &["capacity", "--max", "10M"],
            "must be at least 1 and at most 100000",
        ),
        (
            &["run", "--multiplier", "0.01", "--duration", "1s"],
            "--duration 1s × --multiplier 0.01 leaves a window of 10ms: it must be at least \
             100ms and at most 7d",
        ),
        (
            &["run", "--cameras", "4", "--cameras-per-viewer", "9"],
            "viewer group \"operator-2x2\" asks for 9 cameras in its view of \
             recorder-1.vms.test, which has 4 cameras: give 1 to 4",
        ),
    ] {
        let (code, err) = refused(args);
        assert_eq!(code, Some(2), "{args:?}: {err}");
        assert!(err.contains(says), "{args:?}: {err}");
        assert!(!err.contains("warm-up"), "{args:?} ran: {err}");
    }
}

#[test]
fn a_scenario_whose_viewers_watch_cameras_that_do_not_exist_is_refused_at_its_line() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let path = write_scenario(
        dir.path(),
        "too-few-cameras.toml",
        "[[recorder]]\nhost = \"r.vms.test\"\ncameras = [{ count = 4 }]\n\n\
         [[viewer]]\nname = \"wall\"\ncount = 2\nview = 9\n",
    );
    let (code, err) = refused(&["run", &path, "--duration", "1s"]);
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains(&format!(
            "{path}:8:8: view 9 is more than the 4 cameras of r.vms.test"
        )),
        "{err}"
    );
    assert!(!err.contains("warm-up"), "{err}");
}

#[test]
fn a_scenario_needing_more_descriptors_than_allowed_is_refused_before_it_runs() {
    use std::os::unix::process::CommandExt;
    // A hard limit of 512 descriptors for the child: 2000 viewers need about 4000.
    let limit: libc::rlim_t = 512;
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_vmsbench"));
    cmd.args([
        "run",
        "--viewers",
        "2000",
        "--cameras",
        "1",
        "--profile",
        "sub",
        "--duration",
        "1s",
    ]);
    // SAFETY: setrlimit is async-signal-safe and only changes the child's own limits.
    unsafe {
        cmd.pre_exec(move || {
            let rl = libc::rlimit {
                rlim_cur: limit,
                rlim_max: limit,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &rl) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let out = cmd.output().expect("run vmsbench");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    // The numbers: how many it needs, the limit, and what to do.
    let needed: u64 = err
        .split("needs about ")
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no count needed in: {err}"));
    assert!(needed > 4000, "{err}");
    assert!(err.contains("at most 512 (hard limit 512)"), "{err}");
    assert!(
        err.contains("ulimit -Hn") && err.contains("--viewers"),
        "{err}"
    );
    // Refused before anything ran: no phase started, nothing was measured.
    assert!(!err.contains("warm-up"), "{err}");
}
