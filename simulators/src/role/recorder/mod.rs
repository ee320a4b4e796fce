//! A recording server: cameras producing frames on schedule, and clients subscribing to them.
//!
//! Pacer threads (as many as the server's runtime has workers, each with its share of
//! the cameras) wake when each camera's next frame is due and offer the frame to every
//! subscriber. Each client connection has a bounded queue; when it is full the frame
//! is dropped, and so is every frame of that camera until its next key frame (a decoder
//! cannot use P-frames whose reference is missing). Drops are counted. Memory per
//! connection is therefore bounded however slow the client is; payloads are shared slices,
//! so a queued frame costs a few dozen bytes.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use hdrhistogram::Histogram;
use tokio::io::AsyncWriteExt;

use crate::clock::RunClock;
use crate::metrics::{
    latency_histogram, ns_to_us, RecordUs, SenderCounters, SenderSnapshot, Window,
};
use crate::role::timeouts::{self, ServerTimeouts};
use crate::role::{RoleRuntime, ServerCore, ThreadCpu};
use crate::transport::{DirectIo, Incoming, Listener, Mode, Negotiated};
use crate::video::{Camera, FrameSpec, Playback};
use crate::wire::{self, Header, Kind, Subscribe, WireError, HEADER_LEN};

mod conn;

use conn::{Conn, Refused};

/// Default capacity of one connection's frame queue. Queued frames hold shared payload
/// slices, so this bounds memory per connection to a few hundred KiB of bookkeeping.
pub const DEFAULT_QUEUE_FRAMES: usize = 1024;
/// Largest request a client may send to a recording server.
pub const MAX_REQUEST: u32 = 64 * 1024;

/// Where a streaming server's frames come from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    /// Its own cameras, released on schedule by the pacer thread.
    Pacer,
    /// Frames forwarded from elsewhere through a [`Relay`] (a mobile server passing
    /// camera streams through to phones).
    Relay,
}

/// How to build a recording server.
#[derive(Debug)]
pub struct RecorderConfig {
    /// The host name its certificate carries (e.g. `recorder-1.vms.test`).
    pub host: String,
    /// Its cameras; ids must be unique.
    pub cameras: Vec<Camera>,
    /// Capacity of each connection's frame queue, in frames.
    pub queue_frames: usize,
    /// Run-clock instant the cameras' frame clocks start from.
    pub start_ns: u64,
    /// Where frames come from.
    pub source: Source,
    /// How long it waits on each client: for its TLS handshake, for its subscribe request
    /// (`first_request`), and for a backlog of frames to drain (`write_stall`: a client
    /// that reads nothing at all for that long is closed, counted as `stalled`; a slow one
    /// loses frames to its next key frame instead). `idle` does not apply: once
    /// subscribed, a client only reads.
    pub timeouts: ServerTimeouts,
}

/// A frame waiting in a connection's queue.
#[derive(Clone, Debug)]
struct Outgoing {
    camera: u32,
    spec: FrameSpec,
    payload: Bytes,
}

/// One subscriber of one camera.
#[derive(Debug)]
struct Subscriber {
    conn: Arc<Conn>,
    waiting_for_key: bool,
    /// Whether a frame has been queued yet: frames skipped while a new subscriber waits
    /// for its first key frame are not drops (nothing was lost that it had).
    started: bool,
    link: Arc<LinkCounters>,
}

#[derive(PartialEq, Eq)]
enum Offer {
    Queued,
    Dropped,
    Closed,
}

impl Subscriber {
    fn new(conn: Arc<Conn>, link: Arc<LinkCounters>) -> Self {
        // A new subscriber starts at a key frame, as a real client's decoder must.
        Subscriber {
            conn,
            waiting_for_key: true,
            started: false,
            link,
        }
    }

