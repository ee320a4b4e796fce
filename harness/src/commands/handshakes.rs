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

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::{Args, ValueEnum};
use hdrhistogram::Histogram;
use rustls::client::{Resumption as ClientResumption, Tls12Resumption};
use rustls::server::{NoServerSessionStorage, ServerSessionMemoryCache};
use rustls::{ClientConfig, ServerConfig};
use serde::{Deserialize, Serialize};
use simulators::metrics::{latency_histogram, ns_to_us, RecordUs};
use simulators::pki::{KeyType, Pki};
use simulators::role::RoleRuntime;
use simulators::transport::{
    Cipher, ConnectError, Connector, Incoming, KxGroup, Listener, Stream, TlsSettings, TlsVersion,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::cli::ThreadArgs;
use crate::report::{Percentiles, TlsInfo};
use crate::sys::environment::Environment;
use crate::units::{format_duration_us, parse_count, parse_duration};

/// Version of the JSON layout of this report. Bumped when a field changes meaning or type.
pub const SCHEMA_VERSION: u32 = 1;
/// The host name the handshake server's certificates carry and the clients verify.
pub const SERVER_HOST: &str = "handshake-server.vms.test";
/// How long the generated certificates are valid.
const CERT_DAYS: u32 = 30;
/// Name of the server role's runtime (and threads).
pub const SERVER_ROLE: &str = "hs-server";
/// Name of the client role's runtime (and threads).
pub const CLIENT_ROLE: &str = "hs-clients";
/// How long either end waits for the other's close_notify before dropping the connection.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(2);
/// How long a cell's server may take to finish its last connections once the clients stop.
const SERVER_STOP_TIMEOUT: Duration = Duration::from_secs(5);
/// Sessions the server's TLS 1.2 session cache holds.
const SERVER_SESSION_CACHE: usize = 4096;
/// Sessions (and TLS 1.3 tickets) the clients' shared resumption store holds.
const CLIENT_SESSION_CACHE: usize = 256;
/// Pause after a failed connection, so that a cell that cannot connect does not spin.
const ERROR_BACKOFF: Duration = Duration::from_millis(1);
/// Distinct failure messages kept per cell.
const MAX_ERROR_MESSAGES: usize = 5;
/// The group reported for a resumed TLS 1.2 handshake, which exchanges no key.
const NO_KEY_EXCHANGE: &str = "none";
/// A resumed cell in which fewer handshakes than this resumed is flagged.
const RESUMED_FLOOR: f64 = 0.99;

/// `vmsbench handshakes`.
#[derive(Debug, Args)]
pub struct HandshakesArgs {
    /// Measured window of each cell (e.g. 2s, 500ms).
    #[arg(long, value_parser = parse_duration, default_value = "2s")]
    pub duration: Duration,
    /// Unmeasured handshakes before each cell's window (e.g. 250ms; 0 for none).
    #[arg(long, value_parser = parse_duration, default_value = "250ms")]
    pub warmup: Duration,
    /// Client connections in flight at once (default: the number of cores). With 1, the
    /// latency is that of an idle server; with more, it includes queueing.
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
    /// Write the report as JSON to FILE (`-` for stdout, which then gets no table).
    #[arg(long, visible_alias = "export-json", value_name = "FILE")]
    pub json: Option<PathBuf>,
}

fn parse_concurrency(s: &str) -> Result<u32, String> {
    let n = parse_count(s)?;
    match u32::try_from(n) {
        Ok(0) => Err("--concurrency must be at least 1".to_owned()),
        Ok(n) => Ok(n),
        Err(_) => Err(format!("{s} is too large (at most {})", u32::MAX)),
    }
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

/// A full or a resumed handshake.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Resumption {
    /// A full handshake: certificate, signature, key exchange.
    Full,
    /// An abbreviated handshake from a session the client holds.
    Resumed,
}

impl Resumption {
    /// The name used in reports and flags.
    pub fn as_str(self) -> &'static str {
        match self {
            Resumption::Full => "full",
            Resumption::Resumed => "resumed",
        }
    }
}

/// One cell of the matrix.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Cell {
    version: TlsVersion,
    key: KeyType,
    group: KxGroup,
    resumption: Resumption,
}

impl Cell {
    fn label(&self) -> String {
        format!(
            "TLS {} {} {} {}",
            self.version,
            self.key,
            self.group,
            self.resumption.as_str()
        )
    }

