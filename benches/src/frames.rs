//! Frames as the deployment sends them: sizes from the video presets, payload bytes from
//! the video model's seeded pool, headers from the wire codec; and the plaintext path
//! (encode the header, copy header and payload into the send buffer; decode, copy out)
//! that the TLS record layer is compared with.

use bytes::Bytes;
use simulators::video::{PayloadPool, Profile};
use simulators::wire::{Header, Kind, FLAG_KEYFRAME, FLAG_POOLED, HEADER_LEN, MAX_PAYLOAD};

use crate::BenchError;

/// Seed of every payload the benches send ("vmsb").
pub const SEED: u64 = 0x766d_7362;

/// A key (I) or predicted (P) frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FrameKind {
    /// A predicted frame (P).
    P,
    /// A key frame (I).
    I,
}

/// One frame size the benches measure.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FrameCase {
    /// Stable id used in scenario ids, e.g. `1080p_iframe`.
    pub id: &'static str,
    /// The video preset it comes from.
    pub profile: &'static str,
    /// I- or P-frame.
    pub kind: FrameKind,
    /// Payload bytes (the preset's mean size, rounded).
    pub bytes: usize,
}

/// The frame sizes, smallest first: (id, preset, kind).
pub const FRAME_CASES: &[(&str, &str, FrameKind)] = &[
    ("sub_pframe", "sub", FrameKind::P),
    ("1080p_pframe", "1080p", FrameKind::P),
    ("1080p_iframe", "1080p", FrameKind::I),
    ("4k_iframe", "4k", FrameKind::I),
];

impl FrameCase {
    /// The case with this id (see [`FRAME_CASES`]).
    pub fn by_id(id: &str) -> Result<FrameCase, BenchError> {
        let Some((id, profile, kind)) = FRAME_CASES.iter().copied().find(|c| c.0 == id) else {
            return Err(BenchError::Check(format!("no frame case {id:?}")));
        };
        let p = Profile::preset(profile)?;
        let mean = match kind {
            FrameKind::P => p.p_frame_bytes(),
            FrameKind::I => p.i_frame_bytes(),
        };
        Ok(FrameCase {
            id,
            profile,
            kind,
            bytes: mean.round() as usize,
        })
    }
}

/// Every frame case of [`FRAME_CASES`], sized from the presets (sub P-frame 3472 B,
/// 1080p P-frame 12195 B, 1080p I-frame 146341 B, 4K I-frame 365854 B).
pub fn frame_cases() -> Result<Vec<FrameCase>, BenchError> {
    FRAME_CASES
        .iter()
        .map(|(id, _, _)| FrameCase::by_id(id))
        .collect()
}

/// `len` payload bytes from the video model's seeded pool (the same bytes on every run).
pub fn payload(len: usize) -> Bytes {
    PayloadPool::new(len as u64, SEED).slice(0, len)
}

/// The header of frame `seq` of stream 0 carrying `len` payload bytes.
pub fn frame_header(seq: u64, len: usize) -> Result<Header, BenchError> {
    let payload_len = u32::try_from(len)
        .ok()
        .filter(|l| *l <= MAX_PAYLOAD)
        .ok_or(BenchError::Check(format!(
            "a frame of {len} bytes exceeds the wire limit"
        )))?;
    Ok(Header {
        kind: Kind::Frame,
        flags: FLAG_KEYFRAME | FLAG_POOLED,
        stream_id: 0,
        seq,
        scheduled_ns: seq * 33_333_333,
        sent_ns: seq * 33_333_333 + 1_000,
        payload_len,
        pool_offset: 0,
    })
}

/// The plaintext send path: the header encoded, header and payload copied into `out` (what
/// a plaintext link hands to the socket).
pub fn plain_send(header: &Header, payload: &[u8], out: &mut Vec<u8>) {
    out.clear();
    out.extend_from_slice(&header.encode());
    out.extend_from_slice(payload);
}

/// The plaintext receive path: the header decoded (with the codec's checks) and the
/// payload copied out of the received bytes into `out`.
pub fn plain_recv(wire: &[u8], out: &mut Vec<u8>) -> Result<Header, BenchError> {
    let Some((head, rest)) = wire.split_first_chunk::<HEADER_LEN>() else {
        return Err(BenchError::Wire(simulators::wire::WireError::Truncated));
    };
    let header = Header::decode(head, MAX_PAYLOAD)?;
    let Some(payload) = rest.get(..header.payload_len as usize) else {
        return Err(BenchError::Wire(simulators::wire::WireError::Truncated));
    };
    out.clear();
    out.extend_from_slice(payload);
    Ok(header)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_follow_the_presets() {
        let sizes: Vec<(&str, usize)> = frame_cases()
            .expect("presets exist")
            .iter()
            .map(|c| (c.id, c.bytes))
            .collect();
        assert_eq!(
            sizes,
            vec![
                ("sub_pframe", 3472),
                ("1080p_pframe", 12195),
                ("1080p_iframe", 146341),
                ("4k_iframe", 365854),
            ]
        );
    }

    #[test]
    fn plain_path_round_trips() {
        let p = payload(1000);
        let h = frame_header(3, p.len()).expect("header");
        let mut wire = Vec::new();
        plain_send(&h, &p, &mut wire);
        assert_eq!(wire.len(), HEADER_LEN + 1000);
        let mut out = Vec::new();
        assert_eq!(plain_recv(&wire, &mut out).expect("decodes"), h);
        assert_eq!(out, &p[..]);
        assert!(plain_recv(&wire[..500], &mut out).is_err());
        assert_eq!(payload(64), payload(64), "seeded");
    }
}
