//! The wire format every link speaks: a fixed 44-byte header, then the payload.
//!
//! ```text
//! offset size field
//!      0    4 magic "VMSB"
//!      4    1 version (2)
//!      5    1 kind (see [`Kind`])
//!      6    2 flags (bit 0: key frame; bit 1: the payload comes from the payload pool)
//!      8    4 stream id (camera id for video)
//!     12    8 sequence number
//!     20    8 scheduled time, ns on the run clock (when the frame was due)
//!     28    8 sent time, ns on the run clock (when the sender started writing it)
//!     36    4 payload length (at most [`MAX_PAYLOAD`] unless a smaller limit is given)
//!     40    4 pool offset: where a pooled payload starts in the sender's payload pool
//! ```
//!
//! A pooled payload is a slice of the deployment's payload pool, which every role builds
//! alike from the seed: a receiver checks it byte for byte against its own copy without
//! keeping it, and a relay forwards it by reference.
//! All integers are big-endian. Requests (subscribe, …) use the same framing with their own
//! kinds. Decoding never panics and checks a length before anything is allocated for it.

use std::io;

use tokio::io::{
    AsyncBufRead, AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt,
};

/// The four bytes every message starts with.
pub const MAGIC: [u8; 4] = *b"VMSB";
/// The protocol version this build speaks.
pub const VERSION: u8 = 2;
/// Size of the fixed header in bytes.
pub const HEADER_LEN: usize = 44;
/// The largest payload accepted: 16 MiB, well above a 4K MJPEG key frame (≈1 MiB) and
/// the size of one configuration-download chunk.
pub const MAX_PAYLOAD: u32 = 16 * 1024 * 1024;
/// The most cameras one subscribe request may name.
const MAX_SUBSCRIBE_CAMERAS: usize = 4096;

/// Header flag: the frame is a key (I) frame.
pub const FLAG_KEYFRAME: u16 = 1;
/// Header flag: the payload is the slice of the payload pool at the header's pool offset.
pub const FLAG_POOLED: u16 = 2;

/// What a message is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Kind {
    /// A video frame (recorder → client).
    Frame = 1,
    /// A subscription to live or playback streams (client → recorder).
    Subscribe = 2,
    /// The peer is going away cleanly.
    Bye = 3,
    /// The peer refused a request; the payload is a UTF-8 reason.
    Error = 4,
    /// A request/response RPC (registration, config pull, status).
    Request = 5,
    /// The reply to a [`Kind::Request`].
    Reply = 6,
    /// A chunk of a bulk download (configuration).
    Chunk = 7,
    /// An event or alarm notification.
    Event = 8,
}

impl Kind {
    fn from_u8(v: u8) -> Option<Kind> {
        Some(match v {
            1 => Kind::Frame,
            2 => Kind::Subscribe,
            3 => Kind::Bye,
            4 => Kind::Error,
            5 => Kind::Request,
            6 => Kind::Reply,
            7 => Kind::Chunk,
            8 => Kind::Event,
            _ => return None,
        })
    }
}

/// Why bytes could not be decoded.
#[derive(Debug, thiserror::Error)]
pub enum WireError {
    /// The first four bytes were not [`MAGIC`]: the peer does not speak this protocol
    /// (or speaks TLS to a plaintext port, or the reverse).
    #[error("bad magic {0:02x?}: the peer does not speak the vmsbench protocol")]
    BadMagic([u8; 4]),
    /// A version this build does not speak.
    #[error("unsupported protocol version {0} (this build speaks {VERSION})")]
    UnsupportedVersion(u8),
    /// An unknown message kind.
    #[error("unknown message kind {0}")]
    UnknownKind(u8),
    /// A payload longer than allowed.
    #[error("payload of {len} bytes exceeds the maximum of {max}")]
    TooLong {
        /// The length the header claimed.
        len: u32,
        /// The limit in force.
        max: u32,
    },
    /// A payload whose content does not match its kind.
    #[error("malformed {kind:?} payload: {reason}")]
    Malformed {
        /// The message kind.
        kind: Kind,
        /// What was wrong.
        reason: &'static str,
    },
    /// A pooled payload that differs from the pool: the bytes were damaged on the way.
    #[error("the payload of frame {seq} of stream {stream_id} differs from what was sent")]
    Corrupt {
        /// The stream.
        stream_id: u32,
        /// The frame.
        seq: u64,
    },
    /// The connection ended in the middle of a message.
    #[error("connection closed in the middle of a message")]
    Truncated,
    /// Reading or writing the socket failed.
    #[error("i/o: {0}")]
    Io(#[from] io::Error),
}

/// A decoded message header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header {
    /// What the message is.
    pub kind: Kind,
    /// Flag bits ([`FLAG_KEYFRAME`]).
    pub flags: u16,
    /// Stream (camera) id.
    pub stream_id: u32,
    /// Sequence number within the stream.
    pub seq: u64,
    /// When the frame was due, ns on the run clock.
    pub scheduled_ns: u64,
    /// When the sender started writing it, ns on the run clock.
    pub sent_ns: u64,
    /// Payload length in bytes.
    pub payload_len: u32,
    /// Where a pooled payload ([`FLAG_POOLED`]) starts in the payload pool.
    pub pool_offset: u32,
}

