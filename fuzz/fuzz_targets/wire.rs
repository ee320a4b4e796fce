//! The wire codec: the fixed header, subscribe requests, and message streams as servers read
//! requests and clients read frames and management answers.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| simulators::fuzz::wire_bytes(data));
