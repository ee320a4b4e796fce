//! Parsing and formatting of the quantities people type on the command line
//! and read in reports: durations, byte sizes, bitrates and counts.
//!
//! The parsers have the signature clap's `value_parser` expects
//! (`fn(&str) -> Result<T, String>`), e.g.
//! `#[arg(long, value_parser = units::parse_duration)]`. Their error messages
//! name what was wrong and show examples of valid input; clap prefixes them
//! with the offending value and flag.
//!
//! Numbers are parsed exactly (as decimal digits, not through `f64`), so
//! `1.1MiB` or `0.3s` mean exactly what they say, up to the rounding stated
//! in each parser's documentation. `_` may be used as a digit separator
//! (`1_000_000`). Negative numbers and exponents (`1e6`) are rejected.

use std::time::Duration;

const DURATION_EXAMPLES: &str = "e.g. 10s, 1.5s, 500ms, 2min, 1h, 250us, or 5 (seconds)";
const SIZE_EXAMPLES: &str = "e.g. 512, 64KiB, 1MiB, 1.5MB, 64k";
const BITRATE_EXAMPLES: &str = "e.g. 4Mbit/s, 4mbps, 500kbit, 10Gbit, 2.5M, or 4000000 (bit/s)";
const COUNT_EXAMPLES: &str = "e.g. 1000, 10k, 1.5k, 2M";
const SHARE_EXAMPLES: &str = "e.g. 0.5%, 2%, or 0.02 (a fraction)";

/// At most this many significant digits are accepted, so that
/// `mantissa * factor` stays comfortably inside `u128`.
const MAX_DIGITS: usize = 24;

/// A non-negative decimal number `mantissa / 10^scale`, parsed exactly.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Decimal {
    mantissa: u128,
    scale: u32,
}

impl Decimal {
    /// `self * factor`, split into the value rounded half-up to an integer and
    /// whether the product was a whole number. `None` on overflow.
    fn times(self, factor: u128) -> Option<(u128, bool)> {
        let product = self.mantissa.checked_mul(factor)?;
        let divisor = 10u128.checked_pow(self.scale)?;
        let whole = product / divisor;
        let rem = product % divisor;
        let rounded = if rem.checked_mul(2)? >= divisor {
            whole.checked_add(1)?
        } else {
            whole
        };
        Some((rounded, rem == 0))
    }

    fn is_integer(self) -> bool {
        self.times(1).is_some_and(|(_, exact)| exact)
    }
}

/// Splits `s` (already trimmed by the caller) into a leading decimal number
/// and the rest (the unit), with whitespace between them removed.
fn split_number<'a>(s: &'a str, what: &str, examples: &str) -> Result<(Decimal, &'a str), String> {
    if s.is_empty() {
        return Err(format!("empty {what}; {examples}"));
    }
    if s.starts_with('-') {
        return Err(format!("a {what} cannot be negative; {examples}"));
    }
    let body = s.strip_prefix('+').unwrap_or(s);
    let end = body
        .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '_'))
        .unwrap_or(body.len());
    let (number, rest) = body.split_at(end);

    let mut mantissa: u128 = 0;
    let mut digits = 0usize;
    let mut scale = 0u32;
    let mut seen_dot = false;
    for c in number.chars() {
        match c {
            '_' => {}
            '.' if seen_dot => {
                return Err(format!(
                    "{number:?} has more than one decimal point; {examples}"
                ));
            }
            '.' => seen_dot = true,
            _ => {
                // `c` is an ASCII digit here.
                let d = u128::from(c as u8 - b'0');
                if mantissa == 0 && d == 0 && !seen_dot {
                    continue; // leading zeros carry no information
                }
                digits += 1;
                if digits > MAX_DIGITS {
                    return Err(format!("{number:?} has too many digits for a {what}"));
                }
                mantissa = mantissa * 10 + d;
                if seen_dot {
                    scale += 1;
                }
            }
        }
    }
    if !number.chars().any(|c| c.is_ascii_digit()) {
        return Err(if rest.is_empty() && !number.is_empty() {
            format!("{s:?} is not a number; {examples}")
        } else {
            format!("expected a number at the start of {s:?}; {examples}")
        });
    }
    Ok((Decimal { mantissa, scale }, rest.trim_start()))
}

