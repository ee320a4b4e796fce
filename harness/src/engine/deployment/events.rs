//! What happens during a window: recording servers stopped (their clients fail over),
//! stalled, certificates that expire or are renewed. The certificates an event will present
//! are issued before the window opens (key generation takes a while).

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::Context as _;
use simulators::clock::RunClock;
use simulators::pki::HostIdentity;
use simulators::transport::Mode;
use tokio_util::sync::CancellationToken;

use serde::{Deserialize, Serialize};

use super::roles::RoleHandle;
use crate::engine::credentials::{Credentials, ShippedIdentity};
use crate::engine::scenario::{EventAction, Scenario, ScheduledEvent};

/// A certificate replaced by a scheduled event.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Replaced {
    pub host: String,
    pub action: String,
    /// When it was due, from the window's opening.
    pub at: Duration,
    /// When the new certificate was in place (run clock): the boundary between the
    /// watcher's attempts before and after.
    pub done_ns: u64,
    pub serial_before: String,
    pub serial_after: String,
}

/// The scenario's events in the order they happen, with the certificates that
/// certificate events will present (issued now, for a TLS phase). Every process of a phase
/// runs the whole schedule on its own roles: an event on a host it does not run does
/// nothing there.
pub(crate) struct Schedule {
    events: Vec<ScheduledEvent>,
    staged: BTreeMap<usize, HostIdentity>,
    /// The next event to happen.
    next: usize,
}

/// A schedule as it travels to an agent: every event, and the certificates staged for the
/// hosts the agent runs.
#[derive(Debug, Default, Serialize, Deserialize)]
pub(crate) struct ShippedSchedule {
    events: Vec<ScheduledEvent>,
    staged: Vec<(usize, ShippedIdentity)>,
}

/// What the window's events did.
#[derive(Debug, Default, Serialize, Deserialize)]
pub(crate) struct Happened {
    /// Recording servers stopped, and when (from the window's opening).
    pub failovers: Vec<(String, Duration)>,
    /// Certificates replaced.
    pub replaced: Vec<Replaced>,
    /// Whether an interruption cut the window short.
    pub partial: bool,
}

impl Schedule {
    /// The events of `scenario`, sorted, with the certificates of a TLS phase staged.
    pub(super) fn new(
        scenario: &Scenario,
        creds: &Credentials,
        mode: Mode,
    ) -> anyhow::Result<Schedule> {
        let mut events = scenario.events.clone();
        events.sort_by_key(|e| e.at);
        let mut staged = BTreeMap::new();
        if mode == Mode::Tls {
            for (i, e) in events.iter().enumerate() {
                let next = match &e.action {
                    EventAction::ExpireCertificate { host } => creds.expired(host)?,
                    EventAction::RenewCertificate { host } => creds.renewal(host)?,
                    _ => continue,
                };
                staged.insert(i, next);
            }
        }
        Ok(Schedule {
            events,
            staged,
            next: 0,
        })
    }

    /// No events (the ceiling test has none).
    pub(super) fn none() -> Schedule {
        Schedule {
            events: Vec::new(),
            staged: BTreeMap::new(),
            next: 0,
        }
    }

    /// What an agent running the servers of `hosts` needs of this schedule.
    pub(super) fn shipped(&self, hosts: &[&str]) -> ShippedSchedule {
        ShippedSchedule {
            events: self.events.clone(),
            staged: self
                .staged
                .iter()
                .filter(|(_, id)| hosts.contains(&id.host()))
                .map(|(i, id)| (*i, ShippedIdentity::of(id.host(), id, None)))
                .collect(),
        }
    }

    /// The schedule an agent was sent.
    pub(super) fn from_shipped(shipped: &ShippedSchedule) -> anyhow::Result<Schedule> {
        let staged = shipped
            .staged
            .iter()
            .map(|(i, s)| {
                HostIdentity::from_pem(&s.host, &s.chain_pem, &s.key_pem)
                    .map(|id| (*i, id))
                    .with_context(|| format!("loading the staged certificate of {}", s.host))
            })
            .collect::<anyhow::Result<_>>()?;
        Ok(Schedule {
            events: shipped.events.clone(),
            staged,
            next: 0,
        })
    }

    /// When the next event of a window of `duration` opened at `start_ns` is due (run
    /// clock); `None` when no more are.
    pub(super) fn next_due(&self, start_ns: u64, duration: Duration) -> Option<u64> {
        let e = self.events.get(self.next)?;
        (e.at < duration).then(|| start_ns + e.at.as_nanos() as u64)
    }

    /// Makes the next event happen on `roles`, recording what it did in `happened`.
    pub(super) async fn fire_next(
        &mut self,
        roles: &mut [RoleHandle],
        clock: RunClock,
        happened: &mut Happened,
    ) -> anyhow::Result<()> {
        let i = self.next;
        let Some(event) = self.events.get(i).cloned() else {
            return Ok(());
        };
        self.next += 1;
        match &event.action {
            EventAction::StopRecorder { host } => {
                if stop_server(roles, host).await {
                    happened.failovers.push((host.clone(), event.at));
                }
            }
            EventAction::StallRecorders { duration } => {
                for r in roles.iter().filter(|r| r.is_recording()) {
                    r.stall(*duration);
                }
            }
            EventAction::ExpireCertificate { host } | EventAction::RenewCertificate { host } => {
                if let Some(next) = self.staged.remove(&i) {
                    if let Some(r) = replace(roles, host, &next, clock, &event)? {
                        happened.replaced.push(r);
                    }
                }
            }
        }
        Ok(())
    }

    /// Runs the events due in a window of `duration` opened at `start_ns`, each at its
    /// time, on `roles`; stops early when `interrupt` fires.
    pub(super) async fn run(
        mut self,
        roles: &mut [RoleHandle],
        clock: RunClock,
        start_ns: u64,
        duration: Duration,
        interrupt: &CancellationToken,
    ) -> anyhow::Result<Happened> {
        let mut happened = Happened::default();
        while let Some(at) = self.next_due(start_ns, duration) {
            tokio::select! {
                _ = interrupt.cancelled() => { happened.partial = true; break; }
                _ = tokio::time::sleep_until(clock.instant_at(at).into()) => {}
            }
            self.fire_next(roles, clock, &mut happened).await?;
        }
        Ok(happened)
    }
}

/// Stops the streaming server on `host`, if one runs.
async fn stop_server(roles: &mut [RoleHandle], host: &str) -> bool {
    for r in roles.iter_mut() {
        if r.streaming_host() == Some(host) {
            return r.stop_server().await;
        }
    }
    false
}

/// Presents `next` on `host` from now on.
fn replace(
    roles: &[RoleHandle],
    host: &str,
    next: &HostIdentity,
    clock: RunClock,
    event: &ScheduledEvent,
) -> anyhow::Result<Option<Replaced>> {
    let Some((_, identity)) = roles
        .iter()
        .filter_map(RoleHandle::identity)
        .find(|(h, _)| *h == host)
    else {
        return Ok(None);
    };
    let serial_before = identity.serial_hex();
    identity
        .replace(next)
        .with_context(|| format!("replacing the certificate of {host}"))?;
    Ok(Some(Replaced {
        host: host.to_owned(),
        action: match event.action {
            EventAction::ExpireCertificate { .. } => "expire_certificate",
            _ => "renew_certificate",
        }
        .to_owned(),
        at: event.at,
        done_ns: clock.now_ns(),
        serial_before,
        serial_after: next.serial_hex(),
    }))
}
