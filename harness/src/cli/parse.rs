//! Value parsers for flags: counts, sizes, durations and shares as people type them, and
//! the limits a value must keep.

use std::time::Duration;

use crate::units::{format_span, parse_count, parse_duration, parse_size};

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

/// A count from `min` to `max` (`32`, `1k`), as a flag's value parser: a value outside
/// says what would be valid (`must be at least 1 and at most 100000, got 0`).
pub fn count_within<T>(
    min: u64,
    max: u64,
) -> impl Fn(&str) -> Result<T, String> + Clone + Send + Sync + 'static
where
    T: TryFrom<u64>,
{
    move |s| {
        let n = parse_count(s)?;
        if !(min..=max).contains(&n) {
            return Err(format!("must be at least {min} and at most {max}, got {n}"));
        }
        T::try_from(n).map_err(|_| format!("{s} is too large"))
    }
}

/// A duration from `min` to `max` (`10s`, `1.5min`), as a flag's value parser: a value
/// outside says what would be valid (`must be at least 100ms and at most 7d, got 0s`).
pub fn duration_within(
    min: Duration,
    max: Duration,
) -> impl Fn(&str) -> Result<Duration, String> + Clone + Send + Sync + 'static {
    move |s| {
        let d = parse_duration(s)?;
        if d < min || d > max {
            return Err(format!(
                "must be at least {} and at most {}, got {}",
                format_span(min),
                format_span(max),
                format_span(d)
            ));
        }
        Ok(d)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_outside_their_range_say_what_would_be_valid() {
        let cameras = count_within::<u32>(1, 100_000);
        assert_eq!(cameras("32"), Ok(32));
        assert_eq!(cameras("100k"), Ok(100_000));
        assert_eq!(
            cameras("0"),
            Err("must be at least 1 and at most 100000, got 0".to_owned())
        );
        assert_eq!(
            cameras("1M"),
            Err("must be at least 1 and at most 100000, got 1000000".to_owned())
        );
        assert!(cameras("lots").is_err_and(|e| e.contains("e.g.")));

        let window = duration_within(Duration::from_millis(100), Duration::from_secs(7 * 86_400));
        assert_eq!(window("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(window("7d"), Ok(Duration::from_secs(7 * 86_400)));
        assert_eq!(
            window("0"),
            Err("must be at least 100ms and at most 7d, got 0s".to_owned())
        );
        assert_eq!(
            window("36500d"),
            Err("must be at least 100ms and at most 7d, got 36500d".to_owned())
        );
        assert_eq!(
            window("50ms"),
            Err("must be at least 100ms and at most 7d, got 50ms".to_owned())
        );
    }
}