fn too_large(what: &str) -> String {
    format!("{what} is too large")
}

/// Parses a duration such as `10s`, `1.5s`, `500ms`, `3m`, `2min`, `1h`,
/// `250us` (or `250µs`), `100ns` or `1d`. A plain number is seconds (`5` is
/// 5 s). Fractions are allowed with every unit (`0.25h`) and are exact down
/// to the nanosecond (rounded to the nearest one below that). Compound values
/// like `1h 30m` or `1m30s` are passed to [`humantime::parse_duration`]
/// (where `M` means months and `m` minutes).
pub(crate) fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let (number, unit) = split_number(s, "duration", DURATION_EXAMPLES)?;
    if unit.chars().any(|c| c.is_ascii_digit()) {
        // Several number/unit pairs: leave the grammar to humantime.
        return humantime::parse_duration(s).map_err(|e| format!("{e}; {DURATION_EXAMPLES}"));
    }
    const NS_PER_S: u128 = 1_000_000_000;
    let nanos_per_unit: u128 = match unit {
        "ns" | "nsec" | "nanos" | "nanosecond" | "nanoseconds" => 1,
        "us" | "µs" | "μs" | "usec" | "micros" | "microsecond" | "microseconds" => 1_000,
        "ms" | "msec" | "millis" | "millisecond" | "milliseconds" => 1_000_000,
        "" | "s" | "sec" | "secs" | "second" | "seconds" => NS_PER_S,
        "m" | "min" | "mins" | "minute" | "minutes" => 60 * NS_PER_S,
        "h" | "hr" | "hrs" | "hour" | "hours" => 3_600 * NS_PER_S,
        "d" | "day" | "days" => 86_400 * NS_PER_S,
        "M" => {
            return Err(format!(
                "unit \"M\" is ambiguous for a duration: use \"m\" or \"min\" for minutes; {DURATION_EXAMPLES}"
            ))
        }
        other => {
            return Err(format!(
                "unknown duration unit {other:?} (expected ns, us, ms, s, m/min, h or d); {DURATION_EXAMPLES}"
            ))
        }
    };
    let (nanos, _) = number
        .times(nanos_per_unit)
        .ok_or_else(|| too_large("duration"))?;
    let secs = u64::try_from(nanos / NS_PER_S).map_err(|_| too_large("duration"))?;
    // The remainder is below 10^9 and so fits in u32.
    let subsec = (nanos % NS_PER_S) as u32;
    Ok(Duration::new(secs, subsec))
}

/// Parses a size in bytes: `512`, `64KiB`, `1MiB`, `1.5MB`, `64k`, `2 GiB`.
///
/// Units are case-insensitive. Decimal (SI) units are powers of 1000:
/// `k`/`KB` = 1000, `M`/`MB` = 1000², `G`/`GB`, `T`/`TB`. Binary (IEC) units
/// are powers of 1024: `Ki`/`KiB` = 1024, `Mi`/`MiB` = 1024², `GiB`, `TiB`.
/// `B` (or no unit) is bytes. Fractions of a unit are rounded to the nearest
/// byte (`1.1MiB` = 1153434); a fractional number of plain bytes is an error.
///
/// (Handwritten rather than `bytesize::ByteSize::from_str`, which saturates
/// silently on overflow and goes through `f64` for fractions.)
pub(crate) fn parse_size(s: &str) -> Result<u64, String> {
    let s = s.trim();
    let (number, unit) = split_number(s, "size", SIZE_EXAMPLES)?;
    let factor: u128 = match unit.to_ascii_lowercase().as_str() {
        "" | "b" | "byte" | "bytes" => 1,
        "k" | "kb" => 1_000,
        "m" | "mb" => 1_000_000,
        "g" | "gb" => 1_000_000_000,
        "t" | "tb" => 1_000_000_000_000,
        "ki" | "kib" => 1 << 10,
        "mi" | "mib" => 1 << 20,
        "gi" | "gib" => 1 << 30,
        "ti" | "tib" => 1 << 40,
        _ => {
            return Err(format!(
                "unknown size unit {unit:?} (expected B, k/KB, MB, GB, TB = powers of 1000, or KiB, MiB, GiB, TiB = powers of 1024); {SIZE_EXAMPLES}"
            ))
        }
    };
    if factor == 1 && !number.is_integer() {
        return Err(format!(
            "a size in bytes must be a whole number; {SIZE_EXAMPLES}"
        ));
    }
    let (bytes, _) = number.times(factor).ok_or_else(|| too_large("size"))?;
    u64::try_from(bytes).map_err(|_| too_large("size"))
}