impl Header {
    /// A header of `kind` with every other field zero.
    pub fn new(kind: Kind) -> Self {
        Header {
            kind,
            flags: 0,
            stream_id: 0,
            seq: 0,
            scheduled_ns: 0,
            sent_ns: 0,
            payload_len: 0,
            pool_offset: 0,
        }
    }

    /// Whether the key-frame flag is set.
    pub fn is_keyframe(&self) -> bool {
        self.flags & FLAG_KEYFRAME != 0
    }

    /// Where the payload starts in the payload pool, if it is a pooled payload.
    pub fn pooled_at(&self) -> Option<usize> {
        (self.flags & FLAG_POOLED != 0).then_some(self.pool_offset as usize)
    }

    /// The header's bytes.
    pub fn encode(&self) -> [u8; HEADER_LEN] {
        let mut b = [0u8; HEADER_LEN];
        b[0..4].copy_from_slice(&MAGIC);
        b[4] = VERSION;
        b[5] = self.kind as u8;
        b[6..8].copy_from_slice(&self.flags.to_be_bytes());
        b[8..12].copy_from_slice(&self.stream_id.to_be_bytes());
        b[12..20].copy_from_slice(&self.seq.to_be_bytes());
        b[20..28].copy_from_slice(&self.scheduled_ns.to_be_bytes());
        b[28..36].copy_from_slice(&self.sent_ns.to_be_bytes());
        b[36..40].copy_from_slice(&self.payload_len.to_be_bytes());
        b[40..44].copy_from_slice(&self.pool_offset.to_be_bytes());
        b
    }

    /// Decodes a header, refusing payloads longer than `max_payload`.
    pub fn decode(b: &[u8; HEADER_LEN], max_payload: u32) -> Result<Header, WireError> {
        let magic = [b[0], b[1], b[2], b[3]];
        if magic != MAGIC {
            return Err(WireError::BadMagic(magic));
        }
        if b[4] != VERSION {
            return Err(WireError::UnsupportedVersion(b[4]));
        }
        let kind = Kind::from_u8(b[5]).ok_or(WireError::UnknownKind(b[5]))?;
        let u16_at = |i: usize| u16::from_be_bytes([b[i], b[i + 1]]);
        let u32_at = |i: usize| u32::from_be_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
        let u64_at = |i: usize| (u64::from(u32_at(i)) << 32) | u64::from(u32_at(i + 4));
        let payload_len = u32_at(36);
        if payload_len > max_payload {
            return Err(WireError::TooLong {
                len: payload_len,
                max: max_payload,
            });
        }
        Ok(Header {
            kind,
            flags: u16_at(6),
            stream_id: u32_at(8),
            seq: u64_at(12),
            scheduled_ns: u64_at(20),
            sent_ns: u64_at(28),
            payload_len,
            pool_offset: u32_at(40),
        })
    }
}

/// Reads one header. `Ok(None)` means the peer closed the connection cleanly between
/// messages; a close inside the header is [`WireError::Truncated`].
pub async fn read_header<R: AsyncRead + Unpin>(
    r: &mut R,
    max_payload: u32,
) -> Result<Option<Header>, WireError> {
    let mut b = [0u8; HEADER_LEN];
    let mut filled = 0;
    while filled < HEADER_LEN {
        let n = r.read(&mut b[filled..]).await?;
        if n == 0 {
            return if filled == 0 {
                Ok(None)
            } else {
                Err(WireError::Truncated)
            };
        }
        filled += n;
    }
    Header::decode(&b, max_payload).map(Some)
}

/// Reads the payload announced by `header` into `buf`, which is reused across calls and
/// grows only to lengths the header check already allowed. Beyond the room `buf` already
/// has, it grows as bytes arrive, never to a length the peer only claims: a peer that
/// announces the largest payload and sends nothing costs no memory.
pub async fn read_payload<R: AsyncRead + Unpin>(
    r: &mut R,
    header: &Header,
    buf: &mut Vec<u8>,
) -> Result<(), WireError> {
    let len = header.payload_len as usize;
    if len <= buf.capacity() {
        buf.resize(len, 0);
        r.read_exact(buf).await.map_err(|e| match e.kind() {
            io::ErrorKind::UnexpectedEof => WireError::Truncated,
            _ => WireError::Io(e),
        })?;
    } else {
        buf.clear();
        r.take(len as u64).read_to_end(buf).await?;
        if buf.len() < len {
            return Err(WireError::Truncated);
        }
    }
    Ok(())
}

