//! A wide-area link between a remote site and the central site: a TCP relay on loopback
//! that gives each direction a one-way delay, jitter, loss and a rate cap ([`WanProfile`]).
//!
//! Bytes keep their order and TLS runs end to end through the relay. What it models, per
//! direction:
//!
//! - **Delay and jitter.** Each chunk the relay reads is due at its read time plus the
//!   delay plus a jitter drawn uniformly from `[0, jitter]`, but never before the chunk
//!   read before it (TCP delivers in order, so jitter delays bytes without reordering
//!   them). Timers have a granularity of about 1 ms.
//! - **Loss.** A relay cannot drop bytes, so loss is modelled as the application sees it
//!   over TCP: what is read is cut into segments of at most [`SEGMENT_BYTES`], each lost
//!   with probability `loss`. A lost segment arrives one retransmission later — its due
//!   time grows by one round trip (2 × delay + jitter), at least [`MIN_RTO`] (Linux's
//!   minimum retransmission timeout) — and, by ordering, so does everything read after it
//!   until then. Several losses within one read are recovered together (as selective
//!   acknowledgements let TCP do within one round trip). The relay counts segments and
//!   retransmissions.
//! - **Rate cap.** A token bucket per direction, shared by every connection of the link,
//!   lets bytes leave at no more than `rate_bps`, with a burst of 10 ms of the rate or one
//!   segment, whichever is larger. Bytes waiting for the bucket are queued in the relay; it
//!   holds at most about the rate times the delay, jitter and a retransmission's wait, plus
//!   a few reads, per connection and direction, then stops reading, so that the sender's
//!   TCP (and its own queue) feels the bottleneck. When the rate is capped, the relay's
//!   sockets also get a small receive buffer and ask for segments of [`SEGMENT_BYTES`], for
//!   the same reason (a sender sizes its socket buffer by its window in segments; on
//!   loopback a segment may be 64 KiB).
//!
//! What it cannot be: a packet-level network. No packet is dropped, no congestion window
//! shrinks; the kernel underneath is loopback at full speed.
//!
//! The relay counts, per link (summed over its connections): bytes each way, segments,
//! retransmitted segments and the longest wait the rate cap added ([`WanStats`]).
//!
//! A peer on either side that stops reading does not hold the relay's buffers for ever:
//! a write that makes no progress for the relay's write-stall limit
//! ([`WRITE_STALL_TIMEOUT`] unless [`WanLink::set_write_stall`] says otherwise) ends the
//! connection, counted as stalled. Every other deadline (a peer that never speaks, or
//! speaks too slowly) is the server's behind the relay: when it closes its side, the
//! relay closes the other.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::{mpsc, Semaphore};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::role::timeouts::{StallGuard, WRITE_STALL_TIMEOUT};
use crate::role::RoleRuntime;

/// The largest segment: TCP's payload in a 1500-byte Ethernet frame with timestamps.
pub const SEGMENT_BYTES: usize = 1448;

/// The shortest retransmission timeout (Linux's `TCP_RTO_MIN`).
pub const MIN_RTO: Duration = Duration::from_millis(200);

/// The seed of [`WanLink::start`]'s random draws.
const DEFAULT_SEED: u64 = 0x57a1_1e55_0f0a_11ed;

/// Bytes the relay reads at a time.
const READ_BYTES: usize = 64 * 1024;

/// Bytes a direction of a connection may hold without a rate cap.
const UNCAPPED_BUFFER: usize = 16 << 20;

/// Receive buffer of the relay's reading sockets when the rate is capped.
const CAPPED_RECEIVE_BUFFER: u32 = 32 * 1024;

/// Pieces in flight per direction (the byte budget is the real bound).
const IN_FLIGHT_PIECES: usize = 1024;

