//! The record layer's ceiling: frames sealed and opened by a client and a server connected
//! in memory (the benches' [`TlsPair`]), one frame at a time on one core, for each frame
//! size of the built-in camera profiles.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use rustls::{ClientConfig, ServerConfig};
use simulators::pki::Pki;
use simulators::transport::memory::TlsPair;
use simulators::transport::{Cipher, KxGroup, TlsSettings, TlsVersion};
use simulators::video::{PayloadPool, Profile, PRESET_NAMES};
use simulators::wire::{Header, Kind, FLAG_POOLED, MAX_PAYLOAD};

use super::SERVER_HOST;
use crate::report::limits::{FrameCeiling, SuiteCeiling};

/// Seed of the payload bytes ("vmsb", as the benches').
const SEED: u64 = 0x766d_7362;

/// Frames sealed and opened before timing starts, at each size.
const WARMUP_FRAMES: u64 = 3;

/// Frames timed at each size at least, whatever the budget.
const MIN_FRAMES: u64 = 5;

/// One distinct frame size of the built-in profiles.
#[derive(Clone, Debug, PartialEq)]
pub(super) struct FrameSize {
    pub(super) bytes: usize,
    /// The profiles' frames of this size (`1080p I`, …).
    pub(super) frames: Vec<String>,
}

/// The mean I- and P-frame sizes of every built-in profile, distinct, smallest first.
pub(super) fn frame_sizes() -> anyhow::Result<Vec<FrameSize>> {
    let mut sizes: Vec<FrameSize> = Vec::new();
    for name in PRESET_NAMES {
        let p = Profile::preset(name)?;
        let mut frames = vec![("I", p.i_frame_bytes())];
        if p.gop > 1 {
            frames.push(("P", p.p_frame_bytes()));
        }
        for (kind, mean) in frames {
            let bytes = mean.round() as usize;
            let label = format!("{name} {kind}");
            match sizes.iter_mut().find(|s| s.bytes == bytes) {
                Some(s) => s.frames.push(label),
                None => sizes.push(FrameSize {
                    bytes,
                    frames: vec![label],
                }),
            }
        }
    }
    sizes.sort_by_key(|s| s.bytes);
    Ok(sizes)
}

/// Every suite measured: TLS 1.3, then 1.2, each with every bulk cipher.
pub(super) fn suites() -> Vec<(TlsVersion, Cipher)> {
    [TlsVersion::Tls13, TlsVersion::Tls12]
        .into_iter()
        .flat_map(|v| Cipher::ALL.iter().map(move |c| (v, *c)))
        .collect()
}

/// The client and server configurations that pin one suite (the group is irrelevant to
/// the record layer; X25519 works with both versions).
pub(super) fn configs(
    pki: &Pki,
    version: TlsVersion,
    cipher: Cipher,
) -> anyhow::Result<(Arc<ClientConfig>, Arc<ServerConfig>)> {
    let tls = TlsSettings {
        versions: vec![version],
        ciphers: vec![cipher],
        groups: vec![KxGroup::X25519],
    };
    Ok((
        pki.client_config(&tls)?,
        pki.server_config(SERVER_HOST, &tls)?,
    ))
}

/// The median of `times`, µs (at least 1 ns: a clock too coarse cannot make it zero). The
/// median, not the mean: a frame preempted on a busy machine says nothing of what the
/// record layer can do, and one such frame moves a mean a long way.
fn median_us(times: &mut [Duration]) -> f64 {
    times.sort_unstable();
    let mid = times.get(times.len() / 2).copied().unwrap_or_default();
    mid.as_secs_f64().max(1e-9) * 1e6
}