    /// Hands `out` to this subscriber's connection (written at once, or queued), or drops
    /// it (queue full, or waiting for a key frame after a drop). Frames due inside the
    /// window are counted.
    fn offer(&mut self, shared: &Shared, out: &Outgoing, in_window: bool) -> Offer {
        if self.conn.is_closed() {
            return Offer::Closed;
        }
        let offer = if self.waiting_for_key && !out.spec.keyframe {
            Offer::Dropped
        } else {
            match self.conn.offer(shared, out, in_window) {
                Ok(()) => {
                    self.waiting_for_key = false;
                    self.started = true;
                    Offer::Queued
                }
                Err(Refused::Full) => {
                    self.waiting_for_key = true;
                    Offer::Dropped
                }
                Err(Refused::Closed) => return Offer::Closed,
            }
        };
        if in_window && self.started {
            let c = &self.link.sent;
            c.frames_offered.fetch_add(1, Ordering::Relaxed);
            if offer == Offer::Dropped {
                c.dropped_frames.fetch_add(1, Ordering::Relaxed);
            }
        }
        offer
    }
}

/// Counters of one kind of client (one link label).
#[derive(Debug)]
struct LinkCounters {
    sent: SenderCounters,
    handshake_us: Mutex<Histogram<u64>>,
}

impl Default for LinkCounters {
    fn default() -> Self {
        LinkCounters {
            sent: SenderCounters::default(),
            handshake_us: Mutex::new(latency_histogram()),
        }
    }
}

/// Offers a frame to every subscriber of a camera, forgetting those that have gone.
fn fan_out(shared: &Shared, subscribers: &mut Vec<Subscriber>, out: &Outgoing, in_window: bool) {
    subscribers.retain_mut(|sub| sub.offer(shared, out, in_window) != Offer::Closed);
}

#[derive(Debug)]
struct CameraSlot {
    camera: Camera,
    subscribers: Mutex<Vec<Subscriber>>,
}

#[derive(Debug)]
struct Shared {
    clock: RunClock,
    window: Arc<Window>,
    start_ns: u64,
    queue_frames: usize,
    cameras: BTreeMap<u32, CameraSlot>,
    links: Mutex<BTreeMap<String, Arc<LinkCounters>>>,
    accepted: AtomicU64,
    negotiated: Mutex<Option<Negotiated>>,
    stall_until_ns: AtomicU64,
    /// Thread CPU time the writer burns per frame it sends (0: none); see
    /// [`Recorder::set_cpu_per_frame`].
    cpu_per_frame_ns: AtomicU64,
    /// One per pacer thread.
    pacers: Vec<PacerSlot>,
    /// Which pacer takes the next playback.
    next_pacer: AtomicU64,
    /// Set when the server stops: what the pacers check on every frame.
    halted: AtomicBool,
    core: ServerCore,
}

impl AsRef<ServerCore> for Shared {
    fn as_ref(&self) -> &ServerCore {
        &self.core
    }
}

impl Shared {
    /// Tells the pacers and every task to stop.
    fn halt(&self) {
        self.halted.store(true, Ordering::Release);
        self.core.cancel.cancel();
        for p in &self.pacers {
            p.wake();
        }
    }

    /// Hands a new playback to one of the pacers, in turn.
    fn add_playback(&self, feed: PlaybackFeed) {
        let n = self.pacers.len().max(1) as u64;
        let i = (self.next_pacer.fetch_add(1, Ordering::Relaxed) % n) as usize;
        if let Some(p) = self.pacers.get(i) {
            if let Ok(mut new) = p.new_playbacks.lock() {
                new.push(feed);
                p.has_new_playbacks.store(true, Ordering::Release);
            }
            p.wake();
        }
    }

    fn link(&self, label: &str) -> Arc<LinkCounters> {
        match self.links.lock() {
            Ok(mut links) => links.entry(label.to_owned()).or_default().clone(),
            Err(_) => Arc::new(LinkCounters::default()),
        }
    }
}

/// What a pacer thread shares with the rest of the server.
#[derive(Debug, Default)]
struct PacerSlot {
    thread: Mutex<Option<std::thread::Thread>>,
    new_playbacks: Mutex<Vec<PlaybackFeed>>,
    /// Set with `new_playbacks`, so that the pacer takes the lock only when there are some.
    has_new_playbacks: AtomicBool,
    /// The most a frame left after its due instant since [`Recorder::take_lag`] last
    /// looked, ns: written by the pacer alone, so a plain load and store.
    max_lag_ns: AtomicU64,
}