/// How a WAN link treats the bytes crossing it, each direction alike. The default adds
/// nothing.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct WanProfile {
    /// One-way delay.
    pub delay: Duration,
    /// Largest extra delay, drawn uniformly from `[0, jitter]` for each read.
    pub jitter: Duration,
    /// Share of segments lost, 0 to 1 (each costs a retransmission's wait).
    pub loss: f64,
    /// The most bits per second each direction carries; `None` for no cap.
    pub rate_bps: Option<u64>,
}

impl WanProfile {
    /// A link with only a one-way delay.
    pub fn delay(one_way: Duration) -> WanProfile {
        WanProfile {
            delay: one_way,
            ..WanProfile::default()
        }
    }

    /// What a lost segment adds: one round trip (2 × delay + jitter), at least
    /// [`MIN_RTO`].
    pub fn retransmission_wait(&self) -> Duration {
        (self.delay * 2 + self.jitter).max(MIN_RTO)
    }

    /// The rate cap's burst, bytes: 10 ms of the rate or one segment, whichever is larger.
    pub fn burst_bytes(&self) -> Option<u64> {
        self.rate_bps
            .map(|r| (r / 8 / 100).max(SEGMENT_BYTES as u64))
    }

    /// Bytes a direction of one connection may hold before the relay stops reading.
    fn buffer_bytes(&self) -> usize {
        let (Some(rate), Some(burst)) = (self.rate_bps, self.burst_bytes()) else {
            return UNCAPPED_BUFFER;
        };
        let mut held = self.delay + self.jitter;
        if self.loss > 0.0 {
            held += self.retransmission_wait();
        }
        let in_flight = (u128::from(rate) / 8 * held.as_nanos() / 1_000_000_000) as u64;
        let total = in_flight + 2 * burst + 2 * READ_BYTES as u64;
        usize::try_from(total)
            .unwrap_or(UNCAPPED_BUFFER)
            .min(UNCAPPED_BUFFER)
    }

    /// The loss probability, within 0..=1 (NaN counts as none).
    fn loss(&self) -> f64 {
        if self.loss.is_nan() {
            0.0
        } else {
            self.loss.clamp(0.0, 1.0)
        }
    }
}

/// What a WAN link counted, summed over its connections since it started.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WanStats {
    /// Connections relayed.
    pub connections: u64,
    /// Bytes relayed towards the upstream server.
    pub bytes_to_upstream: u64,
    /// Bytes relayed from the upstream server.
    pub bytes_from_upstream: u64,
    /// Segments (of at most [`SEGMENT_BYTES`]) relayed, both directions.
    pub segments: u64,
    /// Of those, segments lost and delivered one retransmission later.
    pub retransmissions: u64,
    /// The longest a byte waited past its due time for the rate cap, ns (0 without a cap).
    pub max_rate_queue_ns: u64,
    /// Connections ended because a peer read nothing for the write-stall limit.
    #[serde(default)]
    pub stalled: u64,
    /// Connections dropped because the upstream server could not be reached.
    #[serde(default)]
    pub unreachable: u64,
}

impl WanStats {
    /// Adds `other` (another link, or the same link in another process).
    pub fn merge(&mut self, other: &WanStats) {
        self.connections += other.connections;
        self.bytes_to_upstream += other.bytes_to_upstream;
        self.bytes_from_upstream += other.bytes_from_upstream;
        self.segments += other.segments;
        self.retransmissions += other.retransmissions;
        self.max_rate_queue_ns = self.max_rate_queue_ns.max(other.max_rate_queue_ns);
        self.stalled += other.stalled;
        self.unreachable += other.unreachable;
    }

    /// Retransmitted segments over segments (0 when none crossed).
    pub fn retransmission_share(&self) -> f64 {
        if self.segments == 0 {
            0.0
        } else {
            self.retransmissions as f64 / self.segments as f64
        }
    }
}

