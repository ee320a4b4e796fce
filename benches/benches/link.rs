//! End-to-end frame delivery over a real loopback connection, plaintext and TLS.
//!
//! A sender on a role runtime of its own writes a burst of [`FRAMES`] 1080p-I-frame-sized
//! frames through the project's transport and wire codec (write buffer of the bulk sender's
//! size); the client reads them back through a buffered reader as a viewer does. The
//! connection (and for TLS its handshake) is set up once, outside the measurement.
//! Throughput is payload bytes, so criterion reports bytes/s.
//!
//! Scenario ids: `link/{plain|tls13_aes256gcm}/1080p_iframe`.
//!
//! `VMSBENCH_MULTIPLIER` scales the measurement and warm-up times below.

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use simulators::pki::KeyType;
use vmsbench_benches::frames::FrameCase;
use vmsbench_benches::link::Loopback;
use vmsbench_benches::tls::{bench_pki, Endpoints, Suite};

/// Frames per iteration (about 4.7 MB of 1080p I-frames).
const FRAMES: u32 = 32;
/// The frame size, by frame-case id.
const FRAME: &str = "1080p_iframe";
/// The suite of the TLS mode (the project's default).
const SUITE: Suite = Suite::Tls13Aes256Gcm;
/// Measured time per benchmark (before `VMSBENCH_MULTIPLIER`).
const MEASUREMENT_TIME: Duration = Duration::from_secs(3);
/// Warm-up per benchmark (before `VMSBENCH_MULTIPLIER`).
const WARM_UP_TIME: Duration = Duration::from_millis(500);
/// Samples per benchmark.
const SAMPLE_SIZE: usize = 20;

fn link(c: &mut Criterion) {
    let frame = FrameCase::by_id(FRAME).expect("frame case");
    let pki = bench_pki(KeyType::Rsa2048).expect("bench PKI");
    let endpoints = Endpoints::new(&pki, &SUITE.settings()).expect("TLS configurations");
    let mut group = c.benchmark_group("link");
    for (mode, tls) in [("plain", None), (SUITE.id(), Some(&endpoints))] {
        let mut link = Loopback::start(tls, frame.bytes, FRAMES).expect("loopback link");
        group.throughput(Throughput::Bytes(link.burst_bytes()));
        group.bench_function(format!("{mode}/{}", frame.id), |b| {
            b.iter(|| black_box(link.burst().expect("burst delivered")))
        });
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = vmsbench_benches::criterion_config(MEASUREMENT_TIME, WARM_UP_TIME, SAMPLE_SIZE);
    targets = link
}
criterion_main!(benches);
