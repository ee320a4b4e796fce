//! A run spread over processes: a coordinator (`run --place …`) and agents (`vmsbench
//! agent`), each a child process, on loopback or each in a network namespace of its own.
//! What they must show: the plan travels, every frame is counted exactly and the figures
//! merge to what one process measures; a killed agent aborts the run, naming it, with a
//! partial report and no process left behind; another protocol version is refused; a
//! clock offset between hosts moves one-way latency but not delay variation.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::{read_json, result};

const TOKEN: &str = "distributed-test-token";

/// Longest a whole distributed run of these tests may take before it counts as hung.
const HANG: Duration = Duration::from_secs(180);

/// A coordinator in a child process, and what it printed on stderr so far.
struct Coordinator {
    child: Child,
    stderr: Arc<Mutex<String>>,
    /// Where agents reach it.
    address: String,
    dir: tempfile::TempDir,
}

impl Coordinator {
    /// `vmsbench run ARGS… --json DIR/report.json`, listening for agents on `listen`
    /// (port 0); returns once it says where it waits.
    fn start(args: &[&str], listen: &str) -> Coordinator {
        Coordinator::start_command("run", args, listen)
    }

    /// [`Coordinator::start`] for another measuring command (`capacity`).
    fn start_command(command: &str, args: &[&str], listen: &str) -> Coordinator {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut child = Command::new(env!("CARGO_BIN_EXE_vmsbench"))
            .arg(command)
            .args(args)
            .args(["--control-listen", listen, "--json"])
            .arg(dir.path().join("report.json"))
            .env("VMSBENCH_TOKEN", TOKEN)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn the coordinator");
        let stderr = Arc::new(Mutex::new(String::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        {
            let stderr = stderr.clone();
            let pipe = child.stderr.take().expect("stderr piped");
            std::thread::spawn(move || {
                for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                    if let Some(at) = line.split(" on ").nth(1) {
                        if line.contains("waiting for") {
                            let _ = tx.send(at.trim().to_owned());
                        }
                    }
                    let mut s = stderr.lock().expect("lock");
                    s.push_str(&line);
                    s.push('\n');
                }
            });
        }
        let address = rx
            .recv_timeout(Duration::from_secs(60))
            .unwrap_or_else(|_| panic!("the coordinator never said where it waits: {stderr:?}"));
        Coordinator {
            child,
            stderr,
            address,
            dir,
        }
    }

    /// Waits for it to end (a hang fails the test); its status and report.
    fn finish(&mut self) -> (ExitStatus, Option<Value>) {
        let status = wait(&mut self.child, "the coordinator");
        let path = self.dir.path().join("report.json");
        (status, path.exists().then(|| read_json(&path)))
    }

    fn stderr(&self) -> String {
        self.stderr.lock().expect("lock").clone()
    }
}

/// Waits for `child`, killing it and failing after [`HANG`].
fn wait(child: &mut Child, what: &str) -> ExitStatus {
    let deadline = Instant::now() + HANG;
    loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            return status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("{what} still runs after {HANG:?}: hung");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// `vmsbench agent --coordinator ADDRESS --name NAME EXTRA…`, its stderr in `log`.
fn agent(address: &str, name: &str, extra: &[&str], prefix: Option<Command>, log: &Path) -> Child {
    let mut cmd = prefix.unwrap_or_else(|| Command::new(env!("CARGO_BIN_EXE_vmsbench")));
    cmd.args(["agent", "--coordinator", address, "--name", name])
        .args(extra)
        .env("VMSBENCH_TOKEN", TOKEN)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(log).expect("agent log"))
        .spawn()
        .expect("spawn an agent")
}

/// The window's frames: due and received, per link and mode, from every repeat.
fn frames(report: &Value) -> Vec<(String, String, u64, u64)> {
    report["results"]
        .as_array()
        .expect("results")
        .iter()
        .flat_map(|r| {
            r["samples"].as_array().expect("samples").iter().map(|s| {
                (
                    r["link"].as_str().unwrap_or_default().to_owned(),
                    r["mode"].as_str().unwrap_or_default().to_owned(),
                    s["frames_due"].as_u64().unwrap_or(u64::MAX),
                    s["frames_received"].as_u64().unwrap_or(0),
                )
            })
        })
        .collect()
}

/// `small` for one repeat in `mode`, with `warmup` and a window of `duration`, and `extra`.
fn small<'a>(mode: &'a str, warmup: &'a str, duration: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec![
        "small",
        "--mode",
        mode,
        "--repeat",
        "1",
        "--warmup",
        warmup,
        "--duration",
        duration,
    ];
    args.extend_from_slice(extra);
    args
}

