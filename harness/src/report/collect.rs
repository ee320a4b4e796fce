//! From the phases' outcomes to the report's records: each link's figures per mode (medians
//! over the repeats, histograms merged), and the cost of TLS per link from the plain/TLS
//! pairs.

use std::collections::BTreeMap;

use hdrhistogram::Histogram;
use simulators::metrics::RecordUs;
use simulators::transport::Mode;

use super::interval;
use super::run::*;
use super::soak::SoakInterval;
use super::stats::{median, summarize, summarize_samples};
use super::verdicts::undecided;
use super::{encode_histogram, Percentiles, TlsInfo};
use crate::engine::deployment::{HostOutcome, Incompatibility, LinkOutcome, PhaseOutcome};

/// Every phase of one link in one mode.
#[derive(Debug, Default)]
struct Series {
    samples: Vec<Sample>,
    tls: Option<TlsInfo>,
    group: Option<String>,
    encrypted: bool,
    cpu_attribution: String,
    errors: BTreeMap<String, u64>,
    messages: Vec<String>,
    /// Latency histograms of every phase merged.
    latency_us: Option<Histogram<u64>>,
    uncorrected_latency_us: Option<Histogram<u64>>,
}

/// Accumulates phases into a report.
#[derive(Debug, Default)]
pub(crate) struct Collector {
    series: BTreeMap<(String, Mode), Series>,
    /// Link ids in the order they were first seen (the scenario's order).
    order: Vec<String>,
    roles: BTreeMap<(String, Mode), Vec<(f64, f64)>>,
    failovers: Vec<FailoverResult>,
    ramps: Vec<RampResult>,
    incompatibilities: Vec<Incompatibility>,
    hosts: BTreeMap<(String, Mode), HostResult>,
    host_order: Vec<String>,
    certificate_events: Vec<CertificateEventResult>,
    repeats: BTreeMap<Mode, usize>,
    intervals: Vec<IntervalRecord>,
    cpu_windows: Vec<CpuWindowRecord>,
    soak: Vec<SoakInterval>,
}

/// Adds `h` into `into` (starting it if empty).
fn merge_into(into: &mut Option<Histogram<u64>>, h: &Histogram<u64>) {
    match into {
        Some(total) => {
            if total.add(h).is_err() {
                for v in h.iter_recorded() {
                    total.record_us_n(v.value_iterated_to(), v.count_at_value());
                }
            }
        }
        None => *into = Some(h.clone()),
    }
}

fn quantile(h: &Histogram<u64>, q: f64) -> u64 {
    if h.is_empty() {
        0
    } else {
        h.value_at_quantile(q)
    }
}

fn per_gb(cpu_s: f64, bytes: u64) -> Option<f64> {
    (bytes > 0).then(|| cpu_s / (bytes as f64 / 1e9))
}

fn per_frame(cpu_s: f64, frames: u64) -> Option<f64> {
    (frames > 0).then(|| cpu_s * 1e6 / frames as f64)
}

impl Sample {
    /// The figures of one link in one phase.
    pub fn from_link(l: &LinkOutcome, p: &PhaseOutcome) -> Sample {
        let r = &l.received;
        let window_s = p.window_s.max(1e-9);
        Sample {
            bytes_received: r.bytes,
            goodput_mbit_s: r.bytes as f64 * 8.0 / window_s / 1e6,
            offered_mbit_s: l.offered_bps / 1e6,
            frames_due: l.frames_due,
            frames_sent: l.sent.frames_sent,
            frames_received: r.frames,
            late_frames: r.late_frames,
            dropped_frames: l.sent.dropped_frames,
            sequence_gaps: r.sequence_gaps,
            frames_per_s: r.frames as f64 / window_s,
            latency_us: Percentiles::of(&r.latency_us),
            uncorrected_latency_us: Percentiles::of(&r.uncorrected_latency_us),
            delay_variation_us: Percentiles::of(&r.delay_variation_us),
            connect_us: quantile(&r.connect_us, 0.5),
            handshake_us: quantile(&r.handshake_us, 0.5),
            handshake_us_p99: quantile(&r.handshake_us, 0.99),
            server_handshake_us: quantile(&l.server_handshake_us, 0.5),
            ttff_us: quantile(&r.ttff_us, 0.5),
            ttff_us_p99: quantile(&r.ttff_us, 0.99),
            cpu_server_s: l.cpu_server_s,
            cpu_client_s: l.cpu_client_s,
            cpu_process_s: p.process_cpu.total_s(),
            cpu_server_s_per_gb: per_gb(l.cpu_server_s, r.bytes),
            cpu_client_s_per_gb: per_gb(l.cpu_client_s, r.bytes),
            cpu_server_us_per_frame: per_frame(l.cpu_server_s, r.frames),
            cpu_client_us_per_frame: per_frame(l.cpu_client_s, r.frames),
            cores_server: l.cpu_server_s / window_s,
            cores_client: l.cpu_client_s / window_s,
            peak_rss_bytes: p.peak_rss_bytes,
            rss_per_stream_bytes: (l.streams > 0).then(|| {
                p.peak_rss_bytes.saturating_sub(p.baseline_rss_bytes) as f64 / l.streams as f64
            }),
            steady_rss_bytes: p.steady.rss_bytes,
            rss_per_connection_bytes: (p.steady.connections > 0).then(|| {
                p.steady.rss_bytes.saturating_sub(p.baseline_rss_bytes) as f64
                    / p.steady.connections as f64
            }),
            connections: r.connections,
            streams: l.streams,
            window_s: p.window_s,
            reconnects: r.reconnects,
            recovery_us_max: if r.recovery_us.is_empty() {
                0
            } else {
                r.recovery_us.max()
            },
            transfer_us: quantile(&r.transfer_us, 0.5),
            kernel_check: KernelCheck::of(&r.wire),
            wan: l.wan.as_ref().map(WanFigures::of),
        }
    }
}

