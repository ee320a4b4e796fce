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

    /// The clock whose epoch was `epoch_unix_ns` on this host's wall clock: how the
    /// processes of a run spread over hosts share one time base (as far as their wall
    /// clocks agree). An epoch in the future reads as now.
    pub fn from_unix_epoch(epoch_unix_ns: u64) -> RunClock {
        let now_unix = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX));
        let elapsed = Duration::from_nanos(now_unix.saturating_sub(epoch_unix_ns));
        let now = Instant::now();
        RunClock {
            epoch: now.checked_sub(elapsed).unwrap_or(now),
        }
    }

    /// The wall-clock time of this clock's epoch, ns since the Unix epoch.
    pub fn epoch_unix_ns(&self) -> u64 {
        let now_unix = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX));
        now_unix.saturating_sub(self.now_ns())
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
