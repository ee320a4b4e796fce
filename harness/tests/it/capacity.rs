//! `vmsbench capacity` end to end, in-process through the real flag parsing, against a
//! recording server of known capacity: one worker thread that burns a fixed amount of CPU
//! per frame it sends (`--throttle-us-per-frame`), pinned to a CPU of its own. The search
//! must find the boundary that the throttle implies, and a stricter objective must never
//! find more cameras. Nothing here bounds how fast anything runs.
//!
//! One test function runs the searches one after the other: two searches at once would
//! compete for the same CPUs and move each other's boundary.

use std::process::ExitCode;

use crate::support::{read_json, try_run};
use clap::Parser;
use serde_json::Value;
use tempfile::TempDir;
use vmsbench::Opts;

/// Frames per second of every camera in the test deployment.
const FPS: f64 = 10.0;
/// CPU the recording server burns per frame it sends, µs.
const THROTTLE_US: f64 = 2000.0;

/// One recording server; one viewer per camera, each watching its own camera, so that the
/// server sends `cameras × FPS` frames per second. Small GOPs keep the warm-up short; the
/// management server's configuration downloads are small and rare.
const SCENARIO: &str = r#"
name = "throttled"
description = "a recording server whose capacity the throttle fixes"

[management]
config_size = "16KiB"
config_refresh = "60s"

[[recorder]]
host = "recorder-1.vms.test"
cameras = [{ profile = { name = "test-10fps", resolution = "640x360", fps = 10, bitrate = "200kbit", gop = 5 }, count = 8 }]

[[viewer]]
name = "wall"
count = 8
view = 1
"#;

/// Runs `vmsbench capacity` on the throttled scenario with every document export: exit
/// code, JSON, HTML page and Markdown.
fn capacity(args: &[&str]) -> (ExitCode, Value, String, String) {
    let dir = TempDir::new().expect("temp dir");
    let scenario = dir.path().join("throttled.toml");
    std::fs::write(&scenario, SCENARIO).expect("scenario written");
    let json = dir.path().join("cap.json");
    let mut argv = vec!["capacity".to_owned(), scenario.display().to_string()];
    argv.extend(args.iter().map(|a| (*a).to_owned()));
    argv.extend(["--export-json".to_owned(), json.display().to_string()]);
    let html = dir.path().join("cap.html");
    argv.extend(["--export-html".to_owned(), html.display().to_string()]);
    let md = dir.path().join("cap.md");
    argv.extend(["--export-markdown".to_owned(), md.display().to_string()]);
    let code = try_run(&argv).expect("capacity runs");
    let page = std::fs::read_to_string(&html).expect("HTML written");
    let markdown = std::fs::read_to_string(&md).expect("Markdown written");
    (code, read_json(&json), page, markdown)
}

fn u(v: &Value) -> u64 {
    v.as_u64().unwrap_or_else(|| panic!("not a count: {v}"))
}

