//! Where the roles run: the flags that make `run`, `bulk` and `capacity` coordinate agents.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use clap::Args;

use super::duration_within;

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
    /// How long to wait for every placed agent to connect: 1s to 1d.
    #[arg(long, value_name = "DURATION", default_value = "60s", value_parser = duration_within(Duration::from_secs(1), Duration::from_secs(86_400)))]
    pub agents_timeout: Duration,
    /// The address clients dial for a server host: HOST=IP, or HOST=NAME to dial what NAME
    /// resolves to once the agents are connected (a pod's stable name behind a headless
    /// Service, a container's service name); the host's certificate then names NAME and that
    /// address too. Repeatable. Without it, a host's address comes from the system's
    /// resolver with --resolve, else from where its agent says it listens. Clients verify the
    /// host name in any case.
    #[arg(long = "host", value_name = "HOST=IP|NAME")]
    pub hosts: Vec<String>,
    /// Put a client group behind a WAN (a user-space relay in front of its server):
    /// GROUP=delay=30ms,jitter=5ms,loss=1%,rate=50Mbit, any of the four. GROUP is a kind
    /// (viewers, integrations, phones, collectors) or one group's name. Repeatable;
    /// overrides the scenario's `wan` for that group.
    #[arg(long = "wan", value_name = "GROUP=SETTINGS")]
    pub wan: Vec<String>,
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

/// Parses one `--wan` rule into the group it names and its WAN.
pub(super) fn parse_wan(rule: &str) -> anyhow::Result<(String, simulators::role::wan::WanProfile)> {
    use crate::engine::scenario::{MAX_WAN_DELAY, MAX_WAN_LOSS};
    use crate::units::{parse_bitrate, parse_duration, parse_share};
    let bad = |why: String| anyhow::anyhow!("--wan {rule:?}: {why}");
    let (group, settings) = rule
        .split_once('=')
        .ok_or_else(|| bad("write GROUP=delay=30ms,jitter=5ms,loss=1%,rate=50Mbit".into()))?;
    let mut wan = simulators::role::wan::WanProfile::default();
    for setting in settings.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let (key, value) = setting
            .split_once('=')
            .ok_or_else(|| bad(format!("{setting:?}: write KEY=VALUE")))?;
        let value = value.trim();
        match key.trim() {
            "delay" | "jitter" => {
                let d = parse_duration(value).map_err(|e| bad(format!("{key}: {e}")))?;
                if d > MAX_WAN_DELAY {
                    return Err(bad(format!("{key} must be at most 10s, not {value}")));
                }
                if key.trim() == "delay" {
                    wan.delay = d;
                } else {
                    wan.jitter = d;
                }
            }
            "loss" => {
                let loss = parse_share(value).map_err(|e| bad(format!("loss: {e}")))?;
                if !(0.0..=MAX_WAN_LOSS).contains(&loss) {
                    return Err(bad(format!(
                        "loss must be 0–{} % of segments, not {value}",
                        MAX_WAN_LOSS * 100.0
                    )));
                }
                wan.loss = loss;
            }
            "rate" => {
                let rate = parse_bitrate(value).map_err(|e| bad(format!("rate: {e}")))?;
                if rate == 0 {
                    return Err(bad(
                        "rate must be above 0 bit/s; leave it out for no cap".into()
                    ));
                }
                wan.rate_bps = Some(rate);
            }
            other => {
                return Err(bad(format!(
                    "unknown setting {other:?} (delay, jitter, loss, rate)"
                )))
            }
        }
    }
    Ok((group.trim().to_owned(), wan))
}

impl PlacementArgs {
    /// Puts the groups of every `--wan` rule behind their WAN in `scenario`.
    pub fn apply_wan(
        &self,
        scenario: &mut crate::engine::scenario::Scenario,
    ) -> anyhow::Result<()> {
        for rule in &self.wan {
            let (group, wan) = parse_wan(rule)?;
            scenario.put_behind_wan(&group, wan)?;
        }
        Ok(())
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

    #[test]
    fn a_wan_rule_names_a_group_and_any_of_four_settings() -> anyhow::Result<()> {
        let (group, wan) = parse_wan("viewers=delay=30ms, jitter=5ms,loss=1%,rate=50Mbit")?;
        assert_eq!(group, "viewers");
        assert_eq!(wan.delay, std::time::Duration::from_millis(30));
        assert_eq!(wan.jitter, std::time::Duration::from_millis(5));
        assert!((wan.loss - 0.01).abs() < 1e-12);
        assert_eq!(wan.rate_bps, Some(50_000_000));
        let (_, only) = parse_wan("collectors=loss=0.5%")?;
        assert_eq!(only.delay, std::time::Duration::ZERO);
        assert_eq!(only.rate_bps, None);
        for (bad, why) in [
            ("viewers", "write GROUP="),
            ("viewers=delay", "write KEY=VALUE"),
            ("viewers=loss=60%", "0–50 %"),
            ("viewers=rate=0Mbit", "above 0"),
            ("viewers=delay=11s", "at most 10s"),
            ("viewers=latency=3ms", "unknown setting"),
        ] {
            let e = parse_wan(bad)
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default();
            assert!(e.starts_with("--wan") && e.contains(why), "{bad}: {e}");
        }
        let mut scenario = crate::engine::scenario::file::load_preset("small")?;
        assert!(scenario.put_behind_wan("phones", wan)? >= 1);
        assert!(scenario.phones.iter().all(|p| p.wan == Some(wan)));
        let e = scenario
            .put_behind_wan("nobody", wan)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(e.contains("no client group is called so"), "{e}");
        Ok(())
    }
}