#[test]
fn agents_on_loopback_count_every_frame_and_agree_with_one_process() {
    let logs = tempfile::tempdir().expect("tempdir");
    let placed = small(
        "both",
        "1s",
        "2s",
        &["--place", "recorder-1=a", "--place", "viewers=b,c"],
    );
    let mut coordinator = Coordinator::start(&placed, "127.0.0.1:0");
    let mut agents: Vec<(String, Child)> = ["a", "b", "c"]
        .iter()
        .map(|n| {
            let log = logs.path().join(n);
            let child = agent(&coordinator.address, n, &[], None, &log);
            if *n == "a" {
                // The first agent waits longer than three heartbeats for the others: the
                // coordinator keeps it alive meanwhile.
                std::thread::sleep(Duration::from_secs(4));
            }
            (n.to_string(), child)
        })
        .collect();
    let (status, report) = coordinator.finish();
    assert!(
        status.success(),
        "coordinator: {status}\n{}",
        coordinator.stderr()
    );
    for (name, child) in &mut agents {
        let s = wait(child, "an agent");
        let log = std::fs::read_to_string(logs.path().join(&*name)).unwrap_or_default();
        assert!(s.success(), "agent {name}: {s}\n{log}");
        assert!(log.contains("the run is over"), "agent {name}:\n{log}");
    }
    let report = report.expect("a report");
    crate::checks::validate(&report);
    let placement = &report["placement"];
    let names: Vec<&str> = placement["agents"]
        .as_array()
        .expect("agents")
        .iter()
        .filter_map(|a| a["name"].as_str())
        .collect();
    assert_eq!(names, ["a", "b", "c"], "{placement}");
    assert!(placement["aborted"].is_null(), "{placement}");
    assert_eq!(report["partial"], false);
    // Every frame due in the window arrived and was counted once.
    for (link, mode, due, received) in frames(&report) {
        assert_eq!(
            due, received,
            "{link} {mode}: due {due}, received {received}"
        );
    }
    // The same deployment in one process: the same schedule, so as many frames in the
    // window and, up to where the window falls in each GOP, as many bytes.
    let one = tempfile::tempdir().expect("tempdir");
    let json = one.path().join("one.json");
    let json_arg = json.to_str().expect("utf-8").to_owned();
    let args: Vec<&str> = std::iter::once("run")
        .chain(small("both", "1s", "2s", &["--json", &json_arg]))
        .collect();
    crate::support::run_in_process(&args);
    let alone = read_json(&json);
    for (link, mode, due, received) in frames(&alone) {
        assert_eq!(due, received, "in one process: {link} {mode}");
        let placed = result(&report, &link, &mode);
        let here = result(&alone, &link, &mode);
        assert_eq!(placed["frames_due"], due, "{link} {mode}");
        let bytes = |r: &Value| r["bytes_received"].as_f64().unwrap_or(0.0);
        let (a, b) = (bytes(placed), bytes(here));
        assert!(
            (a - b).abs() <= 0.05 * a.max(b),
            "{link} {mode}: {a} bytes placed, {b} in one process"
        );
    }
}

#[test]
fn a_killed_agent_aborts_the_run_naming_it_with_a_partial_report() {
    let logs = tempfile::tempdir().expect("tempdir");
    let args = small(
        "tls",
        "1s",
        "60s",
        &["--place", "recorder-1=a", "--place", "viewers=b"],
    );
    let mut coordinator = Coordinator::start(&args, "127.0.0.1:0");
    let mut a = agent(&coordinator.address, "a", &[], None, &logs.path().join("a"));
    let mut b = agent(&coordinator.address, "b", &[], None, &logs.path().join("b"));
    // Kill b once the window is open.
    let deadline = Instant::now() + HANG;
    while !coordinator.stderr().contains("measuring") {
        assert!(Instant::now() < deadline, "{}", coordinator.stderr());
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_secs(2));
    b.kill().expect("SIGKILL agent b");
    let _ = b.wait();
    let (status, report) = coordinator.finish();
    let stderr = coordinator.stderr();
    assert_eq!(status.code(), Some(130), "{stderr}");
    assert!(stderr.contains("agent b lost"), "{stderr}");
    let report = report.expect("the partial report is written");
    crate::checks::validate(&report);
    assert_eq!(report["partial"], true);
    let aborted = report["placement"]["aborted"].as_str().unwrap_or_default();
    assert!(aborted.contains("agent b"), "{aborted}");
    assert!(
        report["warnings"]
            .as_array()
            .expect("warnings")
            .iter()
            .any(|w| w.as_str().unwrap_or_default().contains("aborted")),
        "{}",
        report["warnings"]
    );
    // The surviving agent stops too: nothing keeps generating load.
    let s = wait(&mut a, "agent a");
    assert!(s.success(), "agent a: {s}");
}

