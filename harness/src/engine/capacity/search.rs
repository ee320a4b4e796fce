//! The capacity search itself, free of sockets and clocks: which camera count to try next,
//! given what passed and failed so far.
//!
//! Per mode: a coarse ramp from `start` up to `max` until a count fails — doubling, or
//! growing by up to 8× while the busiest CPUs are lightly loaded (a step at 10 % load
//! predicts room for far more than twice the cameras) and by only 1.25× near saturation — then
//! bisection between the largest passing count and the smallest failing one until they
//! are within `precision` of each other, then confirmation: the best passing count and the
//! first failing count are run again until each is settled. A count is settled when its
//! last two runs agree (or it has passed every time, at least twice); until then it counts
//! as failing if any run failed. So a pass must hold on confirmation — if it does not, the
//! bisection resumes below it — and a single failure that does not reproduce (a latency
//! spike) does not cap the search: once the count passes twice in a row the search goes on
//! above it. A count whose runs keep disagreeing fails after [`MAX_RUNS`] runs. Several modes
//! are searched in turn, step by step, so that each sees the same machine state; the whole
//! search stops when the next step would overrun the wall-clock budget.
//!
//! [`Searches`] is the state machine the real command drives; the tests run it against
//! any evaluator (a closure in the tests).

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use simulators::transport::Mode;

/// Where a search starts and how fine it gets.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct SearchParams {
    /// First camera count tried (at least 1).
    pub start: u32,
    /// Largest camera count tried.
    pub max: u32,
    /// Bisection stops when the bracket is at most this fraction of the best passing count
    /// wide (and at least 1 camera): 0.05 finds the capacity within 5 %.
    pub precision: f64,
    /// The wall-clock budget of the whole search (every mode).
    pub budget: Duration,
    /// What a step takes whatever its camera count (warm-up, window, drain, start and
    /// stop); the search adds the most time per camera any step has taken beyond this.
    pub step_estimate: Duration,
}

/// The verdict on one step.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Verdict {
    /// Whether the objective held.
    pub pass: bool,
    /// The busiest side's CPU load at this step (cores used / cores it had, 0–1), if known:
    /// it sizes the next ramp step.
    pub load: Option<f64>,
    /// Wall-clock time the step took.
    pub took: Duration,
}

/// Runs of one count after which, if its last two runs still disagree, it fails.
pub(crate) const MAX_RUNS: usize = 4;

/// Whether a count with these runs passes, and whether that is settled.
fn judged(runs: &[bool]) -> (bool, bool) {
    let n = runs.len();
    if runs.iter().all(|p| *p) {
        return (true, n >= 2);
    }
    if n >= 2 && runs[n - 1] == runs[n - 2] {
        return (runs[n - 1], true);
    }
    (false, n >= MAX_RUNS)
}

/// Smallest and largest growth of one ramp step.
const RAMP_MIN: f64 = 1.25;
const RAMP_MAX: f64 = 8.0;

/// Which phase of the search a step belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Stage {
    /// Doubling until something fails.
    Ramp,
    /// Halving the bracket between the best pass and the first failure.
    Bisect,
    /// Running a boundary count again.
    Confirm,
}

impl Stage {
    /// The name in reports.
    pub fn as_str(self) -> &'static str {
        match self {
            Stage::Ramp => "ramp",
            Stage::Bisect => "bisect",
            Stage::Confirm => "confirm",
        }
    }
}

/// The next step of one mode's search.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Probe {
    /// Cameras on the recording server.
    pub cameras: u32,
    /// Why this count.
    pub stage: Stage,
}

/// Why a mode's search ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Stop {
    /// The boundary was bracketed to the precision asked for, and confirmed.
    Bracketed,
    /// Even one camera fails the objective.
    NothingPasses,
    /// Every count up to `--max` passed (confirmed at the maximum).
    MaxReached,
    /// The wall-clock budget ran out first: the bracket reached is reported.
    Budget,
    /// Interrupted (Ctrl-C).
    Interrupted,
}

impl Stop {
    /// A few words for people.
    pub fn describe(self) -> &'static str {
        match self {
            Stop::Bracketed => "boundary found and confirmed",
            Stop::NothingPasses => "even one camera fails the objective",
            Stop::MaxReached => "every count up to --max passed",
            Stop::Budget => "stopped by the time budget",
            Stop::Interrupted => "interrupted",
        }
    }
}

