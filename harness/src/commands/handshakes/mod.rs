//! `vmsbench handshakes`: what a TLS handshake costs, cell by cell, over real sockets on
//! 127.0.0.1.
//!
//! The matrix is TLS version × certificate key type × key-exchange group × full or resumed
//! handshake. X25519MLKEM768 exists only in TLS 1.3, so its TLS 1.2 cells are skipped and
//! listed as such. Each cell gets a server of its own (its own listener on port 0, its own
//! session cache or ticket key) on the `hs-server` role runtime, and `--concurrency` client
//! loops on the `hs-clients` runtime, each dialling, handshaking, and closing, over and over:
//!
//! - a connection is TCP connect + TLS handshake; then the client sends close_notify and
//!   reads until the server's close_notify (which also delivers TLS 1.3 session tickets),
//!   and the server closes. No application data is exchanged.
//! - latency is client-side, from the start of the TCP connect to the handshake's
//!   completion (HdrHistogram, µs), for handshakes that complete inside the window;
//! - CPU per handshake is each role's CPU time over the window (every thread of its
//!   runtime: accept, handshake, close) divided by the handshakes completed in the window.
//!
//! Full cells turn resumption off at both ends (no session cache, no tickets), so that
//! they cost exactly a full handshake. Resumed cells resume the way each version does it
//! here: TLS 1.2 by session id (server-side session cache, no tickets), TLS 1.3 by
//! stateless tickets (a ticket key on the server); every client loop shares one client
//! configuration, and with it one resumption store. A few unmeasured handshakes before
//! the warm-up fill that store. Whether each handshake really resumed is recorded
//! (`resumed_fraction`) and a resumed cell that did not resume is flagged.
//!
//! Certificates (a CA and a server certificate per key type; RSA-4096 takes seconds) are
//! generated before anything is timed.

pub(crate) mod cell;

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::Context;
use clap::{Args, ValueEnum};
use simulators::pki::{KeyType, Pki};
use simulators::role::RoleRuntime;
use simulators::transport::{Cipher, KxGroup, TlsSettings, TlsVersion};
use tokio_util::sync::CancellationToken;

use crate::cli::{
    count_within, duration_within, DocumentExportArgs, ThreadArgs, MAX_WARMUP, MIN_WINDOW,
};
use crate::output::progress::{self, Steps};
use crate::output::terminal::cpu_cell;
use crate::report::handshakes::{
    HandshakeMeasurement, HandshakesReport, Resumption, SkippedCell, SCHEMA_VERSION,
};
use crate::sys::environment::Environment;
use crate::units::format_duration_us;
use cell::{invalid_reason, measure_cell, Cell, CellTiming};

/// The host name the handshake server's certificates carry and the clients verify.
pub const SERVER_HOST: &str = "handshake-server.vms.test";

/// How long the generated certificates are valid.
const CERT_DAYS: u32 = 30;

/// Generates a CA and a server certificate for [`SERVER_HOST`] with a `key`, valid for
/// `days`, on a blocking thread, noting it on the progress line first.
pub(crate) async fn generate_pki(key: KeyType, days: u32) -> anyhow::Result<Pki> {
    progress::note(&format!("generating a {key} CA and server certificate"));
    tokio::task::spawn_blocking(move || Pki::generate(&[SERVER_HOST], key, days))
        .await
        .context("certificate generation stopped")?
        .with_context(|| format!("generating the {key} certificates"))
}

/// Name of the server role's runtime (and threads).
pub const SERVER_ROLE: &str = "hs-server";

/// Name of the client role's runtime (and threads).
pub const CLIENT_ROLE: &str = "hs-clients";

/// `vmsbench handshakes`.
#[derive(Debug, Args)]
pub struct HandshakesArgs {
    /// Measured window of each cell (e.g. 2s, 500ms): 100ms to 1h.
    #[arg(long, value_parser = duration_within(MIN_WINDOW, MAX_WARMUP), default_value = "2s")]
    pub duration: Duration,
    /// Unmeasured handshakes before each cell's window (e.g. 250ms; 0 for none): at most
    /// 1h.
    #[arg(long, value_parser = duration_within(Duration::ZERO, MAX_WARMUP), default_value = "250ms")]
    pub warmup: Duration,
    /// Client connections in flight at once (default: the number of cores): 1 to 10000.
    /// With 1, the latency is that of an idle server; with more, it includes queueing.
    #[arg(long, value_parser = parse_concurrency)]
    pub concurrency: Option<u32>,
    /// TLS versions: 1.2, 1.3 (comma-separated).
    #[arg(long, value_delimiter = ',', default_value = "1.2,1.3")]
    pub versions: Vec<TlsVersion>,
    /// Certificate key types: rsa2048, rsa3072, rsa4096, ecdsa-p256, ecdsa-p384.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "rsa2048,rsa3072,rsa4096,ecdsa-p256,ecdsa-p384"
    )]
    pub keys: Vec<KeyType>,
    /// Key-exchange groups: x25519, secp256r1, secp384r1, x25519mlkem768 (TLS 1.3 only).
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "x25519,secp256r1,x25519mlkem768"
    )]
    pub groups: Vec<KxGroup>,
    /// Full handshakes, resumed ones, or both.
    #[arg(long, value_enum, default_value_t = ResumptionArg::Both)]
    pub resumption: ResumptionArg,
    /// Bulk cipher of the negotiated suite: aes128-gcm, aes256-gcm, chacha20-poly1305.
    #[arg(long, default_value = "aes256-gcm")]
    pub cipher: Cipher,
    /// Thread flags.
    #[command(flatten)]
    pub threads: ThreadArgs,
    /// Where to write the report.
    #[command(flatten)]
    pub export: DocumentExportArgs,
}

