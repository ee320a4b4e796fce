//! The coordinator's side of a distributed run: the agents it gathered, and each agent's
//! share of a phase as the phase loop sees it — its latest status, its intervals, what it
//! counted — with the watch that aborts the run when an agent is lost.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{anyhow, bail};
use serde::Serialize;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::super::events::Schedule;
use super::super::placement::Placement;
use super::super::plan::Plan;
use super::super::Listening;
use super::{Counts, FromAgent, Status, ToAgent};
use crate::engine::control::{self, Sender, HEARTBEAT, LOST_AFTER};
use crate::engine::credentials::Credentials;
use crate::engine::sampler::IntervalSample;
use crate::sys::environment::Environment;

/// How long the coordinator waits for an answer that takes work (starting roles,
/// stopping thousands of clients); loss of the agent is noticed sooner, by heartbeats.
const ANSWER_WITHIN: Duration = Duration::from_secs(120);

/// Clock probes per agent and phase; the one with the shortest round trip counts.
const PROBES: usize = 5;

/// One agent's clock against the coordinator's, estimated NTP-style from the probe with the
/// shortest round trip: `offset` = agent's reading − the midpoint of the probe.
#[derive(Clone, Copy, Debug, Default, Serialize)]
pub(crate) struct ClockCheck {
    /// Agent clock − coordinator clock, µs.
    pub offset_us: f64,
    /// Round trip of the probe, µs (the offset is uncertain by half of it).
    pub rtt_us: f64,
}

/// What the coordinator keeps of each agent.
#[derive(Debug)]
struct AgentLink {
    name: String,
    peer: SocketAddr,
    environment: Environment,
    listen: Option<IpAddr>,
    tx: Sender,
    state: Arc<Mutex<LinkState>>,
    inbox: tokio::sync::Mutex<mpsc::UnboundedReceiver<FromAgent>>,
    lost: CancellationToken,
}

/// What an agent's reader task keeps up to date.
#[derive(Debug, Default)]
struct LinkState {
    status: Status,
    /// The most lag any status reported since the phase loop last asked.
    lag_ns: u64,
    intervals: Vec<IntervalSample>,
    lost: Option<String>,
    /// The run is over: the connection closing is expected.
    ending: bool,
    /// When it was last heard from (none yet: since the watch began).
    heard: Option<tokio::time::Instant>,
}

fn lock(state: &Mutex<LinkState>) -> std::sync::MutexGuard<'_, LinkState> {
    state
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The agents of a run and how the plan is divided among them.
#[derive(Debug)]
pub(crate) struct Agents {
    placement: Placement,
    links: BTreeMap<String, AgentLink>,
    /// Addresses given for host names.
    hosts: BTreeMap<String, IpAddr>,
    /// Names and addresses `--host` gives server hosts, which their certificates carry.
    sans: BTreeMap<String, Vec<String>>,
    /// Whether clients here resolve host names through the system's resolver.
    resolve: bool,
    clocks: Mutex<BTreeMap<String, ClockCheck>>,
}

/// Where each agent ran and how its clock compared, for the report.
#[derive(Clone, Debug, Serialize)]
pub(crate) struct AgentReport {
    /// Its name.
    pub name: String,
    /// Where it connected from.
    pub address: String,
    /// Its machine.
    pub environment: Environment,
    /// Its clock against the coordinator's (last phase).
    pub clock: Option<ClockCheck>,
    /// Why it was lost, if it was.
    pub lost: Option<String>,
}

impl Agents {
    /// The agents gathered for `placement`; losing any cancels `abort`.
    pub(crate) fn new(
        placement: Placement,
        gathered: BTreeMap<String, control::Agent>,
        (hosts, sans): (BTreeMap<String, IpAddr>, BTreeMap<String, Vec<String>>),
        resolve: bool,
        abort: CancellationToken,
    ) -> Agents {
        let links = gathered
            .into_values()
            .map(|a| {
                let link = watch(a, abort.clone());
                (link.name.clone(), link)
            })
            .collect();
        Agents {
            placement,
            links,
            hosts,
            sans,
            resolve,
            clocks: Mutex::new(BTreeMap::new()),
        }
    }

    /// The placement.
    pub(crate) fn placement(&self) -> &Placement {
        &self.placement
    }

