//! Roles of a phase run by agents: what the coordinator and an agent say to each other
//! about one phase, the agent's side ([`agent`]: it runs its share of the plan as told) and
//! the coordinator's ([`coordinator`]: each agent's share as the phase loop sees it).
//!
//! A phase, as the messages go (after the greeting of `engine::control`):
//!
//! ```text
//! coordinator                                   agent
//!   Prepare {mode, share of the plan,  ───────►   loads certificates, makes the clock
//!            clock epoch, certificates}
//!                                      ◄───────   Prepared
//!   Ping {t0}  (a few times)           ───────►
//!                                      ◄───────   Pong {t0, agent's clock}
//!   Start {roles, directory}  (in plan order, ─►  starts them
//!            as many times as needed)  ◄───────   Started {listeners}
//!                                      ◄───────   Status (every 100 ms: settled, lag, CPU, …)
//!   Open {start_ns, end_ns}            ───────►   opens its window, samples it
//!                                      ◄───────   Interval (every second)
//!   Close {end_ns}                     ───────►
//!   Collect                            ───────►   reads what its servers counted
//!                                      ◄───────   Counted
//!   Finish                             ───────►   stops its clients
//!                                      ◄───────   Final
//!   Stop  (once every client everywhere stopped) ► stops its servers
//!                                      ◄───────   Stopped
//!   …next phase, or Bye
//! ```
//!
//! Either side sends `Heartbeat` when it has nothing else to say; three missed ones, or a
//! dropped connection, and the other side is lost: the coordinator aborts the run naming
//! the agent, an agent stops every role it runs and exits. `Abort` says why a phase ends
//! early; `Failed` is an agent's error.

pub(crate) mod agent;
pub(crate) mod coordinator;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use simulators::transport::Mode;

use super::events::{Happened, ShippedSchedule};
use super::outcome::Steady;
use super::plan::Plan;
use super::roles::{ClientOutcome, ServerCount};
use super::Listening;
use crate::engine::credentials::Shipped;
use crate::engine::sampler::IntervalSample;
use crate::engine::watcher::Attempt;
use crate::sys::process;

/// What the coordinator says during a phase.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub(crate) enum ToAgent {
    /// The agent's share of a phase.
    Prepare {
        mode: Mode,
        plan: Box<Plan>,
        /// The run clock's epoch on the coordinator's wall clock, ns since 1970.
        epoch_unix_ns: u64,
        credentials: Shipped,
        /// Addresses given for host names (the placement's host map).
        hosts: BTreeMap<String, std::net::IpAddr>,
        /// Whether other host names go through the system's resolver.
        resolve: bool,
        /// The window's scheduled events, with what the agent's servers will present.
        schedule: ShippedSchedule,
    },
    /// A clock probe: the coordinator's run clock when it was sent.
    Ping { t0: u64 },
    /// Start roles `first..first + count` of the share; `directory` is every listener
    /// started so far anywhere.
    Start {
        first: usize,
        count: usize,
        directory: Vec<Listening>,
    },
    /// The window opened at `start_ns` (run clock) and closes at `end_ns` unless a
    /// `Close` comes first.
    Open { start_ns: u64, end_ns: u64 },
    /// The window closed at `end_ns` (the planned end, or earlier when cut short).
    Close { end_ns: u64 },
    /// Read what the servers counted (before any client leaves).
    Collect,
    /// Stop every client and send what they measured (the servers go on).
    Finish,
    /// Stop everything else: the phase is over.
    Stop,
    /// The phase ends early; stop everything.
    Abort { reason: String },
    /// The run is over; exit.
    Bye,
    /// Nothing to say, still here.
    Heartbeat,
}

/// An agent's running figures, every [`STATUS_EVERY`].
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub(crate) struct Status {
    /// Clients that have settled, and clients.
    pub settled: u64,
    pub clients: u64,
    /// Connections set up so far.
    pub connections: u64,
    /// The most its recording servers' frames left behind schedule since the last status.
    pub lag_ns: u64,
    /// Frames its servers dropped so far.
    pub dropped_frames: u64,
    /// Frames its clients received in the window so far, by link.
    pub frames: BTreeMap<String, u64>,
    /// CPU seconds of each runtime so far.
    pub cpu: BTreeMap<String, f64>,
}

/// How often an agent sends its [`Status`] during a phase.
pub(crate) const STATUS_EVERY: std::time::Duration = std::time::Duration::from_millis(100);

/// What an agent's servers counted at the end of the window.
#[derive(Debug, Default, Serialize, Deserialize)]
pub(crate) struct Counts {
    pub servers: Vec<ServerCount>,
    pub server_failures: BTreeMap<String, BTreeMap<String, u64>>,
    pub watched: BTreeMap<String, Vec<Attempt>>,
    /// CPU seconds of each runtime in the window.
    pub window_cpu: BTreeMap<String, f64>,
    /// The process's CPU in the window.
    pub process_cpu: process::Usage,
    pub steady: Steady,
    pub peak_rss_bytes: u64,
    pub baseline_rss_bytes: u64,
    /// What the scheduled events did to its servers.
    pub happened: Happened,
    /// Filled by the coordinator: each role of an agent and its process's peak memory.
    #[serde(skip)]
    pub role_peak_rss: BTreeMap<String, u64>,
}