/// Most client connections in flight at once: each holds two sockets.
const MAX_CONCURRENCY: u64 = 10_000;

fn parse_concurrency(s: &str) -> Result<u32, String> {
    count_within(1, MAX_CONCURRENCY)(s)
}

/// Which handshakes to measure.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ResumptionArg {
    /// Full handshakes only.
    Full,
    /// Resumed handshakes only.
    Resumed,
    /// Both, full first.
    Both,
}

impl ResumptionArg {
    fn kinds(self) -> &'static [Resumption] {
        match self {
            ResumptionArg::Full => &[Resumption::Full],
            ResumptionArg::Resumed => &[Resumption::Resumed],
            ResumptionArg::Both => &[Resumption::Full, Resumption::Resumed],
        }
    }
}

/// Keeps the first occurrence of each value, in order.
fn dedup<T: PartialEq + Copy>(values: &[T]) -> Vec<T> {
    let mut out: Vec<T> = Vec::with_capacity(values.len());
    for v in values {
        if !out.contains(v) {
            out.push(*v);
        }
    }
    out
}

/// The cells to measure and the ones skipped, in matrix order.
fn plan(args: &HandshakesArgs) -> (Vec<Cell>, Vec<SkippedCell>) {
    let mut cells = Vec::new();
    let mut skipped = Vec::new();
    for version in dedup(&args.versions) {
        for key in dedup(&args.keys) {
            for group in dedup(&args.groups) {
                for resumption in args.resumption.kinds() {
                    let cell = Cell {
                        version,
                        key,
                        group,
                        resumption: *resumption,
                    };
                    match invalid_reason(version, group) {
                        Some(reason) => skipped.push(SkippedCell {
                            version,
                            key,
                            group,
                            resumption: *resumption,
                            reason: reason.to_owned(),
                        }),
                        None => cells.push(cell),
                    }
                }
            }
        }
    }
    (cells, skipped)
}

