//! What merging results from many agents costs the coordinator: one agent's latency
//! histogram, as it travels (HdrHistogram V2+DEFLATE, base64), decoded and added into the
//! run's histogram. Values are µs, 1 µs to the largest recorded, 3 significant figures: the
//! one configuration every meter uses.
//!
//! Scenario ids: `merge/<what>/<shape>`: `decode_add` (decode then add: what arrives on
//! the control channel), `add` (an already decoded histogram); `window` is a link's window
//! of 35 000 frames with latencies from 100 µs to 40 ms, `interval` one second of it.
//!
//! `VMSBENCH_MULTIPLIER` scales the measurement and warm-up times below.

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};
use simulators::metrics::{latency_histogram, RecordUs as _};
use vmsbench::report::{decode_histogram, encode_histogram};

/// Measured time per benchmark (before `VMSBENCH_MULTIPLIER`). 4 benchmarks.
const MEASUREMENT_TIME: Duration = Duration::from_secs(2);
/// Warm-up per benchmark (before `VMSBENCH_MULTIPLIER`).
const WARM_UP_TIME: Duration = Duration::from_millis(500);
/// Samples per benchmark.
const SAMPLE_SIZE: usize = 30;

/// A histogram of `frames` latencies spread like a loaded link's: a body around 1–3 ms and
/// a tail to 40 ms.
fn link_histogram(frames: u64) -> hdrhistogram::Histogram<u64> {
    let mut h = latency_histogram();
    let mut x: u64 = 0x2545_F491_4F6C_DD1D;
    for _ in 0..frames {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let v = if x.is_multiple_of(100) {
            100 + x % 40_000
        } else {
            100 + x % 3_000
        };
        h.record_us(v);
    }
    h
}

fn merge(c: &mut Criterion) {
    let mut group = c.benchmark_group("merge");
    for (shape, frames) in [("window", 35_000), ("interval", 7_000)] {
        let part = link_histogram(frames);
        let text = encode_histogram(&part);
        group.bench_function(format!("decode_add/{shape}"), |b| {
            let mut total = latency_histogram();
            b.iter(|| {
                let h = decode_histogram(black_box(&text)).expect("decodes");
                total.add(&h).expect("same configuration");
            });
            black_box(total.len());
        });
        group.bench_function(format!("add/{shape}"), |b| {
            let mut total = latency_histogram();
            b.iter(|| total.add(black_box(&part)).expect("same configuration"));
            black_box(total.len());
        });
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = vmsbench_benches::criterion_config(MEASUREMENT_TIME, WARM_UP_TIME, SAMPLE_SIZE);
    targets = merge
}
criterion_main!(benches);