/// Parses a bitrate into bits per second: `4Mbit`, `4Mbit/s`, `4mbps`,
/// `500kbit`, `10Gbit`, `2.5M`, `64kb/s`; a plain number is bit/s.
///
/// Prefixes are SI (powers of 1000) and case-insensitive: `k`, `M`, `G`,
/// `T`. The unit after the prefix may be omitted or be `bit`, `bits`, `b`,
/// `bps`, `bit/s`, `bits/s` or `b/s` (case-insensitive, except that a capital
/// `B` alone, as in `MB/s`, means bytes and is rejected so that a byte rate
/// is never silently read as a bit rate). Rounded to the nearest bit/s.
pub(crate) fn parse_bitrate(s: &str) -> Result<u64, String> {
    let s = s.trim();
    let (number, unit) = split_number(s, "bitrate", BITRATE_EXAMPLES)?;
    let (factor, rest): (u128, &str) = match unit.chars().next() {
        Some('k' | 'K') => (1_000, &unit[1..]),
        Some('m' | 'M') => (1_000_000, &unit[1..]),
        Some('g' | 'G') => (1_000_000_000, &unit[1..]),
        Some('t' | 'T') => (1_000_000_000_000, &unit[1..]),
        _ => (1, unit),
    };
    if rest.starts_with('i') || rest.starts_with('I') {
        return Err(format!(
            "binary prefixes ({unit:?}) are not used for bitrates; use SI prefixes (k = 1000); {BITRATE_EXAMPLES}"
        ));
    }
    let is_bytes =
        matches!(rest, "B" | "B/s" | "Bps") || rest.to_ascii_lowercase().starts_with("byte");
    if is_bytes {
        return Err(format!(
            "{unit:?} is a byte rate; bitrates are given in bits (1 byte = 8 bits); {BITRATE_EXAMPLES}"
        ));
    }
    match rest.to_ascii_lowercase().as_str() {
        "" | "b" | "bit" | "bits" | "bps" | "b/s" | "bit/s" | "bits/s" => {}
        _ => {
            return Err(format!(
                "unknown bitrate unit {unit:?} (expected an optional k, M, G or T followed by an optional bit, bit/s or bps); {BITRATE_EXAMPLES}"
            ))
        }
    }
    let (bits, _) = number.times(factor).ok_or_else(|| too_large("bitrate"))?;
    u64::try_from(bits).map_err(|_| too_large("bitrate"))
}

/// Parses a count: `1000`, `10k`, `1.5k`, `2M`, `1G`, `1_000_000`.
///
/// Suffixes are SI (powers of 1000) and case-insensitive: `k` = 10³,
/// `M` = 10⁶, `G` = 10⁹. The result must be a whole number (`1.5k` is fine,
/// `1.0005k` is an error).
pub(crate) fn parse_count(s: &str) -> Result<u64, String> {
    let s = s.trim();
    let (number, unit) = split_number(s, "count", COUNT_EXAMPLES)?;
    let factor: u128 = match unit.to_ascii_lowercase().as_str() {
        "" => 1,
        "k" => 1_000,
        "m" => 1_000_000,
        "g" => 1_000_000_000,
        _ => {
            return Err(format!(
                "unknown count suffix {unit:?} (expected k, M or G); {COUNT_EXAMPLES}"
            ))
        }
    };
    let (count, exact) = number.times(factor).ok_or_else(|| too_large("count"))?;
    if !exact {
        return Err(format!("a count must be a whole number; {COUNT_EXAMPLES}"));
    }
    u64::try_from(count).map_err(|_| too_large("count"))
}

