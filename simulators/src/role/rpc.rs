//! Clients of the management server: registered servers polling status, data collectors
//! sending telemetry, viewers and integrations logging in, downloading their configuration
//! once and then checking now and then whether it changed.
//!
//! Calls are due on a fixed schedule (`start + phase + k·interval`). A call's latency runs
//! from the moment it was due to the last byte of its answer, so a slow server delays the
//! next calls and shows in their latency (coordinated omission corrected). Each call is
//! counted as one "frame" of its link, whose payload is the request's and the answer's
//! bytes together; a login's frame carries the whole configuration, which is read through
//! a small buffer and hashed as it passes, never gathered.

use std::sync::Arc;
use std::time::Duration;

use sha2::{Digest, Sha256};
use tokio::io::{AsyncRead, AsyncWriteExt, ReadHalf, WriteHalf};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::clock::RunClock;
use crate::metrics::{ClientMeter, LinkMetrics, Meter, Window};
use crate::role::management::{LOGIN_REPLY_BYTES, OP_CHECK, OP_LOGIN, OP_STATUS, OP_TELEMETRY};
use crate::role::viewer::Endpoint;
use crate::role::RoleRuntime;
use crate::transport::{Connector, ReadAheadReader, Stream};
use crate::wire::{self, Header, Kind, WireError, MAX_PAYLOAD};

/// A call that starts within this much of its due time is timed from when it started:
/// the async timer wakes up to a millisecond late, and that is the harness's lateness,
/// not the system's. A call held up any longer is timed from when it was due.
const TIMER_SLOP_NS: u64 = 1_500_000;

/// What a client asks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Call {
    /// A status poll with a request of this many bytes, over one long-lived connection.
    Status {
        /// Request size, bytes.
        request_bytes: u32,
    },
    /// A telemetry message of this many bytes, over one long-lived connection.
    Telemetry {
        /// Message size, bytes.
        bytes: u32,
    },
    /// A client's session: call 0 logs in and downloads the configuration; every later
    /// call checks whether the configuration changed (a short request). Each call goes over
    /// a connection of its own (handshake included), as a polling client's does. With
    /// `refresh_every: Some(n)` every n-th call downloads the whole configuration again.
    Session {
        /// Download the configuration again every this many calls (`None`: only at login).
        refresh_every: Option<u32>,
    },
}

impl Call {
    /// Whether call `k` downloads the configuration.
    pub fn downloads(self, k: u64) -> bool {
        match self {
            Call::Session { refresh_every } => {
                k == 0 || refresh_every.is_some_and(|n| n > 0 && k.is_multiple_of(u64::from(n)))
            }
            _ => false,
        }
    }
}

/// How to build an RPC client.
#[derive(Clone, Debug)]
pub struct RpcConfig {
    /// The management server.
    pub server: Endpoint,
    /// Plaintext or TLS.
    pub connector: Connector,
    /// What to ask.
    pub call: Call,
    /// Time between calls.
    pub interval: Duration,
    /// Run-clock instant of call 0, before the phase.
    pub start_ns: u64,
    /// Offset of this client's schedule within an interval.
    pub phase_ns: u64,
    /// The expected SHA-256 of the configuration (logins check what arrived).
    pub config_digest: Option<[u8; 32]>,
    /// Where it records; `None` gives it a meter of its own.
    pub meter: Option<ClientMeter>,
}

impl RpcConfig {
    /// When call `k` is due.
    pub(crate) fn due_ns(&self, k: u64) -> u64 {
        self.start_ns + self.phase_ns + k * self.interval.as_nanos() as u64
    }

    /// How many calls fall due in `[from, to)`.
    pub fn calls_due(&self, from: u64, to: u64) -> u64 {
        calls_due(self.start_ns + self.phase_ns, self.interval, from, to)
    }
}

/// How many calls of a schedule whose first call is due at `first_ns`, one every
/// `interval`, fall due in `[from, to)`.
pub fn calls_due(first_ns: u64, interval: Duration, from: u64, to: u64) -> u64 {
    let step = (interval.as_nanos() as u64).max(1);
    let index = |t: u64| {
        if t <= first_ns {
            0
        } else {
            (t - first_ns).div_ceil(step)
        }
    };
    index(to).saturating_sub(index(from))
}

/// A running RPC client.
#[derive(Debug)]
pub struct RpcClient {
    meter: ClientMeter,
    cancel: CancellationToken,
    task: JoinHandle<()>,
}

