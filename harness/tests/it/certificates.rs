//! Certificates in a running deployment: faults staged per host, certificates that expire
//! or are renewed mid-run, and certificates brought from files.

use std::collections::BTreeMap;
use std::process::ExitCode;

use crate::checks::validate;
use crate::support::{result, run_in_process, run_once, try_run, write_scenario};
use serde_json::Value;

/// Every fault kind, with the category its connections must fail with and on which side.
const FAULTS: &[(&str, &str, Side)] = &[
    ("expired", "expired", Side::Client),
    ("not_yet_valid", "not_yet_valid", Side::Client),
    ("wrong_host", "wrong_host", Side::Client),
    ("untrusted_ca", "untrusted_ca", Side::Client),
    ("missing_intermediate", "unknown_issuer", Side::Client),
    ("no_server_auth_eku", "bad_usage", Side::Client),
    ("key_unreadable", "key_unreadable", Side::Server),
    ("rsa1024", "weak_key", Side::Client),
    ("tls11_client", "no_common_parameters", Side::Both),
];

#[derive(Clone, Copy, PartialEq, Eq)]
enum Side {
    Client,
    Server,
    Both,
}

/// One recording server per fault kind plus a healthy one, one viewer of two cameras on
/// each.
fn faults_scenario() -> String {
    let mut text = String::from("name = \"faults-test\"\n[tls]\nversions = [\"1.3\", \"1.2\"]\n");
    let hosts: Vec<String> = std::iter::once("healthy")
        .chain(FAULTS.iter().map(|f| f.0))
        .map(|k| format!("{}.vms.test", k.replace('_', "-")))
        .collect();
    for h in &hosts {
        text += &format!(
            "[[recorder]]\nhost = \"{h}\"\ncameras = [{{ profile = \"sub\", count = 2 }}]\n"
        );
    }
    for (i, h) in hosts.iter().enumerate() {
        text += &format!(
            "[[viewer]]\nname = \"viewer-{i}\"\ncount = 1\nrecorder = \"{h}\"\nview = 2\n"
        );
    }
    for (kind, ..) in FAULTS {
        text += &format!(
            "[[fault]]\nhost = \"{}.vms.test\"\nkind = \"{kind}\"\n",
            kind.replace('_', "-")
        );
    }
    text
}

/// The `hosts` entry of `host` in `mode`.
fn host<'a>(report: &'a Value, host: &str, mode: &str) -> &'a Value {
    report["hosts"]
        .as_array()
        .expect("hosts array")
        .iter()
        .find(|h| h["host"] == host && h["mode"] == mode)
        .unwrap_or_else(|| panic!("no host entry for {host} {mode}"))
}

fn counts(v: &Value) -> BTreeMap<String, u64> {
    v.as_object()
        .expect("a map of counts")
        .iter()
        .map(|(k, n)| (k.clone(), n.as_u64().expect("a count")))
        .collect()
}

