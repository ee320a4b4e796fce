//! From what the roles counted to the phase's outcome: each link's figures (both sides,
//! the CPU of the roles that take part in it), failovers, per-host counts, and what each
//! certificate event did.

use std::collections::BTreeMap;
use std::time::Duration;

use hdrhistogram::Histogram;
use simulators::metrics::{latency_histogram, LinkMetrics, SenderSnapshot};
use simulators::transport::Mode;

use super::events::Replaced;
use super::outcome::{
    CertificateEventOutcome, FailoverOutcome, HostOutcome, LinkOutcome, WanOutcome,
};
use super::roles::{ClientOutcome, ServerCount};
use crate::engine::scenario::{LinkId, Scenario};
use crate::engine::watcher::{Attempt, Tally};

/// What the servers of one link counted.
#[derive(Clone, Debug)]
struct ServerSide {
    sent: SenderSnapshot,
    /// Frames offered to playback subscriptions (whose schedules only the server knows).
    playback_offered: u64,
    failures: BTreeMap<String, u64>,
    handshake_us: Histogram<u64>,
}

impl Default for ServerSide {
    fn default() -> Self {
        ServerSide {
            sent: SenderSnapshot::default(),
            playback_offered: 0,
            failures: BTreeMap::new(),
            handshake_us: latency_histogram(),
        }
    }
}

/// Sums each link's server-side counters over the servers that serve it.
fn server_counts(counts: &[ServerCount]) -> BTreeMap<LinkId, ServerSide> {
    let mut out: BTreeMap<LinkId, ServerSide> = BTreeMap::new();
    for ServerCount {
        stats: s, links, ..
    } in counts
    {
        for link in links {
            let entry = out.entry(*link).or_default();
            for (label, snap) in &s.by_label {
                let (name, playback) = match label.split_once('/') {
                    Some((n, _)) => (n, true),
                    None => (label.as_str(), false),
                };
                if name != link.as_str() {
                    continue;
                }
                entry.sent += *snap;
                if playback {
                    entry.playback_offered += snap.frames_offered;
                }
                if let Some(h) = s.handshake_us_by_label.get(label) {
                    let _ = entry.handshake_us.add(h);
                }
            }
            // Failures cannot be told apart by link before a client says who it is; they
            // are reported on the server's first link.
            if Some(link) == links.first() {
                for (k, v) in &s.failures {
                    *entry.failures.entry(k.clone()).or_default() += v;
                }
            }
        }
    }
    out
}

/// Splits each role's CPU over the links it takes part in, in proportion to their bytes.
fn attribute_cpu(
    participation: &BTreeMap<String, Vec<(LinkId, bool)>>,
    cpu: &BTreeMap<String, f64>,
    bytes: &BTreeMap<LinkId, u64>,
) -> (BTreeMap<LinkId, (f64, f64)>, BTreeMap<LinkId, bool>) {
    let mut shares: BTreeMap<LinkId, (f64, f64)> = BTreeMap::new();
    let mut shared: BTreeMap<LinkId, bool> = BTreeMap::new();
    for (role, parts) in participation {
        let Some(total) = cpu.get(role) else { continue };
        let sum: u64 = parts
            .iter()
            .map(|(l, _)| bytes.get(l).copied().unwrap_or(0))
            .sum();
        for (link, server) in parts {
            let weight = if sum == 0 {
                1.0 / parts.len() as f64
            } else {
                bytes.get(link).copied().unwrap_or(0) as f64 / sum as f64
            };
            let e = shares.entry(*link).or_default();
            if *server {
                e.0 += total * weight;
            } else {
                e.1 += total * weight;
            }
            if parts.len() > 1 {
                shared.insert(*link, true);
            }
        }
    }
    (shares, shared)
}

pub(super) fn failover_outcome(
    scenario: &Scenario,
    clients: &[ClientOutcome],
    host: &str,
    at: Duration,
) -> FailoverOutcome {
    let affected: Vec<&ClientOutcome> = clients
        .iter()
        .filter(|c| c.recorder.as_deref() == Some(host))
        .collect();
    let mut recovery = latency_histogram();
    let mut out = FailoverOutcome {
        host: host.to_owned(),
        failover: scenario.recorder(host).and_then(|r| r.failover.clone()),
        at_s: at.as_secs_f64(),
        clients: affected.iter().map(|c| c.clients).sum(),
        reconnects: 0,
        streams_recovered: 0,
        streams: 0,
        recovery_p50_us: 0,
        recovery_all_us: 0,
        frames_lost: 0,
    };
    for c in affected {
        out.reconnects += c.metrics.reconnects;
        out.streams += c.streams;
        out.frames_lost += c.metrics.sequence_gaps;
        let _ = recovery.add(&c.metrics.recovery_us);
    }
    out.streams_recovered = recovery.len();
    if !recovery.is_empty() {
        out.recovery_p50_us = recovery.value_at_quantile(0.5);
        out.recovery_all_us = recovery.max();
    }
    out
}

