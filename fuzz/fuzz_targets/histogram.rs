//! HdrHistogram V2 (+DEFLATE) histograms in base64, as agents send them and reports hold
//! them: the input as the binary encoding, and as text when it is UTF-8.
#![no_main]

use base64::Engine as _;
use libfuzzer_sys::fuzz_target;
use simulators::metrics::{decode_histogram, encode_histogram};

fuzz_target!(|data: &[u8]| {
    let text = base64::engine::general_purpose::STANDARD.encode(data);
    if let Some(h) = decode_histogram(&text) {
        // What decodes encodes again, and the copy holds the same counts.
        let again = decode_histogram(&encode_histogram(&h));
        assert_eq!(again.map(|a| (a.len(), a.max())), Some((h.len(), h.max())));
    }
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = decode_histogram(text);
    }
});
