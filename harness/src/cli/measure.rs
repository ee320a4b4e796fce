//! How a measuring command (run, bulk) repeats its phases and how long each lasts.

use std::time::Duration;

use clap::{Args, ValueEnum};
use simulators::transport::Mode;

use super::ExportArgs;
use crate::engine::deployment::Timing;
use crate::units::parse_duration;

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
    /// Length of each measured window (e.g. 10s, 1m).
    #[arg(long, value_parser = parse_duration, default_value = "10s")]
    pub duration: Duration,
    /// Time before each window for connections to settle (e.g. 2s).
    #[arg(long, value_parser = parse_duration, default_value = "2s")]
    pub warmup: Duration,
    /// Repeats of each mode; figures are medians over them.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..))]
    pub repeat: u32,
    /// Where to write the report, in which formats.
    #[command(flatten)]
    pub export: ExportArgs,
    /// Scale warm-up and window by F (e.g. 0.3 for a brief CI run; warm-up stays ≥ 1.2 s).
    #[arg(long, value_name = "F", env = "VMSBENCH_MULTIPLIER", default_value_t = 1.0, value_parser = parse_multiplier)]
    pub multiplier: f64,
}

/// Warm-up is never scaled below this (unless it was asked for shorter): paced streams
/// wait up to one GOP (1 s) for their first key frame before frames flow.
pub const MIN_SCALED_WARMUP: Duration = Duration::from_millis(1200);

/// Parses `--multiplier` / `VMSBENCH_MULTIPLIER`: a finite number above zero.
pub fn parse_multiplier(s: &str) -> Result<f64, String> {
    s.trim()
        .parse::<f64>()
        .ok()
        .filter(|m| m.is_finite() && *m > 0.0)
        .ok_or_else(|| format!("{s:?} is not a positive number (e.g. 0.3)"))
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
        for bad in ["0", "-1", "inf", "NaN", "x"] {
            assert!(parse_multiplier(bad).is_err(), "{bad}");
        }
    }
}
