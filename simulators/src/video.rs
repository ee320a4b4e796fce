//! The video model: what a camera sends and when.
//!
//! A [`Profile`] is a camera's encoder settings. With bitrate `B` (bit/s), `f` frames per
//! second, a GOP of `N` frames and an I/P size ratio `r`, a P-frame has
//! `P = B·(N/f)/8/(N−1+r)` bytes and an I-frame `I = r·P`, so one GOP carries exactly
//! `B·N/f/8` bytes. VBR varies each frame's size around that mean with a seeded generator;
//! frame `k` of a camera is a pure function of (seed, camera, k), so every run — and every
//! test that wants to check what arrived — can regenerate it.
//!
//! Frames are due at exact instants: `start + phase + k/f`. Payload bytes come from one
//! [`PayloadPool`] generated up front and shared as [`Bytes`] slices, never allocated per frame.

use std::fmt;
use std::sync::Arc;

use bytes::Bytes;
use serde::{Deserialize, Serialize};

const NS_PER_S: u64 = 1_000_000_000;

/// A camera's stream profile.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Profile {
    /// Preset name (`1080p`, …) or a user's own label.
    pub name: String,
    /// Resolution label, e.g. `1920x1080`.
    pub resolution: String,
    /// Frames per second.
    pub fps: u32,
    /// Mean bitrate in bit/s.
    pub bitrate_bps: u64,
    /// Frames per group of pictures (one I-frame, then `gop − 1` P-frames). 1 = all I-frames.
    pub gop: u32,
    /// Size of an I-frame relative to a P-frame (10–20 is typical).
    pub ip_ratio: f64,
    /// Variable-bitrate spread: each frame is the mean size × (1 ± up to `vbr`).
    pub vbr: f64,
}

/// The preset profile names, in the order they are listed.
pub const PRESET_NAMES: &[&str] = &[
    "sub",
    "720p",
    "1080p",
    "1080p-h265",
    "4mp",
    "4k",
    "mjpeg-1080p",
];

/// Why a profile is unusable.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ProfileError {
    /// No preset of that name.
    #[error("unknown profile {0:?}; presets are: {names}", names = PRESET_NAMES.join(", "))]
    UnknownPreset(String),
    /// A field out of range.
    #[error("profile {name:?}: {reason}")]
    Invalid {
        /// The profile's name.
        name: String,
        /// What is wrong.
        reason: String,
    },
}

impl Profile {
    /// The default profile: 1080p at 30 fps, 4 Mbit/s, one I-frame per second.
    pub fn default_1080p() -> Profile {
        Self::make("1080p", "1920x1080", 30, 4_000_000, 30)
    }

    fn make(name: &str, resolution: &str, fps: u32, bitrate_bps: u64, gop: u32) -> Profile {
        Profile {
            name: name.to_owned(),
            resolution: resolution.to_owned(),
            fps,
            bitrate_bps,
            gop,
            ip_ratio: if gop == 1 { 1.0 } else { 12.0 },
            vbr: 0.1,
        }
    }

    /// A preset by name (see [`PRESET_NAMES`]).
    pub fn preset(name: &str) -> Result<Profile, ProfileError> {
        Ok(match name {
            "sub" => Self::make("sub", "640x360", 7, 500_000, 7),
            "720p" => Self::make("720p", "1280x720", 30, 2_000_000, 30),
            "1080p" => Self::default_1080p(),
            "1080p-h265" => Self::make("1080p-h265", "1920x1080", 30, 2_000_000, 30),
            "4mp" => Self::make("4mp", "2688x1520", 30, 6_000_000, 30),
            "4k" => Self::make("4k", "3840x2160", 30, 10_000_000, 30),
            "mjpeg-1080p" => Self::make("mjpeg-1080p", "1920x1080", 30, 40_000_000, 1),
            other => return Err(ProfileError::UnknownPreset(other.to_owned())),
        })
    }