    /// How sessions are resumed in this cell.
    fn mechanism(&self) -> &'static str {
        match (self.resumption, self.version) {
            (Resumption::Full, _) => "none",
            (Resumption::Resumed, TlsVersion::Tls12) => "session_id",
            (Resumption::Resumed, TlsVersion::Tls13) => "ticket",
        }
    }
}

/// Why a combination cannot be measured, if it cannot.
fn invalid_reason(version: TlsVersion, group: KxGroup) -> Option<&'static str> {
    match (version, group) {
        (TlsVersion::Tls12, KxGroup::X25519mlkem768) => Some(
            "X25519MLKEM768 is a TLS 1.3 key exchange; TLS 1.2 cannot negotiate it \
             (rustls refuses the handshake)",
        ),
        _ => None,
    }
}

/// The whole report.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct HandshakesReport {
    /// Version of this layout.
    pub schema_version: u32,
    /// Always `handshakes`.
    pub command: String,
    /// When the run started (RFC 3339, UTC).
    pub started_at: String,
    /// True when the run was interrupted: only the cells measured before are present.
    pub partial: bool,
    /// How and where it was measured.
    pub environment: Environment,
    /// How each cell was measured.
    pub measurement: HandshakeMeasurement,
    /// One entry per measured cell, in matrix order (version, key, group, resumption).
    pub results: Vec<CellResult>,
    /// Cells asked for that cannot exist (e.g. X25519MLKEM768 with TLS 1.2), and why.
    pub skipped: Vec<SkippedCell>,
    /// Things a reader must know before trusting the figures.
    pub warnings: Vec<String>,
}

/// How each cell was measured.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct HandshakeMeasurement {
    /// Seconds in each cell's measured window.
    pub duration_s: f64,
    /// Seconds of unmeasured handshakes before each window.
    pub warmup_s: f64,
    /// Client connections in flight at once.
    pub concurrency: u32,
    /// Worker threads of the server role (`hs-server`).
    pub server_threads: usize,
    /// Worker threads of the client role (`hs-clients`).
    pub client_threads: usize,
    /// The bulk cipher every cell pins.
    pub cipher: Cipher,
    /// The host name the certificates carry and the clients verify.
    pub server_name: String,
    /// What one measured connection is, and what is timed.
    pub method: String,
}

/// The figures of one cell.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct CellResult {
    /// TLS version pinned at both ends (`1.2`, `1.3`).
    pub version: TlsVersion,
    /// Key type of the server certificate (and of the CA that issued it).
    pub key: KeyType,
    /// Key-exchange group pinned at both ends.
    pub group: KxGroup,
    /// `full` or `resumed`.
    pub resumption: Resumption,
    /// How sessions resume in this cell: `none` (full), `session_id` (TLS 1.2, server-side
    /// cache) or `ticket` (TLS 1.3, stateless tickets).
    pub mechanism: String,
    /// Handshakes completed within the window.
    pub handshakes: u64,
    /// `handshakes` per second of window.
    pub handshakes_per_s: f64,
    /// Seconds in the window.
    pub window_s: f64,
    /// TCP connect start → TLS handshake complete, client side, µs.
    pub latency_us: Percentiles,
    /// CPU µs (user + system) of the server role per handshake in the window; null when
    /// no handshake completed.
    pub cpu_server_us_per_handshake: Option<f64>,
    /// CPU µs of the client role per handshake in the window; null when none completed.
    pub cpu_client_us_per_handshake: Option<f64>,
    /// CPU seconds of the server role in the window.
    pub cpu_server_s: f64,
    /// CPU seconds of the client role in the window.
    pub cpu_client_s: f64,
    /// What the handshakes negotiated (the most frequent, should several differ; null when
    /// none completed). A resumed TLS 1.2 handshake has no key exchange: its group is
    /// `none`. (TLS 1.3 resumption runs the pinned key exchange again.)
    pub negotiated: Option<TlsInfo>,
    /// Share of the window's handshakes that were resumptions (0 to 1).
    pub resumed_fraction: f64,
    /// Failed connections in the window by category (client side).
    pub errors: BTreeMap<String, u64>,
    /// Failed handshakes over the whole cell by category, server side.
    pub server_errors: BTreeMap<String, u64>,
    /// The first distinct failure messages (client side).
    pub error_messages: Vec<String>,
}

