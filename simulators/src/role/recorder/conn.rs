//! One client connection of a streaming server, written by whoever has a frame for it.
//!
//! The pacer (or a relay) offers a frame and, when nothing is waiting before it, writes it
//! to the socket at once on its own thread: no queue, no task to wake, no hand-off between
//! the frame falling due and its first byte leaving. Only when the socket has no room (or
//! the server is stalled) do frames wait in the connection's backlog, bounded by the queue
//! size, for its flusher task to write them once the socket drains. A full backlog drops
//! the frame, and the stream's frames until its next key frame, as before.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use super::{LinkCounters, Outgoing, Shared};
use crate::role::timeouts;
use crate::transport::{DirectIo, Sent};
use crate::wire::{Header, Kind, FLAG_KEYFRAME, FLAG_POOLED, HEADER_LEN};

/// A frame on its way: its header (made when its first byte is written) and payload.
#[derive(Debug)]
struct Pending {
    out: Outgoing,
    /// The encoded header, once writing has begun.
    header: Option<[u8; HEADER_LEN]>,
    /// Bytes already written (header first, then payload).
    written: usize,
    /// Whether it counts in the window.
    in_window: bool,
}

#[derive(Debug, Default)]
struct Backlog {
    frames: VecDeque<Pending>,
    /// A TLS session still holds records of frames already taken.
    unflushed: bool,
    /// Write passes that moved bytes towards the client: the flusher's sign of progress.
    progress: u64,
}

/// Why a frame could not be offered.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Refused {
    /// The backlog is full: the frame is dropped.
    Full,
    /// The connection has ended.
    Closed,
}

/// A client connection.
#[derive(Debug)]
pub(super) struct Conn {
    io: DirectIo,
    backlog: Mutex<Backlog>,
    /// Wakes the flusher when frames wait.
    wake: Notify,
    /// Cancelled when the connection ends.
    pub(super) ended: CancellationToken,
    /// Set when it has ended: what the writers check per frame (a token's check takes a
    /// lock).
    closed: AtomicBool,
    /// The failure category of the write that found the connection broken, if one did.
    broken: OnceLock<&'static str>,
    link: Arc<LinkCounters>,
}

/// What a write pass left behind.
enum Pass {
    /// Everything went out.
    Drained,
    /// The socket is full (or the server stalled): frames wait.
    Waiting,
}

impl Conn {
    pub(super) fn new(
        io: DirectIo,
        ended: CancellationToken,
        link: Arc<LinkCounters>,
    ) -> Arc<Conn> {
        Arc::new(Conn {
            io,
            backlog: Mutex::new(Backlog::default()),
            wake: Notify::new(),
            ended,
            closed: AtomicBool::new(false),
            broken: OnceLock::new(),
            link,
        })
    }

    /// Ends the connection because writing to it failed with `e`, remembering why.
    fn broke(&self, e: &std::io::Error) {
        let _ = self.broken.set(super::io_category(e));
        self.end();
    }

