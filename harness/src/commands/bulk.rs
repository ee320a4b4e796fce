//! `vmsbench bulk`: unpaced frames through one or more connections, the link's ceiling,
//! in plaintext and over TLS.

use clap::Args;
use simulators::clock::RunClock;
use tokio_util::sync::CancellationToken;

use super::measure::{finish, gather_agents, now_rfc3339, record_placement, repeat_phases, Header};
use super::run::apply_common;
use crate::cli::{count_within, parse_frame_size, MeasureArgs, PlacementArgs, ThreadArgs, TlsArgs};
use crate::engine::credentials::Credentials;
use crate::engine::deployment::{run_bulk_phase_with, BulkLoad};
use crate::engine::scenario::file;
use crate::report::Report;
use crate::sys::environment::Environment;

/// Most parallel connections: each carries frames as fast as it can, so a few saturate a
/// machine; thousands measure contention, not a link.
pub const MAX_CONNECTIONS: u64 = 10_000;

/// `vmsbench bulk`.
#[derive(Debug, Args)]
pub struct BulkArgs {
    /// Measurement flags.
    #[command(flatten)]
    pub measure: MeasureArgs,
    /// Parallel connections: 1 to 10000.
    #[arg(long, default_value = "1", value_parser = count_within::<u32>(1, MAX_CONNECTIONS))]
    pub connections: u32,
    /// Payload bytes per frame (e.g. 64KiB, 146KB): 1 B to 16 MiB.
    #[arg(long, default_value = "64KiB", value_parser = parse_frame_size)]
    pub frame_size: usize,
    /// TLS flags.
    #[command(flatten)]
    pub tls: TlsArgs,
    /// Thread flags.
    #[command(flatten)]
    pub threads: ThreadArgs,
    /// Placement flags: `--place bulk-sender=a --place bulk-receivers=b` measures the
    /// ceiling of the network between two machines.
    #[command(flatten)]
    pub placement: PlacementArgs,
}

/// The key type of the bulk server's certificate (the `small` preset's, or `--key`).
pub(super) fn key(args: &BulkArgs) -> anyhow::Result<simulators::pki::KeyType> {
    let mut scenario = file::load_preset("small")?;
    apply_common(&mut scenario, &args.tls, &args.threads);
    Ok(scenario.key)
}

/// `vmsbench bulk`: the unpaced link ceiling.
pub async fn run(args: &BulkArgs, interrupt: &CancellationToken) -> anyhow::Result<Report> {
    let t = args.measure.checked_timing()?;
    let mut scenario = file::load_preset("small")?;
    scenario.name = format!(
        "bulk: {} connection(s), {} B frames",
        args.connections, args.frame_size
    );
    apply_common(&mut scenario, &args.tls, &args.threads);
    let started_at = now_rfc3339();
    let environment = Environment::detect();
    let creds = Credentials::for_scenario(&scenario)?;
    let clock = RunClock::new();
    let load = BulkLoad {
        connections: args.connections,
        frame_size: args.frame_size,
    };
    if let Some(rule) = args.placement.wan.first() {
        anyhow::bail!(
            "--wan {rule}: bulk has no client groups to put behind a WAN; cap the network \
             between its agents with lab/netns.sh rate instead"
        );
    }
    let agents = gather_agents(&args.placement, interrupt).await?;
    let (scenario_ref, creds_ref) = (&scenario, &creds);
    let phases = repeat_phases(&args.measure, t, interrupt, |mode, mut options| {
        options.agents = agents.clone();
        async move {
            run_bulk_phase_with(
                scenario_ref,
                creds_ref,
                mode,
                load,
                clock,
                t,
                interrupt,
                &options,
            )
            .await
        }
    })
    .await;
    if let Some(a) = &agents {
        a.bye().await;
    }
    let (completed, collector) = phases?;
    let scenario_json = serde_json::json!({
        "name": scenario.name,
        "connections": args.connections,
        "frame_size_bytes": args.frame_size,
        "tls": scenario.tls,
        "key": scenario.key,
        "server_threads": scenario.server_threads,
        "client_threads": scenario.client_threads,
    });
    let header = Header {
        command: "bulk",
        started_at,
        environment,
        scenario: scenario_json,
        certificates: creds.summary(),
        server_tls: scenario.tls.accepted_by_servers(),
    };
    let mut report = finish(header, &args.measure, completed, collector, interrupt);
    if let Some(a) = &agents {
        record_placement(&mut report, a);
    }
    Ok(report)
}
