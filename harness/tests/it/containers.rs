//! The Compose lab (`lab/compose.yaml`) on the image `lab/image.sh` builds from this
//! checkout's own binary: the coordinator, the recording server and two client machines each
//! in a container of its own, on a private network where the service names are the
//! scenario's host names. What it must show: the report comes back to the host as files,
//! with every link's figures and the placement; a container killed mid-run aborts the run,
//! naming it, and the partial report is still written.
//!
//! Needs Docker Engine and docker-compose. Without them these tests say so and pass, so that
//! `cargo test` works on a machine with nothing but Rust; `VMSBENCH_REQUIRE_DOCKER=1` (which
//! `.ci/run` sets wherever Docker runs) makes their absence a failure.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::read_json;

/// The tag of the image these tests build.
const IMAGE: &str = "vmsbench-it:latest";

/// Longest a lab may take before it counts as hung.
const HANG: Duration = Duration::from_secs(240);

/// The coordinator's service (it also runs the management, event and mobile servers).
const COORDINATOR: &str = "mgmt.vms.test";

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the workspace")
        .to_path_buf()
}

fn output(c: &mut Command) -> Output {
    let what = format!("{c:?}");
    c.stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("{what}: {e}"))
}

/// Builds the image once per test process, from the binary under test; `None` (with a
/// note) when this machine has no Docker and the tests may be skipped.
fn image() -> Option<&'static str> {
    static BUILT: OnceLock<Result<(), String>> = OnceLock::new();
    let built = BUILT.get_or_init(|| {
        let docker = Command::new("docker")
            .args(["info", "--format", "{{.ServerVersion}}"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        let compose = Command::new("docker-compose")
            .arg("version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        if !docker.is_ok_and(|s| s.success()) || !compose.is_ok_and(|s| s.success()) {
            return Err("Docker Engine or docker-compose is not available".into());
        }
        let built = output(Command::new(repo().join("lab/image.sh")).args([
            "--binary",
            env!("CARGO_BIN_EXE_vmsbench"),
            "--tag",
            IMAGE,
        ]));
        assert!(
            built.status.success(),
            "lab/image.sh failed: {}",
            String::from_utf8_lossy(&built.stderr)
        );
        Ok(())
    });
    match built {
        Ok(()) => Some(IMAGE),
        Err(why) if std::env::var_os("VMSBENCH_REQUIRE_DOCKER").is_some() => {
            panic!("{why}, and VMSBENCH_REQUIRE_DOCKER is set")
        }
        Err(why) => {
            eprintln!("SKIPPED: {why} (set VMSBENCH_REQUIRE_DOCKER=1 to make this a failure)");
            None
        }
    }
}

/// One Compose project of the lab, taken down (containers and network) when dropped.
struct Lab {
    project: String,
    reports: tempfile::TempDir,
    args: String,
}

impl Lab {
    /// Starts the lab in the background with `args` added to the coordinator's run.
    fn up(name: &str, image: &str, args: &str) -> Lab {
        let reports = tempfile::tempdir().expect("tempdir");
        let lab = Lab {
            project: format!("vmsbench-it-{}-{name}", std::process::id()),
            reports,
            args: args.to_owned(),
        };
        let up = output(
            lab.compose()
                .args(["up", "--detach", "--no-color"])
                .env("VMSBENCH_IMAGE", image),
        );
        assert!(
            up.status.success(),
            "docker-compose up: {}",
            String::from_utf8_lossy(&up.stderr)
        );
        lab
    }

    fn compose(&self) -> Command {
        let mut c = Command::new("docker-compose");
        c.arg("--file")
            .arg(repo().join("lab/compose.yaml"))
            .args(["--project-name", &self.project])
            .env("VMSBENCH_IMAGE", IMAGE)
            .env("VMSBENCH_TOKEN", "container-test-token")
            .env("VMSBENCH_REPORTS", self.reports.path())
            // The reports are written as this user, so that the test can read and remove them.
            .env("VMSBENCH_USER", current_uid())
            .env("VMSBENCH_ARGS", &self.args);
        c
    }

    /// The container of `service`.
    fn container(&self, service: &str) -> String {
        let ps = output(self.compose().args(["ps", "--quiet", service]));
        let id = String::from_utf8_lossy(&ps.stdout).trim().to_owned();
        assert!(!id.is_empty(), "no container for {service}");
        id
    }

    /// What `service` printed so far.
    fn logs(&self, service: &str) -> String {
        let logs = output(Command::new("docker").args(["logs", &self.container(service)]));
        format!(
            "{}{}",
            String::from_utf8_lossy(&logs.stdout),
            String::from_utf8_lossy(&logs.stderr)
        )
    }

    /// Waits for `service`'s container to exit and returns its exit code.
    fn wait(&self, service: &str) -> i64 {
        let id = self.container(service);
        let deadline = Instant::now() + HANG;
        loop {
            let state = output(Command::new("docker").args([
                "inspect",
                "--format",
                "{{.State.Running}} {{.State.ExitCode}}",
                &id,
            ]));
            let state = String::from_utf8_lossy(&state.stdout).trim().to_owned();
            if let Some(code) = state.strip_prefix("false ") {
                return code.parse().unwrap_or(-1);
            }
            assert!(
                Instant::now() < deadline,
                "{service} still runs after {HANG:?}: {}",
                self.logs(service)
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    fn report(&self) -> Value {
        read_json(&self.reports.path().join("lab.json"))
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        let _ = self
            .compose()
            .args(["down", "--volumes", "--timeout", "1"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

fn current_uid() -> String {
    let id = output(Command::new("id").arg("-u"));
    String::from_utf8_lossy(&id.stdout).trim().to_owned()
}

#[test]
fn the_compose_lab_runs_every_link_across_containers_and_returns_the_report() {
    let Some(image) = image() else { return };
    let lab = Lab::up("run", image, "--duration 2s --warmup 1s --repeat 1");
    let code = lab.wait(COORDINATOR);
    let logs = lab.logs(COORDINATOR);
    assert_eq!(code, 0, "{logs}");
    for agent in ["recorder-1.vms.test", "clients-1", "clients-2"] {
        assert_eq!(lab.wait(agent), 0, "{}", lab.logs(agent));
    }
    let report = lab.report();
    assert_eq!(report["partial"], Value::Bool(false), "{logs}");
    for f in ["lab.md", "lab.html"] {
        let meta = std::fs::metadata(lab.reports.path().join(f));
        assert!(meta.is_ok_and(|m| m.len() > 0), "{f} written");
    }
    // Every link of the small preset, in both modes, with frames or messages.
    let results = report["results"].as_array().cloned().unwrap_or_default();
    for link in [
        "viewer-recorder",
        "mobile-recorder",
        "phone-mobile",
        "client-event",
        "recorder-mgmt",
        "event-mgmt",
        "mobile-mgmt",
        "client-mgmt",
    ] {
        for mode in ["plain", "tls"] {
            let r = results
                .iter()
                .find(|r| r["link"] == link && r["mode"] == mode)
                .unwrap_or_else(|| panic!("{link} {mode} missing: {logs}"));
            let errors: u64 = r["errors"]
                .as_object()
                .map(|e| e.values().filter_map(Value::as_u64).sum())
                .unwrap_or(u64::MAX);
            assert_eq!(errors, 0, "{link} {mode}: {r}");
        }
    }
    // The video links counted every frame they were due, across containers.
    for link in ["viewer-recorder", "phone-mobile"] {
        for mode in ["plain", "tls"] {
            let r = results
                .iter()
                .find(|r| r["link"] == link && r["mode"] == mode)
                .expect("found above");
            let due = r["frames_due"].as_u64().unwrap_or(0);
            assert!(due > 0, "{link} {mode}: {r}");
            assert_eq!(r["frames_received"].as_u64(), Some(due), "{link} {mode}");
        }
    }
    // The placement: its rules, and every agent with the container it ran in.
    let placement = &report["placement"];
    let rules = placement["rules"].to_string();
    assert!(rules.contains("recorder-1=recorder-1.vms.test"), "{rules}");
    let agents: Vec<&str> = placement["agents"]
        .as_array()
        .map(|a| a.iter().filter_map(|a| a["name"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(agents, ["clients-1", "clients-2", "recorder-1.vms.test"]);
    assert!(placement["aborted"].is_null(), "{placement}");
    assert_eq!(
        report["environment"]["container"], "docker",
        "{}",
        report["environment"]
    );
}

#[test]
fn a_container_killed_mid_run_aborts_the_run_naming_it_with_a_partial_report() {
    let Some(image) = image() else { return };
    let lab = Lab::up(
        "kill",
        image,
        "--mode tls --duration 60s --warmup 1s --repeat 1",
    );
    let deadline = Instant::now() + HANG;
    while !lab.logs(COORDINATOR).contains("measuring") {
        assert!(Instant::now() < deadline, "{}", lab.logs(COORDINATOR));
        std::thread::sleep(Duration::from_millis(200));
    }
    let killed = output(Command::new("docker").args(["kill", &lab.container("clients-1")]));
    assert!(killed.status.success(), "docker kill clients-1");
    let code = lab.wait(COORDINATOR);
    let logs = lab.logs(COORDINATOR);
    assert_ne!(code, 0, "the run failed: {logs}");
    assert!(
        logs.contains("clients-1"),
        "the message names the agent: {logs}"
    );
    let report = lab.report();
    assert_eq!(report["partial"], Value::Bool(true), "{logs}");
    let aborted = report["placement"]["aborted"].as_str().unwrap_or_default();
    assert!(aborted.contains("clients-1"), "{aborted}");
    // The other containers end by themselves: nothing waits forever on the dead one.
    for agent in ["recorder-1.vms.test", "clients-2"] {
        lab.wait(agent);
    }
}

#[test]
fn the_kubernetes_manifests_of_small_make_a_run_with_pods_played_by_containers() {
    let Some(image) = image() else { return };
    let reports = tempfile::tempdir().expect("tempdir");
    let rehearsal = output(
        Command::new(repo().join("lab/k8s/rehearse.sh"))
            .args(["small", "--image", image, "--reports"])
            .arg(reports.path())
            .args(["--", "--duration=2s", "--warmup=1s", "--repeat=1"]),
    );
    let logs = String::from_utf8_lossy(&rehearsal.stdout);
    assert!(
        rehearsal.status.success(),
        "{logs}{}",
        String::from_utf8_lossy(&rehearsal.stderr)
    );
    let report = read_json(&reports.path().join("small.json"));
    assert_eq!(report["partial"], Value::Bool(false), "{logs}");
    let agents: Vec<&str> = report["placement"]["agents"]
        .as_array()
        .map(|a| a.iter().filter_map(|a| a["name"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(agents, ["clients-0", "clients-1", "recorders-0"]);
    // Each server's certificate names the pod that runs it, and clients reached it there.
    let sans = &report["scenario"]["listen"]["sans"];
    let recorder = sans["recorder-1.vms.test"].to_string();
    assert!(recorder.contains("recorders-0.vmsbench"), "{sans}");
    let viewers = report["results"]
        .as_array()
        .and_then(|r| {
            r.iter()
                .find(|r| r["link"] == "viewer-recorder" && r["mode"] == "tls")
        })
        .cloned()
        .unwrap_or_default();
    let due = viewers["frames_due"].as_u64().unwrap_or(0);
    assert!(due > 0, "{viewers}");
    assert_eq!(viewers["frames_received"].as_u64(), Some(due), "{viewers}");
}
