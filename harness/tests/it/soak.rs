//! `vmsbench run --soak`: one long window sampled every interval (the process's memory,
//! descriptors and CPU per GB), and how `run` pins its roles and reads the machine during
//! each window.

use serde_json::Value;

use crate::checks::validate;
use crate::support::{run_report_in, write_scenario};

/// One recording server with a few cameras and two viewers: a small steady load.
const STEADY: &str = r#"
name = "steady"
[[recorder]]
host = "recorder-1.vms.test"
cameras = [{ profile = "720p", count = 4 }]
[[viewer]]
name = "operator"
count = 2
view = 2
"#;

fn number(v: &Value, what: &str) -> f64 {
    let n = v
        .as_f64()
        .unwrap_or_else(|| panic!("{what} is not a number: {v}"));
    assert!(n.is_finite(), "{what}: {n}");
    n
}

#[test]
fn a_short_soak_reports_every_interval_in_order_with_every_frame_due() {
    let dir = tempfile::tempdir().expect("tempdir");
    let scenario = write_scenario(dir.path(), "steady.toml", STEADY);
    let md = dir.path().join("soak.md");
    let report = run_report_in(
        dir.path(),
        &[
            "run",
            &scenario,
            "--soak",
            "--duration",
            "3s",
            "--interval",
            "500ms",
            "--warmup",
            "1500ms",
            "--export-markdown",
            md.to_str().expect("utf-8 path"),
        ],
    );
    validate(&report);
    let m = &report["measurement"];
    assert_eq!(m["modes"], serde_json::json!(["tls"]), "TLS by default");
    assert_eq!(
        (m["repeat"].as_u64(), m["repeats_completed"].as_u64()),
        (Some(1), Some(1))
    );

    let soak = report["soak"].as_array().expect("a soak array");
    assert!(soak.len() >= 5, "3 s in 500 ms intervals: {}", soak.len());
    let mut last_t = 0.0;
    for (i, s) in soak.iter().enumerate() {
        let t = number(&s["t_s"], "t_s");
        assert!(
            t > last_t,
            "interval {i} after the one before: {t} ≤ {last_t}"
        );
        last_t = t;
        assert!(number(&s["interval_s"], "interval_s") > 0.0);
        assert!(number(&s["rss_bytes"], "rss_bytes") > 0.0, "{s}");
        assert!(number(&s["open_fds"], "open_fds") > 0.0, "{s}");
        assert!(number(&s["cpu_s"], "cpu_s") >= 0.0, "{s}");
        assert!(number(&s["cpu_s_per_gb"], "cpu_s_per_gb") > 0.0, "{s}");
        assert!(number(&s["goodput_mbit_s"], "goodput") > 0.0, "{s}");
        assert!(s["frames_due"].as_u64().is_some_and(|d| d > 0), "{s}");
    }
    assert!(last_t >= 2.9, "the intervals cover the window: {last_t}");

    // The intervals' frames due add up to the window's, and every frame due arrived.
    let results = report["results"].as_array().expect("results");
    let due: u64 = results
        .iter()
        .filter_map(|r| r["frames_due"].as_u64())
        .sum();
    let received: u64 = results
        .iter()
        .filter_map(|r| r["frames_received"].as_u64())
        .sum();
    let soak_due: u64 = soak.iter().filter_map(|s| s["frames_due"].as_u64()).sum();
    let soak_received: u64 = soak
        .iter()
        .filter_map(|s| s["frames_received"].as_u64())
        .sum();
    assert!(due > 0);
    assert_eq!(received, due, "every frame due in the window arrived");
    assert_eq!(soak_due, due, "the intervals split the window");
    assert!(soak_received <= received && soak_received > 0);

    let trend = report["soak_trend"].as_array().expect("trend");
    let figures: Vec<&str> = trend.iter().filter_map(|t| t["figure"].as_str()).collect();
    assert_eq!(figures, ["rss_bytes", "open_fds", "cpu_s_per_gb"]);
    for t in trend {
        assert!(
            t["intervals_fitted"].as_u64().is_some_and(|n| n >= 4),
            "{t}"
        );
        number(&t["slope_per_hour"], "slope");
        assert!(t["grows"].is_boolean());
    }
    let text = std::fs::read_to_string(&md).expect("markdown");
    assert!(text.contains("## Soak"), "{text}");
    assert!(text.contains("Soak trend of rss_bytes"), "{text}");
}

#[test]
fn run_pins_servers_and_clients_apart_and_reads_the_cpus_in_every_window() {
    let dir = tempfile::tempdir().expect("tempdir");
    let scenario = write_scenario(dir.path(), "steady.toml", STEADY);
    let run = |pin: &str| {
        let args = [
            "run",
            &scenario,
            "--duration",
            "1s",
            "--warmup",
            "1200ms",
            "--repeat",
            "1",
            "--pin",
            pin,
        ];
        let report = run_report_in(dir.path(), &args);
        validate(&report);
        report
    };
    let auto = run("auto");
    let p = &auto["pinning"];
    assert_eq!(p["asked"], "auto");
    let cores = auto["environment"]["cores"].as_u64().expect("cores");
    if cores >= 2 {
        assert_eq!(p["pinned"], true, "{p}");
        let cpus = |k: &str| -> Vec<u64> {
            p[k].as_array()
                .expect("cpus")
                .iter()
                .filter_map(Value::as_u64)
                .collect()
        };
        let (servers, clients) = (cpus("server_cpus"), cpus("client_cpus"));
        assert!(!servers.is_empty() && !clients.is_empty(), "{p}");
        assert!(servers.iter().all(|c| !clients.contains(c)), "{p}");
        for role in ["mgmt", "recorder-1"] {
            let on: Vec<u64> = p["roles"][role]
                .as_array()
                .unwrap_or_else(|| panic!("{role} pinned: {p}"))
                .iter()
                .filter_map(Value::as_u64)
                .collect();
            assert_eq!(on, servers, "{role}");
        }
        assert!(
            p["roles"]["viewers"].is_null(),
            "clients run on the rest: {p}"
        );
        assert!(p["reason"].is_null());
    } else {
        assert_eq!(p["pinned"], false);
        assert!(p["reason"].is_string());
    }
    // The scenario compares as the same whether pinned or not.
    assert!(auto["scenario"]["pinning"].is_null());

    let off = run("off");
    assert_eq!(off["pinning"]["pinned"], false);
    assert_eq!(off["pinning"]["reason"], "--pin off");

    for report in [&auto, &off] {
        let windows = report["cpu_windows"].as_array().expect("cpu_windows");
        assert_eq!(windows.len(), 2, "one per phase: plain and TLS");
        for w in windows
            .iter()
            .chain([&report["environment"]["during_windows"]])
        {
            let steal = number(&w["steal_pct"], "steal_pct");
            assert!((0.0..=100.0).contains(&steal), "{w}");
            assert!(w["total_jiffies"].as_u64().is_some_and(|j| j > 0), "{w}");
            for f in ["freq_min_mhz", "freq_max_mhz"] {
                assert!(
                    w[f].is_null() || number(&w[f], f) > 0.0,
                    "{f}: null when not exposed, else positive: {w}"
                );
            }
        }
    }
}
