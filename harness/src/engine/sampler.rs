//! Interval samples: what each link delivered in every second of a measured window.
//!
//! A task on the harness's own runtime wakes once a second (counted from the opening of the
//! window) and reads what the clients' meters already keep: cumulative frames and payload
//! bytes (atomics; the previous reading is subtracted) and the latency histogram of the
//! interval, which each meter restarts when it is taken. Nothing is copied per client, so
//! sampling stays on with thousands of clients. Frames are counted when they are received (and only those
//! scheduled inside the window), so a stall shows as a second with nothing and then a burst.
//! The last sample covers the rest of the window when its length is not a whole number of
//! seconds.
//!
//! A soak samples at an interval of its own, and with each interval also the process: its
//! resident memory, its open descriptors and the CPU it used (see [`ProcessSample`]).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use hdrhistogram::Histogram;
use simulators::clock::RunClock;
use simulators::metrics::{latency_histogram, Meter};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::sys::process;

/// How often the sampler takes a sample.
pub(crate) const INTERVAL: Duration = Duration::from_secs(1);

/// A last interval shorter than this is not reported (it would be mostly noise).
const MIN_LAST_INTERVAL: Duration = Duration::from_millis(100);

/// What one link delivered in one interval of the window.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct IntervalSample {
    /// Link id.
    pub link: String,
    /// End of the interval, seconds after the window opened.
    pub t_s: f64,
    /// Length of the interval, seconds.
    pub interval_s: f64,
    /// Frames received in the interval (of those scheduled in the window).
    pub frames: u64,
    /// Their payload bytes.
    pub bytes: u64,
    /// Their latency (last byte read − scheduled time), µs.
    #[serde(with = "simulators::metrics::histogram_v2")]
    pub latency_us: Histogram<u64>,
}

impl IntervalSample {
    /// Payload bit rate over the interval, Mbit/s.
    pub fn goodput_mbit_s(&self) -> f64 {
        if self.interval_s > 0.0 {
            self.bytes as f64 * 8.0 / self.interval_s / 1e6
        } else {
            0.0
        }
    }
}

/// What the whole process was and did in one interval of the window (taken only when
/// asked for: a soak).
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ProcessSample {
    /// End of the interval, seconds after the window opened.
    pub t_s: f64,
    /// Length of the interval, seconds.
    pub interval_s: f64,
    /// Resident memory at its end, bytes.
    pub rss_bytes: u64,
    /// Open descriptors at its end.
    pub open_fds: u64,
    /// CPU seconds (user + system) the process used in it.
    pub cpu_s: f64,
    /// Frames received in it, every link (of those scheduled in the window).
    pub frames: u64,
    /// Their payload bytes.
    pub bytes: u64,
    /// Frames scheduled in it, every link (filled in by the phase, which knows the plan).
    pub frames_due: u64,
}

/// Called with every interval's samples (one per link) as they are taken: live progress.
pub(crate) type IntervalHook = Arc<dyn Fn(&[IntervalSample]) + Send + Sync>;

/// A running sampler.
#[derive(Debug)]
pub(crate) struct Sampler {
    stop: CancellationToken,
    task: JoinHandle<(Vec<IntervalSample>, Vec<ProcessSample>)>,
}

/// One meter's previous reading.
struct Client {
    link: String,
    meter: Arc<Meter>,
    /// Frames and bytes at the previous reading.
    last: (u64, u64),
}

impl Sampler {
    /// Starts sampling `meters` (link id, meter) every [`INTERVAL`] from `start_ns` (run
    /// clock; the moment the window opened), calling `hook` with each interval's samples.
    pub(crate) fn start(
        meters: Vec<(String, Arc<Meter>)>,
        clock: RunClock,
        start_ns: u64,
        hook: Option<IntervalHook>,
    ) -> Sampler {
        Sampler::start_every(meters, clock, start_ns, INTERVAL, false, hook)
    }