#[test]
fn an_agent_of_another_protocol_version_is_refused_with_both_versions_named() {
    let logs = tempfile::tempdir().expect("tempdir");
    let args = small(
        "tls",
        "2s",
        "1s",
        &["--place", "viewers=a", "--agents-timeout", "5s"],
    );
    let mut coordinator = Coordinator::start(&args, "127.0.0.1:0");
    let log = logs.path().join("a");
    let mut a = agent(&coordinator.address, "a", &["--protocol", "99"], None, &log);
    let s = wait(&mut a, "agent a");
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(!s.success(), "{text}");
    assert!(
        text.contains("protocol 99") && text.contains("protocol 1 "),
        "both versions named: {text}"
    );
    let (status, _) = coordinator.finish();
    let stderr = coordinator.stderr();
    assert!(!status.success(), "{stderr}");
    assert!(stderr.contains("did not connect"), "{stderr}");
}

#[test]
fn a_clock_offset_moves_one_way_latency_but_not_delay_variation() {
    let logs = tempfile::tempdir().expect("tempdir");
    let args = small(
        "plain",
        "1s",
        "2s",
        &["--place", "recorder-1=a", "--place", "viewers=b"],
    );
    let mut coordinator = Coordinator::start(&args, "127.0.0.1:0");
    let mut a = agent(&coordinator.address, "a", &[], None, &logs.path().join("a"));
    let mut b = agent(
        &coordinator.address,
        "b",
        &["--clock-ahead", "300ms"],
        None,
        &logs.path().join("b"),
    );
    let (status, report) = coordinator.finish();
    assert!(status.success(), "{}", coordinator.stderr());
    let _ = (wait(&mut a, "agent a"), wait(&mut b, "agent b"));
    let report = report.expect("report");
    let viewers = result(&report, "viewer-recorder", "plain");
    let latency = viewers["latency_us"]["p50"].as_f64().expect("p50");
    let variation = viewers["delay_variation_us"]["p50"]
        .as_f64()
        .expect("delay variation p50");
    // The viewers' clock runs 300 ms ahead of the recording server's: every one-way figure
    // includes it; delay variation, each frame against its stream's best, does not.
    assert!(latency >= 300_000.0, "latency p50 {latency} µs");
    assert!(variation < 300_000.0, "delay variation p50 {variation} µs");
    let placement = &report["placement"];
    assert_eq!(placement["clocks_agree"], false, "{placement}");
    assert!(
        placement["worst_clock_offset_us"].as_f64().unwrap_or(0.0) >= 250_000.0,
        "{placement}"
    );
    assert!(
        report["warnings"]
            .as_array()
            .expect("warnings")
            .iter()
            .any(|w| w
                .as_str()
                .unwrap_or_default()
                .contains("delay_variation_us")),
        "{}",
        report["warnings"]
    );
}

/// Network namespaces with a bridge between them: each agent in a namespace of its own,
/// with an address of its own; removed when dropped.
struct Lab {
    bridge: String,
    namespaces: Vec<String>,
}

