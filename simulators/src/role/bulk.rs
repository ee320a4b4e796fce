//! The link-ceiling sender: frames as fast as a connection can carry them, no pacing.
//!
//! What iperf3 measures for raw TCP, measured here through the project's own transport and
//! codec, so that plaintext and TLS ceilings are comparable with the paced video runs. A
//! client subscribes exactly as a viewer does (any camera list); every frame is then stamped
//! with the moment it is written as both its scheduled and its sent time.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use tokio::io::{BufReader, BufWriter};

use crate::clock::RunClock;
use crate::metrics::{SenderCounters, SenderSnapshot, Window};
use crate::role::timeouts::FIRST_REQUEST_TIMEOUT;
use crate::role::{RoleRuntime, ServerCore};
use crate::transport::{Incoming, Listener};
use crate::video::PayloadPool;
use crate::wire::{self, Header, Kind, WireError};

/// Size of the send buffer in front of the transport: frames and their headers are
/// coalesced into writes of up to this size.
pub const WRITE_BUFFER: usize = 256 * 1024;

#[derive(Debug)]
struct Shared {
    clock: RunClock,
    window: Arc<Window>,
    frame_size: usize,
    pool: PayloadPool,
    counters: SenderCounters,
    core: ServerCore,
}

impl AsRef<ServerCore> for Shared {
    fn as_ref(&self) -> &ServerCore {
        &self.core
    }
}

/// A running bulk sender.
#[derive(Debug)]
pub struct BulkSender {
    addr: SocketAddr,
    shared: Arc<Shared>,
}

impl BulkSender {
    /// Seed of the sender's payload: a receiver in another process makes the same pool
    /// (`PayloadPool::new(frame_size, POOL_SEED)`) to check what arrives.
    pub const POOL_SEED: u64 = 0xb01c;

    /// Starts accepting on `listener`; every connection receives `frame_size`-byte frames
    /// back to back until it closes or the sender stops.
    pub fn start(
        runtime: &RoleRuntime,
        listener: Listener,
        frame_size: usize,
        clock: RunClock,
        window: Arc<Window>,
    ) -> std::io::Result<BulkSender> {
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            clock,
            window,
            frame_size,
            pool: PayloadPool::new(frame_size as u64, Self::POOL_SEED),
            counters: SenderCounters::default(),
            core: ServerCore::default(),
        });
        ServerCore::spawn_accepting(&shared, listener, &runtime.handle(), serve);
        Ok(BulkSender { addr, shared })
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The pool its payloads come from (receivers check them against it).
    pub fn pool(&self) -> PayloadPool {
        self.shared.pool.clone()
    }

    /// What it sent (and failed) so far.
    pub fn stats(&self) -> (SenderSnapshot, BTreeMap<String, u64>) {
        (self.shared.counters.snapshot(), self.shared.core.failures())
    }

    /// Stops every task and waits for them.
    pub async fn stop(self) {
        self.shared.core.stop().await;
    }
}

async fn serve(shared: Arc<Shared>, incoming: Incoming) {
    let Some(accepted) = shared.core.handshake(incoming).await else {
        return;
    };
    let (rd, wr) = tokio::io::split(accepted.stream);
    let mut rd = BufReader::new(rd);
    let mut wr = BufWriter::with_capacity(WRITE_BUFFER, wr);
    let first = tokio::select! {
        _ = shared.core.cancel.cancelled() => return,
        r = tokio::time::timeout(FIRST_REQUEST_TIMEOUT, wire::read_header(&mut rd, 64 * 1024)) => r,
    };
    let Ok(first) = first else {
        return shared.core.fail("timeout");
    };
    match first {
        Ok(Some(h)) if h.kind == Kind::Subscribe => {
            let mut buf = Vec::new();
            if wire::read_payload(&mut rd, &h, &mut buf).await.is_err() {
                return shared.core.fail("io");
            }
        }
        Ok(None) => return,
        _ => return shared.core.fail("protocol"),
    }
    let conn = shared.core.cancel.child_token();
    let watcher = conn.clone();
    shared.core.tasks.spawn(async move {
        // Any message or EOF from the client ends the stream.
        tokio::select! {
            _ = watcher.cancelled() => {}
            _ = wire::read_header(&mut rd, 64 * 1024) => watcher.cancel(),
        }
    });
    let result = tokio::select! {
        _ = conn.cancelled() => Ok(()),
        r = send_forever(&shared, &mut wr) => r,
    };
    if let Err(e) = result {
        if !conn.is_cancelled() {
            shared.core.fail(match e {
                WireError::Io(_) => "io",
                _ => "protocol",
            });
        }
    }
    conn.cancel();
    super::close_gently(&mut wr).await;
}

async fn send_forever<W: tokio::io::AsyncWrite + Unpin>(
    shared: &Shared,
    wr: &mut W,
) -> Result<(), WireError> {
    let payload = shared.pool.slice(0, shared.frame_size);
    for seq in 0u64.. {
        let now = shared.clock.now_ns();
        let header = Header {
            kind: Kind::Frame,
            flags: wire::FLAG_KEYFRAME | wire::FLAG_POOLED,
            stream_id: 0,
            seq,
            scheduled_ns: now,
            sent_ns: now,
            payload_len: 0,
            pool_offset: 0,
        };
        wire::write_message(wr, header, &payload).await?;
        if shared.window.contains(now) {
            shared.counters.frames_sent.fetch_add(1, Ordering::Relaxed);
            shared
                .counters
                .bytes_sent
                .fetch_add(payload.len() as u64, Ordering::Relaxed);
        }
    }
    Ok(())
}