/// The link's counters, shared by its connections.
#[derive(Debug, Default)]
struct Counters {
    connections: AtomicU64,
    /// Towards upstream, from upstream.
    bytes: [AtomicU64; 2],
    segments: AtomicU64,
    retransmissions: AtomicU64,
    max_rate_queue_ns: AtomicU64,
    stalled: AtomicU64,
    unreachable: AtomicU64,
}

impl Counters {
    fn snapshot(&self) -> WanStats {
        WanStats {
            connections: self.connections.load(Ordering::Relaxed),
            bytes_to_upstream: self.bytes[0].load(Ordering::Relaxed),
            bytes_from_upstream: self.bytes[1].load(Ordering::Relaxed),
            segments: self.segments.load(Ordering::Relaxed),
            retransmissions: self.retransmissions.load(Ordering::Relaxed),
            max_rate_queue_ns: self.max_rate_queue_ns.load(Ordering::Relaxed),
            stalled: self.stalled.load(Ordering::Relaxed),
            unreachable: self.unreachable.load(Ordering::Relaxed),
        }
    }
}

/// A token bucket shared by the connections of one direction of a link, kept as the time
/// at which the bucket would be full again (a virtual-scheduling rate limiter): bytes may
/// leave once that time, after adding them, is at most one burst ahead of now.
#[derive(Debug)]
struct Pacer {
    rate_bps: u64,
    /// Bytes reserved at a time (the burst).
    piece: usize,
    /// The burst's duration, ns.
    tolerance_ns: u64,
    epoch: Instant,
    /// When the bucket is full again, ns after `epoch`.
    full_at_ns: AtomicU64,
}

impl Pacer {
    fn new(rate_bps: u64, burst: u64, epoch: Instant) -> Pacer {
        let rate_bps = rate_bps.max(1);
        let mut p = Pacer {
            rate_bps,
            piece: usize::try_from(burst).unwrap_or(usize::MAX),
            tolerance_ns: 0,
            epoch,
            full_at_ns: AtomicU64::new(0),
        };
        p.tolerance_ns = p.cost_ns(p.piece);
        p
    }

    /// How long `bytes` take at the rate, ns.
    fn cost_ns(&self, bytes: usize) -> u64 {
        let ns = bytes as u128 * 8 * 1_000_000_000 / u128::from(self.rate_bps);
        u64::try_from(ns).unwrap_or(u64::MAX)
    }

    /// Reserves `bytes` (at most one burst) and returns when they may leave.
    fn reserve(&self, bytes: usize, now: Instant) -> Instant {
        let now_ns = now.saturating_duration_since(self.epoch).as_nanos() as u64;
        let cost = self.cost_ns(bytes);
        let mut old = self.full_at_ns.load(Ordering::Relaxed);
        loop {
            let new = old.max(now_ns).saturating_add(cost);
            match self.full_at_ns.compare_exchange_weak(
                old,
                new,
                Ordering::AcqRel,
                Ordering::Relaxed,
            ) {
                Ok(_) => {
                    let at = new.saturating_sub(self.tolerance_ns).max(now_ns);
                    return self.epoch + Duration::from_nanos(at);
                }
                Err(seen) => old = seen,
            }
        }
    }
}

/// What every connection of a link shares.
#[derive(Debug)]
struct Shared {
    profile: WanProfile,
    seed: u64,
    counters: Counters,
    /// Towards upstream, from upstream; `None` without a rate cap.
    pacers: [Option<Pacer>; 2],
    /// How long a write may make no progress before the connection ends, ns.
    write_stall_ns: AtomicU64,
}

/// A running WAN link.
#[derive(Debug)]
pub struct WanLink {
    addr: SocketAddr,
    shared: Arc<Shared>,
    cancel: CancellationToken,
    tasks: TaskTracker,
}

impl WanLink {
    /// Listens on 127.0.0.1 (a port the system chooses) and relays every connection to
    /// `upstream` as `profile` says.
    pub async fn start(
        runtime: &RoleRuntime,
        upstream: SocketAddr,
        profile: WanProfile,
    ) -> std::io::Result<WanLink> {
        Self::start_seeded(runtime, upstream, profile, DEFAULT_SEED).await
    }

