//! `vmsbench limits`: this machine's own ceilings, measured in one sitting, so that a report
//! can say how close it came to them (`--with-limits` on `run`, `bulk` and `capacity`).
//!
//! Each measurement gets the same time budget (`--budget`, 1 s by default):
//!
//! - `tcp`: one plaintext loopback connection, unpaced, 128 KiB writes, on two threads of
//!   its own (what `iperf3` measures);
//! - `record`: sealing and opening frames with each suite (TLS 1.3 and 1.2, every bulk
//!   cipher), for every frame size of the built-in camera profiles, on one core, through a
//!   client and a server connected in memory — the benches' pair; the budget is each
//!   suite's, shared among its frame sizes;
//! - handshakes: full and resumed, per key type, one connection at a time over loopback —
//!   the handshake matrix's cells at concurrency 1; the budget is each key type's;
//! - `memory`: resident memory per idle TLS connection, both ends in this process;
//! - `floor`: the latency of one frame at a time on an established loopback connection,
//!   plaintext and TLS.
//!
//! Certificates are generated before anything is timed.

mod floor;
mod memory;
mod record;
mod tcp;

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::Context as _;
use clap::Args;
use simulators::pki::{KeyType, Pki};
use simulators::role::RoleRuntime;
use simulators::transport::{Mode, TlsSettings, TlsVersion};
use tokio_util::sync::CancellationToken;

use super::handshakes::cell::{measure_cell, Cell, CellTiming};
use super::handshakes::{generate_pki, SERVER_HOST};
use crate::cli::{parse_budget, parse_positive_usize, DocumentExportArgs};
use crate::output::progress::{self, Steps};
use crate::report::handshakes::Resumption;
use crate::report::limits::{Limits, LimitsReport, SCHEMA_VERSION};
use crate::sys::environment::Environment;
use crate::units::format_duration_us;

/// How long the generated certificates are valid.
const CERT_DAYS: u32 = 7;

/// Idle TLS connections opened to measure memory per connection, by default.
pub const DEFAULT_IDLE_CONNECTIONS: usize = 500;

/// `vmsbench limits`.
#[derive(Debug, Args)]
pub struct LimitsArgs {
    /// Time for each measurement (e.g. 1s, 200ms): TCP goodput, each suite's record layer,
    /// each key type's handshakes, each mode's latency floor.
    #[arg(long, value_parser = parse_budget, default_value = "1s")]
    pub budget: Duration,
    /// Idle TLS connections opened to measure memory per connection.
    #[arg(long, value_parser = parse_positive_usize, default_value_t = DEFAULT_IDLE_CONNECTIONS)]
    pub idle_connections: usize,
    /// Certificate key types whose handshakes are measured: rsa2048, rsa3072, rsa4096,
    /// ecdsa-p256, ecdsa-p384.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "rsa2048,rsa3072,rsa4096,ecdsa-p256,ecdsa-p384"
    )]
    pub keys: Vec<KeyType>,
    /// Where to write the report.
    #[command(flatten)]
    pub export: DocumentExportArgs,
}

/// What to measure.
#[derive(Clone, Debug)]
pub(crate) struct Plan {
    pub(crate) budget: Duration,
    pub(crate) idle_connections: usize,
    /// Key types of the handshake measurements; the first is also the idle connections'.
    pub(crate) keys: Vec<KeyType>,
}

/// `vmsbench limits`: measures and assembles the report.
pub async fn run(args: &LimitsArgs, interrupt: &CancellationToken) -> anyhow::Result<LimitsReport> {
    let mut keys: Vec<KeyType> = Vec::new();
    for k in &args.keys {
        if !keys.contains(k) {
            keys.push(*k);
        }
    }
    let plan = Plan {
        budget: args.budget,
        idle_connections: args.idle_connections,
        keys,
    };
    let started_at = humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string();
    let environment = Environment::detect();
    let limits = measure(&plan, interrupt).await?;
    let mut report = LimitsReport {
        schema_version: SCHEMA_VERSION,
        command: "limits".to_owned(),
        started_at,
        partial: interrupt.is_cancelled(),
        environment,
        limits,
        warnings: Vec::new(),
    };
    report.derive_warnings();
    Ok(report)
}

/// The limits a `--with-limits` run measures first: every figure at `budget`, handshakes
/// with the run's own key type only.
pub(crate) async fn measure_for_run(
    budget: Duration,
    key: KeyType,
    interrupt: &CancellationToken,
) -> anyhow::Result<Limits> {
    progress::note("measuring this machine's limits first (--with-limits)");
    let plan = Plan {
        budget,
        idle_connections: DEFAULT_IDLE_CONNECTIONS,
        keys: vec![key],
    };
    measure(&plan, interrupt).await
}