    /// Gives each server host an agent runs with `--listen IP` that address in `scenario`,
    /// so that its certificate names it too (a client dialling the address can verify it)
    /// and the report records where it listened; and every host `--host` sends elsewhere
    /// the name and address it was given, in its certificate.
    pub(crate) fn certify_addresses(&self, scenario: &mut crate::engine::scenario::Scenario) {
        for host in scenario.server_hosts() {
            let runtime = super::super::plan::role_of_host(&host);
            let ip = self
                .placement
                .agent_of_server(runtime, &host)
                .and_then(|a| self.links.get(a))
                .and_then(|l| l.listen)
                .filter(|ip| !ip.is_unspecified());
            if let Some(ip) = ip {
                scenario.listen.hosts.insert(host.clone(), ip);
            }
            if let Some(names) = self.sans.get(&host) {
                scenario.listen.sans.insert(host, names.clone());
            }
        }
    }

    /// The machine of agent `name`, if it is connected.
    pub(crate) fn environment(&self, name: &str) -> Option<&Environment> {
        self.links.get(name).map(|l| &l.environment)
    }

    /// Why the run was aborted, if an agent was lost: the first agent lost, named.
    pub(crate) fn lost(&self) -> Option<String> {
        self.links
            .values()
            .find_map(|l| lock(&l.state).lost.clone())
    }

    /// Each agent, for the report.
    pub(crate) fn report(&self) -> Vec<AgentReport> {
        let clocks = self
            .clocks
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        self.links
            .values()
            .map(|l| AgentReport {
                name: l.name.clone(),
                address: l.peer.to_string(),
                environment: l.environment.clone(),
                clock: clocks.get(&l.name).copied(),
                lost: lock(&l.state).lost.clone(),
            })
            .collect()
    }

    /// The largest clock disagreement any agent showed, µs, counting the probe's
    /// uncertainty (half its round trip).
    pub(crate) fn worst_clock_us(&self) -> Option<f64> {
        let clocks = self
            .clocks
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        clocks
            .values()
            .map(|c| c.offset_us.abs() + c.rtt_us / 2.0)
            .reduce(f64::max)
    }

    /// Tells every agent the run is over, and waits (a few seconds at most) until each has
    /// closed its connection.
    pub(crate) async fn bye(&self) {
        for l in self.links.values() {
            lock(&l.state).ending = true;
            l.tx.send(&ToAgent::Bye);
        }
        for l in self.links.values() {
            let _ = tokio::time::timeout(LOST_AFTER, l.lost.cancelled()).await;
        }
    }

    /// The share of `agent` in a phase, once it has its plan and certificates and its
    /// clock was probed.
    pub(crate) async fn prepare<'a>(
        &'a self,
        agent: &str,
        plan: &'a Plan,
        creds: &Credentials,
        epoch_unix_ns: u64,
        clock: simulators::clock::RunClock,
        schedule: &Schedule,
    ) -> anyhow::Result<RemoteShare<'a>> {
        let link = self
            .links
            .get(agent)
            .ok_or_else(|| anyhow!("no agent {agent} connected"))?;
        let servers: Vec<&str> = plan
            .roles
            .iter()
            .filter_map(super::super::placement::server_host)
            .collect();
        lock(&link.state).intervals.clear();
        link.tx.send(&ToAgent::Prepare {
            mode: plan.mode,
            plan: Box::new(plan.clone()),
            epoch_unix_ns,
            credentials: creds.shipped(servers.iter().copied()),
            hosts: self.hosts.clone(),
            resolve: self.resolve,
            schedule: schedule.shipped(&servers),
        });
        let share = RemoteShare { link, plan };
        share
            .expect("its plan loaded", |m| matches!(m, FromAgent::Prepared))
            .await?;
        let mut best: Option<ClockCheck> = None;
        for _ in 0..PROBES {
            let t0 = clock.now_ns();
            link.tx.send(&ToAgent::Ping { t0 });
            let reply = share
                .expect(
                    "a clock probe",
                    |m| matches!(m, FromAgent::Pong { t0: t, .. } if *t == t0),
                )
                .await?;
            let t2 = clock.now_ns();
            if let FromAgent::Pong { t1, .. } = reply {
                let mid = (t0 as f64 + t2 as f64) / 2.0;
                let check = ClockCheck {
                    offset_us: (t1 as f64 - mid) / 1e3,
                    rtt_us: t2.saturating_sub(t0) as f64 / 1e3,
                };
                if best.is_none_or(|b| check.rtt_us < b.rtt_us) {
                    best = Some(check);
                }
            }
        }
        if let Some(b) = best {
            self.clocks
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .insert(agent.to_owned(), b);
        }
        Ok(share)
    }

    /// Where clients of this process reach `l`, a server of an agent.
    pub(crate) async fn address_of(&self, l: &Listening) -> anyhow::Result<SocketAddr> {
        super::address_of(l, &self.hosts, self.resolve).await
    }
}