/// Seals and opens frames of every size with one suite; `budget` is shared among the
/// sizes. Each frame is sealed (timed), then opened (timed) and checked against what was
/// sealed; each figure is the median frame's.
pub(super) fn measure(
    (client, server): (Arc<ClientConfig>, Arc<ServerConfig>),
    version: TlsVersion,
    cipher: Cipher,
    sizes: &[FrameSize],
    budget: Duration,
) -> anyhow::Result<SuiteCeiling> {
    let largest = sizes.iter().map(|s| s.bytes).max().unwrap_or(0);
    let pool = PayloadPool::new(largest as u64, SEED);
    let mut pair = TlsPair::connect(client, server, SERVER_HOST)
        .with_context(|| format!("an in-memory TLS {version} {cipher} pair"))?;
    let suite = pair.suite_name().unwrap_or_else(|| "unknown".to_owned());
    let per_size = budget / u32::try_from(sizes.len().max(1)).unwrap_or(u32::MAX);
    let (mut wire, mut out) = (Vec::new(), Vec::new());
    let mut frames = Vec::new();
    let mut seq = 0u64;
    for size in sizes {
        let payload = pool.slice(0, size.bytes);
        let mut header = Header::new(Kind::Frame);
        header.flags = FLAG_POOLED;
        header.payload_len = u32::try_from(size.bytes)
            .ok()
            .filter(|l| *l <= MAX_PAYLOAD)
            .with_context(|| format!("a frame of {} bytes exceeds the wire limit", size.bytes))?;
        let (mut seal, mut open) = (Vec::new(), Vec::new());
        let started = Instant::now();
        for n in 0.. {
            if n >= WARMUP_FRAMES + MIN_FRAMES && started.elapsed() >= per_size {
                break;
            }
            seq += 1;
            header.seq = seq;
            let t0 = Instant::now();
            pair.send(&header, &payload, &mut wire)?;
            let t1 = Instant::now();
            let got = pair.recv(&wire, &mut out)?;
            let t2 = Instant::now();
            if got != header || out[..] != payload[..] {
                anyhow::bail!(
                    "TLS {version} {cipher}: a {} B frame came back different",
                    size.bytes
                );
            }
            if n >= WARMUP_FRAMES {
                seal.push(t1 - t0);
                open.push(t2 - t1);
            }
        }
        let (seal_us, open_us) = (median_us(&mut seal), median_us(&mut open));
        frames.push(FrameCeiling {
            frame_bytes: size.bytes as u64,
            frames: size.frames.clone(),
            count: seal.len() as u64,
            seal_us_per_frame: seal_us,
            open_us_per_frame: open_us,
            seal_mbyte_s: size.bytes as f64 / seal_us,
            open_mbyte_s: size.bytes as f64 / open_us,
        });
    }
    Ok(SuiteCeiling {
        version,
        cipher,
        suite,
        frames,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use simulators::pki::KeyType;

    #[test]
    fn frame_sizes_are_the_profiles_distinct_i_and_p_frames() {
        let sizes = frame_sizes().expect("presets");
        assert!(sizes.windows(2).all(|w| w[0].bytes < w[1].bytes));
        let find = |label: &str| sizes.iter().find(|s| s.frames.iter().any(|f| f == label));
        assert_eq!(find("1080p I").map(|s| s.bytes), Some(146_341));
        assert_eq!(find("sub P").map(|s| s.bytes), Some(3472));
        // 720p and 1080p-h265 share their sizes; an all-I-frame profile has no P-frame.
        assert_eq!(find("720p P"), find("1080p-h265 P"));
        assert!(find("mjpeg-1080p P").is_none());
        assert_eq!(suites().len(), 6);
    }

    #[test]
    fn every_size_is_sealed_and_opened() {
        let pki = Pki::generate(&[SERVER_HOST], KeyType::EcdsaP256, 1).expect("pki");
        let sizes = frame_sizes().expect("presets");
        let s = measure(
            configs(&pki, TlsVersion::Tls12, Cipher::Chacha20Poly1305).expect("configs"),
            TlsVersion::Tls12,
            Cipher::Chacha20Poly1305,
            &sizes[..2],
            Duration::from_millis(10),
        )
        .expect("measured");
        assert_eq!(s.suite, "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256");
        assert_eq!(s.frames.len(), 2);
        for f in &s.frames {
            assert!(f.count >= MIN_FRAMES);
            assert!(f.seal_us_per_frame > 0.0 && f.seal_mbyte_s.is_finite());
            assert!(f.open_us_per_frame > 0.0 && f.open_mbyte_s.is_finite());
        }
    }
}