impl Collector {
    /// Adds one phase.
    pub(crate) fn add(&mut self, p: &PhaseOutcome) {
        let repeat = {
            let r = self.repeats.entry(p.mode).or_default();
            *r += 1;
            *r
        };
        for l in &p.links {
            if !self.order.contains(&l.link) {
                self.order.push(l.link.clone());
            }
            let series = self.series.entry((l.link.clone(), p.mode)).or_default();
            series.samples.push(Sample::from_link(l, p));
            series.group = l.group.map(str::to_owned);
            series.encrypted = l.encrypted;
            series.cpu_attribution = l.cpu_attribution.to_owned();
            if let Some(n) = &l.received.negotiated {
                series.tls = Some(TlsInfo::from(n));
            }
            for (k, v) in l.received.errors.iter().chain(&l.server_failures) {
                *series.errors.entry(k.clone()).or_default() += v;
            }
            for m in &l.client_errors {
                if !series.messages.contains(m) {
                    series.messages.push(m.clone());
                }
            }
            merge_into(&mut series.latency_us, &l.received.latency_us);
            merge_into(
                &mut series.uncorrected_latency_us,
                &l.received.uncorrected_latency_us,
            );
        }
        self.cpu_windows.push(CpuWindowRecord {
            mode: p.mode,
            repeat,
            cpus: p.machine,
        });
        self.soak.extend(p.process.iter().map(SoakInterval::from));
        for i in &p.intervals {
            let h = &i.latency_us;
            self.intervals.push(IntervalRecord {
                t_s: i.t_s,
                repeat,
                mode: p.mode,
                link: i.link.clone(),
                goodput_mbit_s: i.goodput_mbit_s(),
                frames: i.frames,
                latency_us: IntervalLatency {
                    p50: quantile(h, 0.5),
                    p99: quantile(h, 0.99),
                    max: if h.is_empty() { 0 } else { h.max() },
                },
                interval_s: i.interval_s,
                histogram: Some(encode_histogram(h)),
            });
        }
        let window_s = p.window_s.max(1e-9);
        for r in &p.roles {
            self.roles
                .entry((r.role.clone(), p.mode))
                .or_default()
                .push((r.cpu_s, r.cpu_s / window_s));
        }
        if p.ramp.clients > 0 {
            self.ramps.push(RampResult {
                mode: p.mode,
                repeat,
                outcome: p.ramp.clone(),
                connections_per_s: p.ramp.connections as f64 / p.ramp.seconds.max(1e-9),
            });
        }
        for f in &p.failovers {
            self.failovers.push(FailoverResult {
                mode: p.mode,
                repeat,
                outcome: f.clone(),
            });
        }
        for i in &p.incompatibilities {
            if !self.incompatibilities.contains(i) {
                self.incompatibilities.push(i.clone());
            }
        }
        for h in &p.hosts {
            if !self.host_order.contains(&h.host) {
                self.host_order.push(h.host.clone());
            }
            let entry = self
                .hosts
                .entry((h.host.clone(), p.mode))
                .or_insert_with(|| HostResult {
                    mode: p.mode,
                    repeats: 0,
                    outcome: HostOutcome {
                        host: h.host.clone(),
                        fault: h.fault.clone(),
                        ..HostOutcome::default()
                    },
                });
            entry.repeats += 1;
            let o = &mut entry.outcome;
            for l in &h.links {
                if !o.links.contains(l) {
                    o.links.push(l.clone());
                }
            }
            o.connections += h.connections;
            o.frames += h.frames;
            o.frames_lost += h.frames_lost;
            for (k, v) in &h.client_errors {
                *o.client_errors.entry(k.clone()).or_default() += v;
            }
            for (k, v) in &h.server_errors {
                *o.server_errors.entry(k.clone()).or_default() += v;
            }
        }
        for e in &p.certificate_events {
            self.certificate_events.push(CertificateEventResult {
                repeat,
                outcome: e.clone(),
            });
        }
    }

