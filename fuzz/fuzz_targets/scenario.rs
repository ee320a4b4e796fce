//! Scenario files: TOML text to a resolved scenario. Every refusal must be an error with a
//! line and column inside the text.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Err(e) = vmsbench::engine::scenario::file::parse(text, "fuzz.toml") {
        let lines = text.split('\n').count();
        assert!(
            (1..=lines).contains(&e.line) && e.column >= 1,
            "error without a position inside the text: {e}"
        );
        assert!(e
            .to_string()
            .starts_with(&format!("fuzz.toml:{}:{}: ", e.line, e.column)));
    }
});