impl PacerSlot {
    fn note_lag(&self, lag_ns: u64) {
        if lag_ns > self.max_lag_ns.load(Ordering::Relaxed) {
            self.max_lag_ns.store(lag_ns, Ordering::Relaxed);
        }
    }

    fn wake(&self) {
        if let Ok(p) = self.thread.lock() {
            if let Some(t) = p.as_ref() {
                t.unpark();
            }
        }
    }
}

/// What a recording server has counted (serialised when it travels from an agent).
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct RecorderStats {
    /// Connections whose handshake completed.
    pub connections: u64,
    /// Failed connections by category (handshake failures, protocol errors, …).
    pub failures: BTreeMap<String, u64>,
    /// Frames and bytes sent and dropped within the window, all clients together.
    pub sent: SenderSnapshot,
    /// The same per client label (the link id a client gave when it subscribed;
    /// playback subscriptions get `/playback` appended).
    pub by_label: BTreeMap<String, SenderSnapshot>,
    /// Server-side TLS handshake times, µs, all clients together.
    #[serde(with = "crate::metrics::histogram_v2")]
    pub handshake_us: Histogram<u64>,
    /// The same per client label.
    #[serde(with = "crate::metrics::histogram_v2::map")]
    pub handshake_us_by_label: BTreeMap<String, Histogram<u64>>,
    /// What its TLS handshakes negotiated.
    pub negotiated: Option<Negotiated>,
}

/// A running recording server.
#[derive(Debug)]
pub struct Recorder {
    addr: SocketAddr,
    mode: Mode,
    shared: Arc<Shared>,
    pacers: Vec<std::thread::JoinHandle<()>>,
}