    /// Per host and mode, in the scenario's host order (plaintext first).
    pub(crate) fn hosts(&self) -> Vec<HostResult> {
        let mut out = Vec::new();
        for host in &self.host_order {
            for mode in [Mode::Plain, Mode::Tls] {
                if let Some(h) = self.hosts.get(&(host.clone(), mode)) {
                    out.push(h.clone());
                }
            }
        }
        out
    }

    /// Certificate events seen, in order.
    pub(crate) fn certificate_events(&self) -> Vec<CertificateEventResult> {
        self.certificate_events.clone()
    }

    /// Per-role CPU medians.
    pub(crate) fn roles(&self) -> Vec<RoleResult> {
        self.roles
            .iter()
            .map(|((role, mode), v)| {
                let cpu: Vec<f64> = v.iter().map(|x| x.0).collect();
                let cores: Vec<f64> = v.iter().map(|x| x.1).collect();
                RoleResult {
                    role: role.clone(),
                    mode: *mode,
                    cpu_s: summarize(&cpu).map_or(0.0, |s| s.0),
                    cores: summarize(&cores).map_or(0.0, |s| s.0),
                }
            })
            .collect()
    }

    /// Failovers seen, in order.
    pub(crate) fn failovers(&self) -> Vec<FailoverResult> {
        self.failovers.clone()
    }

    /// What this machine's CPUs did in each window.
    pub(crate) fn cpu_windows(&self) -> Vec<CpuWindowRecord> {
        self.cpu_windows.clone()
    }

    /// A soak's intervals, in time order (empty unless the phases were soaks).
    pub(crate) fn soak(&self) -> Vec<SoakInterval> {
        self.soak.clone()
    }

    /// How the clients started in each phase.
    pub(crate) fn ramps(&self) -> Vec<RampResult> {
        self.ramps.clone()
    }

    /// Incompatibilities seen.
    pub(crate) fn incompatibilities(&self) -> Vec<Incompatibility> {
        self.incompatibilities.clone()
    }

    /// Every link's and mode's latency histograms, all repeats merged, in report order.
    pub(crate) fn histograms(&self) -> Vec<HistogramRecord> {
        let mut keys: Vec<&(String, Mode)> = self.series.keys().collect();
        keys.sort_by_key(|(l, m)| (self.order.iter().position(|o| o == l), *m));
        keys.into_iter()
            .filter_map(|key| {
                let s = self.series.get(key)?;
                let (latency, uncorrected) =
                    (s.latency_us.as_ref()?, s.uncorrected_latency_us.as_ref()?);
                Some(HistogramRecord {
                    link: key.0.clone(),
                    mode: key.1,
                    repeats: s.samples.len(),
                    latency_us: encode_histogram(latency),
                    uncorrected_latency_us: encode_histogram(uncorrected),
                })
            })
            .collect()
    }

    /// Every interval sample, in the order taken.
    pub(crate) fn intervals(&self) -> Vec<IntervalRecord> {
        self.intervals.clone()
    }

    /// Summarises everything into results and costs.
    pub(crate) fn finish(&self) -> (Vec<LinkResult>, Vec<Cost>) {
        let mut results = Vec::new();
        let mut keys: Vec<&(String, Mode)> = self.series.keys().collect();
        keys.sort_by_key(|(l, m)| (self.order.iter().position(|o| o == l), *m));
        for key in keys {
            let (link, mode) = key;
            let Some(series) = self.series.get(key) else {
                continue;
            };
            let Some((figures, spread)) = summarize_samples(&series.samples) else {
                continue;
            };
            let short = series
                .samples
                .iter()
                .any(|s| s.frames_due > 0 && s.frames_received < s.frames_due);
            results.push(LinkResult {
                link: link.clone(),
                mode: *mode,
                group: series.group.clone(),
                encrypted: series.encrypted,
                short,
                cpu_attribution: series.cpu_attribution.clone(),
                tls: series.tls.clone(),
                figures,
                errors: series.errors.clone(),
                error_messages: series.messages.clone(),
                repeats: series.samples.len(),
                spread,
                samples: series.samples.clone(),
            });
        }
        let mut costs = Vec::new();
        for link in &self.order {
            let plain = self.series.get(&(link.clone(), Mode::Plain));
            let tls = self.series.get(&(link.clone(), Mode::Tls));
            if let (Some(plain), Some(tls)) = (plain, tls) {
                costs.push(cost(link, &plain.samples, &tls.samples));
            }
        }
        (results, costs)
    }
}

