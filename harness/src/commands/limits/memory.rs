//! Memory per idle TLS connection: N connections opened over loopback with the deployment's
//! default TLS settings, both ends in this process and each end parked in a read as the
//! deployment's connections wait; resident memory with them open, less before, over N.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use simulators::pki::{KeyType, Pki};
use simulators::role::RoleRuntime;
use simulators::transport::{Connector, Stream, TlsSettings};
use tokio::io::AsyncReadExt as _;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::SERVER_HOST;
use crate::commands::handshakes::cell::bind_loopback;
use crate::report::limits::IdleMemory;
use crate::sys::{allocator, process};

/// How long the server may take to finish the handshakes the clients completed.
const SETTLE_TIMEOUT: Duration = Duration::from_secs(10);

/// File descriptors kept free for everything else.
const SPARE_FDS: u64 = 64;

/// Reads until the peer closes or `stop`: how an idle connection of the deployment waits.
async fn park(mut stream: Stream, stop: CancellationToken) {
    let mut buf = [0u8; 64];
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            r = stream.read(&mut buf) => match r {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            },
        }
    }
}

/// Opens up to `wanted` idle connections (fewer if the descriptor limit is lower) and
/// measures; `None` where resident memory cannot be read.
pub(super) async fn measure(
    pki: &Pki,
    key: KeyType,
    wanted: usize,
    server: &RoleRuntime,
    clients: &RoleRuntime,
) -> anyhow::Result<Option<IdleMemory>> {
    let tls = TlsSettings::default();
    let server_config = pki.server_config(SERVER_HOST, &tls)?;
    let connector = Connector::tls(pki.client_config(&tls)?);
    let soft = process::raise_fd_limit().map_or(1024, |(soft, _)| soft);
    let n = (wanted as u64)
        .min(soft.saturating_sub(SPARE_FDS) / 2)
        .max(1);

    let (listener, addr) = bind_loopback(server, Some(server_config)).await?;
    let stop = CancellationToken::new();
    let tasks = TaskTracker::new();
    let accepted = Arc::new(AtomicU64::new(0));
    let (accept_stop, accept_tasks, accept_count) = (stop.clone(), tasks.clone(), accepted.clone());
    let server_handle = server.handle();
    tasks.spawn_on(
        async move {
            loop {
                let incoming = tokio::select! {
                    _ = accept_stop.cancelled() => return,
                    r = listener.accept() => r,
                };
                let Ok(incoming) = incoming else {
                    // E.g. out of descriptors: the clients' connects fail and say so.
                    tokio::time::sleep(Duration::from_millis(1)).await;
                    continue;
                };
                let (stop, count) = (accept_stop.clone(), accept_count.clone());
                accept_tasks.spawn(async move {
                    if let Ok(a) = incoming.handshake().await {
                        count.fetch_add(1, Ordering::Relaxed);
                        park(a.stream, stop).await;
                    }
                });
            }
        },
        &server_handle,
    );

    let result = open_and_count(&connector, addr, n, clients, &accepted, &stop, &tasks).await;
    stop.cancel();
    tasks.close();
    let _ = tokio::time::timeout(SETTLE_TIMEOUT, tasks.wait()).await;
    let Some((before, after)) = result? else {
        return Ok(None);
    };
    Ok(Some(IdleMemory {
        connections: n,
        key,
        rss_before_bytes: before,
        rss_after_bytes: after,
        bytes_per_connection: after.saturating_sub(before) as f64 / n as f64,
        allocator: allocator::NAME.to_owned(),
        method: format!(
            "{n} TLS connections to 127.0.0.1 (TLS 1.3, the deployment's default settings, a \
             {key} certificate), both ends in this process, each end waiting in a read; \
             resident memory (VmRSS) with them open less before, freed memory handed back to \
             the allocator's system first both times, over {n}"
        ),
    }))
}

/// One unmeasured connection (one-time costs), the baseline, `n` connections, the reading
/// with them open: `(before, after)` bytes, `None` if RSS is unreadable.
async fn open_and_count(
    connector: &Connector,
    addr: SocketAddr,
    n: u64,
    clients: &RoleRuntime,
    accepted: &AtomicU64,
    stop: &CancellationToken,
    tasks: &TaskTracker,
) -> anyhow::Result<Option<(u64, u64)>> {
    let connect = |c: Connector| async move { c.connect(addr, SERVER_HOST).await };
    let first = clients
        .spawn(connect(connector.clone()))
        .await
        .context("the client runtime stopped")??;
    drop(first.stream);
    allocator::release_free_memory();
    let Ok(before) = process::rss_bytes() else {
        return Ok(None);
    };
    for _ in 0..n {
        let c = clients
            .spawn(connect(connector.clone()))
            .await
            .context("the client runtime stopped")??;
        tasks.spawn_on(park(c.stream, stop.clone()), &clients.handle());
    }
    let deadline = Instant::now() + SETTLE_TIMEOUT;
    while accepted.load(Ordering::Relaxed) < n + 1 {
        if Instant::now() > deadline {
            anyhow::bail!(
                "the server completed {} of {} handshakes",
                accepted.load(Ordering::Relaxed),
                n + 1
            );
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    allocator::release_free_memory();
    let Ok(after) = process::rss_bytes() else {
        return Ok(None);
    };
    Ok(Some((before, after)))
}
