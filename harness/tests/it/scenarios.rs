//! Scenario files: the presets, the broken-file corpus, scaling, the compatibility rule and
//! `vmsbench scenarios`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::support::Run;
use simulators::pki::KeyType;
use simulators::role::wan::WanProfile;
use simulators::transport::{Cipher, KxGroup, TlsSettings, TlsVersion};
use vmsbench::engine::scenario::file::{
    self, load, load_path, load_preset, parse, preset_text, ScenarioError, PRESET_NAMES,
};
use vmsbench::engine::scenario::{EventAction, MobileMode, Scenario, ViewMode};

/// The built-in presets' files, inside the crate.
fn presets() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("presets")
}

/// The broken-scenario corpus (test data, outside the crate).
fn broken() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/scenarios/broken")
}

fn preset(name: &str) -> Scenario {
    match load_preset(name) {
        Ok(s) => s,
        Err(e) => panic!("preset {name} does not load: {e}"),
    }
}

fn error_of(text: &str) -> ScenarioError {
    match parse(text, "test.toml") {
        Ok(s) => panic!("expected an error, got scenario {s:?}"),
        Err(e) => e,
    }
}

fn cameras(s: &Scenario) -> u32 {
    s.recorders.iter().map(|r| r.camera_count()).sum()
}

fn total<T>(groups: &[T], count: impl Fn(&T) -> u32) -> u32 {
    groups.iter().map(count).sum()
}

#[test]
fn every_preset_parses_and_resolves() {
    assert_eq!(
        PRESET_NAMES,
        [
            "small",
            "medium",
            "large",
            "multi-site",
            "mixed-integrations",
            "certificate-incidents",
            "connections-8k"
        ]
    );
    for name in PRESET_NAMES {
        let s = preset(name);
        assert_eq!(s.name, *name);
        assert!(!s.description.is_empty(), "{name} has no description");
        // The compiled-in text is the preset file, which loads the same from disk.
        let path = presets().join(format!("{name}.toml"));
        let on_disk = std::fs::read_to_string(&path).unwrap_or_default();
        assert_eq!(preset_text(name), Some(on_disk.as_str()), "{name}");
        assert_eq!(load_path(&path).ok(), Some(s.clone()), "{name}");
        assert_eq!(load(name).ok(), Some(s.clone()), "{name}");
        // Every scenario has a server certificate per host and uses some links.
        let hosts = s.server_hosts();
        assert_eq!(
            hosts.len(),
            1 + s.recorders.len()
                + s.failovers.len()
                + usize::from(s.event_server.is_some())
                + usize::from(s.mobile_server.is_some()),
            "{name}: hosts {hosts:?}"
        );
        assert!(!s.links().is_empty());
        assert!(s.encryption.server && s.encryption.streaming_media);
        assert_eq!(s.tls, TlsSettings::default());
        assert_eq!(s.key, KeyType::Rsa2048);
    }
}

#[test]
fn small_preset_matches_the_deployment_table() {
    let s = preset("small");
    assert_eq!(s.management.host, "mgmt.vms.test");
    assert_eq!(s.recorders.len(), 1);
    assert_eq!(cameras(&s), 32);
    assert_eq!(s.recorders[0].cameras[0].profile.name, "1080p");
    assert!(s.failovers.is_empty() && s.recorders[0].failover.is_none());
    assert!(s.event_server.is_some());
    assert_eq!(
        s.mobile_server.as_ref().map(|m| m.mode),
        Some(MobileMode::Direct)
    );
    let views: Vec<(u32, u32, ViewMode)> = s
        .viewers
        .iter()
        .map(|v| (v.count, v.view, v.mode))
        .collect();
    assert_eq!(
        views,
        [
            (1, 4, ViewMode::Live),
            (1, 9, ViewMode::Live),
            (1, 4, ViewMode::Playback(4))
        ]
    );
    assert!(s.integrations.is_empty() && s.collectors.is_empty() && s.events.is_empty());
    assert_eq!(total(&s.phones, |p| p.count), 5);
    assert_eq!(s.queue_frames, 1024);
    assert_eq!(s.management.config_bytes, 2 << 20);
    assert_eq!(
        s.management.config_refresh, None,
        "downloaded once, at login"
    );
    assert_eq!(s.management.config_check, Duration::from_secs(10));
}

