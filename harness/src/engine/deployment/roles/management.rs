//! The management server as a role: its listeners (registrations, client logins, remote
//! collectors), registered in the directory under each link they serve.

use std::collections::BTreeMap;
use std::sync::Arc;

use simulators::pki::ReloadableIdentity;
use simulators::role::management::{ManagementConfig, ManagementServer};
use simulators::role::timeouts::ServerTimeouts;

use super::{bind, Site};
use crate::engine::deployment::plan::ManagementRole;

/// A running management server.
#[derive(Debug)]
pub(super) struct Running {
    host: String,
    server: ManagementServer,
    identity: Option<Arc<ReloadableIdentity>>,
}

/// Binds every listener of `role` and starts serving.
pub(super) async fn start(
    role: &ManagementRole,
    runtime: &str,
    server: bool,
    site: &mut Site<'_>,
) -> anyhow::Result<Running> {
    // One configuration (and one identity, when it changes) for every encrypted listener.
    let any_tls = role.listeners.iter().any(|(_, tls)| *tls);
    let (config, identity) = site.server_tls(&role.host, any_tls, role.reloadable)?;
    let mut listeners = Vec::new();
    let ip = site.plan.site.listen.of(&role.host);
    for (_, tls) in &role.listeners {
        let rt = site.runtime(runtime, server)?;
        listeners.push(bind(rt, config.clone().filter(|_| *tls), ip).await?);
    }
    let config = ManagementConfig {
        config_bytes: role.config_bytes,
        status_reply_bytes: role.status_reply_bytes,
        seed: site.plan.seed,
        timeouts: ServerTimeouts::default(),
    };
    let rt = site.runtime(runtime, server)?;
    let mgmt = ManagementServer::start(rt, listeners, &config)?;
    for ((link, tls), addr) in role.listeners.iter().zip(mgmt.addrs()) {
        site.directory.register(&role.host, *link, *addr, *tls);
    }
    for (link, via) in &role.also {
        let tls = role.listeners.iter().any(|(l, tls)| l == via && *tls);
        if let Some(addr) = site.directory.lookup(&role.host, *via) {
            site.directory.register(&role.host, *link, addr, tls);
        }
    }
    site.directory.config_digest = Some(mgmt.config_digest());
    Ok(Running {
        host: role.host.clone(),
        server: mgmt,
        identity,
    })
}

impl Running {
    /// Its failed connections so far, by category (they cannot be told apart by link).
    pub(super) fn failures(&self) -> (String, BTreeMap<String, u64>) {
        (self.host.clone(), self.server.stats().failures)
    }

    /// Its replaceable identity, if its certificate changes during the run.
    pub(super) fn identity(&self) -> Option<(&str, &Arc<ReloadableIdentity>)> {
        self.identity.as_ref().map(|i| (self.host.as_str(), i))
    }

    /// Stops serving.
    pub(super) async fn stop(self) {
        self.server.stop().await;
    }
}