impl Lab {
    /// `n` namespaces on 10.77.0.0/24: the bridge (this side) is .1, namespace i is .2+i.
    /// `None`, said loudly, when this machine does not allow it and the environment says
    /// to skip; otherwise a failure that says what is missing.
    fn new(n: usize) -> Option<Lab> {
        let id = std::process::id() % 10_000;
        let lab = Lab {
            bridge: format!("vmsb{id}"),
            namespaces: (0..n).map(|i| format!("vmsb{id}-{i}")).collect(),
        };
        let mut steps: Vec<Vec<String>> = vec![
            sv(&["link", "add", &lab.bridge, "type", "bridge"]),
            sv(&["addr", "add", "10.77.0.1/24", "dev", &lab.bridge]),
            sv(&["link", "set", &lab.bridge, "up"]),
        ];
        for (i, ns) in lab.namespaces.iter().enumerate() {
            let veth = format!("vmsb{id}v{i}");
            let ip = format!("10.77.0.{}/24", i + 2);
            steps.extend([
                sv(&["netns", "add", ns]),
                sv(&[
                    "link", "add", &veth, "type", "veth", "peer", "name", "eth0", "netns", ns,
                ]),
                sv(&["link", "set", &veth, "master", &lab.bridge, "up"]),
                sv(&["-n", ns, "addr", "add", &ip, "dev", "eth0"]),
                sv(&["-n", ns, "link", "set", "eth0", "up"]),
                sv(&["-n", ns, "link", "set", "lo", "up"]),
            ]);
        }
        // Docker's FORWARD policy drops bridged traffic when br_netfilter is loaded:
        // let this bridge's own traffic through (removed with the lab).
        let forward = sv(&[
            "FORWARD",
            "-i",
            &lab.bridge,
            "-o",
            &lab.bridge,
            "-j",
            "ACCEPT",
        ]);
        let iptables = std::iter::once("iptables".to_owned())
            .chain(std::iter::once("-I".to_owned()))
            .chain(forward);
        steps.push(iptables.collect());
        for mut step in steps {
            let program = if step[0] == "iptables" {
                step.remove(0)
            } else {
                "ip".to_owned()
            };
            let out = Command::new(&program).args(&step).output();
            let failed = match &out {
                Ok(o) if o.status.success() => None,
                Ok(o) => Some(String::from_utf8_lossy(&o.stderr).into_owned()),
                Err(e) => Some(e.to_string()),
            };
            if let Some(why) = failed {
                drop(lab);
                let msg = format!(
                    "network namespaces are not available here (`{program} {}`: {}); they need \
                     root, iproute2 and iptables",
                    step.join(" "),
                    why.trim()
                );
                // `cargo test` must pass where nothing but Rust is installed; `.ci/run` sets
                // VMSBENCH_REQUIRE_NETNS wherever namespaces work, so that CI cannot skip.
                if std::env::var_os("VMSBENCH_REQUIRE_NETNS").is_some() {
                    panic!("{msg}, and VMSBENCH_REQUIRE_NETNS is set");
                }
                eprintln!("SKIPPED: {msg} (set VMSBENCH_REQUIRE_NETNS=1 to make this a failure)");
                return None;
            }
        }
        Some(lab)
    }

    /// A command run inside namespace `i`.
    fn exec(&self, i: usize) -> Command {
        let mut c = Command::new("ip");
        c.args([
            "netns",
            "exec",
            &self.namespaces[i],
            env!("CARGO_BIN_EXE_vmsbench"),
        ]);
        c
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        for ns in &self.namespaces {
            let _ = Command::new("ip").args(["netns", "del", ns]).output();
        }
        let _ = Command::new("ip")
            .args(["link", "del", &self.bridge])
            .output();
        let _ = Command::new("iptables")
            .args([
                "-D",
                "FORWARD",
                "-i",
                &self.bridge,
                "-o",
                &self.bridge,
                "-j",
                "ACCEPT",
            ])
            .output();
    }
}

fn sv(args: &[&str]) -> Vec<String> {
    args.iter().map(|s| s.to_string()).collect()
}

