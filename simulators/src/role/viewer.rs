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
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncWriteExt, BufReader};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::clock::RunClock;
use crate::metrics::{ns_to_us, LinkMetrics, MetricsProbe, RecordUs, Window, WireCount};
use crate::role::RoleRuntime;
use crate::transport::{ByteCounter, ConnectError, Connector};
use crate::video::Playback;
use crate::wire::{self, Header, Kind, Subscribe, WireError, MAX_PAYLOAD};

/// Called with every frame received (header and payload): content checks in tests, or
/// forwarding in a relay.
pub type FrameHook = Arc<dyn Fn(&Header, &[u8]) + Send + Sync>;

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
    /// Optional hook called with every frame.
    pub on_frame: Option<FrameHook>,
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
    metrics: Arc<Mutex<LinkMetrics>>,
    cancel: CancellationToken,
    task: JoinHandle<Result<(), ViewerError>>,
}

#[derive(Debug)]
struct StreamState {
    interval_ns: u64,
    last_seq: Option<u64>,
    /// Waiting for the first frame on the current connection.
    awaiting_first: bool,
}

impl Viewer {
    /// Starts the viewer on `runtime`; it connects at once.
    pub fn start(
        runtime: &RoleRuntime,
        config: ViewerConfig,
        clock: RunClock,
        window: Arc<Window>,
    ) -> Viewer {
        let metrics = Arc::new(Mutex::new(LinkMetrics::default()));
        let cancel = CancellationToken::new();
        let session = Session {
            config,
            clock,
            window,
            metrics: metrics.clone(),
            cancel: cancel.clone(),
        };
        let task = runtime.spawn(session.run());
        Viewer {
            metrics,
            cancel,
            task,
        }
    }

    /// A probe on its metrics, for sampling them while it runs.
    pub fn probe(&self) -> MetricsProbe {
        MetricsProbe::new(self.metrics.clone())
    }

    /// A copy of what it has measured so far.
    pub fn metrics(&self) -> LinkMetrics {
        self.metrics.lock().map(|m| m.clone()).unwrap_or_default()
    }

    /// Whether it has stopped (by itself, on an error).
    pub fn is_finished(&self) -> bool {
        self.task.is_finished()
    }

    /// Stops it and returns what it measured and how it ended.
    pub async fn stop(self) -> (LinkMetrics, Result<(), ViewerError>) {
        self.cancel.cancel();
        let outcome = match self.task.await {
            Ok(r) => r,
            Err(e) => Err(ViewerError::Refused(format!("viewer task failed: {e}"))),
        };
        let m = self.metrics.lock().map(|m| m.clone()).unwrap_or_default();
        (m, outcome)
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
    metrics: Arc<Mutex<LinkMetrics>>,
    cancel: CancellationToken,
}

impl Session {
    fn record_error(&self, category: &str) {
        if let Ok(mut m) = self.metrics.lock() {
            m.record_error(category);
        }
    }

