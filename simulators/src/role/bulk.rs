//! The link-ceiling sender: frames as fast as a connection can carry them, no pacing.
//!
//! What iperf3 measures for raw TCP, measured here through the project's own transport and
//! codec, so that plaintext and TLS ceilings are comparable with the paced video runs. A
//! client subscribes exactly as a viewer does (any camera list); every frame is then stamped
//! with the moment it is written as both its scheduled and its sent time.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};

use tokio::io::{BufReader, BufWriter};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::clock::RunClock;
use crate::metrics::{SenderCounters, SenderSnapshot, Window};
use crate::role::recorder::SUBSCRIBE_TIMEOUT;
use crate::role::RoleRuntime;
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
    failures: Mutex<BTreeMap<String, u64>>,
    cancel: CancellationToken,
    tasks: TaskTracker,
}

impl Shared {
    fn fail(&self, category: &str) {
        if let Ok(mut f) = self.failures.lock() {
            *f.entry(category.to_owned()).or_default() += 1;
        }
    }
}

/// A running bulk sender.
#[derive(Debug)]
pub struct BulkSender {
    addr: SocketAddr,
    shared: Arc<Shared>,
}

impl BulkSender {
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
            pool: PayloadPool::new(frame_size as u64, 0xb01c),
            counters: SenderCounters::default(),
            failures: Mutex::new(BTreeMap::new()),
            cancel: CancellationToken::new(),
            tasks: TaskTracker::new(),
        });
        let s = shared.clone();
        shared
            .tasks
            .spawn_on(accept_loop(s, listener), &runtime.handle());
        Ok(BulkSender { addr, shared })
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// What it sent (and failed) so far.
    pub fn stats(&self) -> (SenderSnapshot, BTreeMap<String, u64>) {
        let failures = self
            .shared
            .failures
            .lock()
            .map(|f| f.clone())
            .unwrap_or_default();
        (self.shared.counters.snapshot(), failures)
    }

    /// Stops every task and waits for them.
    pub async fn stop(self) {
        self.shared.cancel.cancel();
        self.shared.tasks.close();
        self.shared.tasks.wait().await;
    }
}

async fn accept_loop(shared: Arc<Shared>, listener: Listener) {
    loop {
        let incoming = tokio::select! {
            _ = shared.cancel.cancelled() => return,
            r = listener.accept() => r,
        };
        match incoming {
            Ok(i) => {
                let s = shared.clone();
                shared.tasks.spawn(serve(s, i));
            }
            Err(_) => {
                // Accept errors (e.g. out of file descriptors) must not end the sender
                // nor make it spin.
                shared.fail("accept");
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
            }
        }
    }
}

async fn serve(shared: Arc<Shared>, incoming: Incoming) {
    let accepted = tokio::select! {
        _ = shared.cancel.cancelled() => return,
        r = incoming.handshake() => r,
    };
    let accepted = match accepted {
        Ok(a) => a,
        Err(e) => return shared.fail(e.category.as_str()),
    };
    let (rd, wr) = tokio::io::split(accepted.stream);
    let mut rd = BufReader::new(rd);
    let mut wr = BufWriter::with_capacity(WRITE_BUFFER, wr);
    let first = tokio::select! {
        _ = shared.cancel.cancelled() => return,
        r = tokio::time::timeout(SUBSCRIBE_TIMEOUT, wire::read_header(&mut rd, 64 * 1024)) => r,
    };
    let Ok(first) = first else {
        return shared.fail("timeout");
    };
    match first {
        Ok(Some(h)) if h.kind == Kind::Subscribe => {
            let mut buf = Vec::new();
            if wire::read_payload(&mut rd, &h, &mut buf).await.is_err() {
                return shared.fail("io");
            }
        }
        Ok(None) => return,
        _ => return shared.fail("protocol"),
    }
    let conn = shared.cancel.child_token();
    let watcher = conn.clone();
    shared.tasks.spawn(async move {
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
            shared.fail(match e {
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
            flags: wire::FLAG_KEYFRAME,
            stream_id: 0,
            seq,
            scheduled_ns: now,
            sent_ns: now,
            payload_len: 0,
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