/// Parses a share: a percentage (`0.5%`, `2 %`) or a plain fraction (`0.02`), as a
/// fraction (`0.5%` is 0.005). Not checked against any range.
pub(crate) fn parse_share(s: &str) -> Result<f64, String> {
    let s = s.trim();
    let (number, unit) = split_number(s, "share", SHARE_EXAMPLES)?;
    let divisor = match unit {
        "%" => 100.0,
        "" => 1.0,
        other => {
            return Err(format!(
                "unknown unit {other:?} for a share (expected % or none); {SHARE_EXAMPLES}"
            ))
        }
    };
    let value = number.mantissa as f64 / 10f64.powi(number.scale as i32);
    Ok(value / divisor)
}

/// Formats `value` with three significant digits (fewer decimals as it
/// grows), for values in `[0, 999.5)`.
fn three_digits(value: f64) -> String {
    if value < 9.995 {
        format!("{value:.2}")
    } else if value < 99.95 {
        format!("{value:.1}")
    } else {
        format!("{value:.0}")
    }
}

/// Picks the first unit in which `value` (in `units[0]`, each next unit 1000
/// times larger) rounds to less than 1000, and formats it with three
/// significant digits: `850 µs`, `12.3 ms`, `1.20 s`. Non-finite values
/// print as `n/a`.
fn scaled(value: f64, units: &[&str]) -> String {
    if !value.is_finite() {
        return "n/a".to_owned();
    }
    if value < 0.0 {
        return format!("-{}", scaled(-value, units));
    }
    let mut v = value;
    let mut i = 0;
    while v >= 999.5 && i + 1 < units.len() {
        v /= 1000.0;
        i += 1;
    }
    let unit = units.get(i).copied().unwrap_or_default();
    if v >= 999.5 {
        // Beyond the largest unit: no decimals.
        format!("{v:.0} {unit}")
    } else {
        format!("{} {unit}", three_digits(v))
    }
}

/// Formats a duration given in microseconds with three significant digits
/// and a fitting unit: `850 µs`, `12.3 ms`, `1.20 s`; below a microsecond in
/// nanoseconds (`0.5` → `500 ns`); zero is `0 µs`.
/// Durations of 1000 s and more are shown in whole seconds.
pub(crate) fn format_duration_us(us: f64) -> String {
    if us == 0.0 {
        return "0 µs".to_owned();
    }
    if us.is_finite() && us.abs() < 0.9995 {
        // Below a microsecond, nanoseconds read better than `0.12 µs`.
        return scaled(us * 1000.0, &["ns"]);
    }
    scaled(us, &["µs", "ms", "s"])
}

/// Formats a duration as a person would type it: in the largest unit that divides it
/// (`0s`, `100ms`, `7d`, `90s`, `1h`), else with three significant digits (`1.23 s`).
/// For the limits error messages state and the values they refuse.
pub(crate) fn format_span(d: Duration) -> String {
    const UNITS: [(&str, u128); 7] = [
        ("d", 86_400_000_000_000),
        ("h", 3_600_000_000_000),
        ("min", 60_000_000_000),
        ("s", 1_000_000_000),
        ("ms", 1_000_000),
        ("us", 1_000),
        ("ns", 1),
    ];
    let ns = d.as_nanos();
    if ns == 0 {
        return "0s".to_owned();
    }
    match UNITS.iter().find(|(_, size)| ns.is_multiple_of(*size)) {
        Some((unit, size)) if ns / size < 10_000 || *unit == "d" => format!("{}{unit}", ns / size),
        _ => format_duration_us(ns as f64 / 1e3),
    }
}

/// Formats a whole number of microseconds as [`format_duration_us`] does.
pub(crate) fn format_us(us: u64) -> String {
    format_duration_us(us as f64)
}

/// Formats a ratio as `×1.23` (`–` when unknown).
pub(crate) fn format_ratio(v: Option<f64>) -> String {
    v.map_or_else(|| "–".to_owned(), |v| format!("×{v:.2}"))
}

/// Formats a byte count with IEC (1024-based) units and one decimal:
/// `512 B`, `64.0 KiB`, `12.0 MiB`.
pub(crate) fn format_bytes(b: u64) -> String {
    bytesize::ByteSize::b(b).display().iec().to_string()
}

