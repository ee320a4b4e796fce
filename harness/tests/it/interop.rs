//! A real client against a running `vmsbench run`: openssl s_client (OpenSSL 3.0, which
//! cannot offer the hybrid group the simulated clients pin) verifies every server of the
//! default run with the CA the run exports, reaching them where the run says they listen.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::{read_json, result};

const OPENSSL: &str = "/usr/bin/openssl";

/// How long the run may take to bring its servers up.
const SERVERS_UP: Duration = Duration::from_secs(60);

/// `openssl s_client` to `address`, verifying `host` against `ca`, with `extra` flags;
/// whether it succeeded, and what it printed.
fn s_client(address: &str, host: &str, ca: &Path, extra: &[&str]) -> (bool, String) {
    let out = Command::new(OPENSSL)
        .args([
            "s_client",
            "-brief",
            "-connect",
            address,
            "-servername",
            host,
        ])
        .args(["-verify_hostname", host, "-verify_return_error", "-CAfile"])
        .arg(ca)
        .args(extra)
        .stdin(Stdio::null())
        .output()
        .expect("run openssl s_client");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

/// Waits for the run to write its listeners for the TLS phase.
fn listeners(path: &Path) -> Vec<Value> {
    let deadline = Instant::now() + SERVERS_UP;
    while Instant::now() < deadline {
        if let Ok(text) = std::fs::read_to_string(path) {
            let doc: Value = serde_json::from_str(&text).expect("listeners file is JSON");
            assert_eq!(doc["mode"], "tls", "{doc}");
            return doc["listeners"].as_array().expect("listeners").clone();
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("the run wrote no listeners within {SERVERS_UP:?}");
}

#[test]
fn openssl_verifies_every_server_of_the_default_run_with_the_exported_ca() {
    if !Path::new(OPENSSL).exists() {
        eprintln!("SKIPPING the s_client test: {OPENSSL} is not installed (.ci/run installs it)");
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let (ca, at, json) = (
        dir.path().join("ca.pem"),
        dir.path().join("listeners.json"),
        dir.path().join("report.json"),
    );
    let mut child = Command::new(env!("CARGO_BIN_EXE_vmsbench"))
        .args(["run", "--mode", "tls", "--warmup", "3s", "--duration", "4s"])
        .arg("--export-ca")
        .arg(&ca)
        .arg("--export-listeners")
        .arg(&at)
        .arg("--json")
        .arg(&json)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn vmsbench");
    let listeners = listeners(&at);
    let servers: BTreeSet<(String, String)> = listeners
        .iter()
        .filter(|l| l["tls"] == true)
        .map(|l| {
            let s = |k: &str| l[k].as_str().expect("string").to_owned();
            (s("host"), s("address"))
        })
        .collect();
    let mut verified = BTreeSet::new();
    for (host, address) in &servers {
        let (ok, text) = s_client(address, host, &ca, &[]);
        assert!(ok, "openssl s_client to {host} at {address}:\n{text}");
        assert!(text.contains("Verification: OK"), "{host}:\n{text}");
        assert!(
            text.contains("Protocol version: TLSv1.3"),
            "{host}:\n{text}"
        );
        // OpenSSL 3.0 offers X25519 first; the server accepts it although its own
        // clients pin the hybrid group.
        assert!(text.contains("X25519"), "{host}:\n{text}");
        let (ok, text) = s_client(address, host, &ca, &["-tls1_2"]);
        assert!(ok, "openssl s_client -tls1_2 to {host}:\n{text}");
        assert!(
            text.contains("Protocol version: TLSv1.2"),
            "{host}:\n{text}"
        );
        verified.insert(host.clone());
    }
    let status = child.wait().expect("wait for vmsbench");
    assert!(status.success(), "vmsbench run: {status}");

    let report = read_json(&json);
    let hosts: BTreeSet<String> = report["hosts"]
        .as_array()
        .expect("hosts")
        .iter()
        .filter(|h| h["mode"] == "tls")
        .map(|h| h["host"].as_str().expect("host").to_owned())
        .collect();
    assert!(!hosts.is_empty());
    assert_eq!(verified, hosts, "every server host of the run was verified");
    // The run's own clients still negotiated exactly what they pin.
    let tls = &result(&report, "viewer-recorder", "tls")["tls"];
    assert_eq!(tls["group"], "X25519MLKEM768", "{tls}");
    assert_eq!(tls["suite"], "TLS13_AES_256_GCM_SHA384", "{tls}");
    let accepted = &report["server_tls"];
    assert_eq!(accepted["versions"], serde_json::json!(["1.3", "1.2"]));
    assert_eq!(accepted["groups"][0], "x25519mlkem768");
    assert_eq!(accepted["groups"].as_array().map(Vec::len), Some(4));
}
