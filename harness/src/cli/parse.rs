//! Value parsers for flags: counts, sizes and shares as people type them.

use crate::units::{parse_count, parse_size};

/// A count that fits in `u32` (`32`, `1k`).
pub fn parse_u32_count(s: &str) -> Result<u32, String> {
    let n = parse_count(s)?;
    u32::try_from(n).map_err(|_| format!("{s} is too large (at most {})", u32::MAX))
}

/// A count of at least 1 that fits in `u32` (connections, cameras): zero would measure
/// nothing and is refused before anything runs.
pub fn parse_positive_u32(s: &str) -> Result<u32, String> {
    match parse_u32_count(s)? {
        0 => Err("must be at least 1".into()),
        n => Ok(n),
    }
}

/// A count that fits in `usize`.
pub fn parse_usize_count(s: &str) -> Result<usize, String> {
    let n = parse_count(s)?;
    usize::try_from(n).map_err(|_| format!("{s} is too large"))
}

/// A count of at least 1 (CPUs, cores).
pub fn parse_positive_usize(s: &str) -> Result<usize, String> {
    let n = parse_count(s)?;
    match usize::try_from(n) {
        Ok(0) => Err("must be at least 1".into()),
        Ok(n) => Ok(n),
        Err(_) => Err(format!("{s} is too large")),
    }
}

/// A frame's payload size: 1 B up to the wire format's largest payload.
pub fn parse_frame_size(s: &str) -> Result<usize, String> {
    let n = parse_size(s)?;
    let max = u64::from(simulators::wire::MAX_PAYLOAD);
    if n == 0 || n > max {
        return Err(format!(
            "frame size must be 1 B to {max} B (16 MiB), not {n}"
        ));
    }
    usize::try_from(n).map_err(|_| format!("{s} is too large"))
}
