//! What a TLS 1.3 handshake costs, client and server side together, in memory.
//!
//! Matrix: server key {rsa2048, ecdsa-p256} × key exchange {x25519, x25519mlkem768} ×
//! {full, resumed}. A full handshake verifies the certificate chain and signs with the
//! server key; a resumed one uses a stateless session ticket (aws-lc-rs ticketer) that an
//! earlier handshake left with the client. Certificates and keys are generated once,
//! outside the measurement. Configurations come from the deployment's PKI and
//! `TlsSettings` (AES-256-GCM, one pinned group).
//!
//! Scenario ids: `handshake/tls13_<key>_<group>/{full|resumed}`, e.g.
//! `handshake/tls13_ecdsap256_x25519mlkem768/resumed`.
//!
//! `VMSBENCH_MULTIPLIER` scales the measurement and warm-up times below.

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};
use simulators::pki::KeyType;
use vmsbench_benches::tls::{bench_pki, HandshakeCase};

/// Measured time per benchmark (before `VMSBENCH_MULTIPLIER`). 8 benchmarks.
const MEASUREMENT_TIME: Duration = Duration::from_secs(3);
/// Warm-up per benchmark (before `VMSBENCH_MULTIPLIER`).
const WARM_UP_TIME: Duration = Duration::from_millis(500);
/// Samples per benchmark.
const SAMPLE_SIZE: usize = 30;

fn handshake(c: &mut Criterion) {
    let mut group = c.benchmark_group("handshake");
    for key in [KeyType::Rsa2048, KeyType::EcdsaP256] {
        let pki = bench_pki(key).expect("bench PKI");
        for case in HandshakeCase::matrix().into_iter().filter(|c| c.key == key) {
            let endpoints = case.endpoints(&pki).expect("TLS configurations");
            group.bench_function(case.id(), |b| {
                b.iter(|| {
                    let pair = endpoints.connect().expect("handshake");
                    debug_assert_eq!(pair.resumed(), case.resumed);
                    black_box(pair)
                })
            });
        }
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = vmsbench_benches::criterion_config(MEASUREMENT_TIME, WARM_UP_TIME, SAMPLE_SIZE);
    targets = handshake
}
criterion_main!(benches);
