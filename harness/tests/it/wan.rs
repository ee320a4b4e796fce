//! Clients behind WAN relays: the delay, loss and rate cap of a scenario's `wan` settings
//! show in what the run measures, in both modes, and the relays' counts reach the report.

use crate::checks::validate;
use crate::support::{result, run_once, write_scenario};

/// A remote operator watching eight 720p cameras (16 Mbit/s offered) across a WAN capped
/// at 6 Mbit/s, and a remote site's data collector across a WAN of its own. The recording
/// server queues few frames, and the warm-up is long enough for the buffers in front of the
/// cap (the relay's, the server's socket) to fill: from then on the backlog stops growing
/// (the server drops frames instead), and what the window receives is what the cap lets
/// through.
const WAN: &str = r#"
name = "wan-test"
[[recorder]]
host = "recorder-1.vms.test"
cameras = [{ profile = "720p", count = 8 }]
[[viewer]]
name = "remote-operator"
count = 1
view = 8
wan = { delay = "20ms", loss = "2%", rate = "6Mbit" }
[[collector]]
name = "site"
count = 1
wan_delay = "20ms"
wan_loss = "2%"
wan_rate = "2Mbit"
interval = "100ms"
[run]
queue_frames = 4
"#;

/// The rate cap of the operator's WAN, bit/s.
const CAP_BPS: f64 = 6e6;

/// Two one-way delays of 20 ms, µs.
const ROUND_TRIP_US: u64 = 40_000;

#[test]
fn wan_links_delay_lose_and_cap_in_both_modes_and_report_their_counts() {
    let dir = tempfile::tempdir().expect("tempdir");
    let scenario = write_scenario(dir.path(), "wan.toml", WAN);
    let started = std::time::Instant::now();
    let report = run_once(dir.path(), &[&scenario], "3s", "3s", &[]);
    let elapsed = started.elapsed().as_secs_f64();
    validate(&report);
    for mode in ["plain", "tls"] {
        let rpc = result(&report, "collector-mgmt", mode);
        let video = result(&report, "viewer-recorder", mode);
        // Every call crosses the WAN twice (request and answer).
        let p50 = rpc["latency_us"]["p50"].as_u64().expect("p50");
        assert!(p50 >= ROUND_TRIP_US, "{mode}: RPC p50 {p50} µs");
        assert!(
            rpc["frames_received"].as_u64().unwrap_or(0) > 0,
            "{mode}: {rpc}"
        );
        // The cap bounds what the relay lets through: over the whole run (an upper bound on
        // its time), never more than the cap allows.
        let relayed = video["wan"]["bytes_to_client"].as_f64().expect("bytes") * 8.0;
        assert!(
            relayed <= CAP_BPS * elapsed,
            "{mode}: {relayed} bits in {elapsed} s"
        );
        // And so what the window receives. Goodput counts the frames scheduled in the window,
        // some of which wait in the buffers in front of the cap (the relay's, the server's
        // socket and queue) when the window closes and arrive during the drain; how full
        // those are differs between the window's ends by up to a fraction of a second, so
        // the bound allows a quarter of the cap over a 3 s window.
        let goodput = video["goodput_mbit_s"].as_f64().expect("goodput") * 1e6;
        assert!(goodput > 0.0, "{mode}: nothing arrived");
        assert!(goodput <= CAP_BPS * 1.25, "{mode}: {goodput} bit/s");
        for (link, r) in [("collector-mgmt", rpc), ("viewer-recorder", video)] {
            let w = &r["wan"];
            assert_eq!(w["configured"]["delay_ms"], 20.0, "{link} {mode}: {w}");
            assert_eq!(w["configured"]["loss"], 0.02, "{link} {mode}: {w}");
            assert!(
                w["connections"].as_u64().unwrap_or(0) >= 1,
                "{link} {mode}: {w}"
            );
            if mode == "tls" {
                // A TLS handshake takes at least one round trip across the WAN.
                let hs = r["handshake_us"].as_u64().expect("handshake");
                assert!(hs >= ROUND_TRIP_US, "{link}: handshake {hs} µs");
            }
        }
        let w = &video["wan"];
        assert_eq!(w["configured"]["rate_bps"], 6_000_000, "{mode}: {w}");
        let segments = w["segments"].as_u64().expect("segments");
        let retransmissions = w["retransmissions"].as_u64().expect("retransmissions");
        // Thousands of segments at 2 %: retransmissions are certain.
        assert!(segments > 1000, "{mode}: {w}");
        assert!(retransmissions > 0, "{mode}: {w}");
        eprintln!(
            "{mode}: RPC p50 {p50} µs; operator goodput {:.2} Mbit/s of a {:.0} Mbit/s cap; \
             {retransmissions} of {segments} segments retransmitted; handshake {} µs",
            goodput / 1e6,
            CAP_BPS / 1e6,
            video["handshake_us"]
        );
    }
}
