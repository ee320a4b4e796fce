//! A client that retrieves video (a viewer, an SDK integration, the mobile server, a
//! phone): connects, subscribes to streams, reads frames and measures them.
//!
//! Latency is taken when the last byte of a frame has been read: against the frame's
//! scheduled time (corrected for coordinated omission) and against the time the sender
//! started writing it (uncorrected). Connect and handshake are timed separately; time to
//! first frame runs from sending the subscription to the first key frame of each stream.
//! When the server goes away and a failover server is configured, the client reconnects
//! there and measures how long each stream took to flow again.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use tokio::io::{AsyncRead, AsyncWriteExt};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::clock::RunClock;
use crate::metrics::{ClientMeter, LinkMetrics, Meter, Window, WireCount};
use crate::role::RoleRuntime;
use crate::transport::{ByteCounter, ConnectError, Connector, ReadAheadReader};
use crate::video::{PayloadPool, Playback};
use crate::wire::{self, Header, Kind, Subscribe, WireError, MAX_PAYLOAD};

/// Called with every frame received (header and whole payload): content checks in tests.
/// A viewer with a hook keeps each frame's payload in a buffer; one without reads payloads
/// through and keeps none.
pub type FrameHook = Arc<dyn Fn(&Header, &[u8]) + Send + Sync>;

/// Called with the header of every frame received whole and intact (forwarding in a
/// relay, which takes the payload from its own pool).
pub type HeaderHook = Arc<dyn Fn(&Header) + Send + Sync>;

/// One stream a viewer wants.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StreamRequest {
    /// Camera id on the recording server.
    pub camera: u32,
    /// Nanoseconds between this stream's frames (its lateness threshold).
    pub interval_ns: u64,
}

/// A server to connect to: its address and the host name its certificate must carry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Endpoint {
    /// Socket address.
    pub addr: SocketAddr,
    /// Host name to verify.
    pub host: String,
}

/// How to build a viewer.
#[derive(Clone)]
pub struct ViewerConfig {
    /// The server to connect to.
    pub server: Endpoint,
    /// Where to go when that server goes away (a failover recording server).
    pub failover: Option<Endpoint>,
    /// The streams to subscribe to.
    pub streams: Vec<StreamRequest>,
    /// Live or playback.
    pub playback: Playback,
    /// Plaintext or TLS, with the client's trust store.
    pub connector: Connector,
    /// What kind of client this is (a link id), sent to the server for its counts.
    pub label: String,
    /// Optional hook called with every frame and its payload.
    pub on_frame: Option<FrameHook>,
    /// Optional hook called with the header of every frame received intact.
    pub on_header: Option<HeaderHook>,
    /// The sender's payload pool, to check every pooled payload against byte for byte
    /// (a mismatch ends the connection as `corrupt`); `None` reads payloads unchecked.
    pub verify: Option<PayloadPool>,
    /// Where it records; `None` gives it a meter of its own.
    pub meter: Option<ClientMeter>,
    /// When to connect (run clock); `None`: at once. Clients of a large deployment start
    /// one after another at a set rate (a ramp), not all at one instant.
    pub start_at_ns: Option<u64>,
}

impl std::fmt::Debug for ViewerConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ViewerConfig")
            .field("server", &self.server)
            .field("failover", &self.failover)
            .field("streams", &self.streams.len())
            .field("playback", &self.playback)
            .field("mode", &self.connector.mode())
            .field("label", &self.label)
            .finish_non_exhaustive()
    }
}

