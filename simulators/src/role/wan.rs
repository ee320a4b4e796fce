//! A wide-area link between a remote site and the central site: a TCP relay on loopback
//! that delays every byte by a fixed one-way delay in each direction.
//!
//! Only latency is modelled (no bandwidth cap, no loss): it is what makes a TLS handshake
//! cost round trips. Bytes keep their order; TLS runs end to end through it.

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use bytes::Bytes;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::role::RoleRuntime;

/// Chunks in flight per direction before the reading side waits.
const IN_FLIGHT_CHUNKS: usize = 256;

/// A running WAN link.
#[derive(Debug)]
pub struct WanLink {
    addr: SocketAddr,
    cancel: CancellationToken,
    tasks: TaskTracker,
}

impl WanLink {
    /// Listens on 127.0.0.1 (a port the system chooses) and relays every connection to
    /// `upstream`, delaying each direction by `one_way`.
    pub async fn start(
        runtime: &RoleRuntime,
        upstream: SocketAddr,
        one_way: Duration,
    ) -> std::io::Result<WanLink> {
        let bind = runtime.spawn(TcpListener::bind(SocketAddr::from((
            Ipv4Addr::LOCALHOST,
            0,
        ))));
        let listener = bind.await.map_err(std::io::Error::other)??;
        let addr = listener.local_addr()?;
        let cancel = CancellationToken::new();
        let tasks = TaskTracker::new();
        let (c, t) = (cancel.clone(), tasks.clone());
        tasks.spawn_on(
            async move {
                loop {
                    let accepted = tokio::select! {
                        _ = c.cancelled() => return,
                        r = listener.accept() => r,
                    };
                    let Ok((down, _)) = accepted else {
                        tokio::time::sleep(Duration::from_millis(10)).await;
                        continue;
                    };
                    let c2 = c.clone();
                    t.spawn(async move {
                        if let Ok(up) = TcpStream::connect(upstream).await {
                            relay(down, up, one_way, c2).await;
                        }
                    });
                }
            },
            &runtime.handle(),
        );
        Ok(WanLink {
            addr,
            cancel,
            tasks,
        })
    }

    /// Where the remote site dials.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops relaying and waits for the relay tasks.
    pub async fn stop(self) {
        self.cancel.cancel();
        self.tasks.close();
        self.tasks.wait().await;
    }
}

impl Drop for WanLink {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

async fn relay(down: TcpStream, up: TcpStream, delay: Duration, cancel: CancellationToken) {
    let _ = (down.set_nodelay(true), up.set_nodelay(true));
    let (down_rd, down_wr) = down.into_split();
    let (up_rd, up_wr) = up.into_split();
    let conn = cancel.child_token();
    tokio::join!(
        pump(down_rd, up_wr, delay, conn.clone()),
        pump(up_rd, down_wr, delay, conn.clone()),
    );
}

/// Copies one direction, each chunk delivered `delay` after it was read.
async fn pump<R, W>(mut rd: R, mut wr: W, delay: Duration, conn: CancellationToken)
where
    R: tokio::io::AsyncRead + Unpin,
    W: tokio::io::AsyncWrite + Unpin,
{
    let (tx, mut rx) = mpsc::channel::<(Instant, Bytes)>(IN_FLIGHT_CHUNKS);
    let reader = async {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            match rd.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    let due = Instant::now() + delay;
                    if tx
                        .send((due, Bytes::copy_from_slice(&buf[..n])))
                        .await
                        .is_err()
                    {
                        break;
                    }
                }
            }
        }
        drop(tx);
    };
    let writer = async {
        while let Some((due, chunk)) = rx.recv().await {
            tokio::time::sleep_until(due).await;
            if wr.write_all(&chunk).await.is_err() {
                break;
            }
        }
        let _ = wr.shutdown().await;
    };
    tokio::select! {
        _ = conn.cancelled() => {}
        _ = async { tokio::join!(reader, writer) } => {}
    }
    conn.cancel();
}