#[test]
fn each_fault_fails_its_own_hosts_links_with_its_own_category_and_the_rest_runs_on() {
    let dir = tempfile::tempdir().expect("tempdir");
    let scenario = write_scenario(dir.path(), "faults.toml", &faults_scenario());
    let report = run_once(dir.path(), &[&scenario], "1500ms", "1s", &[]);
    validate(&report);
    // In the plaintext phase no certificate is presented: every host serves its viewer.
    for h in report["hosts"].as_array().expect("hosts") {
        if h["mode"] == "plain" {
            assert!(counts(&h["client_errors"]).is_empty(), "{h}");
            assert!(counts(&h["server_errors"]).is_empty(), "{h}");
            assert!(h["connections"].as_u64().unwrap_or(0) > 0, "{h}");
        }
    }
    // In the TLS phase each faulty host fails with its category, and nothing else does.
    for (kind, category, side) in FAULTS {
        let name = format!("{}.vms.test", kind.replace('_', "-"));
        let h = host(&report, &name, "tls");
        assert_eq!(h["fault"], *kind, "{h}");
        let (client, server) = (counts(&h["client_errors"]), counts(&h["server_errors"]));
        if matches!(side, Side::Client | Side::Both) {
            assert!(
                client.get(*category).copied().unwrap_or(0) > 0,
                "{kind}: {h}"
            );
        }
        if matches!(side, Side::Server | Side::Both) {
            assert!(
                server.get(*category).copied().unwrap_or(0) > 0,
                "{kind}: {h}"
            );
        }
        if *kind == "tls11_client" {
            // The usual viewer streams; only the extra TLS 1.1 client fails.
            assert_eq!(client.values().sum::<u64>(), 1, "{h}");
            assert!(h["frames"].as_u64().unwrap_or(0) > 0, "{h}");
        } else {
            assert_eq!(h["connections"], 0, "{kind}: no connection succeeds: {h}");
            // The client's own category, not another: one failure, of that kind (the
            // server sees the client's refusal, or its own unreadable key).
            let expected = if *side == Side::Server {
                "reset"
            } else {
                category
            };
            assert_eq!(client.keys().collect::<Vec<_>>(), [expected], "{kind}: {h}");
        }
    }
    for name in ["healthy.vms.test", "mgmt.vms.test"] {
        let h = host(&report, name, "tls");
        assert!(counts(&h["client_errors"]).is_empty(), "{h}");
        assert!(counts(&h["server_errors"]).is_empty(), "{h}");
        assert!(h["connections"].as_u64().unwrap_or(0) > 0, "{h}");
        assert!(h["frames"].as_u64().unwrap_or(0) > 0, "{h}");
    }
    // The healthy links to the management server were untouched.
    for link in ["client-mgmt", "recorder-mgmt"] {
        let r = result(&report, link, "tls");
        assert!(counts(&r["errors"]).is_empty(), "{link}: {r}");
        assert_eq!(r["frames_received"], r["frames_due"], "{link}");
    }
    // Messages a person can act on, and no warning that a fault went unnoticed.
    let messages = result(&report, "viewer-recorder", "tls")["error_messages"].to_string();
    for needle in ["has expired", "not valid yet", "RSA", "TLS 1.1"] {
        assert!(messages.contains(needle), "{needle:?} in {messages}");
    }
    let warnings = report["warnings"].to_string();
    assert!(!warnings.contains("no connection failed as"), "{warnings}");
    // The report records what each host presented.
    let certs = report["certificates"]["hosts"].as_array().expect("hosts");
    let rsa1024 = certs
        .iter()
        .find(|c| c["host"] == "rsa1024.vms.test")
        .expect("rsa1024 host");
    assert_eq!(rsa1024["key"], "rsa1024");
    assert_eq!(rsa1024["fault"], "rsa1024");
    let expired = certs
        .iter()
        .find(|c| c["host"] == "expired.vms.test")
        .expect("expired host");
    assert!(
        expired["days_left"].as_f64().unwrap_or(0.0) < 0.0,
        "{expired}"
    );
}

/// A fault on the management server fails the management links only.
#[test]
fn a_fault_on_the_management_server_leaves_the_video_links_alone() {
    let dir = tempfile::tempdir().expect("tempdir");
    let scenario = write_scenario(
        dir.path(),
        "mgmt-fault.toml",
        r#"
name = "mgmt-fault"
[[recorder]]
host = "recorder-1.vms.test"
cameras = [{ profile = "sub", count = 2 }]
[[viewer]]
name = "op"
count = 1
view = 2
[[fault]]
host = "mgmt.vms.test"
kind = "wrong_host"
"#,
    );
    let report = run_once(
        dir.path(),
        &[&scenario],
        "2500ms",
        "500ms",
        &["--mode", "tls"],
    );
    let video = result(&report, "viewer-recorder", "tls");
    assert!(counts(&video["errors"]).is_empty(), "{video}");
    assert_eq!(video["frames_received"], video["frames_due"]);
    for link in ["client-mgmt", "recorder-mgmt"] {
        let r = result(&report, link, "tls");
        assert!(
            counts(&r["errors"]).get("wrong_host").copied().unwrap_or(0) > 0,
            "{link}: {r}"
        );
    }
}