    /// The same, with the random draws (jitter, loss) seeded by `seed`: each connection
    /// and direction draws from a generator of its own, seeded from `seed` and its order.
    pub async fn start_seeded(
        runtime: &RoleRuntime,
        upstream: SocketAddr,
        profile: WanProfile,
        seed: u64,
    ) -> std::io::Result<WanLink> {
        let capped = profile.rate_bps.is_some();
        let bind = runtime.spawn(async move {
            let socket = TcpSocket::new_v4()?;
            if capped {
                socket.set_recv_buffer_size(CAPPED_RECEIVE_BUFFER)?;
                clamp_segments(&socket);
            }
            socket.bind(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)))?;
            socket.listen(1024)
        });
        let listener: TcpListener = bind.await.map_err(std::io::Error::other)??;
        let addr = listener.local_addr()?;
        let epoch = Instant::now();
        let pacer = || {
            let (rate, burst) = (profile.rate_bps?, profile.burst_bytes()?);
            Some(Pacer::new(rate, burst, epoch))
        };
        let shared = Arc::new(Shared {
            profile,
            seed,
            counters: Counters::default(),
            pacers: [pacer(), pacer()],
            write_stall_ns: AtomicU64::new(WRITE_STALL_TIMEOUT.as_nanos() as u64),
        });
        let cancel = CancellationToken::new();
        let tasks = TaskTracker::new();
        let (c, t, s) = (cancel.clone(), tasks.clone(), shared.clone());
        tasks.spawn_on(
            async move {
                loop {
                    let accepted = tokio::select! {
                        _ = c.cancelled() => return,
                        r = listener.accept() => r,
                    };
                    let Ok((down, _)) = accepted else {
                        tokio::time::sleep(super::ACCEPT_BACKOFF).await;
                        continue;
                    };
                    let index = s.counters.connections.fetch_add(1, Ordering::Relaxed);
                    let (c2, s2) = (c.clone(), s.clone());
                    t.spawn(async move {
                        match dial(upstream, capped).await {
                            Ok(up) => relay(down, up, index, s2, c2).await,
                            Err(_) => {
                                s2.counters.unreachable.fetch_add(1, Ordering::Relaxed);
                            }
                        }
                    });
                }
            },
            &runtime.handle(),
        );
        Ok(WanLink {
            addr,
            shared,
            cancel,
            tasks,
        })
    }

    /// Where the remote site dials.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// How the link treats bytes.
    pub fn profile(&self) -> WanProfile {
        self.shared.profile
    }

    /// What the link counted so far.
    pub fn stats(&self) -> WanStats {
        self.shared.counters.snapshot()
    }

    /// Connections being relayed now.
    pub fn open_connections(&self) -> usize {
        // Less the accept loop.
        self.tasks.len().saturating_sub(1)
    }

    /// How long a write (either way) may make no progress because its peer does not read
    /// before the relay ends the connection, for connections relayed from now on
    /// ([`WRITE_STALL_TIMEOUT`] by default).
    pub fn set_write_stall(&self, limit: Duration) {
        let ns = u64::try_from(limit.as_nanos()).unwrap_or(u64::MAX);
        self.shared.write_stall_ns.store(ns, Ordering::Relaxed);
    }

    /// Stops relaying and waits for the relay tasks.
    pub async fn stop(self) {
        self.cancel.cancel();
        self.tasks.close();
        self.tasks.wait().await;
    }
}