impl Recorder {
    /// Starts the server's cameras and accept loop on `runtime`.
    pub fn start(
        runtime: &RoleRuntime,
        listener: Listener,
        config: RecorderConfig,
        clock: RunClock,
        window: Arc<Window>,
    ) -> std::io::Result<Recorder> {
        let addr = listener.local_addr()?;
        let mode = listener.mode();
        let config_cameras = config.cameras.len();
        let cameras = config
            .cameras
            .into_iter()
            .map(|camera| {
                (
                    camera.id,
                    CameraSlot {
                        camera,
                        subscribers: Mutex::new(Vec::new()),
                    },
                )
            })
            .collect();
        // One pacer per worker thread, so that the cameras' frames go out on as many cores
        // as the server has; never more pacers than cameras.
        let pacers = match config.source {
            Source::Pacer => runtime.workers().min(config_cameras).max(1),
            Source::Relay => 0,
        };
        let shared = Arc::new(Shared {
            clock,
            window,
            start_ns: config.start_ns,
            queue_frames: config.queue_frames.max(1),
            cameras,
            links: Mutex::new(BTreeMap::new()),
            accepted: AtomicU64::new(0),
            negotiated: Mutex::new(None),
            stall_until_ns: AtomicU64::new(0),
            cpu_per_frame_ns: AtomicU64::new(0),
            pacers: (0..pacers).map(|_| PacerSlot::default()).collect(),
            next_pacer: AtomicU64::new(0),
            halted: AtomicBool::new(false),
            core: ServerCore::new(config.timeouts),
        });
        let mut threads = Vec::with_capacity(shared.pacers.len());
        for shard in 0..shared.pacers.len() {
            let (s, cpu) = (shared.clone(), runtime.cpu());
            let pin = runtime.affinity().cloned();
            threads.push(
                std::thread::Builder::new()
                    .name(format!("{}-pacer{shard}", runtime.name()))
                    .spawn(move || {
                        // A pacer shares its role's CPUs, like the runtime's threads.
                        if let Some(pin) = pin {
                            let _ = pin.apply();
                        }
                        run_pacer(s, shard, cpu)
                    })?,
            );
        }
        ServerCore::spawn_accepting(&shared, listener, &runtime.handle(), serve);
        Ok(Recorder {
            addr,
            mode,
            shared,
            pacers: threads,
        })
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Plaintext or TLS.
    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// Stops sending for `duration`: frames keep falling due and queue up (or are dropped
    /// when a queue is full), then go out in a burst. Shows what coordinated-omission
    /// correction does.
    pub fn stall(&self, duration: Duration) {
        let until = self.shared.clock.now_ns() + duration.as_nanos() as u64;
        self.shared.stall_until_ns.store(until, Ordering::Release);
    }

    /// Makes the server deliberately expensive: after writing each frame, the writing
    /// thread burns `cost` of its own CPU time (measured on its thread CPU clock, so time
    /// spent preempted does not count). A server on `t` threads then sends at most
    /// `t / cost` frames per second, whatever the machine: a recording server of known
    /// capacity, for testing capacity searches. `None` (the default) removes the cost.
    pub fn set_cpu_per_frame(&self, cost: Option<Duration>) {
        let ns = cost.map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX));
        self.shared.cpu_per_frame_ns.store(ns, Ordering::Relaxed);
    }

    /// How far behind its pacers have fallen: the most any frame left after its due
    /// instant since the last call. A server that has absorbed a burst (the handshakes of a
    /// ramp) and keeps up again shows a lag of microseconds. Zero for a relay.
    pub fn take_lag(&self) -> Duration {
        let ns = self
            .shared
            .pacers
            .iter()
            .map(|p| p.max_lag_ns.swap(0, Ordering::Relaxed))
            .max()
            .unwrap_or(0);
        Duration::from_nanos(ns)
    }

    /// Live subscriptions it holds now: one per camera per client watching it. A client
    /// that has gone is let go, and its connection closed, at its cameras' next frames.
    pub fn subscriptions(&self) -> usize {
        self.shared
            .cameras
            .values()
            .map(|c| c.subscribers.lock().map_or(0, |s| s.len()))
            .sum()
    }

    /// A copy of its counters.
    pub fn stats(&self) -> RecorderStats {
        let s = &self.shared;
        let links: Vec<(String, Arc<LinkCounters>)> = s
            .links
            .lock()
            .map(|l| l.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
            .unwrap_or_default();
        let mut sent = SenderSnapshot::default();
        let mut handshake_us = latency_histogram();
        let mut by_label = BTreeMap::new();
        let mut handshake_us_by_label = BTreeMap::new();
        for (label, c) in links {
            let snap = c.sent.snapshot();
            sent += snap;
            by_label.insert(label.clone(), snap);
            let h = c
                .handshake_us
                .lock()
                .map(|h| h.clone())
                .unwrap_or_else(|_| latency_histogram());
            let _ = handshake_us.add(&h);
            handshake_us_by_label.insert(label, h);
        }
        RecorderStats {
            connections: s.accepted.load(Ordering::Relaxed),
            failures: s.core.failures(),
            sent,
            by_label,
            handshake_us,
            handshake_us_by_label,
            negotiated: s.negotiated.lock().ok().and_then(|n| n.clone()),
        }
    }

    /// Client connections open now, from the TCP accept until the server lets go of them.
    pub fn open_connections(&self) -> usize {
        self.shared.core.open_connections()
    }

    /// A handle that forwards frames to this server's subscribers ([`Source::Relay`]).
    pub fn relay(&self) -> Relay {
        Relay {
            shared: self.shared.clone(),
        }
    }

    /// Stops the pacers and every task and waits for them to end.
    pub async fn stop(mut self) {
        self.shared.halt();
        self.shared.core.stop().await;
        let pacers = std::mem::take(&mut self.pacers);
        // Woken above, the pacers see the cancellation at once.
        let _ = tokio::task::spawn_blocking(move || {
            for p in pacers {
                let _ = p.join();
            }
        })
        .await;
    }
}

impl Drop for Recorder {
    /// A recorder dropped without [`Recorder::stop`] (an early return, a panic) still ends
    /// its pacer threads and tasks instead of leaving them running for the process's life.
    fn drop(&mut self) {
        self.shared.halt();
    }
}