/// Starts the tasks that keep `agent`'s state: its reader and the watch for silence (it
/// hears from us through the control layer's keep-alive).
fn watch(agent: control::Agent, abort: CancellationToken) -> AgentLink {
    let state = Arc::new(Mutex::new(LinkState::default()));
    let (fwd, inbox) = mpsc::unbounded_channel();
    let lost = CancellationToken::new();
    let name = agent.name.clone();
    let mark_lost = {
        let (state, lost, abort, name) = (state.clone(), lost.clone(), abort.clone(), name.clone());
        move |why: String| {
            let mut s = lock(&state);
            if s.ending {
                lost.cancel();
            } else if s.lost.is_none() {
                let reason = format!("agent {name} lost: {why}");
                crate::output::progress::note(&format!("\n{reason}: aborting the run"));
                s.lost = Some(reason);
                lost.cancel();
                abort.cancel();
            }
        }
    };
    {
        let (state, mark_lost) = (state.clone(), mark_lost.clone());
        let mut rx = agent.rx;
        tokio::spawn(async move {
            loop {
                let msg = match rx.recv::<FromAgent>().await {
                    Ok(Some(m)) => m,
                    Ok(None) => return mark_lost("its control connection closed".into()),
                    Err(e) => return mark_lost(format!("{e:#}")),
                };
                lock(&state).heard = Some(tokio::time::Instant::now());
                match msg {
                    FromAgent::Heartbeat => {}
                    FromAgent::Status(status) => {
                        let mut s = lock(&state);
                        s.lag_ns = s.lag_ns.max(status.lag_ns);
                        s.status = status;
                    }
                    FromAgent::Interval { samples } => lock(&state).intervals.extend(samples),
                    FromAgent::Failed { reason } => {
                        return mark_lost(format!("it failed: {reason}"))
                    }
                    other => {
                        if fwd.send(other).is_err() {
                            return;
                        }
                    }
                }
            }
        });
    }
    {
        let (state, lost) = (state.clone(), lost.clone());
        let since = tokio::time::Instant::now();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(HEARTBEAT);
            loop {
                tokio::select! {
                    _ = lost.cancelled() => return,
                    _ = tick.tick() => {}
                }
                let silent = lock(&state).heard.unwrap_or(since).elapsed();
                if silent > LOST_AFTER {
                    return mark_lost(format!(
                        "no heartbeat for {:.1} s (three missed)",
                        silent.as_secs_f64()
                    ));
                }
            }
        });
    }
    AgentLink {
        name: agent.name,
        peer: agent.peer,
        environment: agent.environment,
        listen: agent.listen,
        tx: agent.tx,
        state,
        inbox: tokio::sync::Mutex::new(inbox),
        lost,
    }
}

/// One agent's share of a phase.
#[derive(Debug)]
pub(crate) struct RemoteShare<'a> {
    link: &'a AgentLink,
    /// Its roles.
    pub plan: &'a Plan,
}

