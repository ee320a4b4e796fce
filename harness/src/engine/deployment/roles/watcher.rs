//! A certificate watcher as a role: a client that connects to one host over and over while
//! its certificate expires or is renewed, and records what each attempt was shown.

use crate::engine::deployment::plan::WatcherRole;
use crate::engine::watcher::{Attempt, Watcher};

use super::Site;

/// A running watcher.
#[derive(Debug)]
pub(super) struct Running {
    host: String,
    watcher: Option<Watcher>,
}

/// Starts watching the host of `role`, if it accepts TLS there.
pub(super) fn start(
    role: &WatcherRole,
    runtime: &str,
    server: bool,
    site: &mut Site<'_>,
) -> anyhow::Result<Running> {
    let addr = site.directory.lookup(&role.host, role.link);
    let client = site.client_config()?;
    let clock = site.clock;
    let rt = site.runtime(runtime, server)?.handle();
    let watcher = addr.map(|addr| Watcher::start(&rt, &client, addr, role.host.clone(), clock));
    Ok(Running {
        host: role.host.clone(),
        watcher,
    })
}

impl Running {
    /// Stops watching; what it saw, with the host.
    pub(super) async fn stop(&mut self) -> Option<(String, Vec<Attempt>)> {
        let w = self.watcher.take()?;
        Some((self.host.clone(), w.stop().await))
    }
}
