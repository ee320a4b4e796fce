//! The control connection's length-prefixed JSON frames, as either end reads them.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| vmsbench::fuzz::control_frames(data));
