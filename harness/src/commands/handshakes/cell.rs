//! One cell of the handshake matrix: its server and client configurations (with the cell's
//! resumption machinery), the server that accepts and closes, the client loops that dial,
//! handshake and close over and over, and the figures of its window.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use hdrhistogram::Histogram;
use rustls::client::{Resumption as ClientResumption, Tls12Resumption};
use rustls::server::{NoServerSessionStorage, ServerSessionMemoryCache};
use rustls::{ClientConfig, ServerConfig};
use simulators::metrics::{latency_histogram, ns_to_us, RecordUs};
use simulators::pki::{KeyType, Pki};
use simulators::role::RoleRuntime;
use simulators::transport::{
    ConnectError, Connector, Incoming, KxGroup, Listener, Stream, TlsSettings, TlsVersion,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::SERVER_HOST;
use crate::report::handshakes::{CellResult, Resumption};
use crate::report::{Percentiles, TlsInfo};

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

/// One cell of the matrix.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Cell {
    pub(crate) version: TlsVersion,
    pub(crate) key: KeyType,
    pub(crate) group: KxGroup,
    pub(crate) resumption: Resumption,
}

impl Cell {
    pub(crate) fn label(&self) -> String {
        format!(
            "TLS {} {} {} {}",
            self.version,
            self.key,
            self.group,
            self.resumption.as_str()
        )
    }

    /// How sessions are resumed in this cell.
    pub(crate) fn mechanism(&self) -> &'static str {
        match (self.resumption, self.version) {
            (Resumption::Full, _) => "none",
            (Resumption::Resumed, TlsVersion::Tls12) => "session_id",
            (Resumption::Resumed, TlsVersion::Tls13) => "ticket",
        }
    }
}

/// Why a combination cannot be measured, if it cannot.
pub(crate) fn invalid_reason(version: TlsVersion, group: KxGroup) -> Option<&'static str> {
    match (version, group) {
        (TlsVersion::Tls12, KxGroup::X25519mlkem768) => Some(
            "X25519MLKEM768 is a TLS 1.3 key exchange; TLS 1.2 cannot negotiate it \
             (rustls refuses the handshake)",
        ),
        _ => None,
    }
}

/// Timing shared by every cell.
#[derive(Clone, Copy, Debug)]
pub(crate) struct CellTiming {
    pub(crate) warmup: Duration,
    pub(crate) duration: Duration,
    pub(crate) concurrency: u32,
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

/// Binds a listener on an unused loopback port, with `tls` (plain TCP without it), and
/// returns it with its address. It is bound on the server's runtime, so that its I/O is
/// driven there.
pub(crate) async fn bind_loopback(
    server: &RoleRuntime,
    tls: Option<Arc<ServerConfig>>,
) -> anyhow::Result<(Listener, SocketAddr)> {
    let any_port = SocketAddr::from(([127, 0, 0, 1], 0));
    let listener = server
        .spawn(Listener::bind(any_port, tls))
        .await
        .context("the server runtime stopped")?
        .context("binding 127.0.0.1:0")?;
    let addr = listener.local_addr().context("reading the bound address")?;
    Ok((listener, addr))
}

/// Measures one cell; `None` if interrupted.
pub(crate) async fn measure_cell(
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

    let (listener, addr) = bind_loopback(server, Some(server_config)).await?;
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
