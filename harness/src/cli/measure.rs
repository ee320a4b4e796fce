//! How a measuring command (run, bulk) repeats its phases and how long each lasts.

use std::time::Duration;

use clap::{Args, ValueEnum};
use simulators::transport::Mode;

use super::{count_within, duration_within, ExportArgs};
use crate::commands::UsageError;
use crate::engine::deployment::Timing;
use crate::units::format_span;

/// Which modes to run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ModeArg {
    /// Plaintext only.
    Plain,
    /// TLS only.
    Tls,
    /// Plaintext and TLS, interleaved.
    Both,
}

impl ModeArg {
    /// The modes in the order each repeat runs them.
    pub fn modes(self) -> Vec<Mode> {
        match self {
            ModeArg::Plain => vec![Mode::Plain],
            ModeArg::Tls => vec![Mode::Tls],
            ModeArg::Both => vec![Mode::Plain, Mode::Tls],
        }
    }
}

/// Flags every measuring command shares.
#[derive(Clone, Debug, Args)]
pub struct MeasureArgs {
    /// Plaintext, TLS, or both (interleaved: plain, tls, plain, tls, …).
    #[arg(long, value_enum, default_value_t = ModeArg::Both)]
    pub mode: ModeArg,
    /// Length of each measured window (e.g. 10s, 1m): 100ms to 7d.
    #[arg(long, value_parser = duration_within(MIN_WINDOW, MAX_WINDOW), default_value = "10s")]
    pub duration: Duration,
    /// Time before each window for connections to settle (e.g. 2s): 0s to 1h.
    #[arg(long, value_parser = duration_within(Duration::ZERO, MAX_WARMUP), default_value = "2s")]
    pub warmup: Duration,
    /// Repeats of each mode; figures are medians over them: 1 to 100.
    #[arg(long, default_value_t = 3, value_parser = count_within::<u32>(1, MAX_REPEAT))]
    pub repeat: u32,
    /// Where to write the report, in which formats.
    #[command(flatten)]
    pub export: ExportArgs,
    /// Scale warm-up and window by F (e.g. 0.3 for a brief CI run; warm-up stays ≥ 1.2 s):
    /// above 0 and at most 100, leaving a window of at least 100ms.
    #[arg(long, value_name = "F", env = "VMSBENCH_MULTIPLIER", default_value_t = 1.0, value_parser = parse_multiplier)]
    pub multiplier: f64,
    /// `--with-limits`.
    #[command(flatten)]
    pub limits: super::WithLimitsArgs,
}

/// Warm-up is never scaled below this (unless it was asked for shorter): paced streams
/// wait up to one GOP (1 s) for their first key frame before frames flow.
pub const MIN_SCALED_WARMUP: Duration = Duration::from_millis(1200);

/// The shortest measured window: a few frames of the slowest camera (7 fps).
pub const MIN_WINDOW: Duration = Duration::from_millis(100);
/// The longest measured window: a week.
pub const MAX_WINDOW: Duration = Duration::from_secs(7 * 86_400);
/// The longest warm-up: connections settle in seconds.
pub const MAX_WARMUP: Duration = Duration::from_secs(3600);
/// Most repeats of each mode.
pub const MAX_REPEAT: u64 = 100;
/// The largest `--multiplier`.
pub const MAX_MULTIPLIER: f64 = 100.0;

/// Parses `--multiplier` / `VMSBENCH_MULTIPLIER`: a number above zero, at most
/// [`MAX_MULTIPLIER`].
pub fn parse_multiplier(s: &str) -> Result<f64, String> {
    let m = s
        .trim()
        .parse::<f64>()
        .ok()
        .filter(|m| m.is_finite() && *m > 0.0)
        .ok_or_else(|| format!("{s:?} is not a positive number (e.g. 0.3)"))?;
    if m > MAX_MULTIPLIER {
        return Err(format!(
            "must be above 0 and at most {MAX_MULTIPLIER}, got {m}"
        ));
    }
    Ok(m)
}

impl MeasureArgs {
    /// The warm-up and window of each phase with `--multiplier` applied: both scaled, the
    /// warm-up kept at [`MIN_SCALED_WARMUP`] or the warm-up asked for, whichever is shorter.
    pub fn timing(&self) -> Timing {
        let scale = |d: Duration| {
            Duration::try_from_secs_f64(d.as_secs_f64() * self.multiplier).unwrap_or(d)
        };
        Timing {
            warmup: scale(self.warmup).max(self.warmup.min(MIN_SCALED_WARMUP)),
            duration: scale(self.duration),
        }
    }

    /// [`MeasureArgs::timing`], refused when `--multiplier` leaves a window shorter than
    /// [`MIN_WINDOW`] or longer than [`MAX_WINDOW`].
    pub fn checked_timing(&self) -> anyhow::Result<Timing> {
        let t = self.timing();
        if t.duration < MIN_WINDOW || t.duration > MAX_WINDOW {
            return Err(UsageError(format!(
                "--duration {} × --multiplier {} leaves a window of {}: it must be at least {} \
                 and at most {}",
                format_span(self.duration),
                self.multiplier,
                format_span(t.duration),
                format_span(MIN_WINDOW),
                format_span(MAX_WINDOW)
            ))
            .into());
        }
        Ok(t)
    }

    /// How many phases a run has: every mode in every repeat.
    pub fn phases(&self) -> usize {
        self.repeat as usize * self.mode.modes().len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scaled_timing_keeps_a_warm_up_long_enough_for_a_key_frame() {
        use clap::Parser as _;
        let timing = |args: &[&str]| {
            let o = crate::Opts::parse_from(["vmsbench", "run"].iter().chain(args.iter()).copied());
            let crate::Command::Run(r) = o.command else {
                panic!("run")
            };
            r.measure.timing()
        };
        let t = timing(&["--multiplier", "0.3"]);
        assert_eq!(t.duration, Duration::from_secs(3));
        assert_eq!(t.warmup, MIN_SCALED_WARMUP, "2 s × 0.3 is raised to 1.2 s");
        let t = timing(&["--multiplier", "2", "--warmup", "1s"]);
        assert_eq!(
            (t.warmup, t.duration),
            (Duration::from_secs(2), Duration::from_secs(20))
        );
        let t = timing(&["--multiplier", "0.1", "--warmup", "200ms"]);
        assert_eq!(
            t.warmup,
            Duration::from_millis(200),
            "never longer than asked"
        );
        if std::env::var_os("VMSBENCH_MULTIPLIER").is_none() {
            let t = timing(&[]);
            assert_eq!(
                (t.warmup, t.duration),
                (Duration::from_secs(2), Duration::from_secs(10))
            );
        }
        for bad in ["0", "-1", "inf", "NaN", "x", "101"] {
            assert!(parse_multiplier(bad).is_err(), "{bad}");
        }
        let checked = |args: &[&str]| {
            let o = crate::Opts::parse_from(["vmsbench", "run"].iter().chain(args.iter()).copied());
            let crate::Command::Run(r) = o.command else {
                panic!("run")
            };
            r.measure.checked_timing().map_err(|e| e.to_string())
        };
        assert!(checked(&["--multiplier", "0.5", "--duration", "1s"]).is_ok());
        assert_eq!(
            checked(&["--multiplier", "0.01", "--duration", "1s"])
                .err()
                .as_deref(),
            Some(
                "--duration 1s × --multiplier 0.01 leaves a window of 10ms: it must be at \
                 least 100ms and at most 7d"
            )
        );
    }
}
