//! Entry points for the fuzz targets in `fuzz/`: each runs the crate's decoders on
//! untrusted bytes, the way a role reads them from a peer. Not part of the supported API.

use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll, Waker};

use crate::transport::ReadAheadReader;
use crate::wire::{self, Header, Subscribe, HEADER_LEN, MAX_PAYLOAD};

/// Polls `f` once and returns its output if it is ready. Reads from a byte slice never
/// wait, so a future that only reads from one is ready on its first poll.
pub fn ready<F: Future>(f: F) -> Option<F::Output> {
    let mut f = pin!(f);
    match f.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(out) => Some(out),
        Poll::Pending => None,
    }
}

/// The largest request a server accepts (the recording and management servers' limit).
const MAX_REQUEST: u32 = 256 * 1024;

/// Decodes `bytes` as a header and as a subscribe payload, then as a stream of messages
/// read the way servers read requests and the way clients read frames and answers.
///
/// Panics when a decoded header or subscription does not encode back to what was decoded:
/// a decoder that accepts what the encoder would write differently.
pub fn wire_bytes(bytes: &[u8]) {
    if let Some(head) = bytes.first_chunk::<HEADER_LEN>() {
        if let Ok(h) = Header::decode(head, MAX_PAYLOAD) {
            assert_eq!(&h.encode(), head, "a decoded header encodes differently");
        }
    }
    if let Ok(s) = Subscribe::decode(bytes) {
        let again = Subscribe::decode(&s.encode()).ok();
        assert_eq!(
            again.as_ref(),
            Some(&s),
            "a subscription does not round-trip"
        );
    }

    // A server: whole requests, payloads read into a reused buffer.
    let _ = ready(async {
        let mut rd = bytes;
        let mut payload = Vec::new();
        while let Ok(Some(h)) = wire::read_header(&mut rd, MAX_REQUEST).await {
            if wire::read_payload(&mut rd, &h, &mut payload).await.is_err() {
                break;
            }
            if h.kind == wire::Kind::Subscribe {
                let _ = Subscribe::decode(&payload);
            }
        }
    });

    // A client: frames read through a read-ahead buffer, nothing kept.
    let _ = ready(async {
        let mut rd = ReadAheadReader::new(bytes);
        while let Ok(Some(h)) = wire::read_header(&mut rd, MAX_PAYLOAD).await {
            let mut seen = 0usize;
            let read = wire::read_through(&mut rd, h.payload_len, |at, piece| {
                assert_eq!(at, seen, "read_through skipped or repeated bytes");
                seen += piece.len();
                Ok(())
            })
            .await;
            if read.is_err() {
                break;
            }
            assert_eq!(seen, h.payload_len as usize);
        }
    });

    // A management client: the answer to its first request (chunks, then a reply).
    let _ = ready(async {
        let mut rd = ReadAheadReader::new(bytes);
        let _ = crate::role::rpc::read_answer(&mut rd, 0).await;
    });
}
