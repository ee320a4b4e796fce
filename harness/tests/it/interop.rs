//! A real client against a running `vmsbench run`: openssl s_client (OpenSSL 3.0, which
//! cannot offer the hybrid group the simulated clients pin) verifies every server of the
//! default run with the CA the run exports, reaching them where the run says they listen,
//! by name, and by the IP address `--listen` gave a host. And `--listen` itself: servers
//! listen where it says, and the run's clients reach them there.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::{read_json, result};

const OPENSSL: &str = "/usr/bin/openssl";

/// How long the run may take to bring its servers up.
const SERVERS_UP: Duration = Duration::from_secs(60);

/// `openssl s_client` to `address`, verifying what `verify` asks (`-verify_hostname HOST`
/// or `-verify_ip IP`) against `ca`, with `extra` flags; whether it succeeded, and what
/// it printed.
fn s_client(address: &str, verify: &[&str], ca: &Path, extra: &[&str]) -> (bool, String) {
    let out = Command::new(OPENSSL)
        .args(["s_client", "-brief", "-connect", address])
        .args(verify)
        .args(["-verify_return_error", "-CAfile"])
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

/// What `s_client` verifies for a host dialled by name: the name it sends and checks.
fn by_name(host: &str) -> [&str; 4] {
    ["-servername", host, "-verify_hostname", host]
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

/// A `vmsbench run --mode tls` in a child process that exports its CA and listeners,
/// with `extra` flags: the child, its directory, and the CA, listeners and report paths.
struct LiveRun {
    child: std::process::Child,
    _dir: tempfile::TempDir,
    ca: std::path::PathBuf,
    at: std::path::PathBuf,
    json: std::path::PathBuf,
}

impl LiveRun {
    fn start(extra: &[&str]) -> LiveRun {
        let dir = tempfile::tempdir().expect("tempdir");
        let (ca, at, json) = (
            dir.path().join("ca.pem"),
            dir.path().join("listeners.json"),
            dir.path().join("report.json"),
        );
        let child = Command::new(env!("CARGO_BIN_EXE_vmsbench"))
            .args(["run", "--mode", "tls", "--warmup", "3s", "--duration", "4s"])
            .args(extra)
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
        LiveRun {
            child,
            _dir: dir,
            ca,
            at,
            json,
        }
    }

    /// Waits for the run to end well; its report.
    fn finish(mut self) -> Value {
        let status = self.child.wait().expect("wait for vmsbench");
        assert!(status.success(), "vmsbench run: {status}");
        read_json(&self.json)
    }
}

fn have_openssl() -> bool {
    let present = Path::new(OPENSSL).exists();
    if !present {
        eprintln!("SKIPPING the s_client tests: {OPENSSL} is not installed (.ci/run installs it)");
    }
    present
}

#[test]
fn openssl_verifies_every_server_of_the_default_run_with_the_exported_ca() {
    if !have_openssl() {
        return;
    }
    let run = LiveRun::start(&[]);
    let (ca, at) = (run.ca.clone(), run.at.clone());
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
        let (ok, text) = s_client(address, &by_name(host), &ca, &[]);
        assert!(ok, "openssl s_client to {host} at {address}:\n{text}");
        assert!(text.contains("Verification: OK"), "{host}:\n{text}");
        assert!(
            text.contains("Protocol version: TLSv1.3"),
            "{host}:\n{text}"
        );
        // OpenSSL 3.0 offers X25519 first; the server accepts it although its own
        // clients pin the hybrid group.
        assert!(text.contains("X25519"), "{host}:\n{text}");
        let (ok, text) = s_client(address, &by_name(host), &ca, &["-tls1_2"]);
        assert!(ok, "openssl s_client -tls1_2 to {host}:\n{text}");
        assert!(
            text.contains("Protocol version: TLSv1.2"),
            "{host}:\n{text}"
        );
        verified.insert(host.clone());
    }
    let report = run.finish();
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

#[test]
fn openssl_verifies_a_server_by_the_ip_address_it_was_given() {
    if !have_openssl() {
        return;
    }
    let run = LiveRun::start(&["--listen", "recorder-1.vms.test=127.0.0.2"]);
    let recorder = listeners(&run.at)
        .into_iter()
        .find(|l| l["host"] == "recorder-1.vms.test" && l["tls"] == true)
        .expect("the recording server listens");
    let address = recorder["address"].as_str().expect("address").to_owned();
    assert!(address.starts_with("127.0.0.2:"), "{address}");
    let (ok, text) = s_client(&address, &["-verify_ip", "127.0.0.2"], &run.ca, &[]);
    assert!(ok, "{text}");
    assert!(text.contains("Verification: OK"), "{text}");
    run.finish();
}

#[test]
fn servers_listen_where_the_run_says_and_clients_reach_them_there() {
    let dir = tempfile::tempdir().expect("tempdir");
    let at = dir.path().join("listeners.json");
    let at_arg = at.to_str().expect("utf-8 path");
    let report = crate::support::run_once(
        dir.path(),
        &["small"],
        "2s",
        "1s",
        &[
            "--mode",
            "tls",
            "--listen",
            "127.0.0.3",
            "--listen",
            "recorder-1.vms.test=127.0.0.2",
            "--export-listeners",
            at_arg,
        ],
    );
    let doc = read_json(&at);
    let listeners = doc["listeners"].as_array().expect("listeners");
    assert!(listeners.len() >= 4, "{doc}");
    for l in listeners {
        let host = l["host"].as_str().expect("host");
        let address: std::net::SocketAddr = l["address"]
            .as_str()
            .expect("address")
            .parse()
            .expect("an address");
        let want = if host == "recorder-1.vms.test" {
            "127.0.0.2"
        } else {
            "127.0.0.3"
        };
        assert_eq!(address.ip().to_string(), want, "{host}");
        assert_ne!(address.port(), 0, "{host}");
    }
    // Clients reached the servers there: every frame due arrived, with no failure.
    for link in ["viewer-recorder", "mobile-recorder", "phone-mobile"] {
        let r = result(&report, link, "tls");
        assert_eq!(r["frames_received"], r["frames_due"], "{link}: {r}");
        assert!(r["frames_received"].as_u64().unwrap_or(0) > 0, "{link}");
        assert_eq!(r["errors"], serde_json::json!({}), "{link}: {r}");
    }
    assert_eq!(report["scenario"]["listen"]["default"], "127.0.0.3");
}

#[test]
fn a_listen_flag_that_names_no_server_or_no_address_is_refused_before_running() {
    for (flag, says) in [
        ("nowhere.vms.test=127.0.0.2", "is not a server of scenario"),
        ("banana", "is not an IP address"),
        ("recorder-1.vms.test=300.1.1.1", "is not an IP address"),
    ] {
        let err = crate::support::try_run(&["run", "--listen", flag, "--duration", "1s"])
            .expect_err("a bad --listen is an error");
        let text = format!("{err:#}");
        assert!(
            text.contains(says) && text.contains("--listen"),
            "{flag}: {text}"
        );
    }
}
