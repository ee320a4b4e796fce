//! A scenario brought to life for one phase: every role started through one interface
//! on its own runtime, a warm-up, a measured window (with its scheduled events), a drain,
//! and everything each side counted, per link.
//!
//! - [`plan`]: the phase as a list of role descriptions (serialisable, naming hosts, never
//!   addresses), built from the scenario before anything runs;
//! - `roles`: the one way a role starts — a description in, a handle out that reports
//!   what it counted and can be stopped — with one file per kind of role;
//! - `phase`: the loop that starts the plan, runs the window and collects;
//!   `catch_up`: whether the servers keep up after the ramp, so that the window opens on
//!   the steady state; `events`: what happens during the window; `collect`: from counts
//!   to outcomes;
//! - [`outcome`]: what a phase measured; `bulk`: the unpaced link-ceiling test.
//!
//! In the plaintext phase nothing is encrypted; in the TLS phase each link is encrypted
//! when its encryption group is on in the scenario.

mod bulk;
mod catch_up;
mod collect;
mod events;
mod local;
pub(crate) mod outcome;
mod phase;
pub(crate) mod placement;
pub(crate) mod plan;
pub(crate) mod remote;
mod roles;

use std::sync::Arc;
use std::time::Duration;

pub(crate) use bulk::{run_bulk_phase_with, BulkLoad};
pub(crate) use outcome::{
    CertificateEventOutcome, FailoverOutcome, HostOutcome, Incompatibility, LinkOutcome,
    PhaseOutcome, RampOutcome, WanOutcome,
};
pub(crate) use phase::run_phase_with;
pub(crate) use placement::Placement;
pub(crate) use plan::role_of_host;
pub(crate) use remote::agent::{serve as serve_agent, AgentSettings};
pub(crate) use remote::coordinator::Agents;
pub(crate) use remote::resolve_targets;

use anyhow::Context as _;
use simulators::transport::Mode;

use crate::engine::sampler::IntervalHook;
use crate::engine::scenario::{LinkId, Scenario};
use crate::sys::process;

/// How long a phase warms up and measures.
#[derive(Clone, Copy, Debug)]
pub struct Timing {
    /// Time between starting the roles and opening the window.
    pub warmup: Duration,
    /// Length of the measured window.
    pub duration: Duration,
}

/// Longest wait, after the window closes, for frames scheduled inside it to arrive.
pub(crate) const MAX_DRAIN: Duration = Duration::from_secs(2);

/// How long a bulk phase waits after its window for frames still in socket buffers.
pub(crate) const BULK_DRAIN: Duration = Duration::from_millis(250);

/// Where a server of a phase accepts one link.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub(crate) struct Listening {
    /// The server's host name (what its certificate names).
    pub host: String,
    /// The link.
    pub link: LinkId,
    /// Where it listens.
    pub address: std::net::SocketAddr,
    /// Whether the link is encrypted in this phase.
    pub tls: bool,
}

/// Called once a phase's servers all listen, with the phase's mode and its listeners.
pub(crate) type ListeningHook = Arc<dyn Fn(Mode, &[Listening]) + Send + Sync>;

/// What a phase does besides measuring.
#[derive(Clone, Default)]
pub(crate) struct PhaseOptions {
    /// Called with each second's interval samples while the window is open (live progress).
    pub on_interval: Option<IntervalHook>,
    /// Called once every role has started, with where the servers listen.
    pub on_listening: Option<ListeningHook>,
    /// The agents that run the roles the placement gives them (none: every role here).
    pub agents: Option<Arc<Agents>>,
    /// A soak's interval: the window is sampled this often instead of every second, and
    /// each sample also reads this process (memory, descriptors, CPU).
    pub soak_interval: Option<std::time::Duration>,
}

impl std::fmt::Debug for PhaseOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PhaseOptions")
            .field("on_interval", &self.on_interval.is_some())
            .field("on_listening", &self.on_listening.is_some())
            .field("agents", &self.agents.is_some())
            .field("soak_interval", &self.soak_interval)
            .finish()
    }
}

/// Descriptors a process needs besides the plan's connections: its runtimes' event
/// queues and wake-ups, standard streams, files it writes.
const DESCRIPTOR_MARGIN: u64 = 256;

/// Checks, before anything runs, that one process may open the descriptors every phase of
/// `scenario` needs (raising its soft limit to the hard limit first); refuses with the
/// count needed, the limit, and what to do.
pub(crate) fn check_descriptors(scenario: &Scenario) -> anyhow::Result<()> {
    let needed = [Mode::Plain, Mode::Tls]
        .iter()
        .map(|m| plan::Plan::new(scenario, *m, 0, Duration::ZERO).descriptors())
        .max()
        .unwrap_or(0);
    check_needed(needed, &format!("scenario {}", scenario.name))
}

/// [`check_descriptors`] for the share of a plan this process runs.
pub(crate) fn check_share_descriptors(plan: &plan::Plan) -> anyhow::Result<()> {
    check_needed(plan.descriptors(), "this process's share of the scenario")
}

fn check_needed(needed: u64, what: &str) -> anyhow::Result<()> {
    let (soft, hard) = process::raise_fd_limit().context("reading the descriptor limit")?;
    let open = process::open_fds().unwrap_or(0);
    let total = needed + open + DESCRIPTOR_MARGIN;
    if total > soft {
        anyhow::bail!(
            "{what} needs about {total} file descriptors in this process ({needed} for its \
             connections, both ends here, and listeners; {open} already open; \
             {DESCRIPTOR_MARGIN} to spare), but a process here may open at most {soft} (hard \
             limit {hard}): raise the hard limit (as root: `ulimit -Hn {total}` in the shell \
             that starts vmsbench, or LimitNOFILE= for a service), simulate fewer clients \
             (--viewers, --scale), or place clients on agents (--place)"
        );
    }
    Ok(())
}
