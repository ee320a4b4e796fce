//! Progress on standard error, for every command. [`Progress`] follows the phases of a
//! measuring run (`run`, `bulk`): which repeat and mode, warm-up or measuring, time left, and
//! the goodput of the last second. [`Steps`] follows a command that measures step by step
//! (the capacity search, the handshake matrix): one line per step, with the time since
//! the command began. [`note`] prints any other line (what is being prepared, an
//! interruption).
//!
//! On a terminal one line is redrawn a few times a second. When standard error is not a
//! terminal (CI logs, a pipe) or `NO_COLOR` is set, the line is not drawn; one plain line
//! per phase is printed instead, so that a log still shows where a run was. Results go to
//! standard output either way.
//!
//! Hand-written rather than `indicatif`: one line, no bar, no styling, and no dependency.

use std::io::{IsTerminal as _, Write as _};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use simulators::transport::Mode;
use tokio::task::JoinHandle;

use crate::engine::deployment::Timing;
use crate::engine::sampler::{IntervalHook, IntervalSample};
use crate::units::format_mbit;

/// `7 s`, `2 min 05 s`: time left, rounded to the second.
fn whole_seconds(d: Duration) -> String {
    let s = d.as_secs_f64().round() as u64;
    if s < 60 {
        format!("{s} s")
    } else {
        format!("{} min {:02} s", s / 60, s % 60)
    }
}

/// How often the live line is redrawn.
const REDRAW: Duration = Duration::from_millis(250);
/// Time a phase takes beyond its warm-up and window (setting up, draining, stopping),
/// until a phase has been timed.
const PHASE_OVERHEAD: Duration = Duration::from_millis(1500);