/// One mode's search.
#[derive(Clone, Debug)]
pub(crate) struct Search {
    params: SearchParams,
    /// Every run so far, by camera count: pass or fail, in order.
    runs: BTreeMap<u32, Vec<bool>>,
    /// The load measured at the largest count run so far.
    top_load: Option<f64>,
    stopped: Option<Stop>,
}

impl Search {
    /// A search that has run nothing yet. `start` and `max` are clamped so that
    /// `1 <= start <= max`.
    pub(crate) fn new(params: SearchParams) -> Self {
        let max = params.max.max(1);
        Search {
            params: SearchParams {
                max,
                start: params.start.clamp(1, max),
                ..params
            },
            runs: BTreeMap::new(),
            top_load: None,
            stopped: None,
        }
    }

    /// The next ramp count after `top`: twice it, or by how far the load says there is
    /// room (`1 / load`, within [`RAMP_MIN`]–[`RAMP_MAX`]).
    fn ramp_after(&self, top: u32) -> u32 {
        let factor = match self.top_load {
            Some(load) if load > 0.0 => (1.0 / load).clamp(RAMP_MIN, RAMP_MAX),
            _ => 2.0,
        };
        let next = (f64::from(top) * factor).round().min(f64::from(u32::MAX)) as u32;
        next.max(top + 1).min(self.params.max)
    }

    /// The smallest failing count (settled or not).
    pub(crate) fn first_fail(&self) -> Option<u32> {
        self.runs
            .iter()
            .find(|(_, r)| !judged(r).0)
            .map(|(c, _)| *c)
    }

    /// The largest passing count below [`Search::first_fail`].
    pub(crate) fn best_pass(&self) -> Option<u32> {
        let below = self.first_fail().unwrap_or(u32::MAX);
        self.runs
            .range(..below)
            .rev()
            .find(|(_, r)| judged(r).0)
            .map(|(c, _)| *c)
    }

    /// The counts between which the capacity lies, as far as these runs can tell:
    /// from the largest count at and below which every run passed, to one below the
    /// smallest count at and above which every run failed (or the largest count run, when
    /// none did). When every run agreed this is the bisection's bracket; each run that
    /// disagreed with its neighbours widens it. `None` when even the smallest count failed
    /// a run.
    pub(crate) fn range(&self) -> Option<(u32, u32)> {
        let low = self
            .runs
            .iter()
            .take_while(|(_, r)| r.iter().all(|p| *p))
            .last()
            .map(|(c, _)| *c)?;
        let top = self.runs.keys().next_back().copied().unwrap_or(low);
        let high = self
            .runs
            .iter()
            .rev()
            .take_while(|(_, r)| r.iter().all(|p| !*p))
            .last()
            .map_or(top, |(c, _)| c.saturating_sub(1));
        Some((low, high.max(low)))
    }

    fn settled(&self, cameras: u32) -> bool {
        self.runs.get(&cameras).is_some_and(|r| judged(r).1)
    }

    /// Why the search ended, if it has.
    pub(crate) fn stopped(&self) -> Option<Stop> {
        self.stopped
    }

    /// Whether the count's runs disagree (a boundary that did not reproduce).
    pub(crate) fn flaky(&self, cameras: u32) -> bool {
        self.runs
            .get(&cameras)
            .is_some_and(|r| r.contains(&true) && r.contains(&false))
    }

    /// Bracket width at which bisection stops, given the best passing count.
    fn resolution(&self, lo: u32) -> u32 {
        ((f64::from(lo) * self.params.precision).floor() as u32).max(1)
    }

    /// The next count to try, or why there is none.
    fn decide(&self) -> Result<Probe, Stop> {
        if let Some(s) = self.stopped {
            return Err(s);
        }
        let Some(hi) = self.first_fail() else {
            // Ramp: nothing has failed yet.
            let Some(top) = self.runs.keys().next_back().copied() else {
                return Ok(Probe {
                    cameras: self.params.start,
                    stage: Stage::Ramp,
                });
            };
            if top >= self.params.max {
                return if !self.settled(top) {
                    Ok(Probe {
                        cameras: top,
                        stage: Stage::Confirm,
                    })
                } else {
                    Err(Stop::MaxReached)
                };
            }
            return Ok(Probe {
                cameras: self.ramp_after(top),
                stage: Stage::Ramp,
            });
        };
        let lo = self.best_pass().unwrap_or(0);
        if hi - lo > self.resolution(lo) {
            return Ok(Probe {
                cameras: lo + (hi - lo) / 2,
                stage: Stage::Bisect,
            });
        }
        for c in [lo, hi] {
            if c > 0 && !self.settled(c) {
                return Ok(Probe {
                    cameras: c,
                    stage: Stage::Confirm,
                });
            }
        }
        Err(if lo == 0 {
            Stop::NothingPasses
        } else {
            Stop::Bracketed
        })
    }