/// A cell that was asked for but cannot be measured.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SkippedCell {
    /// TLS version.
    pub version: TlsVersion,
    /// Key type.
    pub key: KeyType,
    /// Key-exchange group.
    pub group: KxGroup,
    /// `full` or `resumed`.
    pub resumption: Resumption,
    /// Why it cannot be measured.
    pub reason: String,
}

/// Runs `vmsbench handshakes`: prints the table on stdout (unless the JSON goes there),
/// progress on stderr, and writes the JSON report if asked.
pub async fn run(args: &HandshakesArgs, interrupt: &CancellationToken) -> anyhow::Result<ExitCode> {
    let report = measure(args, interrupt).await?;
    let json = args.json.as_deref();
    if json != Some(Path::new("-")) {
        print!("{}", report.render_table());
    }
    if let Some(path) = json {
        crate::commands::run::write_json(&report, path)?;
    }
    Ok(if report.partial {
        ExitCode::from(crate::EXIT_INTERRUPTED)
    } else {
        ExitCode::SUCCESS
    })
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
        eprintln!("generating a {key} CA and server certificate");
        let pki =
            tokio::task::spawn_blocking(move || Pki::generate(&[SERVER_HOST], key, CERT_DAYS))
                .await
                .context("certificate generation stopped")?
                .with_context(|| format!("generating the {key} certificates"))?;
        pkis.insert(key, pki);
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
    for (i, cell) in cells.iter().enumerate() {
        if interrupt.is_cancelled() {
            break;
        }
        let Some(pki) = pkis.get(&cell.key) else {
            break;
        };
        eprint!("[{:>2}/{}] {} … ", i + 1, cells.len(), cell.label());
        let _ = std::io::stderr().flush();
        let tls = TlsSettings {
            versions: vec![cell.version],
            ciphers: vec![args.cipher],
            groups: vec![cell.group],
        };
        let outcome = measure_cell(cell, &tls, pki, &server, &clients, timing, interrupt)
            .await
            .with_context(|| format!("measuring {}", cell.label()))?;
        let Some(result) = outcome else {
            eprintln!("interrupted");
            break;
        };
        eprintln!(
            "{:.0} handshakes/s, p50 {}, server {} / client {} CPU per handshake",
            result.handshakes_per_s,
            format_duration_us(result.latency_us.p50 as f64),
            cpu_cell(result.cpu_server_us_per_handshake),
            cpu_cell(result.cpu_client_us_per_handshake),
        );
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

/// Timing shared by every cell.
#[derive(Clone, Copy, Debug)]
struct CellTiming {
    warmup: Duration,
    duration: Duration,
    concurrency: u32,
}

/// The server configuration of a cell: the key's certificate, pinned parameters, and the
/// cell's resumption machinery (fresh for every cell, so no cell inherits sessions).
fn server_config(cell: &Cell, tls: &TlsSettings, pki: &Pki) -> anyhow::Result<Arc<ServerConfig>> {
    let base = pki.server_config(SERVER_HOST, tls)?;
    let mut config = (*base).clone();
    match (cell.resumption, cell.version) {
        (Resumption::Full, _) => {
            config.session_storage = Arc::new(NoServerSessionStorage {});
            config.send_tls13_tickets = 0;
        }
        (Resumption::Resumed, TlsVersion::Tls12) => {
            // Session ids: a server-side cache, and no ticketer (rustls's default).
            config.session_storage = ServerSessionMemoryCache::new(SERVER_SESSION_CACHE);
        }
        (Resumption::Resumed, TlsVersion::Tls13) => {
            config.session_storage = ServerSessionMemoryCache::new(SERVER_SESSION_CACHE);
            config.ticketer = rustls::crypto::aws_lc_rs::Ticketer::new()
                .context("creating the TLS 1.3 ticket key")?;
        }
    }
    Ok(Arc::new(config))
}

/// The client configuration of a cell, shared by all its client loops (and so is its
/// resumption store).
fn client_config(cell: &Cell, tls: &TlsSettings, pki: &Pki) -> anyhow::Result<Arc<ClientConfig>> {
    let base = pki.client_config(tls)?;
    let mut config = (*base).clone();
    config.resumption = match cell.resumption {
        Resumption::Full => ClientResumption::disabled(),
        Resumption::Resumed => ClientResumption::in_memory_sessions(CLIENT_SESSION_CACHE)
            .tls12_resumption(Tls12Resumption::SessionIdOnly),
    };
    Ok(Arc::new(config))
}

/// What one client loop counted.
#[derive(Debug)]
struct ClientTally {
    latency_us: Histogram<u64>,
    handshakes: u64,
    resumed: u64,
    negotiated: BTreeMap<(String, String, String), u64>,
    errors: BTreeMap<String, u64>,
    messages: Vec<String>,
}

impl ClientTally {
    fn new() -> Self {
        ClientTally {
            latency_us: latency_histogram(),
            handshakes: 0,
            resumed: 0,
            negotiated: BTreeMap::new(),
            errors: BTreeMap::new(),
            messages: Vec::new(),
        }
    }

    fn error(&mut self, e: &ConnectError) {
        *self
            .errors
            .entry(e.category.as_str().to_owned())
            .or_default() += 1;
        if self.messages.len() < MAX_ERROR_MESSAGES && !self.messages.contains(&e.message) {
            self.messages.push(e.message.clone());
        }
    }

    fn merge(&mut self, o: ClientTally) {
        // Same bounds on both sides, so adding cannot fail; saturate if it ever did.
        if self.latency_us.add(&o.latency_us).is_err() {
            for v in o.latency_us.iter_recorded() {
                self.latency_us
                    .record_us_n(v.value_iterated_to(), v.count_at_value());
            }
        }
        self.handshakes += o.handshakes;
        self.resumed += o.resumed;
        for (k, v) in o.negotiated {
            *self.negotiated.entry(k).or_default() += v;
        }
        for (k, v) in o.errors {
            *self.errors.entry(k).or_default() += v;
        }
        for m in o.messages {
            if self.messages.len() < MAX_ERROR_MESSAGES && !self.messages.contains(&m) {
                self.messages.push(m);
            }
        }
    }
}

/// What the server of a cell counted, over the whole cell.
#[derive(Debug, Default)]
struct ServerTally {
    handshakes: AtomicU64,
    failures: Mutex<BTreeMap<String, u64>>,
}

impl ServerTally {
    fn fail(&self, category: &str) {
        if let Ok(mut f) = self.failures.lock() {
            *f.entry(category.to_owned()).or_default() += 1;
        }
    }
}

/// Accepts connections until `stop`, each handled on a task of its own (on the runtime
/// this runs on).
async fn accept_loop(
    listener: Listener,
    tally: Arc<ServerTally>,
    tasks: TaskTracker,
    stop: CancellationToken,
) {
    loop {
        let incoming = tokio::select! {
            _ = stop.cancelled() => return,
            r = listener.accept() => r,
        };
        match incoming {
            Ok(incoming) => {
                tasks.spawn(serve_one(incoming, tally.clone()));
            }
            Err(_) => {
                // E.g. out of file descriptors: count it and go on.
                tally.fail("accept");
                tokio::time::sleep(ERROR_BACKOFF).await;
            }
        }
    }
}

/// The server side of one connection: handshake, wait for the client's close_notify,
/// answer with ours, close.
async fn serve_one(incoming: Incoming, tally: Arc<ServerTally>) {
    let accepted = match incoming.handshake().await {
        Ok(a) => a,
        Err(e) => return tally.fail(e.category.as_str()),
    };
    tally.handshakes.fetch_add(1, Ordering::Relaxed);
    let mut stream = accepted.stream;
    let _ = tokio::time::timeout(CLOSE_TIMEOUT, async {
        let mut buf = [0u8; 256];
        // Nothing is sent but close_notify; a reset ends the wait as well.
        while let Ok(n) = stream.read(&mut buf).await {
            if n == 0 {
                break;
            }
        }
        let _ = stream.shutdown().await;
    })
    .await;
}

/// The client side of closing: close_notify, then read until the server's (processing
/// anything it sent first, such as TLS 1.3 session tickets).
async fn close_client(mut stream: Stream) {
    stream.send_close_notify();
    let _ = tokio::time::timeout(CLOSE_TIMEOUT, async {
        stream.flush().await?;
        let mut buf = [0u8; 256];
        while stream.read(&mut buf).await? > 0 {}
        Ok::<_, std::io::Error>(())
    })
    .await;
}

/// One unmeasured connection: connect, handshake, close.
async fn visit_once(connector: Connector, addr: SocketAddr) -> Result<(), ConnectError> {
    let connected = connector.connect(addr, SERVER_HOST).await?;
    close_client(connected.stream).await;
    Ok(())
}

/// One client loop: connect, handshake, close, until `end` (or `stop`). Handshakes that
/// complete in `[start, end)` are counted.
async fn client_loop(
    connector: Connector,
    addr: SocketAddr,
    start: Instant,
    end: Instant,
    stop: CancellationToken,
) -> ClientTally {
    let mut tally = ClientTally::new();
    while !stop.is_cancelled() && Instant::now() < end {
        let began = Instant::now();
        let outcome = connector.connect(addr, SERVER_HOST).await;
        let done = Instant::now();
        let counted = done >= start && done < end;
        match outcome {
            Ok(connected) => {
                if counted {
                    tally.handshakes += 1;
                    tally
                        .latency_us
                        .record_us(ns_to_us(done.duration_since(began).as_nanos() as u64));
                    if let Some(n) = &connected.negotiated {
                        if n.resumed {
                            tally.resumed += 1;
                        }
                        // A resumed TLS 1.2 session reuses its master secret: no key
                        // exchange happens, and rustls reports no group.
                        let group = if n.resumed && n.version == "TLSv1_2" && n.group == "unknown" {
                            NO_KEY_EXCHANGE.to_owned()
                        } else {
                            n.group.clone()
                        };
                        *tally
                            .negotiated
                            .entry((n.version.clone(), n.suite.clone(), group))
                            .or_default() += 1;
                    }
                }
                close_client(connected.stream).await;
            }
            Err(e) => {
                if counted {
                    tally.error(&e);
                }
                tokio::time::sleep(ERROR_BACKOFF).await;
            }
        }
    }
    tally
}

/// Sleeps until `at`; false if interrupted first.
async fn sleep_until(at: Instant, interrupt: &CancellationToken) -> bool {
    tokio::select! {
        _ = interrupt.cancelled() => false,
        _ = tokio::time::sleep_until(tokio::time::Instant::from_std(at)) => true,
    }
}

/// Measures one cell; `None` if interrupted.
async fn measure_cell(
    cell: &Cell,
    tls: &TlsSettings,
    pki: &Pki,
    server: &RoleRuntime,
    clients: &RoleRuntime,
    timing: CellTiming,
    interrupt: &CancellationToken,
) -> anyhow::Result<Option<CellResult>> {
    let server_config = server_config(cell, tls, pki)?;
    let connector = Connector::tls(client_config(cell, tls, pki)?);

    // The listener is bound on the server's runtime, so that its I/O is driven there.
    let any_port = SocketAddr::from(([127, 0, 0, 1], 0));
    let listener = server
        .spawn(Listener::bind(any_port, Some(server_config)))
        .await
        .context("the server runtime stopped")?
        .context("binding 127.0.0.1:0")?;
    let addr = listener.local_addr().context("reading the bound address")?;
    let tally = Arc::new(ServerTally::default());
    let tasks = TaskTracker::new();
    let stop = interrupt.child_token();
    let accept = server.spawn(accept_loop(
        listener,
        tally.clone(),
        tasks.clone(),
        stop.clone(),
    ));

    let result = drive_clients(cell, &connector, addr, server, clients, timing, &stop).await;

    stop.cancel();
    let _ = accept.await;
    tasks.close();
    let _ = tokio::time::timeout(SERVER_STOP_TIMEOUT, tasks.wait()).await;
    let Some(mut result) = result? else {
        return Ok(None);
    };
    result.server_errors = tally.failures.lock().map(|f| f.clone()).unwrap_or_default();
    Ok(Some(result))
}

/// Primes the resumption store, runs the client loops through warm-up and window, and
/// collects the cell's figures (without the server's failures).
async fn drive_clients(
    cell: &Cell,
    connector: &Connector,
    addr: SocketAddr,
    server: &RoleRuntime,
    clients: &RoleRuntime,
    timing: CellTiming,
    stop: &CancellationToken,
) -> anyhow::Result<Option<CellResult>> {
    // A few sequential handshakes fill the clients' resumption store (TLS 1.3 tickets are
    // single-use; each handshake brings two), so that the first connections of the loops
    // can resume. Unmeasured, like the warm-up.
    let prime = if cell.resumption == Resumption::Resumed {
        timing.concurrency.clamp(1, 4)
    } else {
        1
    };
    for _ in 0..prime {
        if stop.is_cancelled() {
            return Ok(None);
        }
        // A failure here shows again, counted, in the window.
        let _ = clients.spawn(visit_once(connector.clone(), addr)).await;
    }

    let start = Instant::now() + timing.warmup;
    let end = start + timing.duration;
    let loops: Vec<_> = (0..timing.concurrency)
        .map(|_| {
            clients.spawn(client_loop(
                connector.clone(),
                addr,
                start,
                end,
                stop.clone(),
            ))
        })
        .collect();

    if !sleep_until(start, stop).await {
        return Ok(None);
    }
    let (server_cpu0, client_cpu0) = (server.cpu_seconds(), clients.cpu_seconds());
    let window_start = Instant::now();
    if !sleep_until(end, stop).await {
        return Ok(None);
    }
    let (server_cpu1, client_cpu1) = (server.cpu_seconds(), clients.cpu_seconds());
    let window_s = window_start.elapsed().as_secs_f64().max(1e-9);

    let mut total = ClientTally::new();
    for l in loops {
        total.merge(l.await.context("a client loop failed")?);
    }
    // The CPU readings span the window as the orchestrator saw it (woken a little late at
    // both ends); scale them to the nominal window the handshake counts refer to.
    let scale = timing.duration.as_secs_f64() / window_s;
    let cpu_server_s = (server_cpu1 - server_cpu0).max(0.0) * scale;
    let cpu_client_s = (client_cpu1 - client_cpu0).max(0.0) * scale;
    let per_handshake =
        |cpu_s: f64| (total.handshakes > 0).then(|| cpu_s * 1e6 / total.handshakes as f64);
    let negotiated =
        total
            .negotiated
            .iter()
            .max_by_key(|(_, n)| **n)
            .map(|((version, suite, group), _)| TlsInfo {
                version: version.clone(),
                suite: suite.clone(),
                group: group.clone(),
            });
    let mixed = total.negotiated.len() > 1;
    let mut result = CellResult {
        version: cell.version,
        key: cell.key,
        group: cell.group,
        resumption: cell.resumption,
        mechanism: cell.mechanism().to_owned(),
        handshakes: total.handshakes,
        handshakes_per_s: total.handshakes as f64 / timing.duration.as_secs_f64().max(1e-9),
        window_s: timing.duration.as_secs_f64(),
        latency_us: Percentiles::of(&total.latency_us),
        cpu_server_us_per_handshake: per_handshake(cpu_server_s),
        cpu_client_us_per_handshake: per_handshake(cpu_client_s),
        cpu_server_s,
        cpu_client_s,
        negotiated,
        resumed_fraction: if total.handshakes > 0 {
            total.resumed as f64 / total.handshakes as f64
        } else {
            0.0
        },
        errors: total.errors,
        server_errors: BTreeMap::new(),
        error_messages: total.messages,
    };
    if mixed {
        result.error_messages.push(format!(
            "the handshakes negotiated different parameters: {:?}",
            total.negotiated
        ));
    }
    Ok(Some(result))
}

/// The protocol version name rustls reports for a version (`TLSv1_2`, `TLSv1_3`).
pub fn rustls_version_name(v: TlsVersion) -> &'static str {
    match v {
        TlsVersion::Tls12 => "TLSv1_2",
        TlsVersion::Tls13 => "TLSv1_3",
    }
}

/// The group name rustls reports for a group (`X25519`, `secp256r1`, …).
pub fn rustls_group_name(g: KxGroup) -> &'static str {
    match g {
        KxGroup::X25519 => "X25519",
        KxGroup::Secp256r1 => "secp256r1",
        KxGroup::Secp384r1 => "secp384r1",
        KxGroup::X25519mlkem768 => "X25519MLKEM768",
    }
}