#[test]
fn a_throttled_recorder_is_found_at_its_known_capacity_and_stricter_objectives_find_no_more() {
    let two_cpus = simulators::role::allowed_cpus().is_ok_and(|c| c.len() >= 2);
    // With one worker thread the server sends at most 1 s / throttle frames per second.
    let expected = 1e6 / (FPS * THROTTLE_US);
    let throttle = THROTTLE_US.to_string();
    let mut common = vec![
        "--mode",
        "plain",
        "--throttle-us-per-frame",
        &throttle,
        "--warmup",
        "1s",
        "--step-duration",
        "1.5s",
        "--precision",
        "5%",
        // A ramp far past the boundary only makes a slow step (a backlog of seconds).
        "--max",
        "56",
        // Room for the confirmations a busy machine adds (runs that disagree are run
        // again); a search that settles at once takes about 50 s.
        "--budget",
        "120s",
    ];
    if two_cpus {
        common.extend(["--server-cpus", "1"]);
    }
    let run = |objective: &str, start: &str| {
        let mut args = common.clone();
        args.extend(["--objective", objective, "--start", start]);
        capacity(&args)
    };

    let (code, loose, page, markdown) = run("p99<=100ms,late<=0.1%,dropped=0", "32");
    assert_eq!(code, ExitCode::SUCCESS);
    assert_eq!(loose["schema_version"], 1);
    assert_eq!(loose["command"], "capacity");
    assert!(loose["environment"]["cores"].is_number());
    assert_eq!(
        loose["objective"]["text"],
        "p99<=100ms,late<=0.1%,dropped=0"
    );
    assert!(
        loose["modes"]["tls"].is_null(),
        "only plaintext was asked for"
    );
    let plain = &loose["modes"]["plain"];
    let steps = plain["steps"].as_array().expect("steps");
    let best = u(&plain["max_cameras"]);
    let fail = u(&plain["first_failing_cameras"]);
    assert_eq!(plain["stopped"], "bracketed", "{plain:#}");
    // The HTML page answers the question first, then plots latency and CPU against
    // cameras; it reads offline.
    assert!(
        page.contains(&format!("<b>{best}</b>")),
        "the answer is on the page"
    );
    assert_eq!(page.matches("<svg").count(), 2, "two plots");
    assert!(!page.contains("http://") && !page.contains("https://") && !page.contains("<script"));
    // The Markdown gives the same answer, and one row per step.
    // The range of the boundary: the bracket, widened by any run that disagreed.
    let range = &plain["max_cameras_range"];
    let (low, high) = (u(&range["low"]), u(&range["high"]));
    assert!(low <= best && best <= high, "{range} {best}..{fail}");
    if steps
        .iter()
        .all(|s| (u(&s["cameras"]) <= best) == (s["pass"] == true))
    {
        // Every run agreed with the bracket: the range is the bracket.
        assert_eq!((low, high), (best, fail - 1), "{range}");
    }
    let interval = &plain["intervals"]["cpu_per_camera_server_s"];
    assert!(
        interval["low"].as_f64() <= interval["high"].as_f64() && interval["low"].is_number(),
        "CPU per camera near the boundary has an interval: {plain:#}"
    );
    assert!(
        markdown.contains(&format!("| plain | **{best}** (range {low}–{high} cameras"))
            && markdown.contains(&format!(" | {fail} |")),
        "{markdown}"
    );
    assert_eq!(
        markdown
            .lines()
            .filter(|l| l.starts_with("| plain | "))
            .count(),
        steps.len() + 1,
        "{markdown}"
    );
    if two_cpus {
        assert_eq!(
            loose["search"]["server_cpus"].as_array().map(Vec::len),
            Some(1)
        );
        assert_eq!(loose["search"]["server_threads"], 1);
    }

    // The bracket is one bisection step wide, and the throttle's capacity lies within one
    // step of it: the best passing count is not above it by more than one step (an overload
    // of a few per cent takes the window's length to show as late frames), and the first
    // failing count is not below what the throttle leaves room for, less the server's own
    // per-frame work (a few per cent) — on the share of its CPU the server actually got,
    // which is all of it unless something else on this machine competed for that CPU.
    let step = (best as f64 * 0.05).max(1.0);
    assert!(
        (fail - best) as f64 <= step,
        "bracket {best}..{fail} wider than {step}"
    );
    let failing = steps
        .iter()
        .find(|s| u(&s["cameras"]) == fail && s["pass"] == false)
        .expect("a failing step at the boundary");
    let share = failing["cpu_server_cores"]
        .as_f64()
        .expect("cores")
        .min(1.0);
    // When the server had its CPU to itself, the limit is that CPU. When something else on
    // this machine took part of it, the overload shows as late frames or latency first.
    if share >= 0.9 {
        assert_eq!(failing["limit"], "server_cpu", "{failing}");
    } else {
        eprintln!(
            "note: the recording server got {share:.2} of its CPU; limit {}",
            failing["limit"]
        );
        assert!(
            ["server_cpu", "late_frames", "latency"]
                .contains(&failing["limit"].as_str().unwrap_or("")),
            "{failing}"
        );
    }
    assert!(
        fail as f64 >= 0.85 * expected * share - step && best as f64 <= expected + step,
        "found {best}..{fail}, the throttle allows {expected} on {share} of a CPU: {steps:#?}"
    );
    // At the boundary the server's CPU is the throttle's: 10 frames/s × 2 ms per camera.
    let at_best = steps
        .iter()
        .find(|s| u(&s["cameras"]) == best && s["pass"] == true)
        .expect("a passing step at the best count");
    let per_camera = at_best["cpu_per_camera_server_s"].as_f64().expect("cpu");
    let throttle_per_camera = FPS * THROTTLE_US / 1e6;
    assert!(
        per_camera >= throttle_per_camera * 0.95 && per_camera <= throttle_per_camera * 1.5,
        "server CPU per camera {per_camera}, throttle alone {throttle_per_camera}"
    );
    // Every step has the documented fields; failures say why.
    for s in steps {
        for f in [
            "cameras",
            "streams",
            "late_frames",
            "dropped_frames",
            "cpu_server_cores",
            "frames_due",
        ] {
            assert!(s[f].is_number(), "{f} missing: {s}");
        }
        for p in ["p50", "p90", "p99", "p999", "max"] {
            assert!(s["latency_us"][p].is_number(), "latency_us.{p} missing");
        }
        assert_eq!(s["streams"], s["cameras"], "one stream per camera: {s}");
        // Per-second samples are taken in every step: the worst second is no better than
        // the step's median.
        let worst = u(&s["worst_second_p99_us"]);
        assert!(worst >= u(&s["latency_us"]["p50"]), "{s}");
        let reasons = s["reasons"].as_array().expect("reasons");
        assert_eq!(s["pass"] == true, reasons.is_empty(), "{s}");
    }

    // Half the server's CPU as a term of its own: a strictly stricter objective.
    let (_, strict, _, _) = run("p99<=100ms,late<=0.1%,dropped=0,cpu<=50%", "16");
    let strict_best = strict["modes"]["plain"]["max_cameras"]
        .as_u64()
        .unwrap_or(0);
    assert!(
        strict_best <= best,
        "the stricter objective found {strict_best} cameras, the looser {best}"
    );
    assert!(
        (strict_best as f64) < expected * 0.6,
        "cpu<=50% allows about {} cameras, found {strict_best}",
        expected / 2.0
    );
}

#[test]
fn objective_errors_name_the_term() {
    let err = Opts::try_parse_from(["vmsbench", "capacity", "--objective", "p99<=200ms,lat<=1%"])
        .expect_err("unknown term");
    let text = err.to_string();
    assert!(text.contains("\"lat<=1%\""), "{text}");
    assert!(text.contains("unknown measure"), "{text}");
    let err = Opts::try_parse_from(["vmsbench", "capacity", "--objective", "p99<=200"])
        .expect_err("no unit");
    assert!(err.to_string().contains("needs a unit"), "{err}");
}
