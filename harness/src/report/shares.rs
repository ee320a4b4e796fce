//! A report's figures beside this machine's ceilings (`--with-limits`): each link of a run
//! or bulk report, and each mode's boundary of a capacity search, as a share of the ceiling
//! that bounds it (goodput) or a multiple of its floor (latency, connection setup, memory).

use simulators::pki::KeyType;
use simulators::transport::Mode;

use super::capacity::CapacityReport;
use super::limits::{note, ratio, version_of, Limits, LimitsComparison, LinkShare};
use super::{LinkResult, Report};

/// One link's figures beside the `limits`; `key` is the run's certificate key type.
pub(crate) fn link_share(limits: &Limits, r: &LinkResult, key: Option<KeyType>) -> LinkShare {
    let f = &r.figures;
    let frame_bytes = (f.frames_received > 0)
        .then(|| f.bytes_received as f64 / f.frames_received as f64)
        .filter(|b| *b > 0.0);
    let tls = r.tls.as_ref().filter(|_| r.encrypted);
    let mode = if tls.is_some() {
        Mode::Tls
    } else {
        Mode::Plain
    };
    let (ceiling, ceiling_mbit_s) = limits.goodput_ceiling(mode, tls, frame_bytes);
    let setup_us = tls
        .map(|_| (f.connect_us + f.handshake_us) as f64)
        .filter(|v| *v > 0.0);
    let setup_floor_us =
        tls.and(limits.setup_floor_us(key, tls.and_then(|t| version_of(&t.version))));
    let latency_p50_us = Some(f.latency_us.p50 as f64).filter(|v| *v > 0.0);
    let latency_floor_p50_us = limits.latency_floor_us(mode);
    let rss = f.rss_per_connection_bytes.filter(|_| tls.is_some());
    let idle = tls.and(limits.idle_bytes());
    LinkShare {
        link: r.link.clone(),
        mode: r.mode,
        ceiling,
        goodput_mbit_s: f.goodput_mbit_s,
        frame_bytes,
        ceiling_mbit_s,
        goodput_share: ceiling_mbit_s.and_then(|c| ratio(f.goodput_mbit_s, c)),
        server_cores: f.cores_server,
        connections: f.connections,
        setup_us,
        setup_floor_us,
        setup_over_floor: setup_us.zip(setup_floor_us).and_then(|(a, b)| ratio(a, b)),
        latency_p50_us,
        latency_floor_p50_us,
        latency_over_floor: latency_p50_us
            .zip(latency_floor_p50_us)
            .and_then(|(a, b)| ratio(a, b)),
        rss_per_connection_bytes: rss,
        idle_rss_per_connection_bytes: idle,
        memory_over_idle: rss.zip(idle).and_then(|(a, b)| ratio(a, b)),
    }
}

/// The certificate key type a report's scenario names, if it names one.
fn scenario_key(scenario: &serde_json::Value) -> Option<KeyType> {
    serde_json::from_value(scenario.get("key")?.clone()).ok()
}

impl Report {
    /// Measured `limits` beside every link of this report.
    pub(crate) fn attach_limits(&mut self, limits: Limits) {
        let key = scenario_key(&self.scenario);
        let shares = self
            .results
            .iter()
            .map(|r| link_share(&limits, r, key))
            .collect();
        self.limits = Some(LimitsComparison {
            note: note(limits.budget_s, &self.command),
            measured: limits,
            shares,
        });
    }
}

