//! The first record a server answers the hand-built TLS 1.1 ClientHello with.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // Every prefix, as the client sees the bytes arrive.
    for end in 0..=data.len().min(64) {
        let _ = simulators::legacy::parse_first_record(&data[..end]);
    }
    let _ = simulators::legacy::parse_first_record(data);
});