#[test]
fn agents_in_network_namespaces_reach_servers_by_their_certified_names() {
    let Some(lab) = Lab::new(3) else { return };
    let logs = tempfile::tempdir().expect("tempdir");
    // Every server on an agent of its own address; the clients on a third; the
    // coordinator runs nothing. Clients dial the host names the placement maps to those
    // addresses and verify the names in the certificates.
    let args = small(
        "tls",
        "1s",
        "2s",
        &[
            "--place",
            "recorder-1=rec",
            "--place",
            "mgmt=srv",
            "--place",
            "mobile=srv",
            "--place",
            "event=srv",
            "--place",
            "viewers=cli",
            "--place",
            "event-clients=cli",
            "--place",
            "login-clients=cli",
            "--place",
            "phones=cli",
            "--host",
            "recorder-1.vms.test=10.77.0.2",
            "--host",
            "mgmt.vms.test=10.77.0.3",
            "--host",
            "mobile.vms.test=10.77.0.3",
            "--host",
            "event.vms.test=10.77.0.3",
        ],
    );
    let mut coordinator = Coordinator::start(&args, "10.77.0.1:0");
    let placed = [
        ("rec", 0, "10.77.0.2"),
        ("srv", 1, "10.77.0.3"),
        ("cli", 2, "10.77.0.4"),
    ];
    let mut agents: Vec<Child> = placed
        .iter()
        .map(|(name, i, ip)| {
            agent(
                &coordinator.address,
                name,
                &["--listen", ip],
                Some(lab.exec(*i)),
                &logs.path().join(name),
            )
        })
        .collect();
    let (status, report) = coordinator.finish();
    for a in &mut agents {
        let _ = wait(a, "an agent");
    }
    let logs_text: String = placed
        .iter()
        .map(|(n, _, _)| std::fs::read_to_string(logs.path().join(n)).unwrap_or_default())
        .collect();
    assert!(status.success(), "{}\n{logs_text}", coordinator.stderr());
    let report = report.expect("report");
    for (link, mode, due, received) in frames(&report) {
        assert_eq!(due, received, "{link} {mode}");
    }
    // Nothing failed verification: the names in the certificates are the names dialled.
    for r in report["results"].as_array().expect("results") {
        let errors = r["errors"].as_object().map(|o| o.len()).unwrap_or(0);
        assert_eq!(errors, 0, "{}: {}", r["link"], r["errors"]);
        if r["frames_due"].as_u64().unwrap_or(0) > 0 {
            assert_eq!(r["tls"]["version"], "TLSv1_3", "{}", r["link"]);
        }
    }
    // The servers' certificates name the addresses their agents listen on, too (`--listen`
    // of each agent); the scenario records them.
    let listen = &report["scenario"]["listen"]["hosts"];
    assert_eq!(listen["recorder-1.vms.test"], "10.77.0.2", "{listen}");
    assert_eq!(listen["mgmt.vms.test"], "10.77.0.3", "{listen}");
    let addresses: Vec<&str> = report["placement"]["agents"]
        .as_array()
        .expect("agents")
        .iter()
        .filter_map(|a| a["address"].as_str())
        .collect();
    for (_, _, ip) in placed {
        assert!(
            addresses.iter().any(|a| a.starts_with(&format!("{ip}:"))),
            "an agent connected from {ip}: {addresses:?}"
        );
    }
    drop(lab);
}

#[test]
fn scheduled_events_happen_on_the_agents_that_run_their_servers() {
    let logs = tempfile::tempdir().expect("tempdir");
    // medium stops recorder-2 3 s into the window; --inject-stall stalls every recording
    // server at 2.5 s. Both recording servers run on agents.
    let args = [
        "medium",
        "--scale",
        "0.2",
        "--mode",
        "tls",
        "--repeat",
        "1",
        "--warmup",
        "2s",
        "--duration",
        "5s",
        "--inject-stall",
        "400ms",
        "--place",
        "recorder-2=a",
        "--place",
        "recorder-1=b",
    ];
    let mut coordinator = Coordinator::start(&args, "127.0.0.1:0");
    let mut agents = [
        agent(&coordinator.address, "a", &[], None, &logs.path().join("a")),
        agent(&coordinator.address, "b", &[], None, &logs.path().join("b")),
    ];
    let (status, report) = coordinator.finish();
    for a in &mut agents {
        let _ = wait(a, "an agent");
    }
    assert!(status.success(), "{}", coordinator.stderr());
    let report = report.expect("report");
    let failovers = report["failovers"].as_array().expect("failovers");
    assert_eq!(failovers.len(), 1, "{failovers:?}");
    let f = &failovers[0];
    assert_eq!(f["host"], "recorder-2.vms.test", "{f}");
    assert!(f["reconnects"].as_u64().unwrap_or(0) > 0, "{f}");
    assert_eq!(f["streams_recovered"], f["streams"], "{f}");
    // Frames due while recorder-1 stalled left when the stall ended: 400 ms late at least.
    let viewers = result(&report, "viewer-recorder", "tls");
    let max = viewers["latency_us"]["max"].as_f64().unwrap_or(0.0);
    assert!(max >= 400_000.0, "max latency {max} µs");
}