/// Reads `len` payload bytes through the reader's own buffer, handing each piece and its
/// offset in the payload to `each`, keeping nothing: no copy, no allocation.
pub async fn read_through<R: AsyncBufRead + Unpin>(
    rd: &mut R,
    len: u32,
    mut each: impl FnMut(usize, &[u8]) -> Result<(), WireError>,
) -> Result<(), WireError> {
    let len = len as usize;
    let mut at = 0;
    while at < len {
        let chunk = rd.fill_buf().await?;
        if chunk.is_empty() {
            return Err(WireError::Truncated);
        }
        let n = chunk.len().min(len - at);
        each(at, &chunk[..n])?;
        rd.consume(n);
        at += n;
    }
    Ok(())
}

/// Writes a whole message (header with `payload_len` set from `payload`). Does not flush.
pub async fn write_message<W: AsyncWrite + Unpin>(
    w: &mut W,
    mut header: Header,
    payload: &[u8],
) -> Result<(), WireError> {
    header.payload_len = u32::try_from(payload.len())
        .ok()
        .filter(|l| *l <= MAX_PAYLOAD)
        .ok_or(WireError::TooLong {
            len: u32::MAX,
            max: MAX_PAYLOAD,
        })?;
    write_all_vectored(w, &header.encode(), payload).await?;
    Ok(())
}

/// Writes `head` then `body` with vectored writes: one system call (or one pass through
/// TLS) for both where the writer takes them together, never a copy into a buffer of ours.
pub async fn write_all_vectored<W: AsyncWrite + Unpin>(
    w: &mut W,
    mut head: &[u8],
    mut body: &[u8],
) -> io::Result<()> {
    while !head.is_empty() || !body.is_empty() {
        let n = if head.is_empty() {
            w.write(body).await?
        } else {
            let bufs = [io::IoSlice::new(head), io::IoSlice::new(body)];
            w.write_vectored(&bufs).await?
        };
        if n == 0 {
            return Err(io::ErrorKind::WriteZero.into());
        }
        let from_head = n.min(head.len());
        head = &head[from_head..];
        body = &body[n - from_head..];
    }
    Ok(())
}

/// The longest client label a subscribe request may carry.
const MAX_LABEL: usize = 64;

/// What a client asks a recording server for: a set of cameras, live or played back.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Subscribe {
    /// Camera ids.
    pub cameras: Vec<u32>,
    /// Playback speed multiplier; `None` for live video.
    pub playback_speed: Option<u8>,
    /// What kind of client this is (a link id such as `viewer-recorder`), so that the
    /// server can count per link. Empty when unlabelled.
    pub label: String,
}