#[test]
fn medium_preset_has_a_failover_event() {
    let s = preset("medium");
    assert_eq!(s.recorders.len(), 2);
    assert_eq!(cameras(&s), 300);
    assert!(s.recorders.iter().all(|r| r.camera_count() == 150));
    assert_eq!(s.failovers, ["failover-1.vms.test"]);
    assert!(s
        .recorders
        .iter()
        .all(|r| r.failover.as_deref() == Some("failover-1.vms.test")));
    assert_eq!(total(&s.viewers, |v| v.count), 10);
    assert!(s
        .viewers
        .iter()
        .all(|v| v.view == 16 && v.mode == ViewMode::Live));
    assert_eq!(total(&s.integrations, |g| g.count), 2);
    assert!(s
        .integrations
        .iter()
        .all(|g| g.streams == 20 && g.tls_capable));
    assert_eq!(total(&s.phones, |p| p.count), 20);
    assert_eq!(s.events.len(), 1);
    assert_eq!(s.events[0].at, Duration::from_secs(3));
    assert_eq!(
        s.events[0].action,
        EventAction::StopRecorder {
            host: "recorder-2.vms.test".into()
        }
    );
}

#[test]
fn large_preset_matches_the_deployment_table() {
    let s = preset("large");
    assert_eq!(s.recorders.len(), 8);
    assert_eq!(s.failovers.len(), 2);
    assert_eq!(cameras(&s), 2000);
    assert!(s.recorders.iter().all(|r| r.camera_count() == 250));
    let live = total(&s.viewers, |v| {
        if v.mode == ViewMode::Live {
            v.count
        } else {
            0
        }
    });
    let at_8x = total(&s.viewers, |v| {
        if v.mode == ViewMode::Playback(8) {
            v.count
        } else {
            0
        }
    });
    assert_eq!((live, at_8x), (40, 10));
    assert_eq!(total(&s.integrations, |g| g.count), 5);
    assert_eq!(total(&s.phones, |p| p.count), 100);
    assert!(s.mobile_server.is_some());
    assert_eq!(s.events.len(), 1);
}

#[test]
fn multi_site_and_mixed_integrations_presets() {
    let s = preset("multi-site");
    assert_eq!(cameras(&s), 512);
    assert_eq!(total(&s.collectors, |c| c.count), 10);
    assert_eq!(s.collectors[0].wan.delay, Duration::from_millis(40));
    assert!(s.viewers.iter().all(|v| (1..=16).contains(&v.view)));
    let m = s
        .mobile_server
        .as_ref()
        .map(|m| (m.mode, m.transcode_profile.clone()));
    let Some((MobileMode::Transcoded, p)) = m else {
        panic!("multi-site transcodes: {m:?}")
    };
    assert_eq!(
        (p.fps, p.bitrate_bps, p.gop, p.resolution.as_str()),
        (8, 1_500_000, 1, "640x360")
    );

    let s = preset("mixed-integrations");
    assert_eq!(cameras(&s), 64);
    let plain: Vec<&str> = s
        .integrations
        .iter()
        .filter(|g| !g.tls_capable)
        .map(|g| g.name.as_str())
        .collect();
    assert_eq!(plain, ["legacy-export"]);
    assert_eq!(
        total(&s.integrations, |g| u32::from(g.tls_capable) * g.count),
        3
    );
}

