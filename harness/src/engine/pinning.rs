//! Which CPUs the roles of this process run on: the server roles on some of the CPUs this
//! process may use, the clients (and the thread that runs the phases) on the rest, so that
//! the servers' CPU — and their saturation — is not mixed up with their clients', and the
//! two sides do not take each other's CPUs from one moment to the next.

use std::collections::BTreeSet;
use std::time::Duration;

use anyhow::Context as _;
use simulators::role::Affinity;
use simulators::transport::Mode;

use crate::engine::deployment::plan::Plan;
use crate::engine::scenario::{Pinning, Scenario};

/// CPUs for the servers and for everything else: the first `server` of the CPUs this
/// process may use (default: half of them, at least one), and the rest. `None` on a single
/// CPU; an error when `server` leaves the clients none.
pub(crate) fn split_cpus(
    server: Option<usize>,
) -> anyhow::Result<Option<(Vec<usize>, Vec<usize>)>> {
    let allowed = simulators::role::allowed_cpus().context("reading this process's CPUs")?;
    if allowed.len() < 2 {
        if server.is_some() {
            anyhow::bail!("--server-cpus: this process may use only one CPU; nothing to split");
        }
        return Ok(None);
    }
    let k = server.unwrap_or(allowed.len() / 2).max(1);
    if k >= allowed.len() {
        anyhow::bail!(
            "--server-cpus {k}: this process may use {} CPUs, and the clients need at least one",
            allowed.len()
        );
    }
    let (a, b) = allowed.split_at(k);
    Ok(Some((a.to_vec(), b.to_vec())))
}

/// `servers` (runtime names) on `server_cpus`, every other role on `others`.
pub(crate) fn pin_servers(
    servers: impl IntoIterator<Item = String>,
    server_cpus: &[usize],
    others: Vec<usize>,
) -> Pinning {
    Pinning {
        roles: servers
            .into_iter()
            .map(|r| (r, server_cpus.to_vec()))
            .collect(),
        others,
    }
}

/// The runtimes of `scenario`'s server roles (management, recording, event and mobile
/// servers), in either mode.
pub(crate) fn server_runtimes(scenario: &Scenario) -> BTreeSet<String> {
    [Mode::Plain, Mode::Tls]
        .into_iter()
        .flat_map(|mode| Plan::new(scenario, mode, 0, Duration::ZERO).roles)
        .filter(|r| r.server)
        .map(|r| r.runtime)
        .collect()
}

/// Pins the calling thread to some CPUs, and restores its previous CPUs when dropped.
pub(crate) struct PinGuard(Option<Affinity>);

impl PinGuard {
    /// Pins the calling thread to `cpus` (nothing when empty).
    pub(crate) fn pin(cpus: &[usize]) -> anyhow::Result<PinGuard> {
        if cpus.is_empty() {
            return Ok(PinGuard(None));
        }
        let before = Affinity::new(&simulators::role::allowed_cpus()?)?;
        Affinity::new(cpus)?
            .apply()
            .context("pinning the orchestrating thread")?;
        Ok(PinGuard(Some(before)))
    }
}

impl Drop for PinGuard {
    fn drop(&mut self) {
        if let Some(before) = &self.0 {
            let _ = before.apply();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::scenario::file;

    #[test]
    fn the_servers_of_a_scenario_are_its_server_runtimes() {
        let small = file::load_preset("small").expect("preset");
        let servers = server_runtimes(&small);
        assert!(
            servers.contains("mgmt") && servers.contains("recorder-1"),
            "{servers:?}"
        );
        assert!(!servers.contains("viewers"), "{servers:?}");
        let p = pin_servers(servers.clone(), &[0], vec![1]);
        assert_eq!(p.cpus_of("recorder-1"), &[0]);
        assert_eq!(p.cpus_of("viewers"), &[1]);
        assert_eq!(p.roles.len(), servers.len());
    }
}
