//! Certificate and key files as `vmsbench certs inspect` and `check` read them: PEM, DER or
//! PKCS#12 (password "fuzz", the seeds' password), and private keys in PEM or DER.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    vmsbench::fuzz::certificate_file(data, Some("fuzz"));
    vmsbench::fuzz::private_key_file(data);
});