impl RpcClient {
    /// Starts calling on `runtime`.
    pub fn start(
        runtime: &RoleRuntime,
        config: RpcConfig,
        clock: RunClock,
        window: Arc<Window>,
    ) -> RpcClient {
        let meter = config.meter.clone().unwrap_or_else(ClientMeter::alone);
        let cancel = CancellationToken::new();
        let caller = Caller {
            config,
            clock,
            window,
            meter: meter.clone(),
        };
        let task = runtime.spawn(caller.run(cancel.clone()));
        RpcClient {
            meter,
            cancel,
            task,
        }
    }

    /// What its meter measured so far (its whole group's, if the meter is shared).
    pub fn metrics(&self) -> LinkMetrics {
        self.meter.meter().snapshot()
    }

    /// The meter it records into.
    pub fn meter(&self) -> &Arc<Meter> {
        self.meter.meter()
    }

    /// Stops it and returns what its meter measured.
    pub async fn stop(self) -> LinkMetrics {
        let meter = self.meter.meter().clone();
        self.finish().await;
        meter.snapshot()
    }

    /// Stops it; what it measured is in its meter.
    pub async fn finish(self) {
        self.cancel.cancel();
        let _ = self.task.await;
    }
}

type Conn = (ReadAheadReader<ReadHalf<Stream>>, WriteHalf<Stream>);

struct Caller {
    config: RpcConfig,
    clock: RunClock,
    window: Arc<Window>,
    meter: ClientMeter,
}

impl Caller {
    fn record_error(&self, category: &str) {
        self.meter.record_error(category);
    }

    async fn run(self, cancel: CancellationToken) {
        let mut conn: Option<Conn> = None;
        // A session starts with its login, however late; other clients skip calls due
        // before they started.
        let first = match self.config.call {
            Call::Session { .. } => 0,
            _ => {
                self.meter.settle();
                self.config.calls_due(0, self.clock.now_ns())
            }
        };
        for k in first.. {
            let due = self.config.due_ns(k);
            tokio::select! {
                _ = cancel.cancelled() => break,
                _ = tokio::time::sleep_until(self.clock.instant_at(due).into()) => {}
            }
            let started = self.clock.now_ns();
            let scheduled = if started.saturating_sub(due) < TIMER_SLOP_NS {
                started
            } else {
                due
            };
            let call = self.call(&mut conn, k, scheduled);
            let result = tokio::select! {
                _ = cancel.cancelled() => break,
                r = call => r,
            };
            if let Err(category) = result {
                self.record_error(category);
                conn = None;
            }
            if k == 0 && matches!(self.config.call, Call::Session { .. }) {
                self.meter.settle();
            }
        }
        if let Some((_, mut wr)) = conn {
            let _ = tokio::time::timeout(super::CLOSE_TIMEOUT, async {
                let _ = wire::write_message(&mut wr, Header::new(Kind::Bye), &[]).await;
                let _ = wr.flush().await;
            })
            .await;
            super::close_gently(&mut wr).await;
        }
    }