/// Measures every cell and assembles the report (without printing it).
pub async fn measure(
    args: &HandshakesArgs,
    interrupt: &CancellationToken,
) -> anyhow::Result<HandshakesReport> {
    let started_at = humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string();
    let (cells, skipped) = plan(args);
    if cells.is_empty() {
        let why = skipped
            .first()
            .map_or("the filters select no cell".to_owned(), |s| {
                s.reason.clone()
            });
        anyhow::bail!(
            "nothing to measure with --versions/--keys/--groups as given: {why}; add a TLS \
             version or group that can be combined"
        );
    }
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let half = (cores / 2).max(1);
    let server_threads = args.threads.server_threads.unwrap_or(half).max(1);
    let client_threads = args.threads.client_threads.unwrap_or(half).max(1);
    let concurrency = args
        .concurrency
        .unwrap_or_else(|| u32::try_from(cores).unwrap_or(u32::MAX));

    // Every key first: nothing below is timed until all of them exist.
    let mut pkis: BTreeMap<KeyType, Pki> = BTreeMap::new();
    for key in dedup(&args.keys) {
        if !cells.iter().any(|c| c.key == key) {
            continue;
        }
        if interrupt.is_cancelled() {
            break;
        }
        pkis.insert(key, generate_pki(key, CERT_DAYS).await?);
    }

    let server = RoleRuntime::new(SERVER_ROLE, server_threads)
        .with_context(|| format!("starting the {SERVER_ROLE} runtime"))?;
    let clients = RoleRuntime::new(CLIENT_ROLE, client_threads)
        .with_context(|| format!("starting the {CLIENT_ROLE} runtime"))?;
    let timing = CellTiming {
        warmup: args.warmup,
        duration: args.duration,
        concurrency,
    };

    let mut results = Vec::new();
    let mut steps = Steps::new(Some(cells.len()));
    for cell in &cells {
        if interrupt.is_cancelled() {
            break;
        }
        let Some(pki) = pkis.get(&cell.key) else {
            break;
        };
        steps.begin(&cell.label());
        let tls = TlsSettings {
            versions: vec![cell.version],
            ciphers: vec![args.cipher],
            groups: vec![cell.group],
        };
        let outcome = measure_cell(cell, &tls, pki, &server, &clients, timing, interrupt)
            .await
            .with_context(|| format!("measuring {}", cell.label()))?;
        let Some(result) = outcome else {
            steps.end("interrupted");
            break;
        };
        steps.end(&format!(
            "{:.0} handshakes/s, p50 {}, server {} / client {} CPU per handshake",
            result.handshakes_per_s,
            format_duration_us(result.latency_us.p50 as f64),
            cpu_cell(result.cpu_server_us_per_handshake),
            cpu_cell(result.cpu_client_us_per_handshake),
        ));
        results.push(result);
    }

    let mut report = HandshakesReport {
        schema_version: SCHEMA_VERSION,
        command: "handshakes".to_owned(),
        started_at,
        partial: interrupt.is_cancelled(),
        environment: Environment::detect(),
        measurement: HandshakeMeasurement {
            duration_s: args.duration.as_secs_f64(),
            warmup_s: args.warmup.as_secs_f64(),
            concurrency,
            server_threads,
            client_threads,
            cipher: args.cipher,
            server_name: SERVER_HOST.to_owned(),
            method: "per connection: TCP connect to 127.0.0.1, TLS handshake, close_notify both \
                     ways, close; latency = connect start to handshake complete (client side); \
                     CPU = each role's threads over the window / handshakes in the window"
                .to_owned(),
        },
        results,
        skipped,
        warnings: Vec::new(),
    };
    report.derive_warnings();
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(flatten)]
        args: HandshakesArgs,
    }

    fn args(extra: &[&str]) -> HandshakesArgs {
        Cli::parse_from(std::iter::once("handshakes").chain(extra.iter().copied())).args
    }

    #[test]
    fn the_default_matrix_has_every_valid_cell_and_skips_mlkem_with_tls12() {
        let a = args(&[]);
        assert_eq!(a.duration, Duration::from_secs(2));
        let (cells, skipped) = plan(&a);
        // 1.2: 5 keys × 2 groups × 2; 1.3: 5 keys × 3 groups × 2.
        assert_eq!(cells.len(), 20 + 30);
        assert_eq!(skipped.len(), 10);
        assert!(skipped
            .iter()
            .all(|s| s.version == TlsVersion::Tls12 && s.group == KxGroup::X25519mlkem768));
        assert!(!cells
            .iter()
            .any(|c| c.version == TlsVersion::Tls12 && c.group == KxGroup::X25519mlkem768));
        assert_eq!(cells[0].label(), "TLS 1.2 rsa2048 x25519 full");
    }

    #[test]
    fn filters_parse_human_units_and_duplicates_collapse() {
        let a = args(&[
            "--duration",
            "200ms",
            "--keys",
            "ecdsa-p256,rsa2048,ecdsa-p256",
            "--versions",
            "1.3",
            "--groups",
            "x25519",
            "--resumption",
            "resumed",
            "--concurrency",
            "3",
            "--export-json",
            "out.json",
        ]);
        assert_eq!(a.duration, Duration::from_millis(200));
        assert_eq!(a.concurrency, Some(3));
        assert_eq!(
            a.export.json.as_deref(),
            Some(std::path::Path::new("out.json"))
        );
        let (cells, skipped) = plan(&a);
        assert!(skipped.is_empty());
        let keys: Vec<KeyType> = cells.iter().map(|c| c.key).collect();
        assert_eq!(keys, [KeyType::EcdsaP256, KeyType::Rsa2048]);
        assert!(cells.iter().all(|c| c.resumption == Resumption::Resumed));
        assert_eq!(cells[0].mechanism(), "ticket");
    }

    #[test]
    fn bad_flags_are_refused() {
        for bad in [
            &["--concurrency", "0"][..],
            &["--keys", "rsa1024"],
            &["--groups", "ffdhe2048"],
            &["--versions", "1.1"],
            &["--resumption", "sometimes"],
            &["--duration", "fast"],
            &["--duration", "0s"],
            &["--duration", "100y"],
            &["--warmup", "2h"],
            &["--concurrency", "1M"],
        ] {
            let argv = std::iter::once("handshakes").chain(bad.iter().copied());
            assert!(Cli::try_parse_from(argv).is_err(), "{bad:?} was accepted");
        }
    }
}