    /// The next step, or `None` when the search has ended (see [`Search::stopped`]).
    pub(crate) fn next_probe(&mut self) -> Option<Probe> {
        match self.decide() {
            Ok(p) => Some(p),
            Err(s) => {
                self.stopped = Some(s);
                None
            }
        }
    }

    /// Records the verdict of a run at `cameras`.
    pub(crate) fn record(&mut self, cameras: u32, verdict: &Verdict) {
        if self
            .runs
            .keys()
            .next_back()
            .is_none_or(|top| cameras >= *top)
        {
            self.top_load = verdict.load;
        }
        self.runs.entry(cameras).or_default().push(verdict.pass);
    }

    /// Ends the search early (budget, interruption) unless it has already ended.
    pub(crate) fn stop(&mut self, why: Stop) {
        self.stopped.get_or_insert(why);
    }
}

/// The searches of several modes, taking turns one step at a time, within one budget.
#[derive(Clone, Debug)]
pub(crate) struct Searches {
    params: SearchParams,
    modes: Vec<(Mode, Search)>,
    turn: usize,
    /// The most time per camera any step took beyond `params.step_estimate`.
    per_camera: Duration,
}

impl Searches {
    /// One search per mode, in the order given.
    pub(crate) fn new(params: SearchParams, modes: &[Mode]) -> Self {
        Searches {
            params,
            modes: modes.iter().map(|m| (*m, Search::new(params))).collect(),
            turn: 0,
            per_camera: Duration::ZERO,
        }
    }

    /// What a step at `cameras` is expected to take.
    pub(crate) fn estimate(&self, cameras: u32) -> Duration {
        self.params.step_estimate + self.per_camera * cameras
    }

    /// The next step of the next mode whose turn it is, or `None` when every search has
    /// ended. `elapsed` is the wall-clock time spent so far: when the next step would
    /// overrun the budget (see [`Searches::estimate`]), every unfinished search stops with
    /// [`Stop::Budget`].
    pub(crate) fn next(&mut self, elapsed: Duration) -> Option<(Mode, Probe)> {
        let n = self.modes.len();
        for i in 0..n {
            let k = (self.turn + i) % n;
            let Some(probe) = self.modes[k].1.next_probe() else {
                continue;
            };
            if elapsed + self.estimate(probe.cameras) > self.params.budget {
                self.stop_all(Stop::Budget);
                return None;
            }
            self.turn = k + 1;
            return Some((self.modes[k].0, probe));
        }
        None
    }

    /// Records a step's verdict.
    pub(crate) fn record(&mut self, mode: Mode, cameras: u32, verdict: &Verdict) {
        let extra = verdict.took.saturating_sub(self.params.step_estimate);
        self.per_camera = self.per_camera.max(extra / cameras.max(1));
        if let Some((_, s)) = self.modes.iter_mut().find(|(m, _)| *m == mode) {
            s.record(cameras, verdict);
        }
    }

    /// Ends every unfinished search.
    pub(crate) fn stop_all(&mut self, why: Stop) {
        for (_, s) in &mut self.modes {
            s.stop(why);
        }
    }

