//! Whether the recording servers keep up with their schedule after a ramp: the warm-up
//! waits for them to catch up before the window opens, and stops waiting when they
//! plainly cannot.

use std::time::Duration;

/// The most a recording server's frames may leave behind their due instants for it to
/// count as keeping up: a server that is not starved for CPU releases them within
/// microseconds.
const CAUGHT_UP_LAG: Duration = Duration::from_millis(10);
/// How long the servers must keep up before the window opens.
const CAUGHT_UP_HOLD: Duration = Duration::from_millis(250);
/// Period over which the warm-up judges whether a server's lag still shrinks.
const CATCH_UP_PERIOD: Duration = Duration::from_millis(500);

/// Whether the recording servers keep up with their schedule, from the lag they report
/// at every poll: they have caught up once no frame left more than [`CAUGHT_UP_LAG`] late
/// for [`CAUGHT_UP_HOLD`]; they never will if their lag stopped shrinking from one
/// [`CATCH_UP_PERIOD`] to the next (an overloaded server: that is its steady state).
#[derive(Debug)]
pub(super) struct CatchUp {
    calm_since: u64,
    /// The worst lag since `calm_since`.
    calm_worst: Duration,
    period_start: u64,
    period_worst: Duration,
    /// The worst lag of the last full period, once one has passed since `watch`.
    last_period: Option<Duration>,
    shrinking: bool,
}

impl CatchUp {
    pub(super) fn new(now: u64) -> Self {
        CatchUp {
            calm_since: now,
            calm_worst: Duration::ZERO,
            period_start: now,
            period_worst: Duration::ZERO,
            last_period: None,
            shrinking: true,
        }
    }

    /// Starts judging the trend afresh (when the load stops changing).
    pub(super) fn watch(&mut self, now: u64) {
        self.period_start = now;
        self.period_worst = Duration::ZERO;
        self.last_period = None;
        self.shrinking = true;
    }

    pub(super) fn poll(&mut self, now: u64, lag: Duration) {
        if lag > CAUGHT_UP_LAG {
            self.calm_since = now;
            self.calm_worst = Duration::ZERO;
        } else {
            self.calm_worst = self.calm_worst.max(lag);
        }
        self.period_worst = self.period_worst.max(lag);
        if now.saturating_sub(self.period_start) >= CATCH_UP_PERIOD.as_nanos() as u64 {
            self.shrinking = self.last_period.is_none_or(|p| self.period_worst < p);
            self.last_period = Some(self.period_worst);
            self.period_worst = Duration::ZERO;
            self.period_start = now;
        }
    }

    fn caught_up(&self, now: u64) -> bool {
        now.saturating_sub(self.calm_since) >= CAUGHT_UP_HOLD.as_nanos() as u64
    }

    /// Whether to stop waiting: caught up, or never going to.
    pub(super) fn settled(&self, now: u64) -> bool {
        self.caught_up(now) || !self.shrinking
    }

    /// The lag to report: over the hold when caught up, else over the last periods.
    pub(super) fn lag(&self, now: u64) -> Duration {
        if self.caught_up(now) {
            self.calm_worst
        } else {
            self.period_worst.max(self.last_period.unwrap_or_default())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: u64 = 1_000_000;

    fn run(lags_ms: impl Fn(u64) -> u64, until_ms: u64) -> Option<u64> {
        let mut c = CatchUp::new(0);
        c.watch(0);
        (0..until_ms).step_by(10).find(|&t| {
            c.poll(t * MS, Duration::from_millis(lags_ms(t)));
            c.settled(t * MS)
        })
    }

    #[test]
    fn a_server_that_keeps_up_is_caught_up_after_the_hold() {
        assert_eq!(run(|_| 0, 5_000), Some(250));
    }

    #[test]
    fn a_draining_backlog_is_waited_for_until_it_is_gone() {
        // 800 ms behind, catching up 100 ms per second of wall time.
        let at = run(|t| 800u64.saturating_sub(t / 10), 20_000).expect("settles");
        assert!((8_000..=8_400).contains(&at), "{at}");
    }

    #[test]
    fn a_lag_that_no_longer_shrinks_ends_the_wait() {
        // An overloaded server: its lag grows with time.
        let at = run(|t| 50 + t / 2, 20_000).expect("settles");
        assert!(at <= 1_100, "{at}");
    }
}
