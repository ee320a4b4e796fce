//! The management server: the hub every other server registers with, and where clients
//! log in and download their configuration.
//!
//! One request/response protocol over the wire codec serves every link to it. A request
//! (`Kind::Request`) names its operation in the header's stream-id field:
//! - status (1): a registered server's status or configuration poll; answered with a
//!   `Kind::Reply` of the configured size;
//! - telemetry (3): a data collector's monitoring message; answered with a short ack;
//! - login (2): a client's login; answered with the configuration as `Kind::Chunk`
//!   messages, then a `Kind::Reply` carrying its size (u64) and SHA-256 (32 bytes), so the
//!   client can check that it arrived whole;
//! - change check (4): a logged-in client asking whether its configuration changed;
//!   answered with a short `Kind::Reply` carrying the configuration's size and SHA-256.
//!
//! The configuration is made once and every download streams slices of it: no connection
//! keeps a buffer of its own.
//!
//! Replies echo the request's sequence number and scheduled time.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use sha2::{Digest, Sha256};
use tokio::io::{AsyncWriteExt, BufReader};

use crate::role::timeouts::{self, ServerTimeouts, StallGuard};
use crate::role::{RoleRuntime, ServerCore};
use crate::transport::{Incoming, Listener};
use crate::wire::{self, Header, Kind, WireError};

/// Status or configuration poll of a registered server.
pub const OP_STATUS: u32 = 1;
/// Client login followed by the configuration download.
pub const OP_LOGIN: u32 = 2;
/// Monitoring telemetry from a data collector.
pub(crate) const OP_TELEMETRY: u32 = 3;
/// A logged-in client's check for configuration changes.
pub(crate) const OP_CHECK: u32 = 4;
/// Largest request accepted.
pub const MAX_REQUEST: u32 = 256 * 1024;
/// Size of one configuration chunk.
const CHUNK_BYTES: usize = 64 * 1024;
/// Read buffer of a connection: requests are small.
const REQUEST_BUFFER: usize = 1024;
/// Size of a login reply (and of a change check's): the configuration's length and
/// SHA-256.
pub(crate) const LOGIN_REPLY_BYTES: usize = 8 + 32;
/// Size of a telemetry acknowledgement.
const ACK_BYTES: usize = 16;

/// How to build a management server.
#[derive(Clone, Debug)]
pub struct ManagementConfig {
    /// Size of the configuration clients download, bytes.
    pub config_bytes: u64,
    /// Size of a status reply, bytes.
    pub status_reply_bytes: u32,
    /// Seed of the configuration's content.
    pub seed: u64,
    /// How long it waits on each client: for its TLS handshake, its first request, each
    /// later request (`idle`: sessions poll, so the default is long) and a reply the
    /// client does not read (`write_stall`).
    pub timeouts: ServerTimeouts,
}

#[derive(Debug)]
struct Shared {
    config: Bytes,
    digest: [u8; 32],
    status_reply: Bytes,
    accepted: AtomicU64,
    requests: AtomicU64,
    downloads: AtomicU64,
    core: ServerCore,
}

/// What the management server has counted.
#[derive(Clone, Debug, Default)]
pub struct ManagementStats {
    /// Connections whose handshake completed.
    pub connections: u64,
    /// Requests answered.
    pub requests: u64,
    /// Configuration downloads served.
    pub downloads: u64,
    /// Failed connections by category.
    pub failures: BTreeMap<String, u64>,
}

/// A running management server.
#[derive(Debug)]
pub struct ManagementServer {
    addrs: Vec<SocketAddr>,
    shared: Arc<Shared>,
}

/// The configuration bytes a server with `config` hands out, and their SHA-256.
pub fn configuration(config: &ManagementConfig) -> (Bytes, [u8; 32]) {
    let mut v = vec![0u8; usize::try_from(config.config_bytes).unwrap_or(usize::MAX)];
    fastrand::Rng::with_seed(config.seed ^ 0xc0f1).fill(&mut v);
    let digest: [u8; 32] = Sha256::digest(&v).into();
    (Bytes::from(v), digest)
}

impl ManagementServer {
    /// Starts serving every listener on `runtime` (registration, client and collector
    /// ports alike: the protocol is the same).
    pub fn start(
        runtime: &RoleRuntime,
        listeners: Vec<Listener>,
        config: &ManagementConfig,
    ) -> std::io::Result<ManagementServer> {
        let addrs = listeners
            .iter()
            .map(Listener::local_addr)
            .collect::<std::io::Result<Vec<_>>>()?;
        let (blob, digest) = configuration(config);
        let shared = Arc::new(Shared {
            config: blob,
            digest,
            status_reply: Bytes::from(vec![0x5a; config.status_reply_bytes as usize]),
            accepted: AtomicU64::new(0),
            requests: AtomicU64::new(0),
            downloads: AtomicU64::new(0),
            core: ServerCore::new(config.timeouts),
        });
        let handle = runtime.handle();
        for listener in listeners {
            ServerCore::spawn_accepting(&shared, listener, &handle, serve);
        }
        Ok(ManagementServer { addrs, shared })
    }

    /// The addresses of its listeners, in the order given.
    pub fn addrs(&self) -> &[SocketAddr] {
        &self.addrs
    }