fn cpu_cell(v: Option<f64>) -> String {
    v.map_or_else(|| "–".to_owned(), format_duration_us)
}

impl HandshakesReport {
    /// Warnings derived from the figures: debug build, interruption, cells that did not
    /// resume (or resumed when they should not have), other parameters than pinned,
    /// failures, empty cells.
    pub fn derive_warnings(&mut self) {
        if self.environment.build_profile.starts_with("debug") {
            self.warnings.push(
                "this is a debug build: figures are not representative; build with --release"
                    .into(),
            );
        }
        if self.partial {
            self.warnings.push(
                "the run was interrupted: only the cells measured before are reported".into(),
            );
        }
        for r in &self.results {
            let name = format!(
                "TLS {} {} {} {}",
                r.version,
                r.key,
                r.group,
                r.resumption.as_str()
            );
            if r.handshakes == 0 {
                self.warnings
                    .push(format!("{name}: no handshake completed in the window"));
                continue;
            }
            match r.resumption {
                Resumption::Resumed if r.resumed_fraction < RESUMED_FLOOR => {
                    self.warnings.push(format!(
                        "{name}: only {:.1} % of the handshakes resumed ({}); the figures mix \
                         full and resumed handshakes",
                        r.resumed_fraction * 100.0,
                        r.mechanism
                    ))
                }
                Resumption::Full if r.resumed_fraction > 0.0 => self.warnings.push(format!(
                    "{name}: {:.1} % of the handshakes resumed although resumption was off",
                    r.resumed_fraction * 100.0
                )),
                _ => {}
            }
            if let Some(n) = &r.negotiated {
                if n.version != rustls_version_name(r.version) {
                    self.warnings.push(format!(
                        "{name}: negotiated {} instead of the pinned version",
                        n.version
                    ));
                }
                let resumed_tls12 =
                    r.version == TlsVersion::Tls12 && r.resumption == Resumption::Resumed;
                if n.group != rustls_group_name(r.group) && !resumed_tls12 {
                    self.warnings.push(format!(
                        "{name}: negotiated group {} instead of the pinned one",
                        n.group
                    ));
                }
            }
            let failures: u64 = r.errors.values().sum();
            if failures > 0 {
                let list: Vec<String> = r.errors.iter().map(|(k, v)| format!("{k} ×{v}")).collect();
                self.warnings.push(format!(
                    "{name}: {failures} connections failed ({}): {}",
                    list.join(", "),
                    r.error_messages.join("; ")
                ));
            }
        }
        let cores = self.environment.cores;
        let m = &self.measurement;
        if cores > 0 && m.server_threads + m.client_threads > cores {
            self.warnings.push(format!(
                "server ({} threads) and clients ({} threads) share {cores} cores: \
                 handshakes/s is bounded by both sides together; CPU per handshake is the \
                 figure that carries over to a dedicated server",
                m.server_threads, m.client_threads
            ));
        }
    }