fn ratio(a: Option<f64>, b: Option<f64>) -> Option<f64> {
    match (a, b) {
        (Some(t), Some(p)) if p > 0.0 && t.is_finite() => Some(t / p),
        _ => None,
    }
}

fn cost(link: &str, plain: &[Sample], tls: &[Sample]) -> Cost {
    type Figure = fn(&Sample) -> Option<f64>;
    let figures: [(&str, Figure); 5] = [
        ("goodput_ratio", |s| Some(s.goodput_mbit_s)),
        ("latency_p99_ratio", |s| Some(s.latency_us.p99 as f64)),
        ("cpu_per_gb_ratio", |s| {
            per_gb(s.cpu_server_s + s.cpu_client_s, s.bytes_received)
        }),
        ("cpu_server_per_gb_ratio", |s| s.cpu_server_s_per_gb),
        ("cpu_client_per_gb_ratio", |s| s.cpu_client_s_per_gb),
    ];
    let pairs: Vec<(&Sample, &Sample)> = plain.iter().zip(tls).collect();
    let mut medians = BTreeMap::new();
    let mut spread = BTreeMap::new();
    for (name, f) in figures {
        let ratios: Vec<f64> = pairs
            .iter()
            .filter_map(|(p, t)| ratio(f(t), f(p)))
            .collect();
        if let Some((m, s)) = summarize(&ratios) {
            medians.insert(name, m);
            spread.insert(name.to_owned(), s);
        }
    }
    let handshakes: Vec<f64> = tls.iter().map(|s| s.handshake_us as f64).collect();
    let mut intervals = BTreeMap::new();
    for (name, f) in figures {
        let values: Vec<(f64, f64)> = pairs
            .iter()
            .filter_map(|(p, t)| Some((f(p)?, f(t)?)))
            .collect();
        if let Some(i) = interval::ratio(&values) {
            intervals.insert(name.to_owned(), i);
        }
    }
    let both_have_frames = |p: &Sample, t: &Sample| p.frames_received > 0 && t.frames_received > 0;
    let differences: [(&str, Figure); 6] = [
        ("latency_diff_us.p50", |s| Some(s.latency_us.p50 as f64)),
        ("latency_diff_us.p99", |s| Some(s.latency_us.p99 as f64)),
        ("latency_diff_us.p999", |s| Some(s.latency_us.p999 as f64)),
        ("cpu_server_s_per_gb_diff", |s| s.cpu_server_s_per_gb),
        ("cpu_client_s_per_gb_diff", |s| s.cpu_client_s_per_gb),
        ("ttff_diff_us", |s| {
            (s.ttff_us > 0).then_some(s.ttff_us as f64)
        }),
    ];
    let mut diff_medians = BTreeMap::new();
    for (name, f) in differences {
        let values: Vec<(f64, f64)> = pairs
            .iter()
            .filter(|(p, t)| both_have_frames(p, t))
            .filter_map(|(p, t)| Some((f(p)?, f(t)?)))
            .collect();
        let diffs: Vec<f64> = values.iter().map(|(p, t)| t - p).collect();
        if let Some(m) = median(&diffs) {
            diff_medians.insert(name, m);
        }
        if let Some(i) = interval::difference(&values) {
            intervals.insert(name.to_owned(), i);
        }
    }
    if let Some(i) = interval::mean(&handshakes) {
        intervals.insert("handshake_us".to_owned(), i);
    }
    let latency_diff_us = match (
        diff_medians.get("latency_diff_us.p50"),
        diff_medians.get("latency_diff_us.p99"),
        diff_medians.get("latency_diff_us.p999"),
    ) {
        (Some(&p50), Some(&p99), Some(&p999)) => Some(LatencyDiff { p50, p99, p999 }),
        _ => None,
    };
    let mut cost = Cost {
        link: link.to_owned(),
        goodput_ratio: medians.get("goodput_ratio").copied(),
        latency_p99_ratio: medians.get("latency_p99_ratio").copied(),
        cpu_per_gb_ratio: medians.get("cpu_per_gb_ratio").copied(),
        cpu_server_per_gb_ratio: medians.get("cpu_server_per_gb_ratio").copied(),
        cpu_client_per_gb_ratio: medians.get("cpu_client_per_gb_ratio").copied(),
        handshake_us: summarize(&handshakes).map_or(0, |(m, _)| m.round() as u64),
        pairs: pairs.len(),
        spread,
        latency_diff_us,
        cpu_server_s_per_gb_diff: diff_medians.get("cpu_server_s_per_gb_diff").copied(),
        cpu_client_s_per_gb_diff: diff_medians.get("cpu_client_s_per_gb_diff").copied(),
        ttff_diff_us: diff_medians.get("ttff_diff_us").copied(),
        intervals,
        reliable: false,
    };
    cost.reliable = cost.pairs >= 2 && undecided(&cost).is_empty();
    cost
}