    /// Client connections open now, from the TCP accept until the server lets go of them.
    pub fn open_connections(&self) -> usize {
        self.shared.core.open_connections()
    }

    /// The SHA-256 of the configuration it hands out.
    pub fn config_digest(&self) -> [u8; 32] {
        self.shared.digest
    }

    /// A copy of its counters.
    pub fn stats(&self) -> ManagementStats {
        let s = &self.shared;
        ManagementStats {
            connections: s.accepted.load(Ordering::Relaxed),
            requests: s.requests.load(Ordering::Relaxed),
            downloads: s.downloads.load(Ordering::Relaxed),
            failures: s.core.failures(),
        }
    }

    /// Stops every task and waits for them.
    pub async fn stop(self) {
        self.shared.core.stop().await;
    }
}

impl Drop for ManagementServer {
    fn drop(&mut self) {
        self.shared.core.cancel.cancel();
    }
}

impl AsRef<ServerCore> for Shared {
    fn as_ref(&self) -> &ServerCore {
        &self.core
    }
}

impl Shared {
    /// The configuration's version: its size and SHA-256.
    fn version(&self) -> [u8; LOGIN_REPLY_BYTES] {
        let mut v = [0u8; LOGIN_REPLY_BYTES];
        v[..8].copy_from_slice(&(self.config.len() as u64).to_be_bytes());
        v[8..].copy_from_slice(&self.digest);
        v
    }
}

async fn serve(shared: Arc<Shared>, incoming: Incoming) {
    let Some(accepted) = shared.core.handshake(incoming).await else {
        return;
    };
    shared.accepted.fetch_add(1, Ordering::Relaxed);
    let (rd, wr) = tokio::io::split(accepted.stream);
    let mut rd = BufReader::with_capacity(REQUEST_BUFFER, rd);
    let timeouts = shared.core.timeouts;
    let mut wr = StallGuard::new(wr, timeouts.write_stall);
    let mut payload = Vec::new();
    let mut wait = timeouts.first_request;
    loop {
        let request = async {
            let Some(h) = wire::read_header(&mut rd, MAX_REQUEST).await? else {
                return Ok(None);
            };
            wire::read_payload(&mut rd, &h, &mut payload).await?;
            Ok::<_, WireError>(Some(h))
        };
        let request = tokio::select! {
            _ = shared.core.cancel.cancelled() => break,
            r = tokio::time::timeout(wait, request) => r,
        };
        let h = match request {
            Ok(Ok(Some(h))) => h,
            Ok(Ok(None)) => break,
            Ok(Err(WireError::Io(_) | WireError::Truncated)) => {
                shared.core.fail("io");
                break;
            }
            Ok(Err(_)) => {
                shared.core.fail("protocol");
                break;
            }
            Err(_) => {
                shared.core.fail(timeouts::TIMEOUT);
                break;
            }
        };
        wait = timeouts.idle;
        let answered = match (h.kind, h.stream_id) {
            (Kind::Bye, _) => break,
            (Kind::Request, OP_STATUS) => reply(&mut wr, &h, &shared.status_reply).await,
            (Kind::Request, OP_TELEMETRY) => reply(&mut wr, &h, &[0u8; ACK_BYTES]).await,
            (Kind::Request, OP_LOGIN) => send_configuration(&shared, &mut wr, &h).await,
            (Kind::Request, OP_CHECK) => reply(&mut wr, &h, &shared.version()).await,
            _ => {
                shared.core.fail("protocol");
                let reason = format!("unexpected {:?} with operation {}", h.kind, h.stream_id);
                let _ =
                    wire::write_message(&mut wr, Header::new(Kind::Error), reason.as_bytes()).await;
                let _ = wr.flush().await;
                break;
            }
        };
        match answered {
            Ok(()) => {
                shared.requests.fetch_add(1, Ordering::Relaxed);
            }
            Err(WireError::Io(e)) if StallGuard::<()>::is_stall(&e) => {
                shared.core.fail(timeouts::STALLED);
                break;
            }
            Err(_) => {
                shared.core.fail("io");
                break;
            }
        }
    }
    super::close_gently(&mut wr).await;
}

fn answer(request: &Header, kind: Kind) -> Header {
    Header {
        kind,
        stream_id: request.stream_id,
        seq: request.seq,
        scheduled_ns: request.scheduled_ns,
        sent_ns: request.sent_ns,
        ..Header::new(kind)
    }
}

async fn reply<W: tokio::io::AsyncWrite + Unpin>(
    wr: &mut W,
    request: &Header,
    payload: &[u8],
) -> Result<(), WireError> {
    wire::write_message(wr, answer(request, Kind::Reply), payload).await?;
    wr.flush().await?;
    Ok(())
}

async fn send_configuration<W: tokio::io::AsyncWrite + Unpin>(
    shared: &Shared,
    wr: &mut W,
    request: &Header,
) -> Result<(), WireError> {
    for chunk in shared.config.chunks(CHUNK_BYTES) {
        wire::write_message(wr, answer(request, Kind::Chunk), chunk).await?;
    }
    reply(wr, request, &shared.version()).await?;
    shared.downloads.fetch_add(1, Ordering::Relaxed);
    Ok(())
}