    /// [`Sampler::start`] with samples every `every` instead of every second and, with
    /// `process`, a [`ProcessSample`] of each interval.
    pub(crate) fn start_every(
        meters: Vec<(String, Arc<Meter>)>,
        clock: RunClock,
        start_ns: u64,
        every: Duration,
        process: bool,
        hook: Option<IntervalHook>,
    ) -> Sampler {
        let every_ns = (every.as_nanos() as u64).max(1);
        let stop = CancellationToken::new();
        let token = stop.clone();
        let task = tokio::spawn(async move {
            let mut clients: Vec<Client> = meters
                .into_iter()
                .map(|(link, meter)| {
                    // Start the first interval now.
                    meter.take_interval(&mut latency_histogram());
                    Client {
                        last: (meter.frames(), meter.bytes()),
                        link,
                        meter,
                    }
                })
                .collect();
            let mut samples = Vec::new();
            let mut processes = Vec::new();
            let mut cpu_before = process.then(cpu_seconds);
            let mut last_ns = start_ns;
            for k in 1u64.. {
                let tick = start_ns + k * every_ns;
                let stopped = tokio::select! {
                    _ = token.cancelled() => true,
                    _ = tokio::time::sleep_until(clock.instant_at(tick).into()) => false,
                };
                let now = clock.now_ns();
                if stopped && now.saturating_sub(last_ns) < MIN_LAST_INTERVAL.as_nanos() as u64 {
                    break;
                }
                let taken = take(&mut clients, start_ns, last_ns, now);
                if let Some(before) = &mut cpu_before {
                    let cpu = cpu_seconds();
                    processes.push(ProcessSample {
                        t_s: now.saturating_sub(start_ns) as f64 / 1e9,
                        interval_s: now.saturating_sub(last_ns) as f64 / 1e9,
                        rss_bytes: process::rss_bytes().unwrap_or(0),
                        open_fds: process::open_fds().unwrap_or(0),
                        cpu_s: (cpu - *before).max(0.0),
                        frames: taken.iter().map(|s| s.frames).sum(),
                        bytes: taken.iter().map(|s| s.bytes).sum(),
                        frames_due: 0,
                    });
                    *before = cpu;
                }
                if let Some(hook) = &hook {
                    hook(&taken);
                }
                samples.extend(taken);
                last_ns = now;
                if stopped {
                    break;
                }
            }
            (samples, processes)
        });
        Sampler { stop, task }
    }

    /// Takes the last (partial) sample now and returns them all, in time order.
    pub(crate) async fn finish(self) -> Vec<IntervalSample> {
        self.finish_all().await.0
    }

    /// [`Sampler::finish`], with the process's samples (empty unless asked for).
    pub(crate) async fn finish_all(mut self) -> (Vec<IntervalSample>, Vec<ProcessSample>) {
        self.stop.cancel();
        (&mut self.task).await.unwrap_or_default()
    }
}

impl Drop for Sampler {
    /// A sampler dropped without [`Sampler::finish`] (an error between the window's opening
    /// and closing) stops instead of sampling for the rest of the process's life.
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// CPU seconds the process has used so far (0 when it cannot tell).
fn cpu_seconds() -> f64 {
    process::usage().map_or(0.0, |u| u.total_s())
}

/// One sample per link: what its meters counted since their previous reading.
fn take(clients: &mut [Client], start_ns: u64, last_ns: u64, now_ns: u64) -> Vec<IntervalSample> {
    let mut by_link: BTreeMap<String, IntervalSample> = BTreeMap::new();
    let mut order: Vec<String> = Vec::new();
    for c in clients.iter_mut() {
        let sample = by_link.entry(c.link.clone()).or_insert_with(|| {
            order.push(c.link.clone());
            IntervalSample {
                link: c.link.clone(),
                t_s: now_ns.saturating_sub(start_ns) as f64 / 1e9,
                interval_s: now_ns.saturating_sub(last_ns) as f64 / 1e9,
                frames: 0,
                bytes: 0,
                latency_us: latency_histogram(),
            }
        });
        let now = (c.meter.frames(), c.meter.bytes());
        sample.frames += now.0.saturating_sub(c.last.0);
        sample.bytes += now.1.saturating_sub(c.last.1);
        c.meter.take_interval(&mut sample.latency_us);
        c.last = now;
    }
    order
        .into_iter()
        .filter_map(|l| by_link.remove(&l))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use simulators::metrics::ClientMeter;

    #[test]
    fn samples_are_deltas_per_link() {
        let (a, b) = (ClientMeter::alone(), ClientMeter::alone());
        let mut clients = vec![
            Client {
                link: "x".into(),
                meter: a.meter().clone(),
                last: (0, 0),
            },
            Client {
                link: "x".into(),
                meter: b.meter().clone(),
                last: (0, 0),
            },
        ];
        let record = |m: &ClientMeter, latency_ns: u64| {
            m.record_frame(1000, 0, 0, latency_ns, u64::MAX, None);
        };
        record(&a, 5_000_000);
        record(&b, 7_000_000);
        let first = take(&mut clients, 0, 0, 1_000_000_000);
        assert_eq!(first.len(), 1);
        assert_eq!((first[0].frames, first[0].bytes), (2, 2000));
        assert!((first[0].goodput_mbit_s() - 0.016).abs() < 1e-9);
        record(&a, 1_000_000);
        let second = take(&mut clients, 0, 1_000_000_000, 2_500_000_000);
        assert_eq!((second[0].frames, second[0].bytes), (1, 1000));
        assert_eq!(second[0].latency_us.len(), 1);
        assert!(second[0].latency_us.max() < 1_100, "only the new frame");
        assert!((second[0].t_s - 2.5).abs() < 1e-9 && (second[0].interval_s - 1.5).abs() < 1e-9);
    }
}