/// Measures every limit of `plan`, in order; stops early (returning what it has) when
/// interrupted.
pub(crate) async fn measure(plan: &Plan, interrupt: &CancellationToken) -> anyhow::Result<Limits> {
    let mut limits = Limits {
        budget_s: plan.budget.as_secs_f64(),
        ..Limits::default()
    };
    let mut pkis: BTreeMap<KeyType, Pki> = BTreeMap::new();
    let memory_key = plan.keys.first().copied().unwrap_or_default();
    for key in plan.keys.iter().copied().chain([memory_key]) {
        if pkis.contains_key(&key) || interrupt.is_cancelled() {
            continue;
        }
        pkis.insert(key, generate_pki(key, CERT_DAYS).await?);
    }
    let Some(pki) = pkis.get(&memory_key) else {
        return Ok(limits);
    };
    let sizes = record::frame_sizes()?;
    let suites = record::suites();
    let mut steps = Steps::new(Some(4 + suites.len() + plan.keys.len()));

    steps.begin("loopback TCP, one connection");
    let budget = plan.budget;
    let tcp = tokio::task::spawn_blocking(move || tcp::measure(budget))
        .await
        .context("the TCP measurement stopped")??;
    steps.end(&format!("{:.0} Mbit/s", tcp.goodput_mbit_s));
    limits.tcp = Some(tcp);

    for (version, cipher) in suites {
        if interrupt.is_cancelled() {
            return Ok(limits);
        }
        steps.begin(&format!("record layer TLS {version} {cipher}"));
        let configs = record::configs(pki, version, cipher)?;
        let sizes = sizes.clone();
        let suite = tokio::task::spawn_blocking(move || {
            record::measure(configs, version, cipher, &sizes, budget)
        })
        .await
        .context("the record-layer measurement stopped")??;
        let largest = suite.frames.last();
        steps.end(&largest.map_or_else(String::new, |f| {
            format!(
                "seal {:.0} MB/s, open {:.0} MB/s at {} B",
                f.seal_mbyte_s, f.open_mbyte_s, f.frame_bytes
            )
        }));
        limits.record_layer.push(suite);
    }

    let server = RoleRuntime::new("limits-server", 1).context("starting the server runtime")?;
    let clients = RoleRuntime::new("limits-clients", 1).context("starting the client runtime")?;
    for key in &plan.keys {
        let Some(pki) = pkis.get(key) else { break };
        steps.begin(&format!("handshakes {key}"));
        let mut done = Vec::new();
        for resumption in [Resumption::Full, Resumption::Resumed] {
            let cell = Cell {
                version: TlsVersion::Tls13,
                key: *key,
                group: TlsSettings::default().groups[0],
                resumption,
            };
            let tls = TlsSettings::default();
            let timing = CellTiming {
                warmup: budget / 10,
                duration: budget / 2,
                concurrency: 1,
            };
            let outcome = measure_cell(&cell, &tls, pki, &server, &clients, timing, interrupt)
                .await
                .with_context(|| format!("measuring {}", cell.label()))?;
            let Some(result) = outcome else {
                return Ok(limits);
            };
            done.push(format!(
                "{} {:.0}/s (p50 {})",
                resumption.as_str(),
                result.handshakes_per_s,
                format_duration_us(result.latency_us.p50 as f64)
            ));
            limits.handshakes.push(result);
        }
        steps.end(&done.join(", "));
    }

    if interrupt.is_cancelled() {
        return Ok(limits);
    }
    steps.begin(&format!("{} idle TLS connections", plan.idle_connections));
    let memory = memory::measure(pki, memory_key, plan.idle_connections, &server, &clients)
        .await
        .context("measuring memory per idle connection")?;
    steps.end(&memory.as_ref().map_or_else(
        || "resident memory is not readable here".to_owned(),
        |m| format!("{:.1} KiB per connection", m.bytes_per_connection / 1024.0),
    ));
    limits.memory = memory;

    let smallest = sizes.first().map_or(1024, |s| s.bytes);
    for mode in [Mode::Plain, Mode::Tls] {
        if interrupt.is_cancelled() {
            return Ok(limits);
        }
        steps.begin(&format!("latency floor, {mode}"));
        let tls = (mode == Mode::Tls).then_some(pki);
        let floor = floor::measure(tls, smallest, budget, &server, &clients, interrupt)
            .await
            .with_context(|| format!("measuring the {mode} latency floor"))?;
        steps.end(&format!(
            "p50 {}, p99 {}",
            format_duration_us(floor.latency_us.p50 as f64),
            format_duration_us(floor.latency_us.p99 as f64)
        ));
        limits.latency_floor.push(floor);
    }
    Ok(limits)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(flatten)]
        args: LimitsArgs,
    }

    #[test]
    fn flags_parse_and_bad_ones_are_refused() {
        let a = Cli::parse_from(["limits"]).args;
        assert_eq!(a.budget, Duration::from_secs(1));
        assert_eq!(a.idle_connections, DEFAULT_IDLE_CONNECTIONS);
        assert_eq!(a.keys.len(), KeyType::ALL.len());
        let a = Cli::parse_from(["limits", "--budget", "50ms", "--keys", "ecdsa-p256"]).args;
        assert_eq!(
            (a.budget, a.keys),
            (Duration::from_millis(50), vec![KeyType::EcdsaP256])
        );
        for bad in [
            &["--budget", "1ms"][..],
            &["--budget", "soon"],
            &["--idle-connections", "0"],
            &["--keys", "ed448"],
        ] {
            let argv = std::iter::once("limits").chain(bad.iter().copied());
            assert!(Cli::try_parse_from(argv).is_err(), "{bad:?} was accepted");
        }
    }
}