    async fn connect(&self) -> Result<Conn, &'static str> {
        let server = &self.config.server;
        let connected = match self
            .config
            .connector
            .connect(server.addr, &server.host)
            .await
        {
            Ok(c) => c,
            Err(e) => return Err(e.category.as_str()),
        };
        self.meter.record_connection(
            false,
            connected.tcp_connect.as_nanos() as u64,
            connected
                .negotiated
                .as_ref()
                .map(|n| (connected.handshake.as_nanos() as u64, n)),
        );
        let (rd, wr) = tokio::io::split(connected.stream);
        Ok((ReadAheadReader::new(rd), wr))
    }

    /// One call. Errors are failure categories.
    async fn call(
        &self,
        conn: &mut Option<Conn>,
        k: u64,
        scheduled: u64,
    ) -> Result<(), &'static str> {
        let download = self.config.call.downloads(k);
        let (op, body) = match self.config.call {
            Call::Status { request_bytes } => (OP_STATUS, request_bytes),
            Call::Telemetry { bytes } => (OP_TELEMETRY, bytes),
            Call::Session { .. } if download => (OP_LOGIN, 64),
            Call::Session { .. } => (OP_CHECK, 64),
        };
        let session = matches!(self.config.call, Call::Session { .. });
        if session {
            *conn = None;
        }
        if conn.is_none() {
            *conn = Some(self.connect().await?);
        }
        let Some((rd, wr)) = conn.as_mut() else {
            return Err("connect");
        };
        let request = Header {
            stream_id: op,
            seq: k,
            scheduled_ns: scheduled,
            sent_ns: self.clock.now_ns(),
            ..Header::new(Kind::Request)
        };
        let sent = async {
            wire::write_message(wr, request, &REQUEST_FILL[..body as usize]).await?;
            wr.flush().await.map_err(WireError::Io)
        };
        sent.await.map_err(|_| "io")?;
        let (bytes, digest) = read_answer(rd, k).await.map_err(|e| match e {
            WireError::Io(_) | WireError::Truncated => "io",
            _ => "protocol",
        })?;
        let recv_ns = self.clock.now_ns();
        if let (true, Some(expected)) = (session, self.config.config_digest) {
            if digest != Some(expected) {
                return Err("checksum");
            }
        }
        // Configuration downloads are timed whenever they happen (logins come before the
        // window); calls count as frames when they were due inside it.
        if download {
            self.meter
                .record_transfer(recv_ns.saturating_sub(scheduled));
        }
        if self.window.contains(scheduled) {
            let interval = self.config.interval.as_nanos() as u64;
            // A call's payload is what crossed the link both ways: request and answer.
            let len = u32::try_from(bytes + u64::from(body)).unwrap_or(u32::MAX);
            self.meter
                .record_frame(len, scheduled, request.sent_ns, recv_ns, interval, None);
        }
        if session {
            if let Some((_, mut wr)) = conn.take() {
                super::close_gently(&mut wr).await;
            }
        }
        Ok(())
    }
}

/// The bytes of every request body (the largest request a client sends).
static REQUEST_FILL: [u8; 64 * 1024] = [0xa5; 64 * 1024];

/// Reads the answer to request `k`: chunks (a configuration) then a reply. Returns the
/// payload bytes received and, when the reply carries the configuration's size and
/// SHA-256, that digest if it matches what arrived (a download) or what the reply says (a
/// change check). Chunks are hashed as they pass through the reader's buffer.
pub(crate) async fn read_answer<R: AsyncRead + Unpin>(
    rd: &mut ReadAheadReader<R>,
    k: u64,
) -> Result<(u64, Option<[u8; 32]>), WireError> {
    let mut hasher = Sha256::new();
    let mut received = 0u64;
    loop {
        let Some(h) = wire::read_header(rd, MAX_PAYLOAD).await? else {
            return Err(WireError::Truncated);
        };
        if h.seq != k {
            return Err(WireError::Malformed {
                kind: h.kind,
                reason: "answer to another request",
            });
        }
        match h.kind {
            Kind::Chunk => {
                wire::read_through(rd, h.payload_len, |_, chunk| {
                    hasher.update(chunk);
                    Ok(())
                })
                .await?;
                received += u64::from(h.payload_len);
            }
            Kind::Reply => {
                let mut reply = [0u8; LOGIN_REPLY_BYTES];
                if h.payload_len as usize != LOGIN_REPLY_BYTES {
                    // A status or telemetry answer: its bytes are read and counted only.
                    wire::read_through(rd, h.payload_len, |_, _| Ok(())).await?;
                    return Ok((u64::from(h.payload_len), None));
                }
                tokio::io::AsyncReadExt::read_exact(rd, &mut reply)
                    .await
                    .map_err(|e| match e.kind() {
                        std::io::ErrorKind::UnexpectedEof => WireError::Truncated,
                        _ => WireError::Io(e),
                    })?;
                let mut digest = [0u8; 32];
                digest.copy_from_slice(&reply[8..]);
                let size = u64::from_be_bytes([
                    reply[0], reply[1], reply[2], reply[3], reply[4], reply[5], reply[6], reply[7],
                ]);
                if received == 0 {
                    // A change check: the version the server holds.
                    return Ok((LOGIN_REPLY_BYTES as u64, Some(digest)));
                }
                let computed: [u8; 32] = hasher.finalize().into();
                let whole = size == received && computed == digest;
                return Ok((received, whole.then_some(digest)));
            }
            _ => {
                return Err(WireError::Malformed {
                    kind: h.kind,
                    reason: "expected a chunk or a reply",
                })
            }
        }
    }
}
