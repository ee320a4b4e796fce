//! The parsers of quantities people type: durations, sizes, bitrates, counts, shares,
//! multipliers, scales, objectives and placement rules.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        vmsbench::fuzz::units(text);
    }
});