/// A stream the pacer feeds: a camera's live feed (to every subscriber), or one client's
/// playback of a camera.
#[derive(Debug)]
enum Feed {
    Live { camera: u32 },
    Playback(Box<PlaybackFeed>),
}

#[derive(Debug)]
struct PlaybackFeed {
    camera: u32,
    playback: Playback,
    start_ns: u64,
    subscriber: Subscriber,
}

/// How long the pacer sleeps at most when nothing is due (it is woken early for new feeds
/// and for shutdown).
const PACER_IDLE_NS: u64 = 100_000_000;

/// A pacer: a thread that wakes at each frame's due instant and hands the frame to its
/// subscribers. Pacer `shard` of a server's pacers feeds every camera whose position
/// (in id order) is `shard` modulo their number, and the playbacks handed to it.
///
/// A dedicated thread rather than async timers: tokio's timers have millisecond
/// granularity, which would add up to a millisecond to every frame's measured latency in
/// both modes and blur the difference TLS makes. This thread sleeps with the kernel's
/// high-resolution timers (slack lowered to 1 µs) and is charged to the recording server's
/// CPU like its runtime threads.
fn run_pacer(shared: Arc<Shared>, shard: usize, cpu: Arc<ThreadCpu>) {
    let Some(slot) = shared.pacers.get(shard) else {
        return;
    };
    cpu.enter();
    if let Ok(mut me) = slot.thread.lock() {
        *me = Some(std::thread::current());
    }
    // SAFETY: prctl(PR_SET_TIMERSLACK) only changes this thread's timer slack.
    unsafe {
        libc::prctl(libc::PR_SET_TIMERSLACK, 1_000 as libc::c_ulong, 0, 0, 0);
    }
    let mut feeds: Vec<Option<Feed>> = Vec::new();
    let mut due: BinaryHeap<Reverse<(u64, usize, u64)>> = BinaryHeap::new();
    let now = shared.clock.now_ns();
    let mut waiter = Waiter::new(now);
    let shards = shared.pacers.len();
    for (id, cam) in shared.cameras.iter().skip(shard).step_by(shards) {
        let seq = cam
            .camera
            .first_seq_at(Playback::Live, shared.start_ns, now);
        let at = cam.camera.due_ns(Playback::Live, shared.start_ns, seq);
        due.push(Reverse((at, feeds.len(), seq)));
        feeds.push(Some(Feed::Live { camera: *id }));
    }
    while !shared.halted.load(Ordering::Acquire) {
        let new_playbacks = slot.has_new_playbacks.swap(false, Ordering::AcqRel);
        if let (true, Ok(mut new)) = (new_playbacks, slot.new_playbacks.lock()) {
            for feed in new.drain(..) {
                let Some(slot) = shared.cameras.get(&feed.camera) else {
                    continue;
                };
                let at = slot.camera.due_ns(feed.playback, feed.start_ns, 0);
                due.push(Reverse((at, feeds.len(), 0)));
                feeds.push(Some(Feed::Playback(Box::new(feed))));
            }
        }
        let next = due.peek().map_or(u64::MAX, |Reverse((at, _, _))| *at);
        if !waiter.wait_for(&shared, next) {
            continue;
        }
        let Some(Reverse((at, index, seq))) = due.pop() else {
            continue;
        };
        let now = shared.clock.now_ns();
        slot.note_lag(now.saturating_sub(at));
        waiter.emitted(now);
        let keep = match feeds.get_mut(index).and_then(Option::as_mut) {
            Some(Feed::Live { camera }) => {
                emit_live(&shared, *camera, seq);
                true
            }
            Some(Feed::Playback(feed)) => emit_playback(&shared, feed, seq),
            None => false,
        };
        if !keep {
            if let Some(slot) = feeds.get_mut(index) {
                *slot = None;
            }
            continue;
        }
        let next_at = match feeds.get(index).and_then(Option::as_ref) {
            Some(Feed::Live { camera }) => shared
                .cameras
                .get(camera)
                .map(|s| s.camera.due_ns(Playback::Live, shared.start_ns, seq + 1)),
            Some(Feed::Playback(f)) => shared
                .cameras
                .get(&f.camera)
                .map(|s| s.camera.due_ns(f.playback, f.start_ns, seq + 1)),
            None => None,
        };
        if let Some(at) = next_at {
            due.push(Reverse((at, index, seq + 1)));
        }
    }
    cpu.exit();
}

