//! The roles of a phase that run in this process — all of them by default; in a
//! distributed run, the coordinator's share or an agent's — and what they count so far.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use simulators::clock::RunClock;
use simulators::metrics::{Meter, Window};

use super::plan::Plan;
use super::remote::{Counts, Status};
use super::roles::{self, ClientOutcome, RoleHandle, ServerCount, Site};
use super::Listening;
use crate::engine::credentials::Credentials;
use crate::engine::watcher::Attempt;

/// Roles of a plan brought to life in this process, in the plan's order.
pub(super) struct Local<'a> {
    pub site: Site<'a>,
    pub roles: Vec<RoleHandle>,
}

impl<'a> Local<'a> {
    /// No role started yet.
    pub(super) fn new(
        plan: &'a Plan,
        creds: &'a Credentials,
        clock: RunClock,
        window: Arc<Window>,
    ) -> Local<'a> {
        Local {
            site: Site::new(plan, creds, clock, window),
            roles: Vec::with_capacity(plan.roles.len()),
        }
    }

    /// Starts roles `range` of the plan, in order; the listeners they opened.
    pub(super) async fn start(
        &mut self,
        range: std::ops::Range<usize>,
    ) -> anyhow::Result<Vec<Listening>> {
        let before = self.site.directory.listeners();
        let plan = self.site.plan;
        for spec in plan.roles.get(range).unwrap_or_default() {
            let role = roles::start(spec, &mut self.site).await?;
            self.roles.push(role);
        }
        Ok(self
            .site
            .directory
            .listeners()
            .into_iter()
            .filter(|l| !before.contains(l))
            .collect())
    }

    /// Every meter the clients record into, with its link.
    pub(super) fn meters(&self) -> Vec<(String, Arc<Meter>)> {
        self.roles
            .iter()
            .flat_map(RoleHandle::meters)
            .map(|(link, meter)| (link.as_str().to_owned(), meter))
            .collect()
    }

    /// The running figures of these roles; `take_lag` resets the servers' lag.
    pub(super) fn status(&self) -> Status {
        let meters = self.meters();
        let mut frames: BTreeMap<String, u64> = BTreeMap::new();
        for (link, m) in &meters {
            *frames.entry(link.clone()).or_default() += m.frames();
        }
        Status {
            settled: meters.iter().map(|(_, m)| m.settled()).sum(),
            clients: meters.iter().map(|(_, m)| m.clients()).sum(),
            connections: meters.iter().map(|(_, m)| m.connections()).sum(),
            lag_ns: u64::try_from(self.take_lag().as_nanos()).unwrap_or(u64::MAX),
            dropped_frames: self.roles.iter().map(RoleHandle::dropped_frames).sum(),
            frames,
            cpu: self.site.cpu(),
        }
    }

    /// The most any recording server's frames left behind schedule since the last call.
    pub(super) fn take_lag(&self) -> Duration {
        self.roles
            .iter()
            .map(RoleHandle::take_lag)
            .max()
            .unwrap_or_default()
    }

    /// What the servers counted, with their own failures by host, and what the watchers
    /// saw (they stop now); the rest of [`Counts`] is the caller's.
    pub(super) async fn count(&mut self) -> Counts {
        let servers: Vec<ServerCount> = self
            .roles
            .iter()
            .filter_map(RoleHandle::server_count)
            .collect();
        let server_failures = self
            .roles
            .iter()
            .filter_map(RoleHandle::server_failures)
            .collect();
        let watched = self.stop_watchers().await;
        Counts {
            servers,
            server_failures,
            watched,
            ..Counts::default()
        }
    }

    /// Stops the watchers; what each saw, by host.
    async fn stop_watchers(&mut self) -> BTreeMap<String, Vec<Attempt>> {
        let mut watched = BTreeMap::new();
        for r in &mut self.roles {
            if let Some((host, attempts)) = r.stop_watcher().await {
                watched.insert(host, attempts);
            }
        }
        watched
    }

    /// Stops every client (first, so that servers do not count their leaving as failures);
    /// what each measured.
    pub(super) async fn stop_clients(&mut self) -> Vec<ClientOutcome> {
        let mut clients = Vec::new();
        for r in &mut self.roles {
            clients.extend(r.stop_clients().await);
        }
        clients
    }

    /// Stops what is left: servers, WAN links, runtimes.
    pub(super) async fn stop(self) {
        for r in self.roles {
            r.stop().await;
        }
        drop(self.site);
    }

    /// [`Local::stop_clients`], then [`Local::stop`].
    pub(super) async fn shutdown(mut self) -> Vec<ClientOutcome> {
        let clients = self.stop_clients().await;
        self.stop().await;
        clients
    }
}