const LIFECYCLE: &str = r#"
name = "lifecycle-test"
[[recorder]]
host = "recorder-1.vms.test"
cameras = [{ profile = "sub", count = 2 }]
[[viewer]]
name = "op"
count = 1
view = 2
[[event]]
at = "1s"
action = "expire_certificate"
host = "recorder-1.vms.test"
[[event]]
at = "2s"
action = "renew_certificate"
host = "recorder-1.vms.test"
"#;

/// Expiry mid-run: new full handshakes fail from that moment, established streams go on;
/// renewal: new connections see the new serial number, and no frame is lost.
#[test]
fn a_certificate_expires_and_is_renewed_mid_run() {
    let dir = tempfile::tempdir().expect("tempdir");
    let scenario = write_scenario(dir.path(), "lifecycle.toml", LIFECYCLE);
    let report = run_once(dir.path(), &[&scenario], "3s", "500ms", &["--mode", "tls"]);
    validate(&report);
    let events = report["certificate_events"].as_array().expect("events");
    assert_eq!(events.len(), 2, "{events:?}");
    let (expire, renew) = (&events[0], &events[1]);
    assert_eq!(expire["action"], "expire_certificate");
    assert_eq!(renew["action"], "renew_certificate");

    // Before the expiry the watcher's full handshakes succeed on the first certificate.
    assert!(
        expire["before"]["full_ok"].as_u64().unwrap_or(0) > 0,
        "{expire}"
    );
    assert!(
        counts(&expire["before"]["full_failed"]).is_empty(),
        "{expire}"
    );
    assert_eq!(
        expire["before"]["serials"],
        serde_json::json!([expire["serial_before"]])
    );
    // After it, every full handshake fails as expired…
    let after = &expire["after"];
    assert_eq!(after["full_ok"], 0, "{expire}");
    assert!(counts(&after["full_failed"])["expired"] > 0, "{expire}");
    // …while a client resuming an earlier session is still let in: resumption does not
    // look at the certificate.
    assert!(after["resumed_ok"].as_u64().unwrap_or(0) > 0, "{expire}");

    // After the renewal, full handshakes succeed again, on the new serial number.
    assert_eq!(renew["serial_before"], expire["serial_after"]);
    assert_ne!(renew["serial_after"], expire["serial_before"]);
    assert!(
        renew["after"]["full_ok"].as_u64().unwrap_or(0) > 0,
        "{renew}"
    );
    assert!(counts(&renew["after"]["full_failed"]).is_empty(), "{renew}");
    assert_eq!(
        renew["after"]["serials"],
        serde_json::json!([renew["serial_after"]])
    );

    // The viewer connected before the expiry streamed through both events.
    for e in events {
        assert_eq!(e["frames_lost"], 0, "{e}");
        assert_eq!(e["connections_broken"], 0, "{e}");
    }
    let video = result(&report, "viewer-recorder", "tls");
    assert_eq!(video["frames_received"], video["frames_due"], "{video}");
    assert_eq!(video["connections"], 1, "{video}");
    let lines = report["warnings"].to_string();
    assert!(!lines.contains("fell short"), "{lines}");
}