impl RemoteShare<'_> {
    /// The agent's name.
    pub(crate) fn name(&self) -> &str {
        &self.link.name
    }

    /// Whether the agent was lost.
    pub(crate) fn is_lost(&self) -> bool {
        self.link.lost.is_cancelled()
    }

    /// Waits for the message `what` is (the first for which `want` holds; others are
    /// dropped), failing when the agent is lost or does not answer in time.
    async fn expect(
        &self,
        what: &str,
        want: impl Fn(&FromAgent) -> bool,
    ) -> anyhow::Result<FromAgent> {
        let mut inbox = self.link.inbox.lock().await;
        let deadline = tokio::time::Instant::now() + ANSWER_WITHIN;
        loop {
            tokio::select! {
                _ = self.link.lost.cancelled() => {
                    let why = lock(&self.link.state).lost.clone().unwrap_or_default();
                    bail!("waiting for {what}: {why}");
                }
                _ = tokio::time::sleep_until(deadline) => {
                    bail!("agent {} did not send {what} within {:?}", self.link.name, ANSWER_WITHIN);
                }
                msg = inbox.recv() => match msg {
                    Some(m) if want(&m) => return Ok(m),
                    Some(_) => {}
                    None => bail!("agent {}: its connection closed", self.link.name),
                }
            }
        }
    }

    /// Starts roles `first..first + count` of its share, given every listener started so
    /// far; the listeners they opened, with addresses others can dial.
    pub(crate) async fn start(
        &self,
        first: usize,
        count: usize,
        directory: &[Listening],
    ) -> anyhow::Result<Vec<Listening>> {
        self.link.tx.send(&ToAgent::Start {
            first,
            count,
            directory: directory.to_vec(),
        });
        let FromAgent::Started { mut listeners } = self
            .expect("its roles started", |m| {
                matches!(m, FromAgent::Started { .. })
            })
            .await?
        else {
            bail!("agent {}: an unexpected answer", self.link.name);
        };
        for l in &mut listeners {
            // A server listening on every address is reached where its agent connected from.
            if l.address.ip().is_unspecified() {
                l.address = SocketAddr::new(self.link.peer.ip(), l.address.port());
            }
        }
        Ok(listeners)
    }

    /// Its latest status; the lag is the most since the last call.
    pub(crate) fn status(&self) -> Status {
        let mut s = lock(&self.link.state);
        let mut status = s.status.clone();
        status.lag_ns = std::mem::take(&mut s.lag_ns);
        status
    }

    /// Tells it the window opened, and when it is due to close.
    pub(crate) fn open(&self, start_ns: u64, end_ns: u64) {
        self.link.tx.send(&ToAgent::Open { start_ns, end_ns });
    }

    /// Tells it the window closed.
    pub(crate) fn close(&self, end_ns: u64) {
        self.link.tx.send(&ToAgent::Close { end_ns });
    }

    /// What reads the samples of the latest second it sent, for live progress.
    pub(crate) fn latest_intervals(&self) -> impl Fn() -> Vec<IntervalSample> + Send + Sync {
        let state = self.link.state.clone();
        move || {
            let s = lock(&state);
            let last = s.intervals.last().map(|l| l.t_s);
            s.intervals
                .iter()
                .rev()
                .take_while(|i| last.is_some_and(|t| (t - i.t_s).abs() < 0.5))
                .cloned()
                .collect()
        }
    }

    /// The interval samples it sent.
    pub(crate) fn intervals(&self) -> Vec<IntervalSample> {
        std::mem::take(&mut lock(&self.link.state).intervals)
    }

    /// Asks what its servers counted; `None` if it was lost.
    pub(crate) async fn count(&self) -> Option<Counts> {
        if self.is_lost() {
            return None;
        }
        self.link.tx.send(&ToAgent::Collect);
        match self
            .expect("what its servers counted", |m| {
                matches!(m, FromAgent::Counted(_))
            })
            .await
        {
            Ok(FromAgent::Counted(c)) => Some(*c),
            _ => None,
        }
    }

    /// Has it stop its clients; what they measured (`None` if lost).
    pub(crate) async fn finish(&self) -> Option<Vec<super::ClientOutcome>> {
        if self.is_lost() {
            return None;
        }
        self.link.tx.send(&ToAgent::Finish);
        match self
            .expect("its final results", |m| {
                matches!(m, FromAgent::Final { .. })
            })
            .await
        {
            Ok(FromAgent::Final { clients }) => Some(clients),
            _ => None,
        }
    }

    /// Has it stop the rest of its roles, and waits until it has.
    pub(crate) async fn stop(&self) {
        if self.is_lost() {
            return;
        }
        self.link.tx.send(&ToAgent::Stop);
        let _ = self
            .expect("its roles stopped", |m| matches!(m, FromAgent::Stopped))
            .await;
    }

    /// Ends its phase early.
    pub(crate) fn abort(&self, reason: &str) {
        self.link.tx.send(&ToAgent::Abort {
            reason: reason.to_owned(),
        });
    }
}
