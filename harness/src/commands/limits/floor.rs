//! The latency floor of an idle link: one frame at a time over an established loopback
//! connection, the server writing on its runtime and the client reading on its own (other
//! threads, as in a run), each frame sent only once the previous one was acknowledged. The
//! latency is the client's last byte read less the server's write start; both ends are in
//! this process, so one clock serves both.

use std::time::{Duration, Instant};

use anyhow::Context as _;
use hdrhistogram::Histogram;
use simulators::metrics::{latency_histogram, ns_to_us, RecordUs};
use simulators::pki::Pki;
use simulators::role::RoleRuntime;
use simulators::transport::{Connector, Mode, Stream, TlsSettings};
use simulators::video::PayloadPool;
use simulators::wire::{Header, Kind, HEADER_LEN, MAX_PAYLOAD};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio_util::sync::CancellationToken;

use super::SERVER_HOST;
use crate::commands::handshakes::cell::bind_loopback;
use crate::report::limits::LatencyFloor;
use crate::report::{Percentiles, TlsInfo};

/// Frames sent before the ones timed.
const WARMUP_FRAMES: u64 = 20;

/// Frames timed at least, whatever the budget.
const MIN_FRAMES: u64 = 20;

/// The server's side: one frame, then wait for the client's acknowledgement, until the
/// budget is spent (or `stop`); returns the frames sent.
async fn send_frames(
    mut stream: Stream,
    frame_bytes: usize,
    epoch: Instant,
    budget: Duration,
    stop: CancellationToken,
) -> std::io::Result<u64> {
    let pool = PayloadPool::new(frame_bytes as u64, 1);
    let mut header = Header::new(Kind::Frame);
    header.payload_len = u32::try_from(frame_bytes)
        .unwrap_or(MAX_PAYLOAD)
        .min(MAX_PAYLOAD);
    let mut buf = vec![0u8; HEADER_LEN];
    buf.extend_from_slice(&pool.slice(0, header.payload_len as usize));
    let mut ack = [0u8; 1];
    let mut end = None;
    let mut sent = 0u64;
    while !stop.is_cancelled() {
        if sent == WARMUP_FRAMES {
            end = Some(Instant::now() + budget);
        }
        if sent >= WARMUP_FRAMES + MIN_FRAMES && end.is_some_and(|e| Instant::now() >= e) {
            break;
        }
        header.seq = sent;
        header.sent_ns = u64::try_from(epoch.elapsed().as_nanos()).unwrap_or(u64::MAX);
        buf[..HEADER_LEN].copy_from_slice(&header.encode());
        stream.write_all(&buf).await?;
        stream.flush().await?;
        stream.read_exact(&mut ack).await?;
        sent += 1;
    }
    stream.shutdown().await?;
    Ok(sent)
}

/// The client's side: read each frame whole, record its latency (after the warm-up),
/// acknowledge it; until the server closes.
async fn receive_frames(mut stream: Stream, epoch: Instant) -> std::io::Result<Histogram<u64>> {
    let mut latency = latency_histogram();
    let mut head = [0u8; HEADER_LEN];
    let mut payload = Vec::new();
    loop {
        match stream.read_exact(&mut head).await {
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(latency),
            Err(e) => return Err(e),
        }
        let h = Header::decode(&head, MAX_PAYLOAD).map_err(std::io::Error::other)?;
        payload.resize(h.payload_len as usize, 0);
        stream.read_exact(&mut payload).await?;
        let now = u64::try_from(epoch.elapsed().as_nanos()).unwrap_or(u64::MAX);
        if h.seq >= WARMUP_FRAMES {
            latency.record_us(ns_to_us(now.saturating_sub(h.sent_ns)));
        }
        stream.write_all(&[1]).await?;
        stream.flush().await?;
    }
}

/// Measures the floor in plaintext (`pki` None) or over TLS with the deployment's default
/// settings.
pub(super) async fn measure(
    pki: Option<&Pki>,
    frame_bytes: usize,
    budget: Duration,
    server: &RoleRuntime,
    clients: &RoleRuntime,
    interrupt: &CancellationToken,
) -> anyhow::Result<LatencyFloor> {
    let tls = TlsSettings::default();
    let (server_config, connector) = match pki {
        Some(pki) => (
            Some(pki.server_config(SERVER_HOST, &tls)?),
            Connector::tls(pki.client_config(&tls)?),
        ),
        None => (None, Connector::plain()),
    };
    let mode = if pki.is_some() {
        Mode::Tls
    } else {
        Mode::Plain
    };
    let (listener, addr) = bind_loopback(server, server_config).await?;
    let epoch = Instant::now();
    let stop = interrupt.child_token();
    let sender_stop = stop.clone();
    let sender = server.spawn(async move {
        let incoming = tokio::select! {
            _ = sender_stop.cancelled() => anyhow::bail!("stopped before the client connected"),
            r = listener.accept() => r?,
        };
        let accepted = incoming.handshake().await?;
        send_frames(accepted.stream, frame_bytes, epoch, budget, sender_stop)
            .await
            .map_err(anyhow::Error::from)
    });
    let receiver = clients.spawn(async move {
        let connected = connector.connect(addr, SERVER_HOST).await?;
        let negotiated = connected.negotiated.as_ref().map(TlsInfo::from);
        let latency = receive_frames(connected.stream, epoch).await?;
        Ok::<_, anyhow::Error>((latency, negotiated))
    });
    let received = receiver.await.context("the client task failed");
    if received.as_ref().map_or(true, |r| r.is_err()) {
        stop.cancel();
    }
    let sent = sender.await.context("the server task failed")?;
    let (latency, negotiated) = received??;
    sent.context("sending frames")?;
    let frames = latency.len();
    if frames == 0 {
        anyhow::bail!("no frame was timed");
    }
    Ok(LatencyFloor {
        mode,
        frame_bytes: frame_bytes as u64,
        frames,
        latency_us: Percentiles::of(&latency),
        tls: negotiated,
        method: format!(
            "one {frame_bytes} B frame (plus its 40 B header) at a time over one loopback \
             connection, the next sent once the client acknowledged the last (1 byte); \
             server write start → client's last byte read, µs, server and client on \
             runtimes of their own; {WARMUP_FRAMES} frames untimed first"
        ),
    })
}