    /// The terminal table.
    pub fn render_table(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "{}", self.environment.summary_line());
        let m = &self.measurement;
        let _ = writeln!(
            out,
            "handshakes · {} s per cell after {} s warm-up · {} client connection(s) in flight · \
             server {} thread(s), clients {} thread(s) · {} · loopback{}",
            m.duration_s,
            m.warmup_s,
            m.concurrency,
            m.server_threads,
            m.client_threads,
            m.cipher,
            if self.partial {
                " · PARTIAL (interrupted)"
            } else {
                ""
            }
        );
        let _ = writeln!(out);
        let header = [
            "version",
            "key",
            "group",
            "handshake",
            "hs/s",
            "p50",
            "p99",
            "srv CPU/hs",
            "cli CPU/hs",
            "resumed",
            "suite",
            "errors",
        ];
        let mut rows: Vec<Vec<String>> = vec![header.iter().map(|s| (*s).to_owned()).collect()];
        for r in &self.results {
            let errors: u64 = r.errors.values().sum();
            rows.push(vec![
                r.version.to_string(),
                r.key.to_string(),
                r.group.to_string(),
                r.resumption.as_str().to_owned(),
                format!("{:.0}", r.handshakes_per_s),
                format_duration_us(r.latency_us.p50 as f64),
                format_duration_us(r.latency_us.p99 as f64),
                cpu_cell(r.cpu_server_us_per_handshake),
                cpu_cell(r.cpu_client_us_per_handshake),
                format!("{:.0} %", r.resumed_fraction * 100.0),
                r.negotiated
                    .as_ref()
                    .map_or_else(|| "–".to_owned(), |n| n.suite.clone()),
                errors.to_string(),
            ]);
        }
        crate::output::table::render_rows(&mut out, &rows, |c| c < 4);
        for s in &self.skipped {
            let _ = writeln!(
                out,
                "skipped: TLS {} {} {} {}: {}",
                s.version,
                s.key,
                s.group,
                s.resumption.as_str(),
                s.reason
            );
        }
        for w in &self.warnings {
            let _ = writeln!(out, "warning: {w}");
        }
        out
    }
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
        assert_eq!(a.json.as_deref(), Some(Path::new("out.json")));
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
        ] {
            let argv = std::iter::once("handshakes").chain(bad.iter().copied());
            assert!(Cli::try_parse_from(argv).is_err(), "{bad:?} was accepted");
        }
    }
}