#[test]
fn capacity_measures_a_recording_server_on_an_agent_of_its_own() {
    let logs = tempfile::tempdir().expect("tempdir");
    let args = [
        "--mode",
        "tls",
        "--start",
        "8",
        "--max",
        "16",
        "--step-duration",
        "1s",
        "--warmup",
        "1500ms",
        "--budget",
        "10s",
        "--place",
        "recorder-1=box",
    ];
    let mut coordinator = Coordinator::start_command("capacity", &args, "127.0.0.1:0");
    let mut a = agent(
        &coordinator.address,
        "box",
        &[],
        None,
        &logs.path().join("box"),
    );
    let (status, report) = coordinator.finish();
    let _ = wait(&mut a, "the agent");
    assert!(status.success(), "{}", coordinator.stderr());
    let report = report.expect("report");
    assert_eq!(report["placement"]["rules"][0], "recorder-1=box");
    let search = &report["search"];
    // The agent's machine is the recording server's: a thread per core, no pinning.
    let cores = report["placement"]["agents"][0]["environment"]["cores"].clone();
    assert_eq!(search["server_threads"], cores, "{search}");
    assert_eq!(search["server_cpus"], serde_json::json!([]), "{search}");
    let steps = report["modes"]["tls"]["steps"].as_array().expect("steps");
    assert!(!steps.is_empty());
    for st in steps {
        // Its CPU is its own runtime's on the agent, its memory the agent process's.
        assert!(st["cpu_server_cores"].as_f64().unwrap_or(0.0) > 0.0, "{st}");
        assert!(st["peak_rss_bytes"].as_u64().unwrap_or(0) > 0, "{st}");
    }
}

#[test]
fn an_agent_that_cannot_start_its_roles_fails_the_run_with_its_reason() {
    let logs = tempfile::tempdir().expect("tempdir");
    let args = small("tls", "1s", "2s", &["--place", "recorder-1=a"]);
    let mut coordinator = Coordinator::start(&args, "127.0.0.1:0");
    // 203.0.113.7 (TEST-NET-3) is no address of this machine: the server cannot bind.
    let log = logs.path().join("a");
    let mut a = agent(
        &coordinator.address,
        "a",
        &["--listen", "203.0.113.7"],
        None,
        &log,
    );
    let (status, _) = coordinator.finish();
    let s = wait(&mut a, "agent a");
    let stderr = coordinator.stderr();
    assert!(!status.success(), "{stderr}");
    assert!(!s.success());
    assert!(
        stderr.contains("agent a lost: it failed: listening on 203.0.113.7"),
        "the agent's own reason reaches the coordinator: {stderr}"
    );
}

#[test]
fn bulk_measures_the_ceiling_between_a_sender_and_receivers_on_two_agents() {
    let logs = tempfile::tempdir().expect("tempdir");
    let args = [
        "--mode",
        "both",
        "--repeat",
        "1",
        "--warmup",
        "1s",
        "--duration",
        "1s",
        "--connections",
        "2",
        "--place",
        "bulk-sender=a",
        "--place",
        "bulk-receivers=b",
    ];
    let mut coordinator = Coordinator::start_command("bulk", &args, "127.0.0.1:0");
    let mut agents = [
        agent(&coordinator.address, "a", &[], None, &logs.path().join("a")),
        agent(&coordinator.address, "b", &[], None, &logs.path().join("b")),
    ];
    let (status, report) = coordinator.finish();
    for a in &mut agents {
        let s = wait(a, "an agent");
        assert!(s.success(), "{s}");
    }
    assert!(status.success(), "{}", coordinator.stderr());
    let report = report.expect("report");
    crate::checks::validate(&report);
    assert_eq!(
        report["placement"]["rules"].as_array().map(Vec::len),
        Some(2)
    );
    for mode in ["plain", "tls"] {
        let bulk = result(&report, "bulk", mode);
        assert!(bulk["frames_received"].as_u64().unwrap_or(0) > 0, "{bulk}");
        assert!(bulk["bytes_received"].as_u64().unwrap_or(0) > 0, "{bulk}");
        assert_eq!(bulk["errors"], serde_json::json!({}), "{bulk}");
        // The sender's CPU is its own runtime's on agent a; the receivers' on agent b.
        assert!(bulk["cpu_server_s"].as_f64().unwrap_or(0.0) > 0.0, "{bulk}");
        assert!(bulk["cpu_client_s"].as_f64().unwrap_or(0.0) > 0.0, "{bulk}");
    }
}
