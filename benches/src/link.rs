//! One real loopback link, plaintext or TLS, through the project's own transport
//! ([`Listener`], [`Connector`]) and codec ([`wire`]): a sender on a [`RoleRuntime`] of its
//! own (as the recording server has) writes a burst of frames through a write buffer of
//! the bulk sender's size whenever the client asks for one; the client reads them back
//! through a buffered reader, as a viewer does. Leaner than `Recorder` + `Viewer` (no pacing,
//! no metrics), so a burst measures delivery alone.

use std::net::{Ipv4Addr, SocketAddr};

use bytes::Bytes;
use simulators::role::bulk::WRITE_BUFFER;
use simulators::role::RoleRuntime;
use simulators::transport::{Connector, Listener, Stream};
use simulators::wire::{self, Header, Kind, MAX_PAYLOAD};
use tokio::io::{AsyncWriteExt, BufReader, BufWriter};

use crate::frames::{frame_header, payload};
use crate::tls::{Endpoints, BENCH_HOST};
use crate::BenchError;

/// A connected loopback link with its sender running.
#[derive(Debug)]
pub struct Loopback {
    // Field order is drop order: the client's stream and runtime go before the sender's.
    stream: BufReader<Stream>,
    client: tokio::runtime::Runtime,
    _sender: RoleRuntime,
    frame_bytes: usize,
    frames: u32,
    buf: Vec<u8>,
}

impl Loopback {
    /// Starts a sender of `frame_bytes`-byte frames (TLS when `tls` is given) on
    /// 127.0.0.1 and connects to it.
    pub fn start(
        tls: Option<&Endpoints>,
        frame_bytes: usize,
        frames: u32,
    ) -> Result<Loopback, BenchError> {
        let sender = RoleRuntime::new("bench-sender", 1)?;
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, 0));
        let server_tls = tls.map(|e| e.server.clone());
        let listener = sender.handle().block_on(Listener::bind(addr, server_tls))?;
        let addr = listener.local_addr()?;
        let frame = payload(frame_bytes);
        sender.spawn(serve(listener, frame));
        let client = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let connector = match tls {
            Some(e) => Connector::tls(e.client.clone()),
            None => Connector::plain(),
        };
        let connected = client.block_on(connector.connect(addr, BENCH_HOST))?;
        Ok(Loopback {
            stream: BufReader::new(connected.stream),
            client,
            _sender: sender,
            frame_bytes,
            frames,
            buf: Vec::with_capacity(frame_bytes),
        })
    }

    /// Payload bytes one [`Loopback::burst`] delivers.
    pub fn burst_bytes(&self) -> u64 {
        self.frame_bytes as u64 * u64::from(self.frames)
    }

    /// Asks for a burst and reads every frame of it; returns the payload bytes received.
    pub fn burst(&mut self) -> Result<u64, BenchError> {
        let Loopback {
            stream,
            client,
            frames,
            buf,
            ..
        } = self;
        client.block_on(async {
            let request = Header::new(Kind::Request);
            wire::write_message(stream, request, &frames.to_be_bytes()).await?;
            stream.flush().await?;
            let mut received = 0u64;
            for _ in 0..*frames {
                let Some(h) = wire::read_header(stream, MAX_PAYLOAD).await? else {
                    return Err(BenchError::Wire(wire::WireError::Truncated));
                };
                wire::read_payload(stream, &h, buf).await?;
                received += buf.len() as u64;
            }
            Ok(received)
        })
    }
}

/// The sender: accepts one connection, then answers each request (a big-endian `u32`
/// frame count) with that many frames.
async fn serve(listener: Listener, frame: Bytes) {
    let Ok(incoming) = listener.accept().await else {
        return;
    };
    let Ok(accepted) = incoming.handshake().await else {
        return;
    };
    let mut s = BufWriter::with_capacity(WRITE_BUFFER, accepted.stream);
    let mut request = Vec::new();
    let mut seq = 0u64;
    while let Ok(Some(h)) = wire::read_header(&mut s, 64).await {
        if wire::read_payload(&mut s, &h, &mut request).await.is_err() {
            return;
        }
        let count = match request.as_slice() {
            [a, b, c, d] => u32::from_be_bytes([*a, *b, *c, *d]),
            _ => return,
        };
        for _ in 0..count {
            let Ok(header) = frame_header(seq, frame.len()) else {
                return;
            };
            seq += 1;
            if wire::write_message(&mut s, header, &frame).await.is_err() {
                return;
            }
        }
        if s.flush().await.is_err() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tls::{bench_pki, Suite};
    use simulators::pki::KeyType;

    #[test]
    fn bursts_arrive_whole_in_both_modes() {
        let pki = bench_pki(KeyType::EcdsaP256).expect("pki");
        let e = Endpoints::new(&pki, &Suite::Tls13Aes256Gcm.settings()).expect("endpoints");
        for tls in [None, Some(&e)] {
            let mut link = Loopback::start(tls, 146_341, 4).expect("link");
            for _ in 0..3 {
                assert_eq!(link.burst().expect("burst"), link.burst_bytes());
            }
        }
    }
}
