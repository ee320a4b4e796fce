//! A viewer (or any client that retrieves video): connects, subscribes to cameras, reads
//! frames and measures them.
//!
//! Latency is taken when the last byte of a frame has been read: against the frame's
//! scheduled time (corrected for coordinated omission) and against the time the sender
//! started writing it (uncorrected). Connect and handshake are timed separately; time to
//! first frame runs from sending the subscription to the first key frame of each stream.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncWriteExt, BufReader};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::clock::RunClock;
use crate::metrics::{ns_to_us, LinkMetrics, Window};
use crate::role::RoleRuntime;
use crate::transport::Connector;
use crate::video::Playback;
use crate::wire::{self, Header, Kind, Subscribe, WireError, MAX_PAYLOAD};

/// Called with every frame received (header and payload), for tests that check content.
pub type FrameCheck = Arc<dyn Fn(&Header, &[u8]) + Send + Sync>;

/// One stream a viewer wants.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StreamRequest {
    /// Camera id on the recording server.
    pub camera: u32,
    /// Nanoseconds between this stream's frames (its lateness threshold).
    pub interval_ns: u64,
}

/// How to build a viewer.
#[derive(Clone)]
pub struct ViewerConfig {
    /// Where the recording server listens.
    pub addr: SocketAddr,
    /// The host name to verify in its certificate.
    pub host: String,
    /// The streams to subscribe to.
    pub streams: Vec<StreamRequest>,
    /// Live or playback.
    pub playback: Playback,
    /// Plaintext or TLS, with the client's trust store.
    pub connector: Connector,
    /// Optional content check of every frame.
    pub check: Option<FrameCheck>,
}

impl std::fmt::Debug for ViewerConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ViewerConfig")
            .field("addr", &self.addr)
            .field("host", &self.host)
            .field("streams", &self.streams.len())
            .field("playback", &self.playback)
            .field("mode", &self.connector.mode())
            .finish_non_exhaustive()
    }
}

/// Why a viewer stopped before it was asked to.
#[derive(Debug, thiserror::Error)]
pub enum ViewerError {
    /// The connection could not be set up.
    #[error(transparent)]
    Connect(#[from] crate::transport::ConnectError),
    /// The server refused the subscription.
    #[error("the recording server refused the subscription: {0}")]
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
        let task = runtime.spawn(run(config, clock, window, metrics.clone(), cancel.clone()));
        Viewer {
            metrics,
            cancel,
            task,
        }
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

async fn run(
    config: ViewerConfig,
    clock: RunClock,
    window: Arc<Window>,
    metrics: Arc<Mutex<LinkMetrics>>,
    cancel: CancellationToken,
) -> Result<(), ViewerError> {
    let record_error = |category: &str| {
        if let Ok(mut m) = metrics.lock() {
            m.record_error(category);
        }
    };
    let connected = tokio::select! {
        _ = cancel.cancelled() => return Ok(()),
        r = config.connector.connect(config.addr, &config.host) => r,
    };
    let connected = match connected {
        Ok(c) => c,
        Err(e) => {
            record_error(e.category.as_str());
            return Err(e.into());
        }
    };
    if let Ok(mut m) = metrics.lock() {
        m.connections += 1;
        m.connect_us
            .saturating_record(ns_to_us(connected.tcp_connect.as_nanos() as u64));
        if connected.negotiated.is_some() {
            m.handshake_us
                .saturating_record(ns_to_us(connected.handshake.as_nanos() as u64));
            m.negotiated = connected.negotiated.clone();
        }
    }
    let (rd, mut wr) = tokio::io::split(connected.stream);
    let mut rd = BufReader::with_capacity(64 * 1024, rd);

    let subscribe = Subscribe {
        cameras: config.streams.iter().map(|s| s.camera).collect(),
        playback_speed: match config.playback {
            Playback::Live => None,
            Playback::Speed(s) => Some(s),
        },
    };
    let subscribed_ns = clock.now_ns();
    wire::write_message(&mut wr, Header::new(Kind::Subscribe), &subscribe.encode()).await?;
    wr.flush().await.map_err(WireError::Io)?;

    let mut streams: HashMap<u32, StreamState> = config
        .streams
        .iter()
        .map(|s| {
            (
                s.camera,
                StreamState {
                    interval_ns: s.interval_ns,
                    last_seq: None,
                },
            )
        })
        .collect();
    let mut buf = Vec::new();
    let outcome = loop {
        let read = async {
            let Some(h) = wire::read_header(&mut rd, MAX_PAYLOAD).await? else {
                return Ok(None);
            };
            wire::read_payload(&mut rd, &h, &mut buf).await?;
            Ok::<_, WireError>(Some((h, clock.now_ns())))
        };
        let (h, recv_ns) = tokio::select! {
            _ = cancel.cancelled() => break Ok(()),
            r = read => match r {
                Ok(Some(x)) => x,
                Ok(None) => {
                    record_error("closed_by_server");
                    break Err(WireError::Truncated.into());
                }
                Err(e) => {
                    record_error(match e { WireError::Io(_) | WireError::Truncated => "io", _ => "protocol" });
                    break Err(e.into());
                }
            },
        };
        match h.kind {
            Kind::Frame => {}
            Kind::Error => {
                record_error("refused");
                break Err(ViewerError::Refused(
                    String::from_utf8_lossy(&buf).into_owned(),
                ));
            }
            _ => {
                record_error("protocol");
                break Err(WireError::Malformed {
                    kind: h.kind,
                    reason: "unexpected message",
                }
                .into());
            }
        }
        if let Some(check) = &config.check {
            check(&h, &buf);
        }
        let Some(state) = streams.get_mut(&h.stream_id) else {
            record_error("unrequested_stream");
            continue;
        };
        let Ok(mut m) = metrics.lock() else { continue };
        if state.last_seq.is_none() && h.is_keyframe() {
            m.ttff_us
                .saturating_record(ns_to_us(recv_ns.saturating_sub(subscribed_ns)));
        }
        if window.contains(h.scheduled_ns) {
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
    };
    // Leave politely; the server may already be gone, or no longer reading.
    let bye = async {
        let _ = wire::write_message(&mut wr, Header::new(Kind::Bye), &[]).await;
        let _ = wr.flush().await;
    };
    let _ = tokio::time::timeout(super::CLOSE_TIMEOUT, bye).await;
    super::close_gently(&mut wr).await;
    outcome
}
