//! The run clock: one monotonic time base shared by every role of a run, in nanoseconds.
//!
//! Frames carry their scheduled and sent instants on this clock, so a receiver in the same
//! process can compute latency without any clock synchronisation.

use std::time::{Duration, Instant};

/// Nanoseconds since an epoch shared by all roles of a run.
#[derive(Clone, Copy, Debug)]
pub struct RunClock {
    epoch: Instant,
}

impl Default for RunClock {
    fn default() -> Self {
        Self::new()
    }
}

impl RunClock {
    /// A clock whose epoch is now.
    pub fn new() -> Self {
        RunClock {
            epoch: Instant::now(),
        }
    }

    /// Nanoseconds elapsed since the epoch.
    pub fn now_ns(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }

    /// This clock as a host whose clock runs `ahead` of this one would read it: what a
    /// sender on another machine stamps its frames with when the clocks disagree. For
    /// tests of figures that must not depend on clocks agreeing.
    pub fn ahead_by(&self, ahead: Duration) -> RunClock {
        RunClock {
            epoch: self.epoch.checked_sub(ahead).unwrap_or(self.epoch),
        }
    }

    /// The [`Instant`] that corresponds to `ns` on this clock.
    pub fn instant_at(&self, ns: u64) -> Instant {
        self.epoch + Duration::from_nanos(ns)
    }
}
