//! Entry points for the fuzz targets in `fuzz/`: each runs one of the crate's parsers on
//! untrusted text or bytes, as the command line, a certificate file or an agent would hand
//! them over. Not part of the supported API.

use std::path::Path;

use simulators::fuzz::ready;

use crate::commands::certs::{check, inspect};
use crate::engine::control::{channel, Answer, Hello};
use crate::engine::deployment::remote::{FromAgent, ToAgent};

/// Every parser of quantities people type: durations, sizes, bitrates, counts, shares,
/// multipliers, scales, objectives and placement rules.
pub fn units(text: &str) {
    use crate::units;
    let _ = units::parse_duration(text);
    let _ = units::parse_size(text);
    let _ = units::parse_bitrate(text);
    let _ = units::parse_count(text);
    let _ = units::parse_share(text);
    let _ = crate::cli::parse_u32_count(text);
    let _ = crate::cli::parse_usize_count(text);
    let _ = crate::cli::parse_positive_usize(text);
    let _ = crate::cli::parse_frame_size(text);
    let _ = crate::cli::parse_multiplier(text);
    let _ = crate::engine::scenario::file::parse_scale(text);
    let _ = crate::report::objective::parse_objective(text);
    let rules: Vec<String> = text.lines().map(str::to_owned).collect();
    let _ = crate::engine::deployment::placement::Placement::parse(&rules);
}

/// A certificate file as `vmsbench certs inspect` reads it (PEM, DER or PKCS#12, opened
/// with `password`), then every certificate in it as `inspect` and `check` describe it.
pub fn certificate_file(bytes: &[u8], password: Option<&str>) {
    let Ok(file) = inspect::load_bytes(Path::new("fuzz.pem"), bytes, password) else {
        return;
    };
    for (i, der) in file.certs.iter().enumerate() {
        let _ = inspect::describe(der, "fuzz.pem", i + 1, "pem", 0);
    }
}

/// A private key file as `vmsbench certs check` reads it, then loaded for TLS.
pub fn private_key_file(bytes: &[u8]) {
    let Ok(key) = check::read_key(bytes.to_vec()) else {
        return;
    };
    if let Ok(signer) = rustls::crypto::aws_lc_rs::sign::any_supported_type(&key) {
        let _ = signer.public_key();
    }
}

/// The control connection's length-prefixed JSON frames, read as every message either end
/// expects: an agent's hello, the coordinator's answer, and the phase's messages both ways.
pub fn control_frames(bytes: &[u8]) {
    let _ = ready(async {
        let mut rd = bytes;
        while let Ok(Some(_)) = channel::read_message::<_, serde_json::Value>(&mut rd).await {}
        let mut rd = bytes;
        while let Ok(Some(_)) = channel::read_message::<_, Hello>(&mut rd).await {}
        let mut rd = bytes;
        while let Ok(Some(_)) = channel::read_message::<_, Answer>(&mut rd).await {}
        let mut rd = bytes;
        while let Ok(Some(_)) = channel::read_message::<_, ToAgent>(&mut rd).await {}
        let mut rd = bytes;
        while let Ok(Some(_)) = channel::read_message::<_, FromAgent>(&mut rd).await {}
    });
}