/// Longest the pacer spins before a frame is due: more than a VM's wake-up latency.
const SPIN_MARGIN_MAX_NS: u64 = 200_000;
/// Share of a core the pacer may spend spinning, ns per second.
const SPIN_BUDGET_NS_PER_S: u64 = 20_000_000;
/// How often the pacer re-measures its frame rate.
const RATE_PERIOD_NS: u64 = 100_000_000;

/// How the pacer waits for the next frame: it sleeps on a high-resolution timer but wakes
/// a margin early and spins the rest, so that a frame leaves at its instant rather than
/// when the scheduler gets round to the thread (tens of µs late on a virtual machine). The
/// margin shrinks as the frame rate grows, so that spinning never takes more than
/// [`SPIN_BUDGET_NS_PER_S`] of a core: an idle link gets exact release, a busy server
/// (whose frames come every few µs anyway) little spinning.
#[derive(Debug)]
struct Waiter {
    frames: u64,
    since_ns: u64,
    margin_ns: u64,
}

impl Waiter {
    fn new(now_ns: u64) -> Self {
        Waiter {
            frames: 0,
            since_ns: now_ns,
            margin_ns: SPIN_MARGIN_MAX_NS,
        }
    }

    /// Waits towards `next`; true once it is due (false: woken early, look again).
    fn wait_for(&self, shared: &Shared, next: u64) -> bool {
        let now = shared.clock.now_ns();
        if next <= now {
            return true;
        }
        if next - now > self.margin_ns {
            // Woken early by `PacerSlot::wake` when a feed is added or on shutdown.
            let sleep = (next - now - self.margin_ns).min(PACER_IDLE_NS);
            std::thread::park_timeout(Duration::from_nanos(sleep));
            return false;
        }
        while shared.clock.now_ns() < next {
            if shared.halted.load(Ordering::Relaxed) {
                return false;
            }
            std::hint::spin_loop();
        }
        true
    }

    /// Counts a frame emitted at `now_ns`, and adapts the margin to the rate.
    fn emitted(&mut self, now_ns: u64) {
        self.frames += 1;
        let elapsed = now_ns.saturating_sub(self.since_ns);
        if elapsed >= RATE_PERIOD_NS {
            let per_s = self.frames * 1_000_000_000 / elapsed.max(1);
            self.margin_ns = (SPIN_BUDGET_NS_PER_S / per_s.max(1)).min(SPIN_MARGIN_MAX_NS);
            self.frames = 0;
            self.since_ns = now_ns;
        }
    }
}

fn emit_live(shared: &Shared, id: u32, seq: u64) {
    let Some(slot) = shared.cameras.get(&id) else {
        return;
    };
    let camera = &slot.camera;
    let Ok(mut subs) = slot.subscribers.lock() else {
        return;
    };
    if subs.is_empty() {
        return;
    }
    let spec = camera.frame(Playback::Live, shared.start_ns, seq);
    let out = Outgoing {
        camera: id,
        spec,
        payload: camera.payload(&spec),
    };
    fan_out(shared, &mut subs, &out, shared.window.contains(spec.due_ns));
}

/// Returns whether the feed goes on.
fn emit_playback(shared: &Shared, feed: &mut PlaybackFeed, seq: u64) -> bool {
    if feed.subscriber.conn.is_closed() {
        return false;
    }
    let Some(slot) = shared.cameras.get(&feed.camera) else {
        return false;
    };
    let spec = slot.camera.frame(feed.playback, feed.start_ns, seq);
    let out = Outgoing {
        camera: feed.camera,
        spec,
        payload: slot.camera.payload(&spec),
    };
    feed.subscriber
        .offer(shared, &out, shared.window.contains(spec.due_ns))
        != Offer::Closed
}

