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
    /// The address clients dial for a server host: HOST=IP (repeatable). Without it, a
    /// host's address comes from the system's resolver with --resolve, else from where its
    /// agent says it listens. Clients verify the host name in any case.
    #[arg(long = "host", value_name = "HOST=IP")]
    pub hosts: Vec<String>,
    /// Resolve server host names through the system's resolver (/etc/hosts, DNS), here and
    /// on every agent.
    #[arg(long)]
    pub resolve: bool,
}

impl PlacementArgs {
    /// The `--host` map.
    pub fn host_map(&self) -> anyhow::Result<std::collections::BTreeMap<String, IpAddr>> {
        self.hosts
            .iter()
            .map(|h| {
                let (host, ip) = h
                    .split_once('=')
                    .ok_or_else(|| anyhow::anyhow!("--host {h:?}: write HOST=IP"))?;
                let ip: IpAddr = ip.trim().parse().map_err(|e| {
                    anyhow::anyhow!("--host {h:?}: {ip:?} is not an IP address ({e})")
                })?;
                Ok((host.trim().to_owned(), ip))
            })
            .collect()
    }
}