/// Per server host: what its clients and the server counted.
pub(super) fn host_outcomes(
    scenario: &Scenario,
    clients: &[ClientOutcome],
    mut server_errors: BTreeMap<String, BTreeMap<String, u64>>,
) -> Vec<HostOutcome> {
    scenario
        .server_hosts()
        .into_iter()
        .map(|host| {
            let mut out = HostOutcome {
                fault: scenario.fault_on(&host).map(|k| k.as_str().to_owned()),
                server_errors: server_errors.remove(&host).unwrap_or_default(),
                ..HostOutcome::default()
            };
            for c in clients.iter().filter(|c| c.host == host) {
                let link = c.link.as_str().to_owned();
                if !out.links.contains(&link) {
                    out.links.push(link);
                }
                out.connections += c.metrics.connections;
                out.frames += c.metrics.frames;
                out.frames_lost += c.metrics.sequence_gaps;
                for (k, v) in &c.metrics.errors {
                    *out.client_errors.entry(k.clone()).or_default() += v;
                }
            }
            out.host = host;
            out
        })
        .collect()
}

/// What each certificate event did, from the watcher's attempts around it.
pub(super) fn certificate_event_outcomes(
    replaced: &[Replaced],
    watched: &BTreeMap<String, Vec<Attempt>>,
    hosts: &[HostOutcome],
    start_ns: u64,
    end_ns: u64,
) -> Vec<CertificateEventOutcome> {
    replaced
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let previous = replaced[..i]
                .iter()
                .rev()
                .find(|e| e.host == r.host)
                .map_or(start_ns, |e| e.done_ns);
            let next = replaced[i + 1..]
                .iter()
                .find(|e| e.host == r.host)
                .map_or(end_ns, |e| e.done_ns);
            let attempts = watched.get(&r.host).map(Vec::as_slice).unwrap_or_default();
            let counts = hosts.iter().find(|h| h.host == r.host);
            let broken = |c: &HostOutcome| {
                ["io", "closed_by_server"]
                    .iter()
                    .map(|k| c.client_errors.get(*k).copied().unwrap_or(0))
                    .sum()
            };
            CertificateEventOutcome {
                host: r.host.clone(),
                action: r.action.to_owned(),
                at_s: r.at.as_secs_f64(),
                serial_before: r.serial_before.clone(),
                serial_after: r.serial_after.clone(),
                before: Tally::between(attempts, previous, r.done_ns),
                after: Tally::between(attempts, r.done_ns, next),
                frames_lost: counts.map_or(0, |c| c.frames_lost),
                connections_broken: counts.map_or(0, broken),
            }
        })
        .collect()
}

/// What the phase's roles counted, ready to become its outcome.
pub(super) struct Counted<'a> {
    /// The scenario.
    pub scenario: &'a Scenario,
    /// Plaintext or TLS.
    pub mode: Mode,
    /// Every client's final figures.
    pub clients: &'a [ClientOutcome],
    /// Every streaming server still running at the end, as it counted.
    pub servers: &'a [ServerCount],
    /// The management server's failed connections, by category.
    pub mgmt_failures: &'a BTreeMap<String, u64>,
    /// Frames (or calls) due in the window, per link.
    pub due: &'a BTreeMap<LinkId, u64>,
    /// Each runtime's CPU seconds in the window.
    pub cpu: &'a BTreeMap<String, f64>,
    /// Each runtime's links and sides.
    pub participation: &'a BTreeMap<String, Vec<(LinkId, bool)>>,
}

/// Each link's figures, both sides.
pub(super) fn link_outcomes(c: &Counted<'_>) -> Vec<LinkOutcome> {
    let servers = server_counts(c.servers);
    let mut per_link: BTreeMap<LinkId, (LinkMetrics, Vec<String>, u64)> = BTreeMap::new();
    let mut wan: BTreeMap<LinkId, Option<WanOutcome>> = BTreeMap::new();
    for client in c.clients {
        if let Some(w) = &client.wan {
            WanOutcome::merge_into(wan.entry(client.link).or_default(), w);
        }
        let e = per_link.entry(client.link).or_default();
        e.0.merge(&client.metrics);
        for err in &client.errors {
            if !e.1.contains(err) {
                e.1.push(err.clone());
            }
        }
        e.2 += client.streams;
    }
    let bytes: BTreeMap<LinkId, u64> = per_link
        .iter()
        .map(|(l, (m, _, _))| (*l, m.bytes))
        .collect();
    let offered = super::roles::offered(c.clients);
    let (cpu_shares, shared) = attribute_cpu(c.participation, c.cpu, &bytes);
    let mut links = Vec::new();
    for link in c.scenario.links() {
        let (received, client_errors, streams) = per_link.remove(&link).unwrap_or_default();
        let ServerSide {
            sent,
            playback_offered: playback_due,
            failures: mut server_failures,
            handshake_us: server_handshake_us,
        } = servers.get(&link).cloned().unwrap_or_default();
        // The management server's failures cannot be told apart by link; they are
        // reported with the registrations.
        if link == LinkId::RecorderMgmt {
            for (k, v) in c.mgmt_failures {
                *server_failures.entry(k.clone()).or_default() += v;
            }
        }
        let (cpu_server_s, cpu_client_s) = cpu_shares.get(&link).copied().unwrap_or_default();
        links.push(LinkOutcome {
            link: link.as_str().to_owned(),
            group: Some(link.group().as_str()),
            encrypted: c.mode == Mode::Tls && c.scenario.encrypted(link),
            received,
            sent,
            server_failures,
            server_handshake_us,
            frames_due: c.due.get(&link).copied().unwrap_or(0) + playback_due,
            offered_bps: offered.get(&link).copied().unwrap_or(0.0),
            streams,
            cpu_server_s,
            cpu_client_s,
            cpu_attribution: if shared.get(&link).copied().unwrap_or(false) {
                "shared_by_bytes"
            } else {
                "exclusive"
            },
            client_errors,
            wan: wan.remove(&link).flatten(),
        });
    }
    links
}