/// Certificates from files written by `vmsbench certs generate`.
#[test]
fn a_scenario_runs_on_certificates_brought_from_files() {
    let dir = tempfile::tempdir().expect("tempdir");
    let certs = dir.path().join("certs");
    let certs_arg = certs.to_str().expect("utf-8");
    assert_eq!(
        run_in_process(&[
            "certs",
            "generate",
            "--hosts",
            "mgmt.vms.test,recorder-1.vms.test",
            "--key",
            "ecdsa-p256",
            "--days",
            "20",
            "--out",
            certs_arg,
            "--pfx-password",
            "test",
        ]),
        ExitCode::SUCCESS
    );
    let text = |extra: &str| {
        format!(
            r#"
name = "own-certificates"
[certificates]
dir = "certs"
[[recorder]]
host = "recorder-1.vms.test"
cameras = [{{ profile = "sub", count = 2 }}]
[[viewer]]
name = "op"
count = 1
view = 2
{extra}
"#
        )
    };
    let scenario = write_scenario(dir.path(), "own.toml", &text(""));
    let tls_only = ["--mode", "tls"];
    let report = run_once(dir.path(), &[&scenario], "1s", "500ms", &tls_only);
    assert_eq!(report["certificates"]["source"], "files");
    let hosts = report["certificates"]["hosts"].as_array().expect("hosts");
    assert_eq!(hosts.len(), 2);
    for h in hosts {
        assert_eq!(h["key"], "ecdsa-p256", "{h}");
    }
    // Certificates near their end are warned about (the seed system does not).
    let warnings = report["warnings"].to_string();
    assert!(
        warnings.contains("the certificate of recorder-1.vms.test")
            && warnings.contains("expires in 20 day(s)"),
        "{warnings}"
    );
    let video = result(&report, "viewer-recorder", "tls");
    assert!(counts(&video["errors"]).is_empty(), "{video}");
    assert_eq!(video["frames_received"], video["frames_due"]);

    // The key_unreadable fault stages a copy of the key; the user's file is not touched.
    let staged = write_scenario(
        dir.path(),
        "own-fault.toml",
        &text("[[fault]]\nhost = \"recorder-1.vms.test\"\nkind = \"key_unreadable\"\n"),
    );
    let report = run_once(dir.path(), &[&staged], "1s", "500ms", &tls_only);
    let h = host(&report, "recorder-1.vms.test", "tls");
    assert!(counts(&h["server_errors"])["key_unreadable"] > 0, "{h}");
    let key = certs.join("recorder-1.vms.test.key.pem");
    assert!(std::fs::read(&key).is_ok_and(|k| !k.is_empty()));

    // A host whose files are missing stops the run with a message naming them.
    std::fs::remove_file(&key).expect("rm key");
    let err = try_run(&["run", &scenario, "--mode", "tls", "--duration", "1s"])
        .expect_err("a missing key is an error");
    let message = format!("{err:#}");
    assert!(
        message.contains("recorder-1.vms.test") && message.contains("is missing"),
        "{message}"
    );
}

/// `--fault HOST=KIND` stages a fault on any scenario, presets included.
#[test]
fn the_fault_flag_stages_a_fault_on_a_preset() {
    let dir = tempfile::tempdir().expect("tempdir");
    let report = run_once(
        dir.path(),
        &["small", "--fault", "event.vms.test=not_yet_valid"],
        "1s",
        "500ms",
        &["--mode", "tls"],
    );
    let event = host(&report, "event.vms.test", "tls");
    assert_eq!(event["fault"], "not_yet_valid");
    assert!(
        counts(&event["client_errors"])["not_yet_valid"] > 0,
        "{event}"
    );
    let recorder = host(&report, "recorder-1.vms.test", "tls");
    assert!(counts(&recorder["client_errors"]).is_empty(), "{recorder}");
    assert!(recorder["frames"].as_u64().unwrap_or(0) > 0, "{recorder}");

    // Mistakes are refused before anything runs, naming what would be valid.
    for (flag, needle) in [
        (
            "recorder-9.vms.test=expired",
            "its servers are: mgmt.vms.test",
        ),
        ("recorder-1.vms.test=revoked", "valid faults are: expired"),
        ("recorder-1.vms.test", "write HOST=KIND"),
    ] {
        let err = try_run(&["run", "--fault", flag, "--duration", "1s"])
            .expect_err("a bad --fault is an error");
        let message = format!("{err:#}");
        assert!(message.contains(needle), "{flag}: {message}");
    }
}