impl Drop for WanLink {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

/// Connects to `upstream`, with a small receive buffer when the rate is capped.
async fn dial(upstream: SocketAddr, capped: bool) -> std::io::Result<TcpStream> {
    let socket = if upstream.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    if capped {
        socket.set_recv_buffer_size(CAPPED_RECEIVE_BUFFER)?;
        clamp_segments(&socket);
    }
    socket.connect(upstream).await
}

/// Asks the peer for segments of [`SEGMENT_BYTES`] (`TCP_MAXSEG` before the handshake), as
/// across a real WAN: on loopback a segment may be 64 KiB, and a sender sizes its socket
/// buffer by its congestion window in segments, so that without the clamp megabytes would
/// queue in the sender's kernel behind the rate cap. Best effort: on failure the sockets
/// keep loopback's segments.
fn clamp_segments(socket: &TcpSocket) {
    use std::os::fd::AsRawFd as _;
    let mss = SEGMENT_BYTES as libc::c_int;
    // SAFETY: the descriptor is the socket's own and open; `mss` is a readable c_int of the
    // length passed.
    let _ = unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            libc::IPPROTO_TCP,
            libc::TCP_MAXSEG,
            (&mss as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
}

async fn relay(
    down: TcpStream,
    up: TcpStream,
    index: u64,
    shared: Arc<Shared>,
    cancel: CancellationToken,
) {
    let _ = (down.set_nodelay(true), up.set_nodelay(true));
    let (down_rd, down_wr) = down.into_split();
    let (up_rd, up_wr) = up.into_split();
    let conn = cancel.child_token();
    tokio::join!(
        pump(
            down_rd,
            up_wr,
            Direction::new(&shared, index, 0),
            conn.clone()
        ),
        pump(
            up_rd,
            down_wr,
            Direction::new(&shared, index, 1),
            conn.clone()
        ),
    );
}

/// One direction of one connection.
struct Direction<'a> {
    shared: &'a Shared,
    /// 0 towards upstream, 1 from upstream.
    side: usize,
    rng: fastrand::Rng,
}

impl<'a> Direction<'a> {
    fn new(shared: &'a Arc<Shared>, index: u64, side: usize) -> Direction<'a> {
        let seed =
            shared.seed ^ (index.wrapping_mul(2) + side as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        Direction {
            shared,
            side,
            rng: fastrand::Rng::with_seed(seed),
        }
    }
}

/// Bytes due at a time, and the budget they hold.
struct Piece {
    due: Instant,
    data: Bytes,
    permits: u32,
}

/// Copies one direction: the reader stamps each chunk with its due time (delay, jitter,
/// retransmissions) and the writer delivers it then, paced by the rate cap. A write that
/// makes no progress for the write-stall limit ends the connection.
async fn pump<R, W>(mut rd: R, wr: W, mut dir: Direction<'_>, conn: CancellationToken)
where
    R: tokio::io::AsyncRead + Unpin,
    W: tokio::io::AsyncWrite + Unpin,
{
    let shared = dir.shared;
    let stall = Duration::from_nanos(shared.write_stall_ns.load(Ordering::Relaxed));
    let mut wr = StallGuard::new(wr, stall);
    let profile = shared.profile;
    let budget = profile.buffer_bytes();
    let held = Semaphore::new(budget);
    let (tx, mut rx) = mpsc::channel::<Piece>(IN_FLIGHT_PIECES);
    let counters = &shared.counters;
    let side = dir.side;
    let pacer = shared.pacers[side].as_ref();
    let reader = async {
        // Owned here, so that the writer sees the end when the reader stops.
        let tx = tx;
        let mut buf = BytesMut::with_capacity(READ_BYTES);
        let mut last_due = Instant::now();
        loop {
            if buf.capacity() < READ_BYTES / 4 {
                buf.reserve(READ_BYTES);
            }
            let n = match rd.read_buf(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            let chunk = buf.split().freeze();
            let permits = u32::try_from(n.min(budget)).unwrap_or(u32::MAX);
            match held.acquire_many(permits).await {
                Ok(p) => p.forget(),
                Err(_) => break,
            }
            counters.bytes[side].fetch_add(n as u64, Ordering::Relaxed);
            for piece in dir.schedule(chunk, &mut last_due, permits) {
                if tx.send(piece).await.is_err() {
                    return;
                }
            }
        }
    };
    let writer = async {
        while let Some(p) = rx.recv().await {
            tokio::time::sleep_until(p.due).await;
            let written = match pacer {
                None => wr.write_all(&p.data).await,
                Some(pacer) => paced_write(&mut wr, p.data, p.due, pacer, counters).await,
            };
            if let Err(e) = written {
                if StallGuard::<()>::is_stall(&e) {
                    counters.stalled.fetch_add(1, Ordering::Relaxed);
                }
                // The reader may wait for room this writer will never make.
                conn.cancel();
                break;
            }
            held.add_permits(p.permits as usize);
        }
        let _ = wr.shutdown().await;
    };
    tokio::select! {
        _ = conn.cancelled() => {}
        _ = async { tokio::join!(reader, writer) } => {}
    }
    conn.cancel();
}

impl Direction<'_> {
    /// The pieces of a chunk just read and when each is due: the part before the first
    /// lost segment at the read time plus delay and jitter, the rest one retransmission
    /// later; never before what came earlier.
    fn schedule(&mut self, mut chunk: Bytes, last_due: &mut Instant, permits: u32) -> Vec<Piece> {
        let profile = &self.shared.profile;
        let counters = &self.shared.counters;
        let jitter = profile.jitter.as_nanos() as u64;
        let extra = if jitter > 0 {
            Duration::from_nanos(self.rng.u64(0..=jitter))
        } else {
            Duration::ZERO
        };
        let base = Instant::now() + profile.delay + extra;
        let due = base.max(*last_due);
        let segments = chunk.len().div_ceil(SEGMENT_BYTES);
        counters
            .segments
            .fetch_add(segments as u64, Ordering::Relaxed);
        let loss = profile.loss();
        let mut first_lost = None;
        if loss > 0.0 {
            let mut lost = 0u64;
            for s in 0..segments {
                if self.rng.f64() < loss {
                    lost += 1;
                    first_lost.get_or_insert(s);
                }
            }
            counters.retransmissions.fetch_add(lost, Ordering::Relaxed);
        }
        let mut out = Vec::with_capacity(2);
        if let Some(s) = first_lost {
            if s > 0 {
                out.push(Piece {
                    due,
                    data: chunk.split_to(s * SEGMENT_BYTES),
                    permits: 0,
                });
            }
            let later = (base + profile.retransmission_wait()).max(due);
            *last_due = later;
            out.push(Piece {
                due: later,
                data: chunk,
                permits,
            });
        } else {
            *last_due = due;
            out.push(Piece {
                due,
                data: chunk,
                permits,
            });
        }
        out
    }
}

/// Writes `data` a burst at a time, each when the shared bucket lets it leave; records the
/// longest wait past `due`.
async fn paced_write<W>(
    wr: &mut W,
    mut data: Bytes,
    due: Instant,
    pacer: &Pacer,
    counters: &Counters,
) -> std::io::Result<()>
where
    W: tokio::io::AsyncWrite + Unpin,
{
    while !data.is_empty() {
        let piece = data.split_to(pacer.piece.min(data.len()));
        let now = Instant::now();
        let at = pacer.reserve(piece.len(), now);
        let waited = at.saturating_duration_since(due).as_nanos() as u64;
        counters
            .max_rate_queue_ns
            .fetch_max(waited, Ordering::Relaxed);
        if at > now {
            tokio::time::sleep_until(at).await;
        }
        wr.write_all(&piece).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A listener on 127.0.0.1 (a port the system chooses), bound on `rt`.
    async fn listen(rt: &RoleRuntime) -> (TcpListener, SocketAddr) {
        let listener = rt
            .spawn(TcpListener::bind("127.0.0.1:0"))
            .await
            .expect("join")
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        (listener, addr)
    }

    /// A server that echoes what it reads.
    async fn echo(rt: &RoleRuntime) -> SocketAddr {
        let (listener, addr) = listen(rt).await;
        rt.spawn(async move {
            while let Ok((s, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let (mut r, mut w) = s.into_split();
                    let _ = tokio::io::copy(&mut r, &mut w).await;
                });
            }
        });
        addr
    }

    /// A server that keeps everything it reads and hands it over at end of stream.
    async fn sink(rt: &RoleRuntime) -> (SocketAddr, mpsc::Receiver<Vec<u8>>) {
        let (listener, addr) = listen(rt).await;
        let (tx, rx) = mpsc::channel(1);
        rt.spawn(async move {
            if let Ok((mut s, _)) = listener.accept().await {
                let mut all = Vec::new();
                let _ = s.read_to_end(&mut all).await;
                let _ = tx.send(all).await;
            }
        });
        (addr, rx)
    }

    fn runtime() -> (RoleRuntime, tokio::runtime::Runtime) {
        let rt = RoleRuntime::new("wan-test", 2).expect("runtime");
        let driver = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("driver");
        (rt, driver)
    }

    /// `len` bytes that differ from their neighbours, so that reordering shows.
    fn pattern(len: usize) -> Vec<u8> {
        (0..len)
            .map(|i| (i % 251) as u8 ^ (i / 251) as u8)
            .collect()
    }

    /// Sends `data` through a link of `profile` to a sink, in writes of `write` bytes with
    /// `pause` between them; returns what arrived, the time it took and the link's counts.
    async fn through(
        rt: &RoleRuntime,
        profile: WanProfile,
        data: &[u8],
        write: usize,
        pause: Duration,
    ) -> (Vec<u8>, Duration, WanStats) {
        let (addr, mut received) = sink(rt).await;
        let wan = WanLink::start(rt, addr, profile).await.expect("wan");
        let start = std::time::Instant::now();
        let mut s = TcpStream::connect(wan.addr()).await.expect("connect");
        for part in data.chunks(write) {
            s.write_all(part).await.expect("write");
            if !pause.is_zero() {
                tokio::time::sleep(pause).await;
            }
        }
        s.shutdown().await.expect("shutdown");
        let got = received.recv().await.expect("sink");
        let elapsed = start.elapsed();
        let stats = wan.stats();
        wan.stop().await;
        (got, elapsed, stats)
    }

    #[test]
    fn the_delay_shows_in_every_round_trip() {
        let (rt, driver) = runtime();
        driver.block_on(async {
            let addr = echo(&rt).await;
            let delay = Duration::from_millis(30);
            let wan = WanLink::start(&rt, addr, WanProfile::delay(delay))
                .await
                .expect("wan");
            let mut s = TcpStream::connect(wan.addr()).await.expect("connect");
            for _ in 0..3 {
                let start = std::time::Instant::now();
                s.write_all(b"ping").await.expect("write");
                let mut back = [0u8; 4];
                s.read_exact(&mut back).await.expect("read");
                assert_eq!(&back, b"ping");
                assert!(start.elapsed() >= 2 * delay, "{:?}", start.elapsed());
            }
            let stats = wan.stats();
            assert_eq!(
                (
                    stats.connections,
                    stats.bytes_to_upstream,
                    stats.bytes_from_upstream
                ),
                (1, 12, 12)
            );
            assert_eq!(stats.retransmissions, 0);
            wan.stop().await;
        });
    }

    #[test]
    fn the_rate_cap_bounds_goodput() {
        let (rt, driver) = runtime();
        driver.block_on(async {
            let rate = 16_000_000;
            let profile = WanProfile {
                rate_bps: Some(rate),
                ..WanProfile::default()
            };
            let data = pattern(1_000_000);
            let (got, elapsed, stats) =
                through(&rt, profile, &data, 64 * 1024, Duration::ZERO).await;
            assert!(got == data, "the bytes arrived intact");
            // Bytes leave at most at the rate (plus one burst): a floor on the time.
            let floor = Duration::from_secs_f64(data.len() as f64 * 8.0 / rate as f64 * 0.95);
            assert!(elapsed >= floor, "{elapsed:?} < {floor:?}");
            assert_eq!(stats.bytes_to_upstream, data.len() as u64);
            assert!(stats.segments >= (data.len() / SEGMENT_BYTES) as u64);
            assert!(stats.max_rate_queue_ns > 0, "{stats:?}");
        });
    }

    #[test]
    fn loss_costs_retransmissions_in_the_expected_share() {
        let (rt, driver) = runtime();
        driver.block_on(async {
            let profile = WanProfile {
                delay: Duration::from_millis(1),
                loss: 0.2,
                ..WanProfile::default()
            };
            let data = pattern(400_000);
            let (got, elapsed, stats) =
                through(&rt, profile, &data, 16 * 1024, Duration::ZERO).await;
            assert!(got == data, "the bytes arrived intact and in order");
            assert!(stats.segments >= (data.len() / SEGMENT_BYTES) as u64);
            // Binomial(segments, 0.2): mean 0.2 n, standard deviation 0.4 √n; with n ≥ 276
            // the bounds below are more than five deviations away.
            let n = stats.segments as f64;
            let r = stats.retransmissions as f64;
            assert!(
                r > 0.2 * n - 5.0 * 0.4 * n.sqrt() && r < 0.2 * n + 5.0 * 0.4 * n.sqrt(),
                "{r} retransmissions of {n} segments"
            );
            // At least one retransmission's wait.
            assert!(elapsed >= MIN_RTO, "{elapsed:?}");
        });
    }

    #[test]
    fn jitter_never_reorders_bytes() {
        let (rt, driver) = runtime();
        driver.block_on(async {
            let profile = WanProfile {
                delay: Duration::from_millis(2),
                jitter: Duration::from_millis(20),
                ..WanProfile::default()
            };
            let data = pattern(120_000);
            let (got, elapsed, stats) =
                through(&rt, profile, &data, 600, Duration::from_micros(500)).await;
            assert!(got == data, "the bytes arrived intact and in order");
            assert!(elapsed >= profile.delay, "{elapsed:?}");
            assert_eq!(stats.bytes_to_upstream, data.len() as u64);
        });
    }

    #[test]
    fn a_retransmission_waits_a_round_trip_and_at_least_the_minimum_timeout() {
        let short = WanProfile::delay(Duration::from_millis(10));
        assert_eq!(short.retransmission_wait(), MIN_RTO);
        let long = WanProfile {
            delay: Duration::from_millis(150),
            jitter: Duration::from_millis(20),
            ..WanProfile::default()
        };
        assert_eq!(long.retransmission_wait(), Duration::from_millis(320));
        let capped = WanProfile {
            rate_bps: Some(1_000_000),
            ..WanProfile::default()
        };
        assert_eq!(capped.burst_bytes(), Some(SEGMENT_BYTES as u64));
        let fast = WanProfile {
            rate_bps: Some(1_000_000_000),
            ..WanProfile::default()
        };
        assert_eq!(fast.burst_bytes(), Some(1_250_000));
    }

    #[test]
    fn the_bucket_paces_reservations_at_the_rate() {
        let epoch = Instant::now();
        // 8 Mbit/s: 1 byte per µs; a burst of 10 000 bytes.
        let p = Pacer::new(8_000_000, 10_000, epoch);
        let first = p.reserve(10_000, epoch);
        assert_eq!(first, epoch, "a full bucket lets a burst leave at once");
        let second = p.reserve(10_000, epoch);
        assert_eq!(second, epoch + Duration::from_millis(10));
        let third = p.reserve(5_000, epoch);
        assert_eq!(third, epoch + Duration::from_millis(15));
    }
}