impl CapacityReport {
    /// Measured `limits` beside each mode's boundary: the recording server's goodput at the
    /// largest count that met the objective against the ceiling of its mode (for TLS: the
    /// server's sealing work against one core's seal ceiling), its latency against the
    /// floor.
    pub(crate) fn attach_limits(&mut self, limits: Limits) {
        let mut shares = Vec::new();
        for (name, m) in self.each_mode() {
            let mode = if name == "tls" {
                Mode::Tls
            } else {
                Mode::Plain
            };
            let Some(max) = m.max_cameras else { continue };
            let Some(step) = m.steps.iter().rev().find(|s| s.pass && s.cameras == max) else {
                continue;
            };
            let bytes = step.goodput_mbit_s * 1e6 / 8.0 * step.window_s;
            let frame_bytes = (step.frames_received > 0)
                .then(|| bytes / step.frames_received as f64)
                .filter(|b| b.is_finite() && *b > 0.0);
            let tls = m.tls.as_ref().filter(|_| mode == Mode::Tls);
            let (ceiling, ceiling_mbit_s) = limits.goodput_ceiling(mode, tls, frame_bytes);
            let latency_p50_us = Some(step.latency_us.p50 as f64).filter(|v| *v > 0.0);
            let latency_floor_p50_us = limits.latency_floor_us(mode);
            shares.push(LinkShare {
                link: format!("recording server at {max} cameras"),
                mode,
                ceiling,
                goodput_mbit_s: step.goodput_mbit_s,
                frame_bytes,
                ceiling_mbit_s,
                goodput_share: ceiling_mbit_s.and_then(|c| ratio(step.goodput_mbit_s, c)),
                server_cores: step.cpu_server_cores,
                connections: step.links.iter().map(|l| l.connections).sum(),
                setup_us: None,
                setup_floor_us: None,
                setup_over_floor: None,
                latency_p50_us,
                latency_floor_p50_us,
                latency_over_floor: latency_p50_us
                    .zip(latency_floor_p50_us)
                    .and_then(|(a, b)| ratio(a, b)),
                rss_per_connection_bytes: None,
                idle_rss_per_connection_bytes: None,
                memory_over_idle: None,
            });
        }
        self.limits = Some(LimitsComparison {
            note: note(limits.budget_s, "capacity search"),
            measured: limits,
            shares,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::limits::fixtures::limits;
    use crate::report::TlsInfo;

    /// A link result with the figures the shares read.
    fn link(mode: Mode, tls: Option<TlsInfo>) -> LinkResult {
        let mut v = serde_json::json!({
            "link": "viewer-recorder", "mode": mode, "group": null, "encrypted": tls.is_some(),
            "cpu_attribution": "exclusive", "tls": tls, "errors": {}, "error_messages": [],
            "repeats": 1, "spread": {}, "samples": []
        });
        let figures = serde_json::json!({
            "bytes_received": 40_000_000u64, "goodput_mbit_s": 32.0, "offered_mbit_s": 32.0,
            "frames_due": 4000, "frames_sent": 4000, "frames_received": 4000, "late_frames": 0,
            "dropped_frames": 0, "sequence_gaps": 0, "frames_per_s": 400.0,
            "latency_us": {"p50": 150, "p90": 200, "p99": 300, "p999": 400, "max": 500},
            "uncorrected_latency_us": {"p50": 100, "p90": 200, "p99": 300, "p999": 400, "max": 500},
            "connect_us": 40, "handshake_us": 960, "handshake_us_p99": 2000,
            "server_handshake_us": 900, "ttff_us": 1000, "ttff_us_p99": 2000,
            "cpu_server_s": 0.1, "cpu_client_s": 0.1, "cpu_process_s": 0.2,
            "cpu_server_s_per_gb": 1.0, "cpu_client_s_per_gb": 1.0,
            "cores_server": 1.5, "cores_client": 0.1, "peak_rss_bytes": 1, "rss_per_stream_bytes": null,
            "rss_per_connection_bytes": 90_000.0,
            "connections": 4, "streams": 4, "window_s": 10.0, "reconnects": 0, "recovery_us_max": 0,
            "transfer_us": 0
        });
        if let (Some(v), Some(f)) = (v.as_object_mut(), figures.as_object()) {
            v.extend(f.clone());
        }
        let mut r: LinkResult = serde_json::from_value(v).expect("a link result");
        r.mode = mode;
        r
    }

    #[test]
    fn a_tls_link_is_set_against_the_seal_ceiling_and_its_floors() {
        let tls = TlsInfo {
            version: "TLSv1_3".into(),
            suite: "TLS13_AES_256_GCM_SHA384".into(),
            group: "X25519".into(),
        };
        let s = link_share(
            &limits(),
            &link(Mode::Tls, Some(tls)),
            Some(KeyType::Rsa2048),
        );
        assert_eq!(s.frame_bytes, Some(10_000.0));
        assert_eq!(s.ceiling_mbit_s, Some(8000.0));
        assert_eq!(s.goodput_share, Some(0.004));
        assert_eq!(s.setup_over_floor, Some(2.0));
        assert_eq!(s.latency_over_floor, Some(3.0));
        assert_eq!(s.memory_over_idle, Some(2.0));
        let line = s.line();
        assert!(line.starts_with("viewer-recorder TLS: 0.40 % of this machine's record-layer seal, TLS13_AES_256_GCM_SHA384, one core ceiling"), "{line}");
        assert!(line.contains("1.5 cores"), "{line}");
    }

    #[test]
    fn a_plaintext_link_is_set_against_loopback_tcp_and_has_no_handshake() {
        let s = link_share(&limits(), &link(Mode::Plain, None), Some(KeyType::Rsa2048));
        assert_eq!(s.ceiling_mbit_s, Some(3200.0));
        assert_eq!(s.goodput_share, Some(0.01));
        assert_eq!(s.latency_over_floor, Some(5.0));
        assert_eq!(
            (s.setup_us, s.setup_over_floor, s.memory_over_idle),
            (None, None, None)
        );
        assert!(s.line().contains("over 4 connections"), "{}", s.line());
        // Missing ceilings leave the shares out instead of inventing them.
        let empty = link_share(&Limits::default(), &link(Mode::Plain, None), None);
        assert_eq!(
            (empty.goodput_share, empty.latency_over_floor),
            (None, None)
        );
        assert!(empty.line().contains("no loopback TCP"), "{}", empty.line());
    }

    #[test]
    fn the_comparison_survives_a_json_round_trip() {
        let l = limits();
        let c = LimitsComparison {
            note: "n".into(),
            shares: vec![link_share(&l, &link(Mode::Plain, None), None)],
            measured: l,
        };
        let json = serde_json::to_string(&c).expect("serialises");
        let back: LimitsComparison = serde_json::from_str(&json).expect("deserialises");
        assert_eq!(serde_json::to_string(&back).expect("again"), json);
        assert_eq!(back.measured.record_layer[0].frames[0].frame_bytes, 10_000);
        assert_eq!(back.shares[0].goodput_share, Some(0.01));
    }
}