/// Why a viewer stopped before it was asked to.
#[derive(Debug, thiserror::Error)]
pub enum ViewerError {
    /// The connection could not be set up.
    #[error(transparent)]
    Connect(#[from] ConnectError),
    /// The server refused the subscription.
    #[error("the server refused the subscription: {0}")]
    Refused(String),
    /// The stream broke.
    #[error("stream failed: {0}")]
    Wire(#[from] WireError),
}

/// A running viewer.
#[derive(Debug)]
pub struct Viewer {
    meter: ClientMeter,
    cancel: CancellationToken,
    task: JoinHandle<Result<(), ViewerError>>,
}

#[derive(Debug)]
struct StreamState {
    interval_ns: u64,
    last_seq: Option<u64>,
    /// Waiting for the first frame on the current connection.
    awaiting_first: bool,
    /// The least (receive − scheduled) time of the stream on the current connection, ns,
    /// on two clocks that may disagree (the sender's schedule, the receiver's clock): the
    /// reference of its delay variation. `i64::MAX` until its first frame.
    least_delay_ns: i64,
}

impl Viewer {
    /// Starts the viewer on `runtime`; it connects at once.
    pub fn start(
        runtime: &RoleRuntime,
        config: ViewerConfig,
        clock: RunClock,
        window: Arc<Window>,
    ) -> Viewer {
        let meter = config.meter.clone().unwrap_or_else(ClientMeter::alone);
        let cancel = CancellationToken::new();
        let session = Session {
            unstarted: AtomicUsize::new(config.streams.len()),
            config,
            clock,
            window,
            meter: meter.clone(),
            cancel: cancel.clone(),
        };
        let task = runtime.spawn(session.run());
        Viewer {
            meter,
            cancel,
            task,
        }
    }

    /// The meter it records into (shared with the rest of its group, if it has one).
    pub fn meter(&self) -> &Arc<Meter> {
        self.meter.meter()
    }

    /// What its meter has measured so far (its whole group's, if the meter is shared).
    pub fn metrics(&self) -> LinkMetrics {
        self.meter.meter().snapshot()
    }

    /// Whether it has stopped (by itself, on an error).
    pub fn is_finished(&self) -> bool {
        self.task.is_finished()
    }

    /// Stops it and returns what its meter measured (its whole group's, if the meter is
    /// shared) and how it ended.
    pub async fn stop(self) -> (LinkMetrics, Result<(), ViewerError>) {
        let meter = self.meter.meter().clone();
        let outcome = self.finish().await;
        (meter.snapshot(), outcome)
    }

    /// Stops it and returns how it ended; what it measured is in its meter.
    pub async fn finish(self) -> Result<(), ViewerError> {
        self.cancel.cancel();
        match self.task.await {
            Ok(r) => r,
            Err(e) => Err(ViewerError::Refused(format!("viewer task failed: {e}"))),
        }
    }
}

/// How one connection ended.
enum End {
    /// Asked to stop.
    Stopped,
    /// The server closed or the connection broke: a failover may help.
    Lost(ViewerError),
    /// The server refused us or spoke nonsense: reconnecting will not help.
    Fatal(ViewerError),
}

struct Session {
    config: ViewerConfig,
    clock: RunClock,
    window: Arc<Window>,
    meter: ClientMeter,
    cancel: CancellationToken,
    /// Streams yet to deliver their first frame on the first connection.
    unstarted: AtomicUsize,
}

impl Session {
    fn record_error(&self, category: &str) {
        self.meter.record_error(category);
    }

    /// A stream delivered its first frame: the viewer settles with the last one.
    fn started_one(&self) {
        if self.unstarted.fetch_sub(1, Ordering::Relaxed) == 1 {
            self.meter.settle();
        }
    }

    async fn run(self) -> Result<(), ViewerError> {
        if self.config.streams.is_empty() {
            self.meter.settle();
        }
        if let Some(at) = self.config.start_at_ns {
            tokio::select! {
                _ = self.cancel.cancelled() => {
                    self.settle_if_unstarted();
                    return Ok(());
                }
                _ = tokio::time::sleep_until(self.clock.instant_at(at).into()) => {}
            }
        }
        let outcome = self.streams().await;
        self.settle_if_unstarted();
        outcome
    }

    /// Settles a viewer whose streams never all started (it failed or was stopped first).
    fn settle_if_unstarted(&self) {
        if self.unstarted.swap(0, Ordering::Relaxed) > 0 {
            self.meter.settle();
        }
    }

    async fn streams(&self) -> Result<(), ViewerError> {
        let mut streams: HashMap<u32, StreamState> = self
            .config
            .streams
            .iter()
            .map(|s| {
                let state = StreamState {
                    interval_ns: s.interval_ns,
                    last_seq: None,
                    awaiting_first: true,
                    least_delay_ns: i64::MAX,
                };
                (s.camera, state)
            })
            .collect();
        let targets: Vec<Endpoint> = std::iter::once(self.config.server.clone())
            .chain(self.config.failover.clone())
            .collect();
        let mut lost_at: Option<u64> = None;
        for (i, target) in targets.iter().enumerate() {
            let last = i + 1 == targets.len();
            match self.connection(target, &mut streams, lost_at).await {
                End::Stopped => return Ok(()),
                End::Fatal(e) => return Err(e),
                End::Lost(e) if last => return Err(e),
                End::Lost(_) => {
                    lost_at = Some(self.clock.now_ns());
                    for s in streams.values_mut() {
                        s.awaiting_first = true;
                        // Another server, perhaps on another clock.
                        s.least_delay_ns = i64::MAX;
                    }
                }
            }
        }
        Ok(())
    }

    /// One connection's life: connect, subscribe, read until it ends.
    async fn connection(
        &self,
        target: &Endpoint,
        streams: &mut HashMap<u32, StreamState>,
        lost_at: Option<u64>,
    ) -> End {
        let connected = tokio::select! {
            _ = self.cancel.cancelled() => return End::Stopped,
            r = self.config.connector.connect(target.addr, &target.host) => r,
        };
        let connected = match connected {
            Ok(c) => c,
            Err(e) => {
                self.record_error(e.category.as_str());
                return End::Fatal(e.into());
            }
        };
        self.meter.record_connection(
            lost_at.is_some(),
            connected.tcp_connect.as_nanos() as u64,
            connected
                .negotiated
                .as_ref()
                .map(|n| (connected.handshake.as_nanos() as u64, n)),
        );
        let mut wire = WireProbe::new(connected.stream.byte_counter());
        // The viewer writes only before and after it reads, so the stream is not split
        // (a split stream takes a lock on every read).
        let mut wr = connected.stream;

        let subscribe = Subscribe {
            cameras: self.config.streams.iter().map(|s| s.camera).collect(),
            playback_speed: match self.config.playback {
                Playback::Live => None,
                Playback::Speed(s) => Some(s),
            },
            label: self.config.label.clone(),
        };
        let subscribed_ns = self.clock.now_ns();
        let sent = async {
            wire::write_message(&mut wr, Header::new(Kind::Subscribe), &subscribe.encode()).await?;
            wr.flush().await.map_err(WireError::Io)
        };
        if let Err(e) = sent.await {
            self.record_error("io");
            return End::Lost(e.into());
        }
        let mut rd = ReadAheadReader::new(wr);
        let end = self
            .read_frames(&mut rd, streams, subscribed_ns, lost_at, &mut wire)
            .await;
        // The socket is still open: take the end reading now if no frame marked it.
        if let Some(count) = wire.finish(rd.buffered().len()) {
            self.meter.add_wire(count);
        }
        let mut wr = rd.into_inner();
        // Leave politely; the server may already be gone, or no longer reading.
        let bye = async {
            let _ = wire::write_message(&mut wr, Header::new(Kind::Bye), &[]).await;
            let _ = wr.flush().await;
        };
        let _ = tokio::time::timeout(super::CLOSE_TIMEOUT, bye).await;
        super::close_gently(&mut wr).await;
        end
    }

    async fn read_frames<R: AsyncRead + Unpin>(
        &self,
        rd: &mut ReadAheadReader<R>,
        streams: &mut HashMap<u32, StreamState>,
        subscribed_ns: u64,
        lost_at: Option<u64>,
        wire: &mut WireProbe,
    ) -> End {
        // Only a viewer with a content hook (a test) keeps payloads.
        let mut buf = Vec::new();
        let keep = self.config.on_frame.is_some();
        // Made once: a fresh one per frame would register with the token every time.
        let cancelled = self.cancel.cancelled();
        tokio::pin!(cancelled);
        loop {
            let read = async {
                let Some(h) = wire::read_header(rd, MAX_PAYLOAD).await? else {
                    return Ok(None);
                };
                if keep || h.kind != Kind::Frame {
                    wire::read_payload(rd, &h, &mut buf).await?;
                    if let Some(pool) = &self.config.verify {
                        check_pooled(pool, &h, 0, &buf)?;
                    }
                } else {
                    let verify = self.config.verify.as_ref();
                    wire::read_through(rd, h.payload_len, |at, piece| match verify {
                        Some(pool) => check_pooled(pool, &h, at, piece),
                        None => Ok(()),
                    })
                    .await?;
                }
                Ok::<_, WireError>(Some((h, self.clock.now_ns())))
            };
            let (h, recv_ns) = tokio::select! {
                _ = &mut cancelled => return End::Stopped,
                r = read => match r {
                    Ok(Some(x)) => x,
                    Ok(None) => {
                        self.record_error("closed_by_server");
                        return End::Lost(WireError::Truncated.into());
                    }
                    Err(e @ (WireError::Io(_) | WireError::Truncated)) => {
                        self.record_error("io");
                        return End::Lost(e.into());
                    }
                    Err(e @ WireError::Corrupt { .. }) => {
                        self.record_error("corrupt");
                        return End::Fatal(e.into());
                    }
                    Err(e) => {
                        self.record_error("protocol");
                        return End::Fatal(e.into());
                    }
                },
            };
            match h.kind {
                Kind::Frame => {}
                Kind::Error => {
                    self.record_error("refused");
                    let reason = String::from_utf8_lossy(&buf).into_owned();
                    return End::Fatal(ViewerError::Refused(reason));
                }
                _ => {
                    self.record_error("protocol");
                    let e = WireError::Malformed {
                        kind: h.kind,
                        reason: "unexpected message",
                    };
                    return End::Fatal(e.into());
                }
            }
            if let Some(count) = wire.after_frame(&h, &self.window, rd.buffered().len()) {
                self.meter.add_wire(count);
            }
            if let Some(hook) = &self.config.on_frame {
                hook(&h, &buf);
            }
            if let Some(hook) = &self.config.on_header {
                hook(&h);
            }
            let Some(state) = streams.get_mut(&h.stream_id) else {
                self.record_error("unrequested_stream");
                continue;
            };
            if state.awaiting_first {
                state.awaiting_first = false;
                match lost_at {
                    None => {
                        self.meter
                            .record_ttff(recv_ns.saturating_sub(subscribed_ns));
                        self.started_one();
                    }
                    Some(t) => self.meter.record_recovery(recv_ns.saturating_sub(t)),
                }
            }
            let delay = (recv_ns as i64).wrapping_sub(h.scheduled_ns as i64);
            state.least_delay_ns = state.least_delay_ns.min(delay);
            if self.window.contains(h.scheduled_ns) {
                if let Some(last) = state.last_seq {
                    self.meter.record_gap(h.seq.saturating_sub(last + 1));
                }
                self.meter.record_frame(
                    h.payload_len,
                    h.scheduled_ns,
                    h.sent_ns,
                    recv_ns,
                    state.interval_ns,
                    Some(delay.abs_diff(state.least_delay_ns)),
                );
            }
            state.last_seq = Some(h.seq);
        }
    }
}

/// Checks that `data`, found at `at` bytes into the payload of `h`, is what the sender's
/// pool holds there (payloads that are not pooled are not checked).
fn check_pooled(pool: &PayloadPool, h: &Header, at: usize, data: &[u8]) -> Result<(), WireError> {
    let Some(offset) = h.pooled_at() else {
        return Ok(());
    };
    let start = offset.saturating_add(at);
    match pool.as_slice().get(start..start.saturating_add(data.len())) {
        Some(expected) if expected == data => Ok(()),
        _ => Err(WireError::Corrupt {
            stream_id: h.stream_id,
            seq: h.seq,
        }),
    }
}

/// The kernel cross-check of one connection: byte counts of the application and of the
/// kernel, read at two points of the stream (see [`WireCount`]).
#[derive(Debug)]
struct WireProbe {
    counter: ByteCounter,
    /// Application and kernel counts at the start point, once it has passed.
    start: Option<(u64, u64)>,
    payload_bytes: u64,
    messages: u64,
    done: bool,
}

impl WireProbe {
    fn new(counter: ByteCounter) -> Self {
        WireProbe {
            counter,
            start: None,
            payload_bytes: 0,
            messages: 0,
            done: false,
        }
    }

    /// Both counts now (`None` where the kernel does not give its count).
    /// `above` bytes were read from the stream but not taken by the reader yet: they are
    /// taken off both counts, so that they fall on the side of the point they belong to.
    fn read(&self, above: usize) -> Option<(u64, u64)> {
        let kernel = self.counter.bytes_delivered_by_kernel()?;
        let above = above as u64;
        Some((
            self.counter.bytes_read().saturating_sub(above),
            kernel.saturating_sub(above),
        ))
    }

    /// Called after each frame has been read: opens the span at the first frame scheduled
    /// in the window, closes it (returning the counts) at the first scheduled at or after
    /// its end.
    fn after_frame(&mut self, h: &Header, window: &Window, above: usize) -> Option<WireCount> {
        if self.done {
            return None;
        }
        if self.start.is_none() {
            if window.contains(h.scheduled_ns) {
                self.start = self.read(above);
            }
            return None;
        }
        self.payload_bytes += u64::from(h.payload_len);
        self.messages += 1;
        match window.bounds() {
            Some((_, end)) if end != u64::MAX && h.scheduled_ns >= end => self.finish(above),
            _ => None,
        }
    }

    /// Closes the span now, if it was opened and not closed yet.
    fn finish(&mut self, above: usize) -> Option<WireCount> {
        if self.done {
            return None;
        }
        self.done = true;
        let (app0, kernel0) = self.start?;
        let (app1, kernel1) = self.read(above)?;
        Some(WireCount {
            app_bytes: app1.saturating_sub(app0),
            kernel_bytes: kernel1.saturating_sub(kernel0),
            payload_bytes: self.payload_bytes,
            messages: self.messages,
            connections: 1,
        })
    }
}