/// Whether to draw the live line: standard error is a terminal and `NO_COLOR` is not set.
pub(crate) fn live_wanted() -> bool {
    std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

#[derive(Debug)]
struct State {
    timing: Timing,
    phases: usize,
    done: Vec<Duration>,
    current: Option<(u32, u32, Mode, Instant)>,
    /// Goodput of the last interval (all links), and the busiest link's.
    goodput: Option<(f64, String, f64)>,
}

impl State {
    fn line(&self, now: Instant) -> String {
        let Some((repeat, repeats, mode, started)) = self.current else {
            return String::new();
        };
        let elapsed = now.saturating_duration_since(started);
        let (w, d) = (self.timing.warmup, self.timing.duration);
        let stage = if elapsed < w {
            format!(
                "warming up {:.1}/{:.1} s",
                elapsed.as_secs_f64(),
                w.as_secs_f64()
            )
        } else if elapsed < w + d {
            format!(
                "measuring {:.1}/{:.1} s",
                (elapsed - w).as_secs_f64(),
                d.as_secs_f64()
            )
        } else {
            "draining".to_owned()
        };
        let per_phase = if self.done.is_empty() {
            w + d + PHASE_OVERHEAD
        } else {
            self.done.iter().sum::<Duration>() / self.done.len() as u32
        };
        let left_in_phase = per_phase.saturating_sub(elapsed);
        let phases_after = self.phases.saturating_sub(self.done.len() + 1) as u32;
        let left = left_in_phase + per_phase * phases_after;
        let mut line = format!(
            "repeat {repeat}/{repeats} · {mode} · {stage} · ~{} left",
            whole_seconds(left)
        );
        if let (Some((total, link, g)), true) = (&self.goodput, elapsed >= w) {
            line.push_str(&format!(
                " · {} ({link} {})",
                format_mbit(*total),
                format_mbit(*g)
            ));
        }
        line
    }
}

/// Prints one line of progress on standard error, on a line of its own.
pub(crate) fn note(line: &str) {
    eprintln!("{line}");
}

/// Progress of a command that measures step by step: `[  12 s] [ 3/30] label … result`.
#[derive(Debug)]
pub(crate) struct Steps {
    began: Instant,
    total: Option<usize>,
    done: usize,
}

impl Steps {
    /// Progress of `total` steps, if known, from now.
    pub(crate) fn new(total: Option<usize>) -> Steps {
        Steps {
            began: Instant::now(),
            total,
            done: 0,
        }
    }

    /// Time since the command began.
    pub(crate) fn elapsed(&self) -> Duration {
        self.began.elapsed()
    }

    /// A step starts: its number and label, then ` … ` to await its result.
    pub(crate) fn begin(&mut self, label: &str) {
        self.done += 1;
        let count = match self.total {
            Some(n) => format!("{:>width$}/{n}", self.done, width = n.to_string().len()),
            None => format!("step {:>2}", self.done),
        };
        let mut err = std::io::stderr().lock();
        let _ = write!(
            err,
            "[{:>5.0} s] [{count}] {label} … ",
            self.began.elapsed().as_secs_f64()
        );
        let _ = err.flush();
    }

    /// The step started last ended with `result`.
    pub(crate) fn end(&self, result: &str) {
        eprintln!("{result}");
    }
}

/// Progress of a run's phases.
#[derive(Debug)]
pub(crate) struct Progress {
    live: bool,
    state: Arc<Mutex<State>>,
    ticker: Option<JoinHandle<()>>,
}

/// Width of the terminal on standard error, if it says.
fn terminal_width() -> Option<usize> {
    #[cfg(unix)]
    {
        let mut ws = libc::winsize {
            ws_row: 0,
            ws_col: 0,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        // SAFETY: TIOCGWINSZ writes a `winsize` to the pointer given, which is valid.
        let rc = unsafe { libc::ioctl(libc::STDERR_FILENO, libc::TIOCGWINSZ, &mut ws) };
        (rc == 0 && ws.ws_col > 0).then_some(usize::from(ws.ws_col))
    }
    #[cfg(not(unix))]
    {
        None
    }
}

fn draw(line: &str) {
    let width = terminal_width().unwrap_or(100).saturating_sub(1);
    let line: String = line.chars().take(width).collect();
    let mut err = std::io::stderr().lock();
    let _ = write!(err, "\r\x1b[2K{line}");
    let _ = err.flush();
}

fn clear() {
    let mut err = std::io::stderr().lock();
    let _ = write!(err, "\r\x1b[2K");
    let _ = err.flush();
}

impl Progress {
    /// Progress of `phases` phases of `timing` each; live on a terminal (see
    /// [`live_wanted`]). Call from within the runtime that runs the phases.
    pub(crate) fn new(phases: usize, timing: Timing) -> Progress {
        Progress::with_live(phases, timing, live_wanted())
    }

    /// As [`Progress::new`], saying whether to draw the live line.
    pub(crate) fn with_live(phases: usize, timing: Timing, live: bool) -> Progress {
        let state = Arc::new(Mutex::new(State {
            timing,
            phases,
            done: Vec::new(),
            current: None,
            goodput: None,
        }));
        let ticker = live.then(|| {
            let state = state.clone();
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(REDRAW);
                loop {
                    tick.tick().await;
                    let line = state
                        .lock()
                        .map(|s| s.line(Instant::now()))
                        .unwrap_or_default();
                    if !line.is_empty() {
                        draw(&line);
                    }
                }
            })
        });
        Progress {
            live,
            state,
            ticker,
        }
    }

    /// A phase starts.
    pub(crate) fn start_phase(&self, repeat: u32, repeats: u32, mode: Mode) {
        if let Ok(mut s) = self.state.lock() {
            s.current = Some((repeat, repeats, mode, Instant::now()));
            s.goodput = None;
            if !self.live {
                eprintln!(
                    "repeat {repeat}/{repeats} {mode}: warm-up {:?}, measuring {:?}",
                    s.timing.warmup, s.timing.duration
                );
            }
        }
    }

    /// The phase started last has ended.
    pub(crate) fn end_phase(&self) {
        if let Ok(mut s) = self.state.lock() {
            if let Some((.., started)) = s.current.take() {
                s.done.push(started.elapsed());
            }
        }
    }

    /// A hook for the phases' interval samples: the live goodput.
    pub(crate) fn hook(&self) -> IntervalHook {
        let state = self.state.clone();
        Arc::new(move |samples: &[IntervalSample]| {
            let total: f64 = samples.iter().map(IntervalSample::goodput_mbit_s).sum();
            let busiest = samples
                .iter()
                .max_by(|a, b| a.goodput_mbit_s().total_cmp(&b.goodput_mbit_s()));
            if let (Ok(mut s), Some(b)) = (state.lock(), busiest) {
                s.goodput = Some((total, b.link.clone(), b.goodput_mbit_s()));
            }
        })
    }
}

impl Drop for Progress {
    /// Stops redrawing and clears the line, so that what follows starts on a clean line.
    fn drop(&mut self) {
        if let Some(t) = self.ticker.take() {
            t.abort();
        }
        if self.live {
            clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_line_says_where_the_run_is() {
        let timing = Timing {
            warmup: Duration::from_secs(2),
            duration: Duration::from_secs(10),
        };
        let mut s = State {
            timing,
            phases: 4,
            done: vec![Duration::from_secs(13)],
            current: None,
            goodput: None,
        };
        let t0 = Instant::now();
        assert_eq!(s.line(t0), "");
        s.current = Some((1, 2, Mode::Tls, t0));
        // The rest of this phase (13 s each, as the first took) and two more.
        let line = s.line(t0 + Duration::from_secs(1));
        assert_eq!(line, "repeat 1/2 · tls · warming up 1.0/2.0 s · ~38 s left");
        s.goodput = Some((75.5, "viewer-recorder".into(), 70.0));
        let line = s.line(t0 + Duration::from_millis(4500));
        assert_eq!(
            line,
            "repeat 1/2 · tls · measuring 2.5/10.0 s · ~35 s left · 75.5 Mbit/s (viewer-recorder 70.0 Mbit/s)"
        );
        assert!(s.line(t0 + Duration::from_secs(12)).contains("draining"));
        assert_eq!(whole_seconds(Duration::from_millis(125_400)), "2 min 05 s");
    }
}
