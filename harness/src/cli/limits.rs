//! `--with-limits`: a measuring command measures this machine's ceilings first, in the same
//! sitting, and reports its figures beside them.

use std::time::Duration;

use clap::Args;

use crate::units::parse_duration;

/// Whether to measure this machine's limits before the run, and for how long each.
#[derive(Clone, Debug, Default, Args)]
pub struct WithLimitsArgs {
    /// Measure this machine's limits first (as `vmsbench limits` does, handshakes with the
    /// run's key type only) and report each figure also as a share of its ceiling.
    #[arg(long)]
    pub with_limits: bool,
    /// Time for each limit `--with-limits` measures (e.g. 1s, 200ms).
    #[arg(long, value_name = "DURATION", value_parser = parse_budget, default_value = "1s")]
    pub limits_budget: Duration,
}

/// Parses a budget: a duration of at least 10 ms (less measures nothing but timer noise).
pub fn parse_budget(s: &str) -> Result<Duration, String> {
    let d = parse_duration(s)?;
    if d < Duration::from_millis(10) {
        return Err(format!("{s}: give at least 10ms per measurement"));
    }
    Ok(d)
}
