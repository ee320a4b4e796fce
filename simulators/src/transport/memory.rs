//! A TLS client and server connected in memory: rustls connections built from the
//! deployment's configurations, bytes moved between them with `write_tls`/`read_tls`. No
//! socket, so that time and instruction counts measure the record layer alone (the benches
//! and `vmsbench limits` drive it).

use std::io::{IoSlice, Read, Write};
use std::sync::Arc;

use rustls::{ClientConfig, ClientConnection, ConnectionCommon, ServerConfig, ServerConnection};
use rustls_pki_types::ServerName;

use crate::wire::{Header, WireError, HEADER_LEN, MAX_PAYLOAD};

/// Why an in-memory pair could not connect or carry a frame.
#[derive(Debug, thiserror::Error)]
pub enum MemoryError {
    /// rustls refused something during the handshake or a transfer.
    #[error("TLS: {0}")]
    Tls(#[from] rustls::Error),
    /// Moving bytes failed.
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
    /// What was decrypted is not a frame.
    #[error("wire: {0}")]
    Wire(#[from] WireError),
    /// The server name is not one, or the handshake did not finish.
    #[error("{0}")]
    Setup(String),
}

/// Moves everything `from` has to send into `to`, processing it as it arrives. Returns the
/// number of bytes moved. `buf` is scratch space.
fn transfer<A, B>(
    from: &mut ConnectionCommon<A>,
    to: &mut ConnectionCommon<B>,
    buf: &mut Vec<u8>,
) -> Result<usize, MemoryError> {
    buf.clear();
    while from.wants_write() {
        from.write_tls(buf)?;
    }
    let mut rd = &buf[..];
    while !rd.is_empty() {
        to.read_tls(&mut rd)?;
        to.process_new_packets()?;
    }
    Ok(buf.len())
}

/// A connected client and server, each with its own state, and the bytes between them
/// held in memory.
#[derive(Debug)]
pub struct TlsPair {
    /// The client side (the viewer in the deployment).
    pub client: ClientConnection,
    /// The server side (the recording server).
    pub server: ServerConnection,
    scratch: Vec<u8>,
}

impl TlsPair {
    /// New connections from `client` and `server` (which presents a certificate for
    /// `host`), handshaken: both sides complete and every post-handshake message (session
    /// tickets) delivered.
    pub fn connect(
        client: Arc<ClientConfig>,
        server: Arc<ServerConfig>,
        host: &str,
    ) -> Result<Self, MemoryError> {
        let name = ServerName::try_from(host.to_owned())
            .map_err(|e| MemoryError::Setup(format!("{host:?}: {e}")))?;
        let mut client = ClientConnection::new(client, name)?;
        // No limit on buffered records: a 4K I-frame is more than rustls's default 64 KiB,
        // and a whole frame is written before its records are collected.
        client.set_buffer_limit(None);
        let server = ServerConnection::new(server)?;
        let mut pair = TlsPair {
            client,
            server,
            scratch: Vec::with_capacity(16 * 1024),
        };
        pair.handshake()?;
        Ok(pair)
    }

    /// Moves bytes both ways until neither side has anything left to say.
    fn handshake(&mut self) -> Result<(), MemoryError> {
        // A TLS 1.3 handshake takes 2 flights each way plus tickets; 16 rounds is plenty,
        // and a bound keeps a broken configuration from spinning forever.
        for _ in 0..16 {
            let moved = transfer(&mut self.client, &mut self.server, &mut self.scratch)?
                + transfer(&mut self.server, &mut self.client, &mut self.scratch)?;
            if moved == 0 && !self.client.is_handshaking() && !self.server.is_handshaking() {
                return Ok(());
            }
        }
        Err(MemoryError::Setup(
            "the in-memory handshake did not finish in 16 rounds".into(),
        ))
    }

    /// Whether the client resumed a session rather than doing a full handshake.
    pub fn resumed(&self) -> bool {
        matches!(
            self.client.handshake_kind(),
            Some(rustls::HandshakeKind::Resumed)
        )
    }

    /// The rustls name of the negotiated suite (`TLS13_AES_256_GCM_SHA384`, …).
    pub fn suite_name(&self) -> Option<String> {
        self.client
            .negotiated_cipher_suite()
            .map(|s| format!("{:?}", s.suite()))
    }

    /// The TLS send path of one frame (played by the client here): header and payload
    /// written as one plaintext (as the link's write buffer coalesces them), sealed into
    /// records, and the records copied into `out` (what TLS hands to the socket).
    pub fn send(
        &mut self,
        header: &Header,
        payload: &[u8],
        out: &mut Vec<u8>,
    ) -> Result<(), MemoryError> {
        let head = header.encode();
        let total = HEADER_LEN + payload.len();
        let mut writer = self.client.writer();
        let written = writer.write_vectored(&[IoSlice::new(&head), IoSlice::new(payload)])?;
        if written < HEADER_LEN {
            writer.write_all(&head[written..])?;
            writer.write_all(payload)?;
        } else if written < total {
            writer.write_all(&payload[written - HEADER_LEN..])?;
        }
        out.clear();
        while self.client.wants_write() {
            self.client.write_tls(out)?;
        }
        Ok(())
    }

    /// The TLS receive path of one frame: the records in `wire` read and opened, the
    /// header decoded, the payload copied out of rustls into `out`.
    pub fn recv(&mut self, wire: &[u8], out: &mut Vec<u8>) -> Result<Header, MemoryError> {
        let mut rd = wire;
        let mut head = [0u8; HEADER_LEN];
        let mut head_filled = 0;
        let mut header: Option<Header> = None;
        let mut filled = 0;
        out.clear();
        loop {
            // Drain what is decrypted so far.
            loop {
                let buf: &mut [u8] = match &header {
                    None => &mut head[head_filled..],
                    Some(h) if filled < h.payload_len as usize => &mut out[filled..],
                    Some(h) => return Ok(*h),
                };
                match self.server.reader().read(buf) {
                    Ok(0) => return Err(MemoryError::Wire(WireError::Truncated)),
                    Ok(n) if header.is_none() => {
                        head_filled += n;
                        if head_filled == HEADER_LEN {
                            let h = Header::decode(&head, MAX_PAYLOAD)?;
                            out.resize(h.payload_len as usize, 0);
                            header = Some(h);
                        }
                    }
                    Ok(n) => filled += n,
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                    Err(e) => return Err(e.into()),
                }
            }
            if rd.is_empty() {
                return Err(MemoryError::Wire(WireError::Truncated));
            }
            self.server.read_tls(&mut rd)?;
            self.server.process_new_packets()?;
        }
    }
}