/// Seed inputs for the fuzz targets whose inputs are made by the crates' own encoders:
/// `(target, name, bytes)`.
#[doc(hidden)]
pub fn seeds() -> Vec<(&'static str, String, Vec<u8>)> {
    use simulators::wire::{Header, Kind, Subscribe, FLAG_KEYFRAME, FLAG_POOLED};

    let mut out = Vec::new();
    let message = |mut h: Header, payload: &[u8]| {
        h.payload_len = u32::try_from(payload.len()).unwrap_or(u32::MAX);
        let mut b = h.encode().to_vec();
        b.extend_from_slice(payload);
        b
    };
    let frame = Header {
        flags: FLAG_KEYFRAME | FLAG_POOLED,
        stream_id: 3,
        seq: 7,
        scheduled_ns: 1_000_000,
        sent_ns: 1_000_500,
        pool_offset: 4096,
        ..Header::new(Kind::Frame)
    };
    let subscribe = Subscribe {
        cameras: vec![0, 1, 31],
        playback_speed: Some(4),
        label: "viewer-recorder".into(),
    };
    let mut frames = message(frame, &[0x5a; 32]);
    frames.extend(message(Header { seq: 8, ..frame }, &[0x5b; 16]));
    frames.extend(message(Header::new(Kind::Bye), &[]));
    out.push(("wire", "frames".to_owned(), frames));
    out.push((
        "wire",
        "subscribe".to_owned(),
        message(Header::new(Kind::Subscribe), &subscribe.encode()),
    ));
    out.push(("wire", "subscribe-payload".to_owned(), subscribe.encode()));
    let mut login = message(Header::new(Kind::Chunk), &[1; 24]);
    let mut reply = 24u64.to_be_bytes().to_vec();
    reply.extend_from_slice(&[0xab; 32]);
    login.extend(message(Header::new(Kind::Reply), &reply));
    out.push(("wire", "login-answer".to_owned(), login));
    out.push((
        "wire",
        "refusal".to_owned(),
        message(
            Header::new(Kind::Error),
            b"no camera 9 on this recording server",
        ),
    ));

    let frame_of = |value: &serde_json::Value| {
        let body = serde_json::to_vec(value).unwrap_or_default();
        let mut b = u32::try_from(body.len())
            .unwrap_or(0)
            .to_be_bytes()
            .to_vec();
        b.extend(body);
        b
    };
    let hello = Hello {
        protocol: crate::engine::control::PROTOCOL,
        agent: "a1".into(),
        version: "0.1.0".into(),
        proof: "00".repeat(32),
        listen: None,
        environment: crate::sys::environment::Environment::detect(),
    };
    let phase: Vec<serde_json::Value> = [
        serde_json::to_value(ToAgent::Ping { t0: 5 }),
        serde_json::to_value(ToAgent::Open {
            start_ns: 1,
            end_ns: 2,
        }),
        serde_json::to_value(ToAgent::Abort { reason: "x".into() }),
        serde_json::to_value(FromAgent::Pong { t0: 5, t1: 6 }),
        serde_json::to_value(FromAgent::Status(Default::default())),
        serde_json::to_value(FromAgent::Counted(Default::default())),
        serde_json::to_value(FromAgent::Heartbeat),
    ]
    .into_iter()
    .filter_map(Result::ok)
    .collect();
    let greeting = [
        serde_json::to_value(&hello),
        serde_json::to_value(Answer::Welcome {
            protocol: 1,
            proof: "ff".repeat(32),
        }),
    ];
    for (i, v) in greeting.iter().flatten().enumerate() {
        out.push(("control", format!("greeting-{i}"), frame_of(v)));
    }
    out.push((
        "control",
        "phase".to_owned(),
        phase.iter().flat_map(frame_of).collect(),
    ));

    let mut h = simulators::metrics::latency_histogram();
    for v in [1, 250, 1_000, 12_345, 3_000_000] {
        let _ = h.record(v);
    }
    let text = simulators::metrics::encode_histogram(&h);
    use base64::Engine as _;
    if let Ok(bytes) = base64::engine::general_purpose::STANDARD.decode(text) {
        out.push(("histogram", "latencies".to_owned(), bytes));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The seeds go through the fuzz entry points; with `VMSBENCH_FUZZ_SEEDS=DIR` set they
    /// are also written to `DIR/<target>/seed-<name>` (the fuzz corpus).
    #[test]
    fn seeds_decode_and_can_be_written() {
        let seeds = seeds();
        assert!(seeds.len() >= 8);
        for (target, name, bytes) in &seeds {
            match *target {
                "wire" => simulators::fuzz::wire_bytes(bytes),
                "control" => control_frames(bytes),
                _ => {}
            }
            if let Some(dir) = std::env::var_os("VMSBENCH_FUZZ_SEEDS") {
                let dir = Path::new(&dir).join(target);
                std::fs::create_dir_all(&dir).expect("corpus directory");
                std::fs::write(dir.join(format!("seed-{name}")), bytes).expect("seed");
            }
        }
    }

    /// Every committed seed of `fuzz/corpus/` goes through its target's parser, as the
    /// fuzzer would start: a regression check that needs no fuzzer.
    #[test]
    fn the_committed_seeds_pass_through_their_parsers() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus");
        let read = |target: &str| -> Vec<Vec<u8>> {
            let dir = std::fs::read_dir(root.join(target)).expect("a seed directory");
            let seeds: Vec<Vec<u8>> = dir
                .filter_map(Result::ok)
                .filter_map(|e| std::fs::read(e.path()).ok())
                .collect();
            assert!(!seeds.is_empty(), "no seeds for {target}");
            seeds
        };
        for bytes in read("units") {
            units(&String::from_utf8_lossy(&bytes));
        }
        for bytes in read("cert_file") {
            certificate_file(&bytes, Some("fuzz"));
            private_key_file(&bytes);
        }
        for bytes in read("control") {
            control_frames(&bytes);
        }
        for bytes in read("wire") {
            simulators::fuzz::wire_bytes(&bytes);
        }
        for bytes in read("scenario") {
            let text = String::from_utf8_lossy(&bytes);
            if let Err(e) = crate::engine::scenario::file::parse(&text, "seed.toml") {
                let lines = text.split('\n').count();
                assert!((1..=lines).contains(&e.line) && e.column >= 1, "{e}");
            }
        }
    }
}
