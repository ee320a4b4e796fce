//! A server identity imported from PEM files made elsewhere: the chain and the key, given
//! as one input split at the first NUL byte.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let (chain, key) = match data.iter().position(|b| *b == 0) {
        Some(at) => (&data[..at], &data[at + 1..]),
        None => (data, &[][..]),
    };
    let chain = String::from_utf8_lossy(chain);
    let key = String::from_utf8_lossy(key);
    let _ = simulators::pki::HostIdentity::from_pem("fuzz.vms.test", &chain, &key);
});