/// Forwards frames received elsewhere to a relaying server's subscribers, keeping their
/// sequence numbers and scheduled times, so that latency stays end to end.
#[derive(Clone, Debug)]
pub struct Relay {
    shared: Arc<Shared>,
}

impl Relay {
    /// Offers a received frame to every subscriber of its camera: the same pooled payload,
    /// taken from this server's own copy of the pool (no copy, no allocation), with the
    /// original sequence number and scheduled time. A frame that is not pooled is not
    /// forwarded.
    pub fn forward(&self, header: &Header) {
        let Some(offset) = header.pooled_at() else {
            return;
        };
        let Some(slot) = self.shared.cameras.get(&header.stream_id) else {
            return;
        };
        let Ok(mut subs) = slot.subscribers.lock() else {
            return;
        };
        if subs.is_empty() {
            return;
        }
        let spec = FrameSpec {
            seq: header.seq,
            keyframe: header.is_keyframe(),
            len: header.payload_len as usize,
            offset,
            due_ns: header.scheduled_ns,
        };
        let Some(payload) = slot.camera.payload_checked(&spec) else {
            return;
        };
        let out = Outgoing {
            camera: header.stream_id,
            spec,
            payload,
        };
        let in_window = self.shared.window.contains(header.scheduled_ns);
        fan_out(&self.shared, &mut subs, &out, in_window);
    }
}

fn wire_category(e: &WireError) -> &'static str {
    match e {
        WireError::Io(_) | WireError::Truncated => "io",
        _ => "protocol",
    }
}

/// The failure category of a subscribed connection's I/O error: `reset` when the client
/// went away without a goodbye (its connection reset, aborted, or closed mid-message — a
/// client process killed, say), `io` for anything else.
fn io_category(e: &std::io::Error) -> &'static str {
    use std::io::ErrorKind::{BrokenPipe, ConnectionAborted, ConnectionReset, UnexpectedEof};
    match e.kind() {
        ConnectionReset | ConnectionAborted | BrokenPipe | UnexpectedEof => "reset",
        _ => "io",
    }
}

async fn serve(shared: Arc<Shared>, incoming: Incoming) {
    let Some(accepted) = shared.core.handshake(incoming).await else {
        return;
    };
    shared.accepted.fetch_add(1, Ordering::Relaxed);
    let tls = accepted.negotiated.is_some();
    if let Some(n) = accepted.negotiated {
        if let Ok(mut slot) = shared.negotiated.lock() {
            *slot = Some(n);
        }
    }
    let mut stream = accepted.stream;

    // The first message must be a subscription (read exactly: nothing is read ahead).
    let first = tokio::select! {
        _ = shared.core.cancel.cancelled() => return,
        r = tokio::time::timeout(shared.core.timeouts.first_request, read_request(&mut stream)) => r,
    };
    let subscribe = match first {
        Ok(Ok(Some((h, p)))) if h.kind == Kind::Subscribe => Subscribe::decode(&p),
        Ok(Ok(Some(_))) => Err(WireError::Malformed {
            kind: Kind::Subscribe,
            reason: "expected a subscribe request first",
        }),
        Ok(Ok(None)) => return,
        Ok(Err(e)) => Err(e),
        Err(_) => return shared.core.fail(timeouts::TIMEOUT),
    };
    let subscribe = match subscribe {
        Ok(s) => s,
        Err(e) => {
            shared.core.fail(wire_category(&e));
            let _ = refuse(&mut stream, &e.to_string()).await;
            return;
        }
    };
    if let Some(bad) = subscribe
        .cameras
        .iter()
        .find(|c| !shared.cameras.contains_key(c))
    {
        shared.core.fail("unknown_camera");
        let _ = refuse(
            &mut stream,
            &format!("no camera {bad} on this recording server"),
        )
        .await;
        return;
    }

    let label = match (subscribe.label.as_str(), subscribe.playback_speed) {
        ("", None) => "unlabelled".to_owned(),
        ("", Some(_)) => "unlabelled/playback".to_owned(),
        (l, None) => l.to_owned(),
        (l, Some(_)) => format!("{l}/playback"),
    };
    let link = shared.link(&label);
    if tls {
        if let Ok(mut h) = link.handshake_us.lock() {
            h.record_us(ns_to_us(accepted.handshake.as_nanos() as u64));
        }
    }
    // From here frames are written by whoever has them: the connection goes direct.
    let io = match DirectIo::from_stream(stream) {
        Ok(io) => io,
        Err(_) => return shared.core.fail("io"),
    };
    let conn = Conn::new(io, shared.core.cancel.child_token(), link.clone());
    subscribe_to(&shared, &subscribe, &conn, &link);
    let flusher = tokio::spawn(conn.clone().flush_loop(shared.clone()));

    // Watch for the client leaving (or misbehaving); then end the connection. When a
    // write finds it broken first, what the client sent says whether it said goodbye.
    let outcome = tokio::select! {
        _ = conn.ended.cancelled() => match conn.broken() {
            Some(category) => tokio::time::timeout(super::CLOSE_TIMEOUT, read_goodbye(&conn))
                .await
                .unwrap_or(Err(category)),
            None => Ok(()),
        },
        r = read_goodbye(&conn) => r,
    };
    if let Err(category) = outcome {
        shared.core.fail(category);
    }
    conn.end();
    let _ = flusher.await;
    conn.close(super::CLOSE_TIMEOUT).await;
}

