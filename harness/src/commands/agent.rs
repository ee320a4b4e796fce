//! `vmsbench agent`: one host's share of a distributed run. It dials the coordinator (a
//! `run` or `capacity` given `--place`), proves the shared token, runs the roles it is
//! sent for each phase, and exits when the run ends — or as soon as the coordinator is
//! lost, taking every role it runs with it.

use std::net::IpAddr;
use std::time::Duration;

use clap::Args;

use crate::cli::{duration_within, DEFAULT_CONTROL_PORT};
use crate::engine::control::{self, Dial, PROTOCOL};
use crate::engine::deployment::{serve_agent, AgentSettings};
use crate::units::parse_duration;

/// `vmsbench agent`.
#[derive(Debug, Args)]
pub struct AgentArgs {
    /// The coordinator, HOST:PORT (its --control-listen; port 7979 unless changed).
    #[arg(long, value_name = "HOST:PORT")]
    pub coordinator: String,
    /// This agent's name, as the coordinator's --place rules use it.
    #[arg(long)]
    pub name: String,
    /// The coordinator's token.
    #[arg(
        long,
        env = "VMSBENCH_TOKEN",
        hide_env_values = true,
        value_name = "TOKEN"
    )]
    pub token: String,
    /// Where the servers this agent runs listen (this host's address; default: what the
    /// scenario says, 127.0.0.1 unless `run --listen` changes it).
    #[arg(long, value_name = "IP")]
    pub listen: Option<IpAddr>,
    /// Resolve the host names clients dial through the system's resolver (/etc/hosts,
    /// DNS) rather than use the addresses the servers' agents report.
    #[arg(long)]
    pub resolve: bool,
    /// How long to keep trying while the coordinator does not listen yet: at most 1d.
    #[arg(long, value_name = "DURATION", default_value = "60s", value_parser = duration_within(Duration::ZERO, Duration::from_secs(86_400)))]
    pub patience: Duration,
    /// Run this agent's clock DURATION ahead of the coordinator's (testing: shows which
    /// figures a clock offset between hosts distorts).
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, hide = true)]
    pub clock_ahead: Option<Duration>,
    /// Announce this control-protocol version instead of the real one (testing refusals).
    #[arg(long, hide = true)]
    pub protocol: Option<u32>,
}

/// Runs the agent until the coordinator ends the run.
pub async fn run(args: &AgentArgs) -> anyhow::Result<()> {
    let coordinator = if args.coordinator.contains(':') {
        args.coordinator.clone()
    } else {
        format!("{}:{DEFAULT_CONTROL_PORT}", args.coordinator)
    };
    let dial = Dial {
        coordinator,
        token: args.token.clone(),
        name: args.name.clone(),
        patience: args.patience,
        protocol: args.protocol.unwrap_or(PROTOCOL),
        listen: args.listen,
    };
    let (tx, rx) = control::dial(&dial).await?;
    crate::output::progress::note(&format!(
        "agent {}: connected to the coordinator at {}",
        args.name, dial.coordinator
    ));
    let settings = AgentSettings {
        listen: args.listen,
        resolve: args.resolve,
        clock_ahead: args.clock_ahead.unwrap_or_default(),
    };
    serve_agent(tx, rx, &settings).await?;
    crate::output::progress::note(&format!("agent {}: the run is over", args.name));
    Ok(())
}