/// What an agent says during a phase.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub(crate) enum FromAgent {
    Prepared,
    Pong { t0: u64, t1: u64 },
    Started { listeners: Vec<Listening> },
    Status(Status),
    Interval { samples: Vec<IntervalSample> },
    Counted(Box<Counts>),
    Final { clients: Vec<ClientOutcome> },
    Stopped,
    Failed { reason: String },
    Heartbeat,
}

/// Where a client of this process dials the server of `l`: the address `hosts` gives its
/// host name, else (with `resolve`) what the system's resolver (`/etc/hosts`, DNS) says,
/// else where the server said it listens. The client still verifies the host *name*.
pub(crate) async fn address_of(
    l: &Listening,
    hosts: &BTreeMap<String, std::net::IpAddr>,
    resolve: bool,
) -> anyhow::Result<std::net::SocketAddr> {
    use anyhow::Context as _;
    if let Some(ip) = hosts.get(&l.host) {
        return Ok(std::net::SocketAddr::new(*ip, l.address.port()));
    }
    if !resolve {
        return Ok(l.address);
    }
    let found = tokio::net::lookup_host((l.host.as_str(), l.address.port()))
        .await
        .with_context(|| format!("resolving {} (DNS, /etc/hosts)", l.host))?
        .next();
    found.with_context(|| format!("{} resolves to no address", l.host))
}

/// The addresses of `--host` rules once the agents are connected: each name resolved (tried
/// again until `patience` runs out, since a pod's name appears in DNS some time after the pod
/// starts), with the names and addresses each host's certificate should carry besides its
/// own name.
pub(crate) async fn resolve_targets(
    targets: &BTreeMap<String, crate::cli::HostTarget>,
    patience: std::time::Duration,
) -> anyhow::Result<(
    BTreeMap<String, std::net::IpAddr>,
    BTreeMap<String, Vec<String>>,
)> {
    use crate::cli::HostTarget;
    let deadline = tokio::time::Instant::now() + patience;
    let mut hosts = BTreeMap::new();
    let mut sans = BTreeMap::new();
    for (host, target) in targets {
        let ip = match target {
            HostTarget::Ip(ip) => *ip,
            HostTarget::Name(name) => loop {
                let found = tokio::net::lookup_host((name.as_str(), 0))
                    .await
                    .map(|mut a| a.next());
                match found {
                    Ok(Some(a)) => break a.ip(),
                    _ if tokio::time::Instant::now() < deadline => {
                        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
                    }
                    Ok(None) => {
                        anyhow::bail!("--host {host}={name}: {name} resolves to no address")
                    }
                    Err(e) => anyhow::bail!(
                        "--host {host}={name}: {name} does not resolve after {} ({e}); is the \
                         name right and its pod or container up?",
                        humantime::format_duration(patience)
                    ),
                }
            },
        };
        hosts.insert(host.clone(), ip);
        let mut names = Vec::new();
        if let HostTarget::Name(name) = target {
            names.push(name.clone());
        }
        if !ip.is_unspecified() {
            names.push(ip.to_string());
        }
        sans.insert(host.clone(), names);
    }
    Ok((hosts, sans))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_host_given_a_name_dials_what_it_resolves_to_and_is_certified_for_both() {
        use crate::cli::HostTarget;
        let targets = BTreeMap::from([
            (
                "mgmt.vms.test".to_owned(),
                HostTarget::Name("localhost".into()),
            ),
            (
                "recorder-1.vms.test".to_owned(),
                HostTarget::Ip("10.0.0.2".parse().expect("an address")),
            ),
        ]);
        let (hosts, sans) = resolve_targets(&targets, std::time::Duration::ZERO)
            .await
            .expect("localhost resolves");
        let mgmt = hosts["mgmt.vms.test"];
        assert!(mgmt.is_loopback(), "{mgmt}");
        assert_eq!(
            sans["mgmt.vms.test"],
            ["localhost".to_owned(), mgmt.to_string()]
        );
        assert_eq!(hosts["recorder-1.vms.test"].to_string(), "10.0.0.2");
        assert_eq!(sans["recorder-1.vms.test"], ["10.0.0.2"]);
    }

    #[test]
    fn both_directions_spell_a_heartbeat_as_the_control_layer_sends_it() {
        let heartbeat = crate::engine::control::heartbeat();
        assert_eq!(
            serde_json::to_value(ToAgent::Heartbeat).ok(),
            Some(heartbeat.clone())
        );
        assert_eq!(
            serde_json::to_value(FromAgent::Heartbeat).ok(),
            Some(heartbeat.clone())
        );
        assert!(matches!(
            serde_json::from_value::<ToAgent>(heartbeat),
            Ok(ToAgent::Heartbeat)
        ));
    }
}
