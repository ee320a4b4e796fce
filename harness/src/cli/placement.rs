//! Where the roles run: the flags that make `run`, `bulk` and `capacity` coordinate agents.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use clap::Args;

use crate::units::parse_duration;

/// The port a coordinator listens on for agents unless told otherwise.
pub const DEFAULT_CONTROL_PORT: u16 = 7979;

/// Placement flags.
#[derive(Clone, Debug, Args)]
pub struct PlacementArgs {
    /// Run roles on agents (`vmsbench agent`) instead of in this process: ROLE=AGENT or
    /// HOST=AGENT, where ROLE is a runtime of the report's CPU table (mgmt, recorder-1,
    /// viewers, phones, mobile, …) and HOST a server's host name; a group of clients named
    /// with AGENT,AGENT,… is split evenly among them. Repeatable; roles not named run here.
    #[arg(long = "place", value_name = "ROLE|HOST=AGENT[,AGENT…]")]
    pub place: Vec<String>,
    /// Where this process listens for its agents' control connections.
    #[arg(long, value_name = "ADDR", default_value_t = SocketAddr::from(([0, 0, 0, 0], DEFAULT_CONTROL_PORT)))]
    pub control_listen: SocketAddr,
    /// The shared secret agents prove they know (give them the same); without it a random
    /// one is made and printed.
    #[arg(
        long,
        env = "VMSBENCH_TOKEN",
        hide_env_values = true,
        value_name = "TOKEN"
    )]
    pub token: Option<String>,
    /// How long to wait for every placed agent to connect.
    #[arg(long, value_name = "DURATION", default_value = "60s", value_parser = parse_duration)]
    pub agents_timeout: Duration,
    /// The address clients dial for a server host: HOST=IP, or HOST=NAME to dial what NAME
    /// resolves to once the agents are connected (a pod's stable name behind a headless
    /// Service, a container's service name); the host's certificate then names NAME and that
    /// address too. Repeatable. Without it, a host's address comes from the system's
    /// resolver with --resolve, else from where its agent says it listens. Clients verify the
    /// host name in any case.
    #[arg(long = "host", value_name = "HOST=IP|NAME")]
    pub hosts: Vec<String>,
    /// Resolve server host names through the system's resolver (/etc/hosts, DNS), here and
    /// on every agent.
    #[arg(long)]
    pub resolve: bool,
}

/// Where `--host` sends a server host's clients.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HostTarget {
    /// This address.
    Ip(IpAddr),
    /// What this DNS name resolves to.
    Name(String),
}

impl PlacementArgs {
    /// The `--host` rules, host name → target.
    pub fn host_targets(&self) -> anyhow::Result<std::collections::BTreeMap<String, HostTarget>> {
        self.hosts
            .iter()
            .map(|h| {
                let (host, to) = h
                    .split_once('=')
                    .ok_or_else(|| anyhow::anyhow!("--host {h:?}: write HOST=IP or HOST=NAME"))?;
                let (host, to) = (host.trim(), to.trim());
                if host.is_empty() || to.is_empty() {
                    anyhow::bail!("--host {h:?}: write HOST=IP or HOST=NAME");
                }
                let target = match to.parse::<IpAddr>() {
                    Ok(ip) => HostTarget::Ip(ip),
                    Err(_) => {
                        if rustls::pki_types::DnsName::try_from(to).is_err() {
                            anyhow::bail!(
                                "--host {h:?}: {to:?} is neither an IP address nor a DNS name"
                            );
                        }
                        HostTarget::Name(to.to_owned())
                    }
                };
                Ok((host.to_owned(), target))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        placement: PlacementArgs,
    }

    fn targets(args: &[&str]) -> anyhow::Result<std::collections::BTreeMap<String, HostTarget>> {
        let cli = Cli::try_parse_from(std::iter::once("x").chain(args.iter().copied()))?;
        cli.placement.host_targets()
    }

    #[test]
    fn a_host_goes_to_an_address_or_a_name() -> anyhow::Result<()> {
        let t = targets(&[
            "--host",
            "recorder-1.vms.test=10.0.0.2",
            "--host",
            "mgmt.vms.test = coordinator.vmsbench",
        ])?;
        assert_eq!(
            t.get("recorder-1.vms.test"),
            Some(&HostTarget::Ip("10.0.0.2".parse()?))
        );
        assert_eq!(
            t.get("mgmt.vms.test"),
            Some(&HostTarget::Name("coordinator.vmsbench".into()))
        );
        for bad in ["recorder-1.vms.test", "=10.0.0.2", "a=", "a=not a name!"] {
            let e = targets(&["--host", bad]).err().map(|e| e.to_string());
            assert!(
                e.as_deref().is_some_and(|e| e.contains("--host")),
                "{bad}: {e:?}"
            );
        }
        Ok(())
    }
}