impl Subscribe {
    /// Payload bytes: `u8 mode (0 live, 1 playback)`, `u8 speed`, `u16 count`,
    /// `count × u32`, then optionally `u8 len` and a UTF-8 label of `len` bytes.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(5 + 4 * self.cameras.len() + self.label.len());
        out.push(u8::from(self.playback_speed.is_some()));
        out.push(self.playback_speed.unwrap_or(1));
        let count = self.cameras.len().min(MAX_SUBSCRIBE_CAMERAS);
        out.extend_from_slice(&(count as u16).to_be_bytes());
        for id in &self.cameras[..count] {
            out.extend_from_slice(&id.to_be_bytes());
        }
        if !self.label.is_empty() {
            let mut end = self.label.len().min(MAX_LABEL);
            while !self.label.is_char_boundary(end) {
                end -= 1;
            }
            out.push(end as u8);
            out.extend_from_slice(&self.label.as_bytes()[..end]);
        }
        out
    }

    /// Decodes a subscribe payload.
    pub fn decode(p: &[u8]) -> Result<Self, WireError> {
        let bad = |reason| WireError::Malformed {
            kind: Kind::Subscribe,
            reason,
        };
        let [mode, speed, c0, c1, rest @ ..] = p else {
            return Err(bad("shorter than 4 bytes"));
        };
        let count = usize::from(u16::from_be_bytes([*c0, *c1]));
        if count > MAX_SUBSCRIBE_CAMERAS {
            return Err(bad("too many cameras"));
        }
        if rest.len() < count * 4 {
            return Err(bad("camera list shorter than its count"));
        }
        let (ids, tail) = rest.split_at(count * 4);
        let label = match tail {
            [] => String::new(),
            [len, text @ ..] if usize::from(*len) == text.len() && text.len() <= MAX_LABEL => {
                String::from_utf8(text.to_vec()).map_err(|_| bad("label is not UTF-8"))?
            }
            _ => return Err(bad("trailing bytes after the camera list")),
        };
        let playback_speed = match (mode, speed) {
            (0, _) => None,
            (1, 1..=64) => Some(*speed),
            (1, _) => return Err(bad("playback speed must be 1..=64")),
            _ => return Err(bad("mode must be 0 (live) or 1 (playback)")),
        };
        let cameras = ids
            .chunks_exact(4)
            .map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]))
            .collect();
        Ok(Subscribe {
            cameras,
            playback_speed,
            label,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Header {
        Header {
            kind: Kind::Frame,
            flags: FLAG_KEYFRAME,
            stream_id: 7,
            seq: 1 << 40,
            scheduled_ns: 123_456_789_012,
            sent_ns: 123_456_799_999,
            payload_len: 98_765,
            pool_offset: 4_000_001,
        }
    }

    #[test]
    fn header_round_trips() {
        let h = sample();
        assert_eq!(Header::decode(&h.encode(), MAX_PAYLOAD).ok(), Some(h));
        assert!(h.is_keyframe());
    }

    #[test]
    fn bad_magic_version_kind_and_length_are_typed_errors() {
        let good = sample().encode();
        let mut b = good;
        b[0] = b'X';
        assert!(matches!(
            Header::decode(&b, MAX_PAYLOAD),
            Err(WireError::BadMagic(_))
        ));
        let mut b = good;
        b[4] = 9;
        assert!(matches!(
            Header::decode(&b, MAX_PAYLOAD),
            Err(WireError::UnsupportedVersion(9))
        ));
        let mut b = good;
        b[5] = 200;
        assert!(matches!(
            Header::decode(&b, MAX_PAYLOAD),
            Err(WireError::UnknownKind(200))
        ));
        let mut b = good;
        b[36..40].copy_from_slice(&u32::MAX.to_be_bytes());
        assert!(matches!(
            Header::decode(&b, MAX_PAYLOAD),
            Err(WireError::TooLong {
                len: u32::MAX,
                max: MAX_PAYLOAD
            })
        ));
        assert!(matches!(
            Header::decode(&good, 1000),
            Err(WireError::TooLong { .. })
        ));
    }

    #[test]
    fn random_bytes_never_panic() {
        let mut rng = fastrand::Rng::with_seed(42);
        for i in 0..100_000 {
            let mut b = [0u8; HEADER_LEN];
            rng.fill(&mut b);
            if i % 2 == 0 {
                b[0..4].copy_from_slice(&MAGIC);
                b[4] = VERSION;
            }
            let _ = Header::decode(&b, MAX_PAYLOAD);
            let len = rng.usize(0..64);
            let _ = Subscribe::decode(&b[..len.min(HEADER_LEN)]);
        }
    }

    #[test]
    fn subscribe_round_trips_and_rejects_garbage() {
        let s = Subscribe {
            cameras: vec![0, 5, 31],
            playback_speed: None,
            label: String::new(),
        };
        assert_eq!(Subscribe::decode(&s.encode()).ok(), Some(s));
        let p = Subscribe {
            cameras: vec![1],
            playback_speed: Some(8),
            label: "sdk-recorder".into(),
        };
        assert_eq!(Subscribe::decode(&p.encode()).ok(), Some(p));
        // A label whose length byte promises more than follows.
        assert!(Subscribe::decode(&[0, 1, 0, 1, 0, 0, 0, 1, 5, b'a']).is_err());
        assert!(Subscribe::decode(&[0, 1, 0, 2, 0, 0, 0, 1]).is_err());
        assert!(Subscribe::decode(&[7, 1, 0, 0]).is_err());
        assert!(Subscribe::decode(&[1, 0, 0, 0]).is_err());
        assert!(Subscribe::decode(&[0xff, 0xff, 0xff, 0xff]).is_err());
    }

    #[tokio::test]
    async fn stream_reads_detect_clean_close_and_truncation() {
        let h = sample();
        let mut msg = Vec::new();
        let mut payload = vec![0u8; h.payload_len as usize];
        payload[0] = 42;
        write_message(&mut msg, h, &payload).await.ok();
        let mut r = &msg[..];
        let got = read_header(&mut r, MAX_PAYLOAD).await.ok().flatten();
        assert_eq!(got, Some(h));
        let mut buf = Vec::new();
        assert!(read_payload(&mut r, &h, &mut buf).await.is_ok());
        assert_eq!(buf, payload);
        assert!(matches!(read_header(&mut r, MAX_PAYLOAD).await, Ok(None)));

        let mut cut = &msg[..20];
        assert!(matches!(
            read_header(&mut cut, MAX_PAYLOAD).await,
            Err(WireError::Truncated)
        ));
        let mut cut = &msg[..HEADER_LEN + 10];
        let h2 = read_header(&mut cut, MAX_PAYLOAD).await.ok().flatten();
        assert_eq!(h2, Some(h));
        assert!(matches!(
            read_payload(&mut cut, &h, &mut buf).await,
            Err(WireError::Truncated)
        ));
    }
}