    /// The failure category of the write that found the connection broken, if one did.
    pub(super) fn broken(&self) -> Option<&'static str> {
        self.broken.get().copied()
    }

    /// Whether the connection has ended.
    pub(super) fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    /// Ends the connection: writers stop, the flusher and the reader return.
    pub(super) fn end(&self) {
        self.closed.store(true, Ordering::Release);
        self.ended.cancel();
    }

    /// Offers a frame: written now if nothing waits before it, else queued (or refused).
    pub(super) fn offer(
        &self,
        shared: &Shared,
        out: &Outgoing,
        in_window: bool,
    ) -> Result<(), Refused> {
        if self.is_closed() {
            return Err(Refused::Closed);
        }
        let Ok(mut b) = self.backlog.lock() else {
            return Err(Refused::Closed);
        };
        if b.frames.len() >= shared.queue_frames {
            return Err(Refused::Full);
        }
        let idle = b.frames.is_empty() && !b.unflushed;
        b.frames.push_back(Pending {
            out: out.clone(),
            header: None,
            written: 0,
            in_window,
        });
        if idle {
            match self.write_pass(shared, &mut b) {
                Ok(Pass::Drained) => return Ok(()),
                Ok(Pass::Waiting) => {}
                Err(e) => {
                    self.broke(&e);
                    return Err(Refused::Closed);
                }
            }
        }
        drop(b);
        self.wake.notify_one();
        Ok(())
    }

    /// Writes waiting frames until none is left or the socket is full.
    fn write_pass(&self, shared: &Shared, b: &mut Backlog) -> std::io::Result<Pass> {
        if shared.stall_until_ns.load(Ordering::Acquire) > shared.clock.now_ns() {
            return Ok(Pass::Waiting);
        }
        if b.unflushed {
            if !self.io.try_flush()? {
                return Ok(Pass::Waiting);
            }
            b.unflushed = false;
            b.progress += 1;
        }
        while let Some(p) = b.frames.front_mut() {
            let header = *p.header.get_or_insert_with(|| header_of(&p.out, shared));
            let total = HEADER_LEN + p.out.payload.len();
            let (head, body) = remaining(&header, &p.out.payload, p.written);
            let Sent { taken, flushed } = self.io.try_send(head, body)?;
            p.written += taken;
            if taken > 0 {
                b.progress += 1;
            }
            b.unflushed = !flushed;
            if p.written < total {
                return Ok(Pass::Waiting);
            }
            if let Some(p) = b.frames.pop_front() {
                sent(shared, &self.link, &p);
            }
            if b.unflushed {
                return Ok(Pass::Waiting);
            }
        }
        Ok(Pass::Drained)
    }

    /// The flusher: writes the backlog whenever frames wait, as the socket makes room,
    /// until the connection ends. A client that takes no byte for the server's
    /// `write_stall` timeout (the server's own stalls aside) is closed, counted as
    /// `stalled`.
    pub(super) async fn flush_loop(self: Arc<Self>, shared: Arc<Shared>) {
        let limit = shared.core.timeouts.write_stall;
        loop {
            tokio::select! {
                _ = self.ended.cancelled() => return,
                _ = self.wake.notified() => {}
            }
            let mut seen = None;
            let mut deadline = tokio::time::Instant::now() + limit;
            loop {
                let pass = match self.backlog.lock() {
                    Ok(mut b) => self
                        .write_pass(&shared, &mut b)
                        .map(|pass| (pass, b.progress)),
                    Err(_) => return,
                };
                let progress = match pass {
                    Ok((Pass::Drained, _)) => break,
                    Ok((Pass::Waiting, progress)) => progress,
                    Err(e) => {
                        self.broke(&e);
                        return;
                    }
                };
                let stall = shared.stall_until_ns.load(Ordering::Acquire);
                let stalled_here = stall > shared.clock.now_ns();
                if seen != Some(progress) || stalled_here {
                    seen = Some(progress);
                    deadline = tokio::time::Instant::now() + limit;
                }
                let room = async {
                    if stalled_here {
                        tokio::time::sleep_until(shared.clock.instant_at(stall).into()).await;
                        Ok(())
                    } else {
                        match tokio::time::timeout_at(deadline, self.io.writable()).await {
                            Ok(r) => r,
                            Err(_) => Err(std::io::Error::from(std::io::ErrorKind::TimedOut)),
                        }
                    }
                };
                tokio::select! {
                    _ = self.ended.cancelled() => return,
                    r = room => if let Err(e) = r {
                        if e.kind() == std::io::ErrorKind::TimedOut {
                            shared.core.fail(timeouts::STALLED);
                            self.end();
                        } else {
                            self.broke(&e);
                        }
                        return;
                    },
                }
            }
        }
    }

    /// Reads what the client sends after subscribing (it may only say goodbye) into `buf`.
    pub(super) async fn read(&self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.io.read(buf).await
    }

    /// Ends the connection: close_notify and the write shutdown, after whatever the socket
    /// still takes within `patience`.
    pub(super) async fn close(&self, patience: Duration) {
        self.end();
        let _ = tokio::time::timeout(patience, async {
            while !self.io.try_flush().unwrap_or(true) {
                if self.io.writable().await.is_err() {
                    break;
                }
            }
        })
        .await;
        self.io.close();
    }
}

/// The header of a frame, stamped with the moment its first byte is written.
fn header_of(out: &Outgoing, shared: &Shared) -> [u8; HEADER_LEN] {
    Header {
        kind: Kind::Frame,
        flags: FLAG_POOLED | if out.spec.keyframe { FLAG_KEYFRAME } else { 0 },
        stream_id: out.camera,
        seq: out.spec.seq,
        scheduled_ns: out.spec.due_ns,
        sent_ns: shared.clock.now_ns(),
        payload_len: u32::try_from(out.payload.len()).unwrap_or(u32::MAX),
        pool_offset: u32::try_from(out.spec.offset).unwrap_or(u32::MAX),
    }
    .encode()
}

/// What is left of a message after `written` bytes: of the header, then of the payload.
fn remaining<'a>(header: &'a [u8], payload: &'a Bytes, written: usize) -> (&'a [u8], &'a [u8]) {
    if written < header.len() {
        (&header[written..], payload)
    } else {
        (&[], &payload[written - header.len()..])
    }
}

/// Counts a frame whose last byte has been handed over, and burns the configured CPU cost.
fn sent(shared: &Shared, link: &LinkCounters, p: &Pending) {
    let cost = shared.cpu_per_frame_ns.load(Ordering::Relaxed);
    if cost > 0 {
        super::super::spin_thread_cpu(Duration::from_nanos(cost));
    }
    if p.in_window {
        link.sent.frames_sent.fetch_add(1, Ordering::Relaxed);
        link.sent
            .bytes_sent
            .fetch_add(p.out.payload.len() as u64, Ordering::Relaxed);
    }
}
