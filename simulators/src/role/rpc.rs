//! Clients of the management server: registered servers polling status, data collectors
//! sending telemetry, viewers and integrations logging in and downloading their
//! configuration.
//!
//! Calls are due on a fixed schedule (`start + phase + k·interval`). A call's latency runs
//! from the moment it was due to the last byte of its answer, so a slow server delays the
//! next calls and shows in their latency (coordinated omission corrected). Each call is
//! counted as one "frame" of its link, whose payload is the request's and the answer's
//! bytes together; a login's frame carries the whole configuration.

use std::sync::Arc;
use std::time::Duration;

use sha2::{Digest, Sha256};
use tokio::io::{AsyncWriteExt, BufReader, ReadHalf, WriteHalf};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::clock::RunClock;
use crate::metrics::{ClientMeter, LinkMetrics, Meter, Window};
use crate::role::management::{LOGIN_REPLY_BYTES, OP_LOGIN, OP_STATUS, OP_TELEMETRY};
use crate::role::viewer::Endpoint;
use crate::role::RoleRuntime;
use crate::transport::{Connector, Stream};
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
    /// A login and configuration download, each over a new connection (handshake
    /// included), as a client does when an operator logs in.
    Login,
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

type Conn = (BufReader<ReadHalf<Stream>>, WriteHalf<Stream>);

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
        let first = self.config.calls_due(0, self.clock.now_ns());
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
        Ok((BufReader::with_capacity(64 * 1024, rd), wr))
    }

    /// One call. Errors are failure categories.
    async fn call(
        &self,
        conn: &mut Option<Conn>,
        k: u64,
        scheduled: u64,
    ) -> Result<(), &'static str> {
        let (op, body) = match self.config.call {
            Call::Status { request_bytes } => (OP_STATUS, request_bytes),
            Call::Telemetry { bytes } => (OP_TELEMETRY, bytes),
            Call::Login => (OP_LOGIN, 64),
        };
        if self.config.call == Call::Login {
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
            wire::write_message(wr, request, &vec![0xa5; body as usize]).await?;
            wr.flush().await.map_err(WireError::Io)
        };
        sent.await.map_err(|_| "io")?;
        let (bytes, digest) = read_answer(rd, k).await.map_err(|e| match e {
            WireError::Io(_) | WireError::Truncated => "io",
            _ => "protocol",
        })?;
        let recv_ns = self.clock.now_ns();
        if let (Call::Login, Some(expected)) = (self.config.call, self.config.config_digest) {
            if digest != Some(expected) {
                return Err("checksum");
            }
        }
        if self.window.contains(scheduled) {
            let interval = self.config.interval.as_nanos() as u64;
            // A call's payload is what crossed the link both ways: request and answer.
            let len = u32::try_from(bytes + u64::from(body)).unwrap_or(u32::MAX);
            self.meter
                .record_frame(len, scheduled, request.sent_ns, recv_ns, interval);
            if self.config.call == Call::Login {
                self.meter.record_transfer(recv_ns - scheduled);
            }
        }
        if self.config.call == Call::Login {
            if let Some((_, mut wr)) = conn.take() {
                super::close_gently(&mut wr).await;
            }
        }
        Ok(())
    }
}

/// Reads the answer to request `k`: chunks (a configuration) then a reply. Returns the
/// payload bytes received and, for a configuration, its SHA-256 if the size and digest in
/// the reply match what arrived.
async fn read_answer<R: tokio::io::AsyncRead + Unpin>(
    rd: &mut R,
    k: u64,
) -> Result<(u64, Option<[u8; 32]>), WireError> {
    let mut buf = Vec::new();
    let mut hasher = Sha256::new();
    let mut received = 0u64;
    loop {
        let Some(h) = wire::read_header(rd, MAX_PAYLOAD).await? else {
            return Err(WireError::Truncated);
        };
        wire::read_payload(rd, &h, &mut buf).await?;
        if h.seq != k {
            return Err(WireError::Malformed {
                kind: h.kind,
                reason: "answer to another request",
            });
        }
        match h.kind {
            Kind::Chunk => {
                hasher.update(&buf);
                received += buf.len() as u64;
            }
            Kind::Reply if received == 0 => return Ok((buf.len() as u64, None)),
            Kind::Reply if buf.len() == LOGIN_REPLY_BYTES => {
                let mut size = [0u8; 8];
                size.copy_from_slice(&buf[..8]);
                let digest: [u8; 32] = hasher.finalize().into();
                let whole = u64::from_be_bytes(size) == received && buf[8..] == digest;
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