    /// Checks that every field is in a usable range.
    pub fn validate(&self) -> Result<(), ProfileError> {
        let bad = |reason: String| ProfileError::Invalid {
            name: self.name.clone(),
            reason,
        };
        if !(1..=240).contains(&self.fps) {
            return Err(bad(format!("fps must be 1–240, not {}", self.fps)));
        }
        if !(1..=10_000).contains(&self.gop) {
            return Err(bad(format!("gop must be 1–10000 frames, not {}", self.gop)));
        }
        if !(1_000..=1_000_000_000).contains(&self.bitrate_bps) {
            return Err(bad(format!(
                "bitrate must be 1 kbit/s–1 Gbit/s, not {}",
                self.bitrate_bps
            )));
        }
        if !(1.0..=100.0).contains(&self.ip_ratio) {
            return Err(bad(format!(
                "ip_ratio must be 1–100, not {}",
                self.ip_ratio
            )));
        }
        if !(0.0..0.9).contains(&self.vbr) {
            return Err(bad(format!("vbr must be in [0, 0.9), not {}", self.vbr)));
        }
        let max = self.max_frame_bytes();
        if max > u64::from(crate::wire::MAX_PAYLOAD) {
            return Err(bad(format!(
                "its largest frame ({max} bytes) exceeds the wire limit"
            )));
        }
        Ok(())
    }

    /// Mean P-frame size in bytes: `B·(N/f)/8/(N−1+r)`.
    pub fn p_frame_bytes(&self) -> f64 {
        let n = f64::from(self.gop);
        self.bitrate_bps as f64 * (n / f64::from(self.fps)) / 8.0 / (n - 1.0 + self.ip_ratio)
    }

    /// Mean I-frame size in bytes: `r·P`.
    pub fn i_frame_bytes(&self) -> f64 {
        self.ip_ratio * self.p_frame_bytes()
    }

    /// The largest frame VBR can produce, in bytes.
    pub fn max_frame_bytes(&self) -> u64 {
        (self.i_frame_bytes() * (1.0 + self.vbr)).ceil() as u64 + 1
    }

    /// Nanoseconds between frames at 1× speed.
    pub fn frame_interval_ns(&self) -> u64 {
        NS_PER_S / u64::from(self.fps.max(1))
    }
}

impl fmt::Display for Profile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {}@{} {:.1} Mbit/s GOP {} (I {:.0} B, P {:.0} B)",
            self.name,
            self.resolution,
            self.fps,
            self.bitrate_bps as f64 / 1e6,
            self.gop,
            self.i_frame_bytes(),
            self.p_frame_bytes()
        )
    }
}

/// Payload bytes generated once and shared by every frame of every camera.
#[derive(Clone, Debug)]
pub struct PayloadPool {
    bytes: Bytes,
}

impl PayloadPool {
    /// A pool able to serve frames up to `max_frame` bytes, filled from `seed`.
    pub fn new(max_frame: u64, seed: u64) -> Self {
        let len = usize::try_from(max_frame.saturating_mul(2).max(4 << 20)).unwrap_or(4 << 20);
        let mut rng = fastrand::Rng::with_seed(seed);
        let mut v = vec![0u8; len];
        rng.fill(&mut v);
        PayloadPool {
            bytes: Bytes::from(v),
        }
    }

    /// `len` bytes starting at `offset` (which [`Camera::frame`] keeps in range).
    pub fn slice(&self, offset: usize, len: usize) -> Bytes {
        self.bytes.slice(offset..offset + len)
    }

    /// The whole pool.
    pub fn as_slice(&self) -> &[u8] {
        &self.bytes
    }

    /// The pool's size in bytes.
    pub fn len(&self) -> usize {
        self.bytes.len()
    }

    /// Whether the pool is empty (it never is).
    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }
}

/// How a stream is played: live, or recorded video played back at a speed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Playback {
    /// Live video at the camera's own rate.
    Live,
    /// Playback at this many times real time; at 4× and faster only I-frames are sent.
    Speed(u8),
}

impl Playback {
    /// Whether only key frames are sent.
    pub fn iframes_only(self) -> bool {
        matches!(self, Playback::Speed(s) if s >= 4)
    }

    fn speed(self) -> u64 {
        match self {
            Playback::Live => 1,
            Playback::Speed(s) => u64::from(s.max(1)),
        }
    }
}

/// One frame of a stream: everything but the payload bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FrameSpec {
    /// Sequence number within the stream (0, 1, 2, … without gaps).
    pub seq: u64,
    /// Whether it is a key (I) frame.
    pub keyframe: bool,
    /// Payload length in bytes.
    pub len: usize,
    /// Where the payload starts in the pool.
    pub offset: usize,
    /// When it is due, ns on the run clock.
    pub due_ns: u64,
}

/// A simulated camera: a profile, an id, a seed and a phase, plus the shared payload pool.
#[derive(Clone, Debug)]
pub struct Camera {
    /// Camera id, unique within its recording server.
    pub id: u32,
    /// Its profile.
    pub profile: Arc<Profile>,
    seed: u64,
    phase_ns: u64,
    pool: PayloadPool,
}

fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