/// Registers `conn` with the cameras (live) or playback feeds `subscribe` asks for.
fn subscribe_to(
    shared: &Shared,
    subscribe: &Subscribe,
    conn: &Arc<Conn>,
    link: &Arc<LinkCounters>,
) {
    for id in &subscribe.cameras {
        match subscribe.playback_speed {
            None => {
                if let Some(slot) = shared.cameras.get(id) {
                    if let Ok(mut subs) = slot.subscribers.lock() {
                        subs.push(Subscriber::new(conn.clone(), link.clone()));
                    }
                }
            }
            Some(speed) => {
                // Recorded video starts at a key frame at once: shift the stream's origin
                // back by the camera's phase so that its frame 0 is due now.
                let phase = shared.cameras.get(id).map_or(0, |s| s.camera.phase_ns());
                let feed = PlaybackFeed {
                    camera: *id,
                    playback: Playback::Speed(speed),
                    start_ns: shared.clock.now_ns().saturating_sub(phase),
                    subscriber: Subscriber::new(conn.clone(), link.clone()),
                };
                shared.add_playback(feed);
            }
        }
    }
}

/// Reads what a subscribed client sends: only a goodbye is expected. `Err` is the failure
/// category of anything else: `reset` for a client that went away without one (its
/// connection closed or reset), `protocol` for one that sent something else.
async fn read_goodbye(conn: &Conn) -> Result<(), &'static str> {
    let mut header = [0u8; HEADER_LEN];
    let mut filled = 0;
    while filled < HEADER_LEN {
        match conn.read(&mut header[filled..]).await {
            Ok(0) => return Err("reset"),
            Ok(n) => filled += n,
            Err(e) => return Err(io_category(&e)),
        }
    }
    match Header::decode(&header, MAX_REQUEST) {
        Ok(Header {
            kind: Kind::Bye, ..
        }) => Ok(()),
        Ok(_) => Err("protocol"),
        Err(e) => Err(wire_category(&e)),
    }
}

async fn read_request<R: tokio::io::AsyncRead + Unpin>(
    rd: &mut R,
) -> Result<Option<(Header, Vec<u8>)>, WireError> {
    let Some(h) = wire::read_header(rd, MAX_REQUEST).await? else {
        return Ok(None);
    };
    let mut payload = Vec::new();
    wire::read_payload(rd, &h, &mut payload).await?;
    Ok(Some((h, payload)))
}

async fn refuse<W: tokio::io::AsyncWrite + Unpin>(
    wr: &mut W,
    reason: &str,
) -> Result<(), WireError> {
    wire::write_message(wr, Header::new(Kind::Error), reason.as_bytes()).await?;
    wr.flush().await?;
    Ok(())
}