/// Formats a bitrate given in Mbit/s with three significant digits and a
/// fitting SI unit: `850 kbit/s`, `4.00 Mbit/s`, `12.3 Gbit/s`.
pub(crate) fn format_mbit(mbit_s: f64) -> String {
    scaled(
        mbit_s * 1e6,
        &["bit/s", "kbit/s", "Mbit/s", "Gbit/s", "Tbit/s"],
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_are_percentages_or_fractions() {
        let ok = |s: &str| parse_share(s).unwrap_or_else(|e| panic!("{s:?}: {e}"));
        assert!((ok("0.5%") - 0.005).abs() < 1e-15);
        assert!((ok(" 2 % ") - 0.02).abs() < 1e-15);
        assert!((ok("0.02") - 0.02).abs() < 1e-15);
        assert_eq!(ok("0"), 0.0);
        assert!(parse_share("-1%").is_err());
        assert!(parse_share("2 percent").is_err());
        assert!(parse_share("").is_err());
    }

    fn ok_dur(s: &str) -> Duration {
        parse_duration(s).unwrap_or_else(|e| panic!("{s:?} should parse: {e}"))
    }

    #[test]
    fn durations() {
        assert_eq!(ok_dur("10s"), Duration::from_secs(10));
        assert_eq!(ok_dur("1.5s"), Duration::from_millis(1500));
        assert_eq!(ok_dur("500ms"), Duration::from_millis(500));
        assert_eq!(ok_dur("3m"), Duration::from_secs(180));
        assert_eq!(ok_dur("2min"), Duration::from_secs(120));
        assert_eq!(ok_dur("1h"), Duration::from_secs(3600));
        assert_eq!(ok_dur("250us"), Duration::from_micros(250));
        assert_eq!(ok_dur("250µs"), Duration::from_micros(250));
        assert_eq!(ok_dur("5"), Duration::from_secs(5));
        assert_eq!(ok_dur("0.25"), Duration::from_millis(250));
        assert_eq!(ok_dur(" 10 s "), Duration::from_secs(10));
        assert_eq!(ok_dur("0.3s"), Duration::from_millis(300));
        assert_eq!(ok_dur("0.1234h"), Duration::from_millis(444_240));
        assert_eq!(ok_dur("1.5ms"), Duration::from_micros(1500));
        assert_eq!(ok_dur("0"), Duration::ZERO);
        assert_eq!(ok_dur("1d"), Duration::from_secs(86_400));
        // Compound values go to humantime.
        assert_eq!(ok_dur("1h 30m"), Duration::from_secs(5400));
        assert_eq!(ok_dur("1m30s"), Duration::from_secs(90));
    }

    #[test]
    fn duration_errors_explain() {
        for bad in ["", "s", "-5s", "10 parsecs", "1.2.3s", "3M", "abc", "1e3"] {
            let err = parse_duration(bad).expect_err(bad);
            assert!(
                err.contains("e.g."),
                "{bad:?}: error without example: {err}"
            );
        }
        let err = parse_duration("10 parsecs").expect_err("unknown unit");
        assert!(err.contains("\"parsecs\""), "{err}");
        assert!(parse_duration("-5s")
            .expect_err("negative")
            .contains("negative"));
        assert!(parse_duration("99999999999999999999999h").is_err());
    }

    fn ok_size(s: &str) -> u64 {
        parse_size(s).unwrap_or_else(|e| panic!("{s:?} should parse: {e}"))
    }

    #[test]
    fn sizes() {
        assert_eq!(ok_size("512"), 512);
        assert_eq!(ok_size("512B"), 512);
        assert_eq!(ok_size("64KiB"), 65_536);
        assert_eq!(ok_size("64kib"), 65_536);
        assert_eq!(ok_size("64k"), 64_000);
        assert_eq!(ok_size("64KB"), 64_000);
        assert_eq!(ok_size("1MiB"), 1_048_576);
        assert_eq!(ok_size("1.5MB"), 1_500_000);
        assert_eq!(ok_size("1.5 MiB"), 1_572_864);
        assert_eq!(ok_size("1.1MiB"), 1_153_434);
        assert_eq!(ok_size("2GiB"), 2 << 30);
        assert_eq!(ok_size("1_000"), 1000);
        assert_eq!(ok_size("16384GiB"), 16384u64 << 30);
    }

    #[test]
    fn size_errors() {
        for bad in [
            "",
            "KiB",
            "1.5",
            "12 parsecs",
            "-1KiB",
            "99999999999999999999TiB",
        ] {
            let err = parse_size(bad).expect_err(bad);
            assert!(
                err.contains("e.g.") || err.contains("too large"),
                "{bad:?}: {err}"
            );
        }
        assert!(parse_size("99999999TiB")
            .expect_err("overflow")
            .contains("too large"));
    }

    fn ok_rate(s: &str) -> u64 {
        parse_bitrate(s).unwrap_or_else(|e| panic!("{s:?} should parse: {e}"))
    }

    #[test]
    fn bitrates() {
        assert_eq!(ok_rate("4Mbit"), 4_000_000);
        assert_eq!(ok_rate("4Mbit/s"), 4_000_000);
        assert_eq!(ok_rate("4mbps"), 4_000_000);
        assert_eq!(ok_rate("4Mbps"), 4_000_000);
        assert_eq!(ok_rate("4 Mb/s"), 4_000_000);
        assert_eq!(ok_rate("500kbit"), 500_000);
        assert_eq!(ok_rate("10Gbit"), 10_000_000_000);
        assert_eq!(ok_rate("2.5M"), 2_500_000);
        assert_eq!(ok_rate("64000"), 64_000);
        assert_eq!(ok_rate("100bit/s"), 100);
    }

    #[test]
    fn bitrate_errors() {
        for bad in ["", "4MB/s", "4MB", "4MiB", "4Mibit", "4 furlongs", "fast"] {
            let err = parse_bitrate(bad).expect_err(bad);
            assert!(err.contains("e.g."), "{bad:?}: {err}");
        }
        assert!(parse_bitrate("4MB/s")
            .expect_err("bytes")
            .contains("byte rate"));
    }

    #[test]
    fn counts() {
        for (s, n) in [
            ("1000", 1000),
            ("10k", 10_000),
            ("1.5k", 1500),
            ("2M", 2_000_000),
            ("2m", 2_000_000),
            ("1G", 1_000_000_000),
            ("0", 0),
        ] {
            assert_eq!(parse_count(s), Ok(n), "{s}");
        }
        for bad in ["", "1.5", "1.0005k", "10x", "-3", "k"] {
            let err = parse_count(bad).expect_err(bad);
            assert!(err.contains("e.g."), "{bad:?}: {err}");
        }
        assert!(parse_count("99999999999999999999999").is_err());
    }

    #[test]
    fn format_durations() {
        assert_eq!(format_duration_us(850.0), "850 µs");
        assert_eq!(format_duration_us(12_345.0), "12.3 ms");
        assert_eq!(format_duration_us(1_200_000.0), "1.20 s");
        assert_eq!(format_duration_us(3.25), "3.25 µs");
        assert_eq!(format_duration_us(0.5), "500 ns");
        assert_eq!(format_duration_us(999.7), "1.00 ms");
        assert_eq!(format_duration_us(0.0), "0 µs");
        assert_eq!(format_duration_us(5_000_000_000.0), "5000 s");
        assert_eq!(format_duration_us(-850.0), "-850 µs");
        assert_eq!(format_duration_us(f64::NAN), "n/a");
    }

    #[test]
    fn spans_read_as_typed() {
        assert_eq!(format_span(Duration::ZERO), "0s");
        assert_eq!(format_span(Duration::from_millis(100)), "100ms");
        assert_eq!(format_span(Duration::from_secs(7 * 86_400)), "7d");
        assert_eq!(format_span(Duration::from_secs(3600)), "1h");
        assert_eq!(format_span(Duration::from_secs(90)), "90s");
        assert_eq!(format_span(Duration::from_millis(1500)), "1500ms");
        assert_eq!(
            format_span(Duration::from_secs(100 * 365 * 86_400)),
            "36500d"
        );
        assert_eq!(format_span(Duration::from_nanos(1_234_567_891)), "1.23 s");
    }

    #[test]
    fn format_sizes_and_rates() {
        assert_eq!(format_bytes(12 << 20), "12.0 MiB");
        assert_eq!(format_bytes(512), "512 B");
        assert_eq!(format_bytes(65_536), "64.0 KiB");
        assert_eq!(format_mbit(4.0), "4.00 Mbit/s");
        assert_eq!(format_mbit(0.85), "850 kbit/s");
        assert_eq!(format_mbit(12_345.0), "12.3 Gbit/s");
        assert_eq!(format_mbit(123.4), "123 Mbit/s");
    }
}
