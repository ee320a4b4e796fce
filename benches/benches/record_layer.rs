//! What the TLS record layer costs per frame, next to the plaintext wire path.
//!
//! For each frame size of the video presets (sub P-frame, 1080p P- and I-frame, 4K
//! I-frame) and each pinned suite, a rustls client/server pair built from the deployment's
//! PKI is connected in memory; `encrypt` writes one frame (header + payload) and collects
//! the records, `decrypt` reads them back into a frame. `plain/…/encode` and
//! `plain/…/decode` are the same frames through the wire codec alone. Throughput is
//! payload bytes, so criterion reports bytes/s.
//!
//! Scenario ids: `record_layer/{plain|<suite>}/<frame>/{encode|decode|encrypt|decrypt}`,
//! e.g. `record_layer/tls13_aes256gcm/1080p_iframe/encrypt`.
//!
//! `VMSBENCH_MULTIPLIER` scales the measurement and warm-up times below.

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BenchmarkGroup, Criterion, Throughput};
use simulators::pki::KeyType;
use vmsbench_benches::frames::{
    frame_cases, frame_header, payload, plain_recv, plain_send, FrameCase,
};
use vmsbench_benches::tls::{bench_pki, Endpoints, Suite};

/// Measured time per benchmark (before `VMSBENCH_MULTIPLIER`). 40 benchmarks: about 1.5 min
/// in all at the default.
const MEASUREMENT_TIME: Duration = Duration::from_secs(2);
/// Warm-up per benchmark (before `VMSBENCH_MULTIPLIER`).
const WARM_UP_TIME: Duration = Duration::from_millis(300);
/// Samples per benchmark.
const SAMPLE_SIZE: usize = 50;
/// Key of the server certificate. Irrelevant to the record layer, but the TLS 1.2 suite
/// measured is ECDHE-RSA, so RSA it is.
const KEY: KeyType = KeyType::Rsa2048;

type Group<'a> = BenchmarkGroup<'a, criterion::measurement::WallTime>;

fn plain(group: &mut Group<'_>, frame: &FrameCase) {
    let p = payload(frame.bytes);
    let header = frame_header(1, frame.bytes).expect("frame header");
    let mut wire = Vec::with_capacity(frame.bytes + 64);
    group.bench_function(format!("plain/{}/encode", frame.id), |b| {
        b.iter(|| {
            plain_send(black_box(&header), black_box(&p), &mut wire);
            black_box(wire.len())
        })
    });
    plain_send(&header, &p, &mut wire);
    let mut out = Vec::with_capacity(frame.bytes);
    group.bench_function(format!("plain/{}/decode", frame.id), |b| {
        b.iter(|| black_box(plain_recv(black_box(&wire), &mut out).expect("decodes")))
    });
}

fn tls(group: &mut Group<'_>, endpoints: &Endpoints, suite: Suite, frame: &FrameCase) {
    let p = payload(frame.bytes);
    let connect = || {
        let pair = endpoints.connect().expect("in-memory handshake");
        suite.expect(&pair).expect("the pinned suite is negotiated");
        pair
    };
    let mut wire = Vec::with_capacity(frame.bytes + frame.bytes / 64 + 256);
    let mut pair = connect();
    let mut seq = 0;
    group.bench_function(format!("{}/{}/encrypt", suite.id(), frame.id), |b| {
        b.iter(|| {
            seq += 1;
            let h = frame_header(seq, frame.bytes).expect("frame header");
            pair.send(&h, black_box(&p), &mut wire).expect("encrypts");
            black_box(wire.len())
        })
    });
    // A fresh pair: the records of the encrypt bench were never read, so the server of
    // that pair is behind. Each record can be decrypted once only, so every iteration
    // encrypts a new frame first, outside the timed part.
    let mut pair = connect();
    let mut out = Vec::with_capacity(frame.bytes);
    let mut seq = 0;
    group.bench_function(format!("{}/{}/decrypt", suite.id(), frame.id), |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                seq += 1;
                let h = frame_header(seq, frame.bytes).expect("frame header");
                pair.send(&h, &p, &mut wire).expect("encrypts");
                let start = Instant::now();
                let got = pair.recv(black_box(&wire), &mut out).expect("decrypts");
                total += start.elapsed();
                black_box(got);
            }
            total
        })
    });
}

fn record_layer(c: &mut Criterion) {
    let frames = frame_cases().expect("video presets");
    let pki = bench_pki(KEY).expect("bench PKI");
    let mut group = c.benchmark_group("record_layer");
    for frame in &frames {
        group.throughput(Throughput::Bytes(frame.bytes as u64));
        plain(&mut group, frame);
    }
    for suite in Suite::ALL {
        let endpoints = Endpoints::new(&pki, &suite.settings()).expect("TLS configurations");
        for frame in &frames {
            group.throughput(Throughput::Bytes(frame.bytes as u64));
            tls(&mut group, &endpoints, *suite, frame);
        }
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = vmsbench_benches::criterion_config(MEASUREMENT_TIME, WARM_UP_TIME, SAMPLE_SIZE);
    targets = record_layer
}
criterion_main!(benches);