/// Each `broken/NAME.toml` fails with exactly the error in `broken/NAME.expected`
/// (`line:column: message`).
#[test]
fn every_broken_file_fails_with_its_expected_error() {
    let dir = broken();
    let mut names = Vec::new();
    let entries = std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    for entry in entries.flatten() {
        let path = entry.path();
        if path.extension().is_some_and(|e| e == "toml") {
            names.push(
                path.file_stem()
                    .unwrap_or_default()
                    .to_string_lossy()
                    .into_owned(),
            );
        }
    }
    names.sort();
    for wanted in [
        "bad-count",
        "bad-duration",
        "duplicate-host",
        "syntax",
        "unknown-field",
        "unknown-host",
        "unknown-profile",
        "unsupported-encryption",
    ] {
        assert!(
            names.iter().any(|n| n == wanted),
            "broken/{wanted}.toml is missing"
        );
    }
    let mut failures = Vec::new();
    for name in &names {
        let path = dir.join(format!("{name}.toml"));
        let expected = std::fs::read_to_string(dir.join(format!("{name}.expected")))
            .unwrap_or_else(|e| panic!("broken/{name}.expected: {e}"));
        let got = match load_path(&path) {
            Ok(_) => "(no error)".to_owned(),
            Err(e) => {
                assert_eq!(e.origin, path.display().to_string());
                assert_eq!(
                    e.to_string(),
                    format!("{}:{}:{}: {}", e.origin, e.line, e.column, e.message)
                );
                format!("{}:{}: {}", e.line, e.column, e.message)
            }
        };
        if got != expected.trim_end() {
            failures.push(format!(
                "broken/{name}.toml\n  expected: {}\n  got:      {got}",
                expected.trim_end()
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn scaled_large_keeps_every_group_and_scales_cameras() {
    let large = preset("large");
    let s = large.scaled(0.1);
    assert_eq!(cameras(&s), 200);
    assert!(s.recorders.iter().all(|r| r.camera_count() == 25));
    for (a, b) in large.viewers.iter().zip(&s.viewers) {
        assert!(b.count >= 1, "{}", b.name);
        assert!(b.count <= a.count);
        assert_eq!(b.view, a.view.min(25));
        assert_eq!(b.mode, a.mode);
    }
    for (a, b) in large.integrations.iter().zip(&s.integrations) {
        assert!(b.count >= 1 && b.streams >= 1, "{}", b.name);
        assert_eq!(b.streams, (a.streams / 10).max(1));
    }
    assert!(s.phones.iter().all(|p| p.count == 5));
    assert_eq!(s.viewers.len(), large.viewers.len());
    assert_eq!(s.integrations.len(), large.integrations.len());
    assert_eq!(s.phones.len(), large.phones.len());
    assert_eq!((s.recorders.len(), s.failovers.len()), (8, 2));
    assert_eq!(s.events, large.events);
    assert!(
        s.description.ends_with("(scaled ×0.1)"),
        "{}",
        s.description
    );

    // A tiny factor caps views at the scaled cameras; a zero count stays zero.
    let tiny = preset("medium").scaled(0.001);
    assert!(tiny.recorders.iter().all(|r| r.camera_count() == 1));
    assert!(tiny.viewers.iter().all(|v| v.view == 1 && v.count == 1));
    assert!(tiny.integrations.iter().all(|g| g.streams == 1));
    let mut off = preset("small");
    off.viewers[0].count = 0;
    assert_eq!(off.scaled(0.5).viewers[0].count, 0);
    // Scaling up, and factors that are not factors.
    assert_eq!(cameras(&preset("small").scaled(2.0)), 64);
    let small = preset("small");
    assert_eq!(small.scaled(1.0), small);
    assert_eq!(small.scaled(0.0), small);
    assert_eq!(small.scaled(f64::NAN), small);
    assert_eq!(file::parse_scale("0.1"), Ok(0.1));
    assert!(file::parse_scale("0").is_err() && file::parse_scale("x").is_err());
}

const COMPAT: &str = r#"
[encryption]
server = false
streaming_media = true
[[recorder]]
host = "recorder-1.vms.test"
cameras = [{ profile = "1080p", count = 4 }]
"#;

#[test]
fn recorders_encrypted_while_management_is_not_are_refused_unless_allowed() {
    let e = error_of(COMPAT);
    assert_eq!((e.line, e.column), (4, 1), "{e}");
    assert_eq!(
        e.message,
        "streaming_media = true while server = false: the seed system refuses to encrypt recording servers while the management server is not encrypted; set server = true, or allow_unsupported = true to measure this setup anyway"
    );
    // The same when streaming_media is on by default, pointing at server.
    let e = error_of(&COMPAT.replace("streaming_media = true\n", ""));
    assert_eq!((e.line, e.column), (3, 1), "{e}");
    assert!(e
        .message
        .starts_with("server = false while streaming_media is on (its default)"));

    let allowed = COMPAT.replace("[encryption]\n", "[encryption]\nallow_unsupported = true\n");
    let s = parse(&allowed, "test.toml").unwrap_or_else(|e| panic!("{e}"));
    assert!(!s.encryption.server && s.encryption.streaming_media && s.encryption.allow_unsupported);
    let plain_recorders = COMPAT.replace("streaming_media = true", "streaming_media = false");
    assert!(parse(&plain_recorders, "test.toml").is_ok());
}

#[test]
fn a_plaintext_only_integration_is_not_an_error() {
    let s = parse(
        r#"
[[recorder]]
host = "r.vms.test"
cameras = [{ count = 8 }]
[[integration]]
count = 1
streams = 8
tls = false
"#,
        "test.toml",
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert!(!s.integrations[0].tls_capable);
    assert!(s.encryption.streaming_media);
}

#[test]
fn a_minimal_file_gets_the_documented_defaults() {
    let s = parse(
        "[[recorder]]\nhost = \"rs.vms.test\"\ncameras = [{ count = 3 }]\n",
        "dir/site-a.toml",
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(s.name, "site-a");
    assert_eq!(s.description, "");
    assert_eq!(s.seed, 1);
    assert_eq!(s.tls, TlsSettings::default());
    assert_eq!(s.key, KeyType::Rsa2048);
    assert_eq!(
        s.encryption,
        vmsbench::engine::scenario::Encryption::default()
    );
    assert_eq!(s.management.host, "mgmt.vms.test");
    assert_eq!(s.management.config_bytes, 4 << 20);
    assert_eq!(s.management.status_interval, Duration::from_secs(2));
    assert_eq!(
        s.recorders[0].cameras[0].profile,
        simulators::video::Profile::default_1080p()
    );
    assert_eq!(s.recorders[0].camera_count(), 3);
    assert!(s.event_server.is_none() && s.mobile_server.is_none());
    assert!(s.viewers.is_empty() && s.events.is_empty());
    assert_eq!(
        s.queue_frames,
        simulators::role::recorder::DEFAULT_QUEUE_FRAMES
    );
    assert!(s.server_threads >= 1 && s.client_threads >= 1);
}

#[test]
fn every_field_resolves() {
    let s = parse(
        r#"
name = "all"
description = "every field"
seed = "2k"
[tls]
versions = [1.2, "1.3"]
ciphers = ["chacha20-poly1305", "AES128-GCM"]
groups = ["x25519", "secp384r1"]
key = "ecdsa-p256"
[encryption]
server = true
streaming_media = false
mobile_server = false
event_server = true
[management]
host = "ms.example.test"
config_size = "1.5MB"
config_refresh = 10
status_interval = "500ms"
status_request_size = 100
status_reply_size = "1KiB"
[[recorder]]
host = "rs-a.example.test"
failover = "fo.example.test"
cameras = [
  { profile = "4k", count = "1k" },
  { profile = { name = "cam-15", resolution = "1280x720", fps = 15, bitrate = "1.5Mbit", gop = 30, ip_ratio = 15, vbr = 0 }, count = 2 },
  { profile = { preset = "1080p", fps = 15 }, count = 1 },
  { profile = { preset = "mjpeg-1080p", fps = 10, bitrate = "10Mbit" }, count = 1 },
]
[[recorder]]
host = "rs-b.example.test"
[[recorder.cameras]]
profile = "sub"
count = 20
[[failover]]
host = "fo.example.test"
[event_server]
host = "ev.example.test"
events_per_s = 10
event_size = "1KiB"
[mobile_server]
host = "mob.example.test"
mode = "transcoded"
transcode_profile = "sub"
[[viewer]]
count = 3
recorder = "rs-a.example.test"
view = 9
playback = 2
[[viewer]]
count = 0
recorder = "rs-b.example.test"
view = 1
wan = { delay = "30ms", jitter = "5ms", loss = 0.01, rate = "50Mbit" }
[[integration]]
name = "sdk"
count = 2
recorder = "rs-b.example.test"
streams = 20
[[phone]]
name = "p"
count = 7
recorder = "rs-a.example.test"
cameras_each = 4
[[collector]]
name = "site"
count = 3
wan_delay = "25ms"
wan_jitter = "3ms"
wan_loss = "0.5%"
wan_rate = "20Mbit"
interval = "250ms"
telemetry_size = "4KiB"
[[event]]
at = "4s"
action = "stop_recorder"
host = "rs-b.example.test"
[[event]]
at = "1.5s"
action = "stop_recorder"
host = "rs-a.example.test"
[run]
queue_frames = 64
server_threads = 2
client_threads = 3
"#,
        "all.toml",
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        (s.name.as_str(), s.description.as_str(), s.seed),
        ("all", "every field", 2000)
    );
    assert_eq!(s.tls.versions, [TlsVersion::Tls12, TlsVersion::Tls13]);
    assert_eq!(s.tls.ciphers, [Cipher::Chacha20Poly1305, Cipher::Aes128Gcm]);
    assert_eq!(s.tls.groups, [KxGroup::X25519, KxGroup::Secp384r1]);
    assert_eq!(s.key, KeyType::EcdsaP256);
    assert!(s.encryption.server && !s.encryption.streaming_media && !s.encryption.mobile_server);
    let m = &s.management;
    assert_eq!(
        (
            m.config_bytes,
            m.config_refresh,
            m.status_interval,
            m.status_request_bytes,
            m.status_reply_bytes
        ),
        (
            1_500_000,
            Some(Duration::from_secs(10)),
            Duration::from_millis(500),
            100,
            1024
        )
    );
    let a = &s.recorders[0];
    assert_eq!(a.failover.as_deref(), Some("fo.example.test"));
    assert_eq!(a.camera_count(), 1004);
    assert_eq!(a.cameras[0].profile.name, "4k");
    let p = &a.cameras[1].profile;
    assert_eq!(
        (
            p.name.as_str(),
            p.resolution.as_str(),
            p.fps,
            p.bitrate_bps,
            p.gop,
            p.ip_ratio,
            p.vbr
        ),
        ("cam-15", "1280x720", 15, 1_500_000, 30, 15.0, 0.0)
    );
    let p = &a.cameras[2].profile;
    assert_eq!(
        (p.name.as_str(), p.fps, p.gop, p.bitrate_bps),
        ("1080p", 15, 15, 4_000_000)
    );
    let p = &a.cameras[3].profile;
    assert_eq!(
        (p.fps, p.gop, p.ip_ratio, p.bitrate_bps),
        (10, 1, 1.0, 10_000_000)
    );
    assert_eq!(a.profile_of(1000).map(|p| p.name.as_str()), Some("cam-15"));
    assert_eq!(s.recorders[1].camera_count(), 20);
    assert_eq!(s.failovers, ["fo.example.test"]);
    let e = s
        .event_server
        .as_ref()
        .map(|e| (e.events_per_s, e.event_bytes));
    assert_eq!(e, Some((10, 1024)));
    let mob = s
        .mobile_server
        .as_ref()
        .map(|m| (m.mode, m.transcode_profile.name.as_str()));
    assert_eq!(mob, Some((MobileMode::Transcoded, "sub")));
    assert_eq!(s.viewers[0].name, "viewer-1");
    assert_eq!(s.viewers[0].mode, ViewMode::Playback(2));
    assert_eq!(
        (s.viewers[1].name.as_str(), s.viewers[1].count),
        ("viewer-2", 0)
    );
    assert_eq!(
        (s.integrations[0].streams, s.integrations[0].tls_capable),
        (20, true)
    );
    assert_eq!((s.phones[0].count, s.phones[0].cameras_each), (7, 4));
    assert_eq!(s.viewers[0].wan, None);
    assert_eq!(
        s.viewers[1].wan,
        Some(WanProfile {
            delay: Duration::from_millis(30),
            jitter: Duration::from_millis(5),
            loss: 0.01,
            rate_bps: Some(50_000_000),
        })
    );
    let c = &s.collectors[0];
    assert_eq!(
        (c.wan.jitter, c.wan.loss, c.wan.rate_bps),
        (Duration::from_millis(3), 0.005, Some(20_000_000))
    );
    assert_eq!(
        (c.count, c.wan.delay, c.interval, c.telemetry_bytes),
        (
            3,
            Duration::from_millis(25),
            Duration::from_millis(250),
            4096
        )
    );
    // Events come out in time order.
    let at: Vec<Duration> = s.events.iter().map(|e| e.at).collect();
    assert_eq!(at, [Duration::from_millis(1500), Duration::from_secs(4)]);
    assert_eq!(
        (s.queue_frames, s.server_threads, s.client_threads),
        (64, 2, 3)
    );
    // The mobile links are unused without phones' mobile server... and used here.
    assert!(s
        .links()
        .contains(&vmsbench::engine::scenario::LinkId::PhoneMobile));
}

/// Mistakes beyond the corpus, one line each: (file text, line, column, start of message).
#[test]
fn more_mistakes_are_pinned_to_their_place() {
    const R: &str = "[[recorder]]\nhost = \"r.vms.test\"\ncameras = [{ count = 4 }]\n";
    let cases: &[(&str, usize, usize, &str)] = &[
        ("[recorder]\nhost = \"r\"\n", 1, 1, "invalid type: table, expected an array of tables"),
        ("", 1, 1, "a scenario needs at least one recording server"),
        ("[[recorder]]\nhost = \"r.vms.test\"\ncameras = []\n", 3, 11, "a recording server needs cameras"),
        ("[[recorder]]\nhost = \"r.vms.test\"\n", 1, 1, "missing field `cameras`"),
        ("[[recorder]]\nhost = \"r_1\"\ncameras = [{ count = 4 }]\n", 2, 8, "\"r_1\" is not a valid host name"),
        ("[tls]\nciphers = [\"rc4\"]\n", 2, 12, "unknown cipher \"rc4\"; valid ones are: aes128-gcm, aes256-gcm, chacha20-poly1305"),
        ("[tls]\nversions = [\"1.1\"]\n", 2, 13, "unknown TLS version \"1.1\"; valid ones are: 1.2, 1.3"),
        ("[tls]\nversions = []\n", 2, 12, "versions must list at least one TLS version: 1.2, 1.3"),
        ("[tls]\nversions = [\"1.2\"]\n", 2, 12, "x25519mlkem768 works with TLS 1.3 only"),
        ("[tls]\nkey = \"rsa1024\"\n", 2, 7, "unknown key type \"rsa1024\"; valid ones are: rsa2048, rsa3072, rsa4096, ecdsa-p256, ecdsa-p384"),
        ("[tls]\ngroups = [\"x25519\", \"x25519\"]\n", 2, 21, "x25519 is listed twice in groups"),
        ("[[viewer]]\ncount = 1\nview = 65\n", 3, 8, "view must be 1–64 cameras (1, 4, 9 and 16 are the usual layouts), not 65"),
        ("[[viewer]]\ncount = 1\nview = 5\n", 3, 8, "view 5 is more than the 4 cameras of r.vms.test"),
        ("[[viewer]]\ncount = 1\nview = 4\nplayback = 16\n", 4, 12, "playback speed must be 1–8"),
        ("[[viewer]]\ncount = -2\nview = 4\n", 2, 9, "count must be at least 0, not -2"),
        ("[[viewer]]\ncount = 1.5\nview = 4\n", 2, 9, "count: a count must be a whole number"),
        ("[[viewer]]\ncount = true\nview = 4\n", 2, 9, "invalid type: boolean `true`, expected a whole number"),
        ("[[integration]]\ncount = 1\nstreams = 0\n", 3, 11, "streams must be at least 1, not 0"),
        ("[[phone]]\ncount = 1\n", 1, 1, "phones connect through the mobile server, and there is none"),
        ("[[event]]\nat = \"0s\"\naction = \"stop_recorder\"\nhost = \"r.vms.test\"\n", 2, 6, "at must be after the measured window opens"),
        ("[[event]]\nat = \"1s\"\naction = \"reboot\"\nhost = \"r.vms.test\"\n", 3, 10, "unknown action \"reboot\"; valid actions are: stop_recorder"),
        ("[[event]]\nat = \"1s\"\naction = \"stop_recorder\"\nhost = \"r.vms.test\"\n[[event]]\nat = \"2s\"\naction = \"stop_recorder\"\nhost = \"r.vms.test\"\n", 8, 8, "r.vms.test is already stopped by the event at line 7"),
        ("[management]\nconfig_refresh = \"0s\"\n", 2, 18, "config_refresh must be longer than 0s"),
        ("[management]\nconfig_size = \"2GiB\"\n", 2, 15, "config_size must be 1 B to 256.0 MiB"),
        ("[management]\nstatus_interval = \"36500d\"\n", 2, 19, "status_interval must be at most 1d, not 36500d"),
        ("[[collector]]\ncount = 1\ninterval = \"0.5ms\"\n", 3, 12, "interval must be at least 1ms, not 500us"),
        ("[[event]]\nat = \"8d\"\naction = \"stop_recorder\"\nhost = \"r.vms.test\"\n", 2, 6, "at must be at most 7d, not 8d"),
        ("[[recorder]]\nhost = \"q.vms.test\"\ncameras = [{ count = 60000 }, { count = 60000 }]\n", 3, 11, "a recording server has at most 100000 cameras, and these groups add up to 120000"),
        ("[[collector]]\ncount = 1\nwan_delay = \"1min\"\n", 3, 13, "wan_delay must be at most 10s, not 1m"),
        ("[[collector]]\ncount = 1\nwan_loss = \"60%\"\n", 3, 12, "wan_loss must be 0–50 % of segments, not 60%"),
        ("[[collector]]\ncount = 1\nwan_loss = \"lots\"\n", 3, 12, "wan_loss: expected a number at the start of \"lots\""),
        ("[[collector]]\ncount = 1\nwan_rate = 0\n", 3, 12, "wan_rate must be above 0 bit/s"),
        ("[[collector]]\ncount = 1\nwan_delay = \"5ms\"\nwan = { delay = \"5ms\" }\n", 4, 7, "give the collectors' WAN either as wan = { delay, jitter, loss, rate } or as wan_delay"),
        ("[[viewer]]\ncount = 1\nview = 1\nwan = { jitter = \"11s\" }\n", 4, 18, "wan.jitter must be at most 10s, not 11s"),
        ("[[viewer]]\ncount = 1\nview = 1\nwan = { loss = 0.7 }\n", 4, 16, "wan.loss must be 0–50 % of segments, not 0.7"),
        ("[[integration]]\ncount = 1\nstreams = 1\nwan = { rate = \"4MB/s\" }\n", 4, 16, "wan.rate: \"MB/s\" is a byte rate"),
        ("[[viewer]]\ncount = 1\nview = 1\nwan = { delay = \"5ms\", drop = 1 }\n", 4, 24, "unknown field `drop`, expected one of `delay`, `jitter`, `loss`, `rate`"),
        ("[mobile_server]\nhost = \"m.vms.test\"\nmode = \"fast\"\n", 3, 8, "unknown mobile server mode \"fast\"; valid modes are: direct"),
        ("[run]\nserver_threads = 0\n", 2, 18, "server_threads must be 1–1024, not 0"),
        ("[[viewer]]\nname = \"a\"\ncount = 1\nview = 1\n[[viewer]]\nname = \"a\"\ncount = 1\nview = 1\n", 6, 8, "there is already a viewer group named \"a\" (line 5)"),
        ("[[viewer]]\ncount = 1\nview = 1\n[[viewer]]\nname = \"viewer-1\"\ncount = 1\nview = 1\n", 5, 8, "there is already a viewer group named \"viewer-1\" (line 4)"),
        ("[[recorder]]\nhost = \"q.vms.test\"\ncameras = [{ count = 1, profile = { fps = 0, bitrate = \"1M\" } }]\n", 3, 43, "fps must be 1–240, not 0"),
        ("[[recorder]]\nhost = \"q.vms.test\"\ncameras = [{ count = 1, profile = { fps = 10 } }]\n", 3, 35, "an inline profile needs fps and bitrate"),
        ("[[recorder]]\nhost = \"q.vms.test\"\ncameras = [{ count = 1, profile = { preset = \"1080p\", vbr = 1 } }]\n", 3, 61, "vbr must be at least 0 and below 0.9"),
        ("[[recorder]]\nhost = \"q.vms.test\"\ncameras = [{ count = 1, profile = { preset = \"1080p\", bitrate = \"4MB/s\" } }]\n", 3, 65, "bitrate: \"MB/s\" is a byte rate"),
        ("[[recorder]]\nhost = \"q.vms.test\"\ncameras = [{ count = 1, profile = { preset = \"1080p\", colour = 1 } }]\n", 3, 55, "unknown field `colour`, expected one of `preset`, `name`, `resolution`, `fps`, `bitrate`, `gop`, `ip_ratio`, `vbr`"),
        ("[[recorder]]\nhost = \"q.vms.test\"\nfailover = \"r.vms.test\"\ncameras = [{ count = 1 }]\n", 3, 12, "failover \"r.vms.test\" is not declared; add [[failover]] with host = \"r.vms.test\" (none is declared)"),
        ("[[failover]]\nhost = \"f.vms.test\"\n[[viewer]]\ncount = 1\nrecorder = \"f.vms.test\"\nview = 1\n", 5, 12, "\"f.vms.test\" is a failover server; clients name the recording server it stands in for; recorders are: r.vms.test"),
    ];
    let mut failures = Vec::new();
    for (text, line, column, start) in cases {
        // Each case follows a valid recorder (line 1–3), except those that are about it.
        let about_recorders =
            text.starts_with("[[recorder]]") || text.starts_with("[recorder]") || text.is_empty();
        let (full, line) = if about_recorders {
            ((*text).to_owned(), *line)
        } else {
            (format!("{R}{text}"), line + R.lines().count())
        };
        match parse(&full, "test.toml") {
            Ok(_) => failures.push(format!("{text:?}: no error")),
            Err(e) => {
                if (e.line, e.column) != (line, *column) || !e.message.starts_with(start) {
                    failures.push(format!(
                        "{text:?}:\n  expected {line}:{column}: {start}…\n  got      {}:{}: {}",
                        e.line, e.column, e.message
                    ));
                }
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn unknown_presets_and_unreadable_files_say_what_exists() {
    let e = load("huge").err().map(|e| e.to_string());
    assert_eq!(
        e.as_deref(),
        Some("huge: no preset of that name and no such file; presets are: small, medium, large, multi-site, mixed-integrations, certificate-incidents, connections-8k (or give the path of a .toml file)")
    );
    let e = load_preset("huge").err().map(|e| e.to_string());
    assert_eq!(
        e.as_deref(),
        Some("preset huge: no such preset; presets are: small, medium, large, multi-site, mixed-integrations, certificate-incidents, connections-8k")
    );
    let e = load("no/such/file.toml").err();
    let e = e.map(|e| {
        (
            e.line,
            e.message.starts_with("cannot read the scenario file"),
        )
    });
    assert_eq!(e, Some((0, true)));
    // Positions count characters, not bytes, and lines from 1.
    let e = error_of(
        "# é\n[[recorder]]\nhost = \"r.vms.test\"\ncameras = [{ count = 4 }]\n\"é\" = 1\n",
    );
    assert_eq!((e.line, e.column), (5, 1));
    let e = error_of("description = \"é\" ; x\n");
    assert_eq!((e.line, e.column), (1, 19), "{e}");
}

fn scenarios_cmd(args: &[&str]) -> (String, String, std::process::ExitCode) {
    let run = Run::capture(|out, err| {
        vmsbench::commands::scenarios::run_from_args_with(args, out, err)
            .unwrap_or_else(|e| panic!("scenarios {args:?}: {e:#}"))
    });
    (run.out, run.err, run.code)
}

#[test]
fn scenarios_command_lists_prints_and_resolves() {
    // The listing: a header and one line per preset.
    let (out, _, code) = scenarios_cmd(&[]);
    assert_eq!(code, std::process::ExitCode::SUCCESS);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 1 + PRESET_NAMES.len(), "{out}");
    assert!(
        lines[0].starts_with("NAME")
            && lines[0].contains("CAMERAS")
            && lines[0].ends_with("DESCRIPTION")
    );
    for (line, name) in lines[1..].iter().zip(PRESET_NAMES) {
        assert!(line.starts_with(name), "{line}");
    }
    assert!(
        out.contains("2000") && out.contains("8 RS, 2 failover"),
        "{out}"
    );
    assert!(out.contains("4 SDK (1 plaintext-only)"), "{out}");

    // Round trip: the preset's text, byte for byte.
    let (out, _, _) = scenarios_cmd(&["medium"]);
    assert_eq!(Some(out.as_str()), preset_text("medium"));
    let back = parse(&out, "medium.toml").unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(back, preset("medium"));

    // --resolved: JSON of the resolved scenario; --scale scales it first.
    let (out, _, _) = scenarios_cmd(&["large", "--resolved"]);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
    assert_eq!(v["name"], "large");
    assert_eq!(v["recorders"][0]["cameras"][0]["count"], 250);
    let (out, _, _) = scenarios_cmd(&["large", "--scale", "0.1"]);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
    assert_eq!(v["recorders"][0]["cameras"][0]["count"], 25);

    // A file: checked and summarised; a broken one is an error naming its place.
    let path = presets().join("mixed-integrations.toml");
    let (out, _, _) = scenarios_cmd(&[path.to_str().unwrap_or_default()]);
    assert_eq!(out.lines().count(), 2, "{out}");
    let broken = broken().join("unknown-field.toml");
    let mut sink = Vec::new();
    let e = vmsbench::commands::scenarios::run_from_args_with(
        [broken.to_str().unwrap_or_default()],
        &mut sink,
        &mut Vec::new(),
    );
    let message = e.err().map(|e| format!("{e:#}")).unwrap_or_default();
    assert!(
        message.starts_with(&format!("{}:", broken.display())),
        "{message}"
    );

    // Usage errors.
    let (_, err, code) = scenarios_cmd(&["--resolved"]);
    assert_eq!(code, std::process::ExitCode::from(2));
    assert!(err.contains("NAME"), "{err}");
    let (_, err, code) = scenarios_cmd(&["small", "--scale", "0"]);
    assert_eq!(code, std::process::ExitCode::from(2));
    assert!(err.contains("above 0"), "{err}");
}

/// The built-in presets are part of the crate: every `include_str!` of the preset table
/// names a file under the crate's own `presets/` folder, each preset loads from there, and
/// `cargo package` ships them.
#[test]
fn presets_live_inside_the_crate_and_are_packaged() {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    let crate_dir = manifest.canonicalize().expect("crate directory");
    let source = manifest.join("src/engine/scenario/file/mod.rs");
    let text = std::fs::read_to_string(&source).expect("preset table source");
    let dir = source.parent().expect("source directory");
    let included: Vec<PathBuf> = text
        .split("include_str!(\"")
        .skip(1)
        .filter_map(|rest| rest.split('"').next())
        .map(|rel| dir.join(rel).canonicalize().expect("included file exists"))
        .collect();
    assert_eq!(included.len(), PRESET_NAMES.len(), "{included:?}");
    for path in &included {
        assert!(
            path.starts_with(crate_dir.join("presets")),
            "{} is outside the crate's presets/",
            path.display()
        );
    }
    for name in PRESET_NAMES {
        let path = presets().join(format!("{name}.toml"));
        assert!(
            included.contains(&path.canonicalize().expect("preset file")),
            "{name}"
        );
        assert_eq!(load_path(&path).ok(), load_preset(name).ok(), "{name}");
    }
    let out = std::process::Command::new(env!("CARGO"))
        .args([
            "package",
            "-p",
            "vmsbench",
            "--list",
            "--allow-dirty",
            "--offline",
        ])
        .current_dir(manifest)
        .output()
        .expect("cargo runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let listed = String::from_utf8_lossy(&out.stdout);
    for name in PRESET_NAMES {
        let file = format!("presets/{name}.toml");
        assert!(
            listed.lines().any(|l| l == file),
            "{file} not packaged:\n{listed}"
        );
    }
}