    async fn run(self) -> Result<(), ViewerError> {
        let mut streams: HashMap<u32, StreamState> = self
            .config
            .streams
            .iter()
            .map(|s| {
                let state = StreamState {
                    interval_ns: s.interval_ns,
                    last_seq: None,
                    awaiting_first: true,
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
        if let Ok(mut m) = self.metrics.lock() {
            m.connections += 1;
            if lost_at.is_some() {
                m.reconnects += 1;
            }
            m.connect_us
                .record_us(ns_to_us(connected.tcp_connect.as_nanos() as u64));
            if connected.negotiated.is_some() {
                m.handshake_us
                    .record_us(ns_to_us(connected.handshake.as_nanos() as u64));
                m.negotiated = connected.negotiated.clone();
            }
        }
        let mut wire = WireProbe::new(connected.stream.byte_counter());
        let (rd, mut wr) = tokio::io::split(connected.stream);
        let mut rd = BufReader::with_capacity(64 * 1024, rd);

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
        let end = self
            .read_frames(&mut rd, streams, subscribed_ns, lost_at, &mut wire)
            .await;
        // The socket is still open: take the end reading now if no frame marked it.
        if let Some(count) = wire.finish() {
            if let Ok(mut m) = self.metrics.lock() {
                m.wire += count;
            }
        }
        // Leave politely; the server may already be gone, or no longer reading.
        let bye = async {
            let _ = wire::write_message(&mut wr, Header::new(Kind::Bye), &[]).await;
            let _ = wr.flush().await;
        };
        let _ = tokio::time::timeout(super::CLOSE_TIMEOUT, bye).await;
        super::close_gently(&mut wr).await;
        end
    }

    async fn read_frames<R: tokio::io::AsyncRead + Unpin>(
        &self,
        rd: &mut R,
        streams: &mut HashMap<u32, StreamState>,
        subscribed_ns: u64,
        lost_at: Option<u64>,
        wire: &mut WireProbe,
    ) -> End {
        let mut buf = Vec::new();
        loop {
            let read = async {
                let Some(h) = wire::read_header(rd, MAX_PAYLOAD).await? else {
                    return Ok(None);
                };
                wire::read_payload(rd, &h, &mut buf).await?;
                Ok::<_, WireError>(Some((h, self.clock.now_ns())))
            };
            let (h, recv_ns) = tokio::select! {
                _ = self.cancel.cancelled() => return End::Stopped,
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
            if let Some(count) = wire.after_frame(&h, &self.window) {
                if let Ok(mut m) = self.metrics.lock() {
                    m.wire += count;
                }
            }
            if let Some(hook) = &self.config.on_frame {
                hook(&h, &buf);
            }
            let Some(state) = streams.get_mut(&h.stream_id) else {
                self.record_error("unrequested_stream");
                continue;
            };
            let Ok(mut m) = self.metrics.lock() else {
                continue;
            };
            if state.awaiting_first {
                state.awaiting_first = false;
                match lost_at {
                    None => m
                        .ttff_us
                        .record_us(ns_to_us(recv_ns.saturating_sub(subscribed_ns))),
                    Some(t) => m.recovery_us.record_us(ns_to_us(recv_ns.saturating_sub(t))),
                }
            }
            if self.window.contains(h.scheduled_ns) {
                if let Some(last) = state.last_seq {
                    m.sequence_gaps += h.seq.saturating_sub(last + 1);
                }
                m.record_frame(
                    h.payload_len,
                    h.scheduled_ns,
                    h.sent_ns,
                    recv_ns,
                    state.interval_ns,
                );
            }
            state.last_seq = Some(h.seq);
        }
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
    fn read(&self) -> Option<(u64, u64)> {
        let kernel = self.counter.bytes_delivered_by_kernel()?;
        Some((self.counter.bytes_read(), kernel))
    }

    /// Called after each frame has been read: opens the span at the first frame scheduled
    /// in the window, closes it (returning the counts) at the first scheduled at or after
    /// its end.
    fn after_frame(&mut self, h: &Header, window: &Window) -> Option<WireCount> {
        if self.done {
            return None;
        }
        if self.start.is_none() {
            if window.contains(h.scheduled_ns) {
                self.start = self.read();
            }
            return None;
        }
        self.payload_bytes += u64::from(h.payload_len);
        self.messages += 1;
        match window.bounds() {
            Some((_, end)) if end != u64::MAX && h.scheduled_ns >= end => self.finish(),
            _ => None,
        }
    }

    /// Closes the span now, if it was opened and not closed yet.
    fn finish(&mut self) -> Option<WireCount> {
        if self.done {
            return None;
        }
        self.done = true;
        let (app0, kernel0) = self.start?;
        let (app1, kernel1) = self.read()?;
        Some(WireCount {
            app_bytes: app1.saturating_sub(app0),
            kernel_bytes: kernel1.saturating_sub(kernel0),
            payload_bytes: self.payload_bytes,
            messages: self.messages,
            connections: 1,
        })
    }
}