    /// The search of `mode`.
    pub(crate) fn of(&self, mode: Mode) -> Option<&Search> {
        self.modes.iter().find(|(m, _)| *m == mode).map(|(_, s)| s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs one step: whether `cameras` meet the objective in `mode`.
    trait Evaluator {
        /// Evaluates one step.
        fn evaluate(&mut self, mode: Mode, cameras: u32) -> Verdict;
    }

    impl<F: FnMut(Mode, u32) -> Verdict> Evaluator for F {
        fn evaluate(&mut self, mode: Mode, cameras: u32) -> Verdict {
            self(mode, cameras)
        }
    }

    /// Runs the searches of `modes` to the end against `evaluator`, counting the time its
    /// steps say they took against the budget. Returns the finished searches and every step
    /// in the order it ran.
    fn search(
        params: SearchParams,
        modes: &[Mode],
        mut evaluator: impl Evaluator,
    ) -> (Searches, Vec<(Mode, Probe, bool)>) {
        let mut searches = Searches::new(params, modes);
        let mut elapsed = Duration::ZERO;
        let mut steps = Vec::new();
        while let Some((mode, probe)) = searches.next(elapsed) {
            let verdict = evaluator.evaluate(mode, probe.cameras);
            elapsed += verdict.took;
            searches.record(mode, probe.cameras, &verdict);
            steps.push((mode, probe, verdict.pass));
        }
        (searches, steps)
    }

    const SEC: Duration = Duration::from_secs(1);

    fn params(start: u32, max: u32, precision: f64) -> SearchParams {
        SearchParams {
            start,
            max,
            precision,
            budget: Duration::from_secs(3600),
            step_estimate: SEC,
        }
    }

    fn verdict(pass: bool) -> Verdict {
        Verdict {
            pass,
            load: None,
            took: SEC,
        }
    }

    /// A recording server that holds `capacity` cameras in every mode.
    fn threshold(capacity: u32) -> impl FnMut(Mode, u32) -> Verdict {
        move |_, c| verdict(c <= capacity)
    }

    fn result(s: &Searches, mode: Mode) -> (Option<u32>, Option<u32>, Option<Stop>) {
        let s = s.of(mode).expect("mode searched");
        (s.best_pass(), s.first_fail(), s.stopped())
    }

    fn cameras(steps: &[(Mode, Probe, bool)]) -> Vec<u32> {
        steps.iter().map(|(_, p, _)| p.cameras).collect()
    }

    #[test]
    fn ramp_bisect_confirm_finds_an_exact_threshold() {
        for capacity in [1, 2, 3, 7, 31, 32, 33, 100, 450, 1000, 4095] {
            let (s, steps) = search(
                params(32, 100_000, 0.0),
                &[Mode::Plain],
                threshold(capacity),
            );
            assert_eq!(
                result(&s, Mode::Plain),
                (Some(capacity), Some(capacity + 1), Some(Stop::Bracketed)),
                "capacity {capacity}: {steps:?}"
            );
            // Ramp, then bisection, then the two confirmations.
            let stages: Vec<Stage> = steps.iter().map(|(_, p, _)| p.stage).collect();
            let first_bisect = stages.iter().position(|s| *s != Stage::Ramp).unwrap_or(0);
            assert!(stages[..first_bisect].iter().all(|s| *s == Stage::Ramp));
            assert_eq!(
                &stages[stages.len() - 2..],
                &[Stage::Confirm, Stage::Confirm]
            );
            assert_eq!(
                cameras(&steps[steps.len() - 2..]),
                vec![capacity, capacity + 1]
            );
            // Doubling plus halving: logarithmic in the capacity.
            assert!(
                steps.len() <= 2 * 17 + 2,
                "{capacity}: {} steps",
                steps.len()
            );
        }
    }

    #[test]
    fn the_ramp_grows_by_how_much_room_the_load_leaves() {
        // Load proportional to cameras: 1 % per camera, so capacity is 100.
        let eval = |_, c: u32| Verdict {
            pass: c <= 100,
            load: Some(f64::from(c) / 100.0),
            took: SEC,
        };
        let (s, steps) = search(params(5, 100_000, 0.0), &[Mode::Plain], eval);
        assert_eq!(result(&s, Mode::Plain).0, Some(100));
        let tried = cameras(&steps);
        // 5 cameras at 5 % load: ×8 (the most); 40 at 40 %: ×2.5; 100 at 100 %: ×1.25.
        assert_eq!(&tried[..4], &[5, 40, 100, 125], "{tried:?}");
        // Without a load the ramp doubles.
        let (_, steps) = search(params(5, 100_000, 0.0), &[Mode::Plain], threshold(100));
        assert_eq!(&cameras(&steps)[..6], &[5, 10, 20, 40, 80, 160]);
    }

    #[test]
    fn precision_stops_bisection_early_but_never_overstates() {
        let (s, steps) = search(params(10, 100_000, 0.05), &[Mode::Plain], threshold(1234));
        let (best, fail, stop) = result(&s, Mode::Plain);
        let (best, fail) = (best.expect("a pass"), fail.expect("a fail"));
        assert_eq!(stop, Some(Stop::Bracketed));
        assert!(best <= 1234 && fail > 1234, "{best}..{fail}");
        assert!(f64::from(fail - best) <= (f64::from(best) * 0.05).max(1.0));
        let exact = search(params(10, 100_000, 0.0), &[Mode::Plain], threshold(1234)).1;
        assert!(
            steps.len() < exact.len(),
            "{} vs {}",
            steps.len(),
            exact.len()
        );
    }

    #[test]
    fn a_pass_that_does_not_hold_on_confirmation_moves_the_boundary_down() {
        // 40 passes the first time and fails the second; everything above 40 fails,
        // everything up to 39 passes.
        let mut seen_40 = 0;
        let eval = move |_, c: u32| {
            let pass = if c == 40 {
                seen_40 += 1;
                seen_40 == 1
            } else {
                c < 40
            };
            verdict(pass)
        };
        let (s, steps) = search(params(5, 1000, 0.0), &[Mode::Plain], eval);
        assert_eq!(
            result(&s, Mode::Plain),
            (Some(39), Some(40), Some(Stop::Bracketed)),
            "{steps:?}"
        );
        assert!(s.of(Mode::Plain).is_some_and(|s| s.flaky(40)));
        // 39 was itself confirmed.
        assert_eq!(cameras(&steps).iter().filter(|c| **c == 39).count(), 2);
    }

    #[test]
    fn a_failure_that_does_not_reproduce_does_not_cap_the_search() {
        // The capacity is 700, but the first run at 80 (the third ramp step) fails: a
        // latency spike. Its confirmation passes twice, and the search goes on above it.
        let mut seen_80 = 0;
        let eval = move |_, c: u32| {
            let pass = if c == 80 {
                seen_80 += 1;
                seen_80 > 1
            } else {
                c <= 700
            };
            verdict(pass)
        };
        let (s, steps) = search(params(20, 100_000, 0.0), &[Mode::Plain], eval);
        assert_eq!(
            result(&s, Mode::Plain),
            (Some(700), Some(701), Some(Stop::Bracketed)),
            "{steps:?}"
        );
        assert!(s.of(Mode::Plain).is_some_and(|s| s.flaky(80)));
        assert_eq!(cameras(&steps).iter().filter(|c| **c == 80).count(), 3);
    }

    #[test]
    fn a_count_whose_runs_keep_disagreeing_fails() {
        // 41 alternates fail, pass, fail, pass…: after MAX_RUNS runs it fails for good.
        let mut seen_41 = 0;
        let eval = move |_, c: u32| {
            let pass = if c == 41 {
                seen_41 += 1;
                seen_41 % 2 == 0
            } else {
                c <= 40
            };
            verdict(pass)
        };
        let (s, steps) = search(params(5, 1000, 0.0), &[Mode::Plain], eval);
        assert_eq!(
            result(&s, Mode::Plain),
            (Some(40), Some(41), Some(Stop::Bracketed))
        );
        assert_eq!(
            cameras(&steps).iter().filter(|c| **c == 41).count(),
            MAX_RUNS
        );
        // One that fails twice in a row is settled at once.
        let (_, steps) = search(params(5, 1000, 0.0), &[Mode::Plain], threshold(40));
        assert_eq!(cameras(&steps).iter().filter(|c| **c == 41).count(), 2);
    }

    #[test]
    fn edges_nothing_passes_and_everything_passes() {
        let (s, steps) = search(params(32, 1000, 0.0), &[Mode::Plain], threshold(0));
        assert_eq!(
            result(&s, Mode::Plain),
            (None, Some(1), Some(Stop::NothingPasses))
        );
        // Even one camera's failure is confirmed.
        assert_eq!(cameras(&steps).iter().filter(|c| **c == 1).count(), 2);
        let (s, steps) = search(params(32, 100, 0.0), &[Mode::Plain], threshold(5000));
        assert_eq!(
            result(&s, Mode::Plain),
            (Some(100), None, Some(Stop::MaxReached))
        );
        assert_eq!(cameras(&steps), vec![32, 64, 100, 100]);
        // start above max is clamped; a start that fails bisects down from it.
        let (s, _) = search(params(500, 100, 0.0), &[Mode::Plain], threshold(60));
        assert_eq!(
            result(&s, Mode::Plain),
            (Some(60), Some(61), Some(Stop::Bracketed))
        );
    }

    #[test]
    fn modes_take_turns_and_finish_independently() {
        let eval = |m: Mode, c: u32| verdict(c <= if m == Mode::Plain { 100 } else { 70 });
        let (s, steps) = search(params(16, 10_000, 0.0), &[Mode::Plain, Mode::Tls], eval);
        assert_eq!(result(&s, Mode::Plain).0, Some(100));
        assert_eq!(result(&s, Mode::Tls).0, Some(70));
        // Strictly alternating while both run.
        let both = steps.len().min(2 * 8);
        for (i, (m, _, _)) in steps[..both].iter().enumerate() {
            let expected = if i % 2 == 0 { Mode::Plain } else { Mode::Tls };
            assert_eq!(*m, expected, "{steps:?}");
        }
    }

    #[test]
    fn the_budget_stops_every_mode_with_the_bracket_reached() {
        let mut p = params(1, 1_000_000, 0.0);
        p.budget = Duration::from_secs(10);
        // Each step takes 1 s, so no more than 10 steps run.
        let (s, steps) = search(p, &[Mode::Plain, Mode::Tls], threshold(777));
        assert!(steps.len() <= 10, "{} steps", steps.len());
        for mode in [Mode::Plain, Mode::Tls] {
            let (best, fail, stop) = result(&s, mode);
            assert_eq!(stop, Some(Stop::Budget));
            assert!(best.is_some_and(|b| b <= 777));
            assert!(fail.is_none_or(|f| f > 777));
        }
    }

    #[test]
    fn step_time_is_estimated_per_camera_so_a_big_step_does_not_overrun() {
        // 1 s plus 10 ms per camera: 100 cameras take 2 s, 200 take 3 s, 400 take 5 s.
        let mut p = params(100, 1_000_000, 0.0);
        p.budget = Duration::from_secs(9);
        let eval = |_, c: u32| Verdict {
            pass: true,
            load: None,
            took: SEC + Duration::from_millis(10) * c,
        };
        let (s, steps) = search(p, &[Mode::Plain], eval);
        // 2 s + 3 s = 5 s spent; 400 cameras would take 5 s more: over 9 s, not started.
        assert_eq!(cameras(&steps), vec![100, 200]);
        let s = s.of(Mode::Plain).expect("searched");
        assert_eq!(
            (s.best_pass(), s.stopped()),
            (Some(200), Some(Stop::Budget))
        );
    }

    #[test]
    fn a_stricter_objective_never_yields_more_cameras() {
        // Any predicate that passes only where a looser one passes, both monotone in
        // cameras, must not find a larger capacity, whatever the precision.
        for (loose_cap, strict_cap) in [(100, 50), (100, 100), (37, 36), (1000, 1), (5, 0)] {
            for precision in [0.0, 0.05, 0.2] {
                let run = |cap| {
                    let p = params(8, 100_000, precision);
                    let (s, _) = search(p, &[Mode::Plain], threshold(cap));
                    result(&s, Mode::Plain).0.unwrap_or(0)
                };
                let (l, s) = (run(loose_cap), run(strict_cap));
                assert!(
                    s <= l,
                    "strict {s} > loose {l} ({loose_cap}/{strict_cap}, {precision})"
                );
            }
        }
    }

    #[test]
    fn the_range_is_the_bracket_widened_by_every_run_that_disagreed() {
        let with = |runs: &[(u32, &[bool])]| {
            let mut s = Search::new(params(1, 10_000, 0.05));
            for (c, outcomes) in runs {
                for pass in *outcomes {
                    s.record(*c, &verdict(*pass));
                }
            }
            s.range()
        };
        // Every run agreed: the bracket.
        let clean: &[(u32, &[bool])] = &[
            (100, &[true]),
            (200, &[true]),
            (400, &[false]),
            (300, &[true, true]),
            (350, &[false, false]),
        ];
        assert_eq!(with(clean), Some((300, 349)));
        // A pass above a failure, and a failure below a pass, widen it both ways.
        let noisy: &[(u32, &[bool])] = &[
            (100, &[true]),
            (200, &[true, false, false]),
            (300, &[true, true]),
            (350, &[true, false, false]),
            (400, &[false]),
        ];
        assert_eq!(with(noisy), Some((100, 399)));
        // Nothing failed: up to the largest count run.
        assert_eq!(with(&[(8, &[true]), (16, &[true, true])]), Some((16, 16)));
        // The smallest count failed once: no count is known to pass.
        assert_eq!(with(&[(1, &[false, true]), (2, &[true])]), None);
        // Let the real search run on an exact threshold: its range is its bracket.
        let (s, _) = search(params(32, 100_000, 0.05), &[Mode::Plain], threshold(450));
        let s = s.of(Mode::Plain).expect("searched");
        let (low, high) = s.range().expect("a range");
        assert_eq!(Some(low), s.best_pass());
        assert!(high >= low && high < s.first_fail().expect("a failure"));
    }
}