impl Camera {
    /// A camera. Its phase (offset of its frame clock within one GOP) is drawn from the
    /// seed: cameras of one server neither fire at the same instant nor send their key
    /// frames together, so a new viewer waits for a key frame as long as it would on a real
    /// system (half a GOP on average).
    pub fn new(id: u32, profile: Arc<Profile>, seed: u64, pool: PayloadPool) -> Self {
        let gop_ns = profile.frame_interval_ns() * u64::from(profile.gop.max(1));
        let phase_ns = mix(seed ^ (u64::from(id) << 32) ^ 0x5eed) % gop_ns;
        Camera {
            id,
            profile,
            seed,
            phase_ns,
            pool,
        }
    }

    /// The camera's phase within a GOP.
    pub fn phase_ns(&self) -> u64 {
        self.phase_ns
    }

    /// Frame `seq` of a stream that started at `start_ns`.
    pub fn frame(&self, playback: Playback, start_ns: u64, seq: u64) -> FrameSpec {
        let p = &self.profile;
        let gop = u64::from(p.gop);
        let index = if playback.iframes_only() {
            seq.saturating_mul(gop)
        } else {
            seq
        };
        let keyframe = index % gop == 0;
        let mean = if keyframe {
            p.i_frame_bytes()
        } else {
            p.p_frame_bytes()
        };
        let h = mix(self.seed ^ mix(u64::from(self.id) ^ mix(index)));
        // Uniform in [-1, 1): the top 53 bits as a fraction.
        let u = (h >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0;
        let len = (mean * (1.0 + p.vbr * u)).round().max(1.0) as usize;
        let room = self.pool.len().saturating_sub(len).max(1);
        let offset = (mix(h) % room as u64) as usize;
        FrameSpec {
            seq,
            keyframe,
            len,
            offset,
            due_ns: self.due_ns(playback, start_ns, seq),
        }
    }

    /// The payload pool its frames are slices of (what receivers check them against).
    pub fn pool(&self) -> &PayloadPool {
        &self.pool
    }

    /// The payload bytes of a frame (a slice of the shared pool, no copy).
    pub fn payload(&self, f: &FrameSpec) -> Bytes {
        self.pool.slice(f.offset, f.len)
    }

    /// The same, for a frame that came from elsewhere: `None` if it does not fit the pool.
    pub fn payload_checked(&self, f: &FrameSpec) -> Option<Bytes> {
        let end = f.offset.checked_add(f.len)?;
        (end <= self.pool.len()).then(|| self.pool.slice(f.offset, f.len))
    }

    /// When frame `seq` is due: `start + phase + index/(fps·speed)`, exactly.
    pub(crate) fn due_ns(&self, playback: Playback, start_ns: u64, seq: u64) -> u64 {
        let p = &self.profile;
        let index = if playback.iframes_only() {
            seq * u64::from(p.gop)
        } else {
            seq
        };
        let per_s = u128::from(p.fps) * u128::from(playback.speed());
        let offset = u128::from(index) * u128::from(NS_PER_S) / per_s;
        start_ns + self.phase_ns + u64::try_from(offset).unwrap_or(u64::MAX)
    }

    /// The first sequence number due at or after `t_ns`.
    pub(crate) fn first_seq_at(&self, playback: Playback, start_ns: u64, t_ns: u64) -> u64 {
        let origin = start_ns + self.phase_ns;
        if t_ns <= origin {
            return 0;
        }
        let p = &self.profile;
        let step = if playback.iframes_only() {
            u128::from(p.gop)
        } else {
            1
        };
        let per_s = u128::from(p.fps) * u128::from(playback.speed());
        // Smallest seq with seq·step·1e9/per_s >= t − origin (integer division as in due_ns).
        let num = u128::from(t_ns - origin) * per_s;
        let den = step * u128::from(NS_PER_S);
        let mut seq = u64::try_from(num / den).unwrap_or(u64::MAX);
        while seq > 0 && self.due_ns(playback, start_ns, seq - 1) >= t_ns {
            seq -= 1;
        }
        while self.due_ns(playback, start_ns, seq) < t_ns {
            seq += 1;
        }
        seq
    }

    /// How many frames fall due in `[from_ns, to_ns)`.
    pub fn frames_due(&self, playback: Playback, start_ns: u64, from_ns: u64, to_ns: u64) -> u64 {
        if to_ns <= from_ns {
            return 0;
        }
        self.first_seq_at(playback, start_ns, to_ns)
            - self.first_seq_at(playback, start_ns, from_ns)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn camera(profile: Profile, id: u32) -> Camera {
        let pool = PayloadPool::new(profile.max_frame_bytes(), 1);
        Camera::new(id, Arc::new(profile), 7, pool)
    }

    #[test]
    fn every_preset_is_valid_and_gop_sums_to_bitrate() {
        for name in PRESET_NAMES {
            let p = Profile::preset(name).expect("preset");
            p.validate().expect("valid");
            let gop_bytes = p.i_frame_bytes() + f64::from(p.gop - 1) * p.p_frame_bytes();
            let expected = p.bitrate_bps as f64 * f64::from(p.gop) / f64::from(p.fps) / 8.0;
            assert!((gop_bytes - expected).abs() < 1e-6 * expected, "{name}");
        }
        assert_eq!(
            Profile::preset("8k"),
            Err(ProfileError::UnknownPreset("8k".into()))
        );
    }

    #[test]
    fn formula_matches_the_worked_example() {
        // 4 Mbit/s, 30 fps, GOP 30, r = 12: P = 4e6·1/8/41 ≈ 12195 B, I ≈ 146341 B.
        let p = Profile::default_1080p();
        assert!((p.p_frame_bytes() - 12_195.12).abs() < 0.01);
        assert!((p.i_frame_bytes() - 146_341.46).abs() < 0.01);
    }

    #[test]
    fn a_minute_of_frames_adds_up_to_the_bitrate_within_two_percent() {
        for name in PRESET_NAMES {
            let p = Profile::preset(name).expect("preset");
            for id in 0..4 {
                let cam = camera(p.clone(), id);
                let frames = u64::from(p.fps) * 60;
                let bytes: usize = (0..frames)
                    .map(|k| cam.frame(Playback::Live, 0, k).len)
                    .sum();
                let mbit = bytes as f64 * 8.0 / 60.0;
                let err = (mbit - p.bitrate_bps as f64).abs() / p.bitrate_bps as f64;
                assert!(
                    err < 0.02,
                    "{name} camera {id}: {mbit} bit/s, error {err:.4}"
                );
            }
        }
    }

    #[test]
    fn frames_are_deterministic_and_keyframes_follow_the_gop() {
        let a = camera(Profile::default_1080p(), 3);
        let b = camera(Profile::default_1080p(), 3);
        for k in 0..100 {
            let fa = a.frame(Playback::Live, 0, k);
            assert_eq!(fa, b.frame(Playback::Live, 0, k));
            assert_eq!(a.payload(&fa), b.payload(&fa));
            assert_eq!(fa.keyframe, k % 30 == 0);
            assert!(fa.offset + fa.len <= a.pool.len());
        }
        let other = camera(Profile::default_1080p(), 4);
        assert_ne!(
            a.frame(Playback::Live, 0, 1),
            other.frame(Playback::Live, 0, 1)
        );
    }

    #[test]
    fn frames_are_due_at_exact_instants() {
        let cam = camera(Profile::default_1080p(), 0);
        let phase = cam.phase_ns();
        assert!(phase < NS_PER_S);
        assert_eq!(cam.due_ns(Playback::Live, 1000, 0), 1000 + phase);
        assert_eq!(
            cam.due_ns(Playback::Live, 1000, 30),
            1000 + phase + NS_PER_S
        );
        assert_eq!(cam.due_ns(Playback::Live, 0, 3), phase + 100_000_000);
        // 8× playback, I-frames only: one I-frame per GOP, 8 GOPs per second.
        let f = cam.frame(Playback::Speed(8), 0, 1);
        assert!(f.keyframe);
        assert_eq!(f.due_ns, phase + NS_PER_S / 8);
        // 2× playback keeps P-frames.
        assert!(!cam.frame(Playback::Speed(2), 0, 1).keyframe);
        assert_eq!(cam.due_ns(Playback::Speed(2), 0, 60), phase + NS_PER_S);
    }

    #[test]
    fn frames_due_counts_match_enumeration() {
        let cam = camera(Profile::preset("sub").expect("sub"), 9);
        for playback in [Playback::Live, Playback::Speed(2), Playback::Speed(4)] {
            for (from, to) in [
                (0, NS_PER_S),
                (123_456, 5 * NS_PER_S + 17),
                (NS_PER_S, NS_PER_S),
            ] {
                let counted = (0..1000)
                    .filter(|k| {
                        let d = cam.due_ns(playback, 50, *k);
                        d >= from && d < to
                    })
                    .count() as u64;
                assert_eq!(
                    cam.frames_due(playback, 50, from, to),
                    counted,
                    "{playback:?}"
                );
            }
        }
    }
}
