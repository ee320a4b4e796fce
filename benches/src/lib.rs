//! Shared pieces of the vmsbench benches, so that every bench target measures the project's
//! own code the same way:
//!
//! - [`frames`]: frame sizes taken from the video presets, seeded payloads, and the
//!   plaintext wire path (header encode + copy) that TLS is compared with;
//! - [`tls`]: pinned cipher suites, rustls client/server pairs built from the deployment's
//!   [`Pki`](simulators::pki::Pki) and [`TlsSettings`](simulators::transport::TlsSettings)
//!   and connected in memory, encrypt/decrypt of one frame, handshakes;
//! - [`link`]: one real loopback connection (the project's transport and codec) over which a
//!   burst of frames is pushed;
//! - [`multiplier`] and [`criterion_config`]: `VMSBENCH_MULTIPLIER` scales measurement time
//!   the same way it scales `vmsbench run`, so CI can run the same benches briefly.
//!
//! Scenario ids are stable (`record_layer/tls13_aes256gcm/1080p_iframe/encrypt`): baselines
//! and dashboards key on them.

pub mod frames;
pub mod link;
pub mod tls;

use std::time::Duration;

use criterion::Criterion;

/// Environment variable scaling every duration (also read by `vmsbench run` and `bulk`).
pub const MULTIPLIER_ENV: &str = "VMSBENCH_MULTIPLIER";

/// Shortest measurement time after scaling: criterion needs some time to take its samples.
pub const MIN_MEASUREMENT_TIME: Duration = Duration::from_millis(100);
/// Shortest warm-up time after scaling.
pub const MIN_WARM_UP_TIME: Duration = Duration::from_millis(50);

/// Why a bench could not set up or run a case.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    /// Generating certificates or building a rustls configuration failed.
    #[error("PKI: {0}")]
    Pki(#[from] simulators::pki::PkiError),
    /// rustls refused something during a handshake or a transfer.
    #[error("TLS: {0}")]
    Tls(#[from] rustls::Error),
    /// Moving bytes failed.
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
    /// The wire codec refused what it was given.
    #[error("wire: {0}")]
    Wire(#[from] simulators::wire::WireError),
    /// A video preset is missing.
    #[error("video profile: {0}")]
    Profile(#[from] simulators::video::ProfileError),
    /// A connection could not be set up.
    #[error("connect: {0}")]
    Connect(#[from] simulators::transport::ConnectError),
    /// An in-memory TLS pair could not connect or carry a frame.
    #[error("in-memory TLS: {0}")]
    Memory(#[from] simulators::transport::memory::MemoryError),
    /// Something the bench checks did not hold (e.g. the negotiated suite).
    #[error("{0}")]
    Check(String),
}

/// The value of `VMSBENCH_MULTIPLIER` (1 when unset; a warning and 1 when it is not a
/// positive number).
pub fn multiplier() -> f64 {
    match std::env::var(MULTIPLIER_ENV) {
        Err(_) => 1.0,
        Ok(s) => match parse_multiplier(&s) {
            Some(m) => m,
            None => {
                eprintln!("warning: ignoring {MULTIPLIER_ENV}={s:?}: not a positive number");
                1.0
            }
        },
    }
}

/// Parses a multiplier: a finite number above zero.
pub fn parse_multiplier(s: &str) -> Option<f64> {
    s.trim()
        .parse::<f64>()
        .ok()
        .filter(|m| m.is_finite() && *m > 0.0)
}

/// `base` × `m`, but at least `min`.
pub fn scale(base: Duration, m: f64, min: Duration) -> Duration {
    let scaled = base.as_secs_f64() * m;
    if scaled.is_finite() && scaled > min.as_secs_f64() {
        Duration::from_secs_f64(scaled)
    } else {
        min
    }
}

/// A criterion configuration with the given measurement and warm-up times scaled by
/// [`multiplier`]. Command-line flags (`--measurement-time`, `--test`, …) still override it.
pub fn criterion_config(measurement: Duration, warm_up: Duration, sample_size: usize) -> Criterion {
    let m = multiplier();
    Criterion::default()
        .measurement_time(scale(measurement, m, MIN_MEASUREMENT_TIME))
        .warm_up_time(scale(warm_up, m, MIN_WARM_UP_TIME))
        .sample_size(sample_size.max(10))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn multiplier_parsing_and_scaling() {
        assert_eq!(parse_multiplier("0.3"), Some(0.3));
        assert_eq!(parse_multiplier(" 2 "), Some(2.0));
        assert_eq!(parse_multiplier("0"), None);
        assert_eq!(parse_multiplier("-1"), None);
        assert_eq!(parse_multiplier("inf"), None);
        assert_eq!(parse_multiplier("fast"), None);
        let s = Duration::from_secs(2);
        assert_eq!(scale(s, 0.5, MIN_MEASUREMENT_TIME), Duration::from_secs(1));
        assert_eq!(scale(s, 0.001, MIN_MEASUREMENT_TIME), MIN_MEASUREMENT_TIME);
    }
}
