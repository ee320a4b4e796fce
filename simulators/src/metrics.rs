//! What the roles measure, and the window that decides which frames count.
//!
//! Clients record into a [`Meter`] that a whole group of them shares (one link towards one
//! server, say): counters are atomics, histograms live in a few shards each behind its own
//! lock. Memory is per group, not per client — thousands of clients cost a few histograms,
//! not thousands — and a sampler reads a group's counters and takes the latency histogram
//! of the last interval without copying anything per client.
//!
//! A frame belongs to the measured window when its *scheduled* time falls inside it; its
//! latency is then counted however late it arrives (coordinated-omission correction, as in
//! wrk2). Connection setup (connect, handshake, time to first frame) is counted for every
//! connection of a phase, since connections are set up before the window opens.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

use crate::transport::Negotiated;

/// Highest latency a histogram is sized for when it is made, µs (10 ms); it grows when a
/// larger value is recorded.
const INITIAL_TRACKED_US: u64 = 10_000;
/// Significant figures kept by every histogram.
const SIGNIFICANT_FIGURES: u8 = 3;

/// A latency histogram in µs (from 1 µs, 3 significant figures) that grows to the largest
/// value recorded.
///
/// Every client keeps several (frame latency corrected and not, connect, handshake, time
/// to first frame, recovery, transfer). Sized for an hour up front, each took about 190 KiB
/// whatever it recorded, so that the harness's own bookkeeping, not the links, dominated
/// the memory per connection; sized for what is recorded, most take a few tens of KiB. The
/// precision is the same: only buckets above the largest value are left out.
pub fn latency_histogram() -> Histogram<u64> {
    let mut h = Histogram::new_with_bounds(1, INITIAL_TRACKED_US, SIGNIFICANT_FIGURES)
        .expect("constant histogram bounds are valid");
    h.auto(true);
    h
}

/// A histogram in HdrHistogram's V2+DEFLATE encoding, base64: how histograms travel
/// between processes and sit in reports, and what other HdrHistogram tools read.
pub fn encode_histogram(h: &Histogram<u64>) -> String {
    use base64::Engine as _;
    use hdrhistogram::serialization::{Serializer as _, V2DeflateSerializer};
    let mut bytes = Vec::new();
    match V2DeflateSerializer::new().serialize(h, &mut bytes) {
        Ok(_) => base64::engine::general_purpose::STANDARD.encode(&bytes),
        Err(_) => String::new(),
    }
}

/// The inverse of [`encode_histogram`]; `None` for anything that does not decode.
///
/// The encoding comes from other processes and from report files, so nothing is allocated
/// for a length it claims before the bytes are there: the DEFLATE stream is inflated to at
/// most [`MAX_HISTOGRAM_BYTES`], and the payload length in the V2 header must match the
/// bytes that follow it (`hdrhistogram` allocates that length, up to 4 GiB, before reading).
pub fn decode_histogram(text: &str) -> Option<Histogram<u64>> {
    use base64::Engine as _;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(text.trim())
        .ok()?;
    let plain = plain_v2(&bytes)?;
    let mut h: Histogram<u64> = hdrhistogram::serialization::Deserializer::new()
        .deserialize(&mut &plain[..])
        .ok()?;
    // Like the histograms it was made from, it grows to take larger values when merged.
    h.auto(true);
    Some(h)
}

/// The most bytes a histogram's V2 encoding may take once inflated: far above the largest
/// histogram of [`SIGNIFICANT_FIGURES`] digits (about 56 000 counters of at most 9 bytes).
const MAX_HISTOGRAM_BYTES: usize = 4 << 20;

/// The uncompressed V2 encoding of `bytes` (V2, or V2+DEFLATE inflated), if its header
/// is whole, keeps at most [`SIGNIFICANT_FIGURES`] digits (the counters of a histogram of
/// more digits take up to 50 MB, whatever the encoding's size) and announces a payload
/// no longer than the bytes that follow it.
fn plain_v2(bytes: &[u8]) -> Option<std::borrow::Cow<'_, [u8]>> {
    use std::borrow::Cow;
    use std::io::Read as _;
    // The cookies hdrhistogram writes: its V2 and V2+DEFLATE bases with bit 0x10 set.
    const V2: u32 = 0x1c84_9313;
    const V2_DEFLATE: u32 = 0x1c84_9314;
    /// Cookie, payload length, normalising offset, digits, lowest, highest, ratio.
    const HEADER: usize = 40;
    let u32_at = |b: &[u8], i: usize| {
        b.get(i..i + 4)
            .map(|w| u32::from_be_bytes([w[0], w[1], w[2], w[3]]))
    };
    let plain = match u32_at(bytes, 0)? {
        V2 => Cow::Borrowed(bytes),
        V2_DEFLATE => {
            let len = usize::try_from(u32_at(bytes, 4)?).ok()?;
            let deflated = bytes.get(8..)?;
            let deflated = &deflated[..len.min(deflated.len())];
            let mut out = Vec::new();
            flate2::read::ZlibDecoder::new(deflated)
                .take(MAX_HISTOGRAM_BYTES as u64 + 1)
                .read_to_end(&mut out)
                .ok()?;
            if out.len() > MAX_HISTOGRAM_BYTES {
                return None;
            }
            Cow::Owned(out)
        }
        _ => return None,
    };
    let payload = usize::try_from(u32_at(&plain, 4)?).ok()?;
    let digits = u32_at(&plain, 12)?;
    let fits = plain.len() >= HEADER && payload <= plain.len() - HEADER;
    let sane = fits && u32_at(&plain, 0)? == V2 && digits <= u32::from(SIGNIFICANT_FIGURES);
    (sane && !has_min_run(&plain[HEADER..HEADER + payload])).then_some(plain)
}

/// Whether a V2 payload holds the varint whose zig-zag decoding is `i64::MIN`: hdrhistogram
/// negates it to count zeros, which overflows (a panic where overflow is checked).
fn has_min_run(mut payload: &[u8]) -> bool {
    // hdrhistogram's varint: up to eight bytes of 7 bits (high bit: more follow), then a
    // ninth byte of 8 bits.
    while !payload.is_empty() {
        let mut value = 0u64;
        let mut used = 0;
        for (i, b) in payload.iter().enumerate().take(9) {
            used = i + 1;
            if i == 8 {
                value |= u64::from(*b) << 56;
                break;
            }
            value |= u64::from(b & 0x7f) << (7 * i);
            if b & 0x80 == 0 {
                break;
            }
        }
        if value == u64::MAX {
            return true;
        }
        payload = &payload[used..];
    }
    false
}

/// Serde for a histogram field as [`encode_histogram`] writes it (`#[serde(with = …)]`).
pub mod histogram_v2 {
    use hdrhistogram::Histogram;
    use serde::{Deserialize as _, Deserializer, Serializer};

    /// Writes `h` in the V2+DEFLATE encoding, base64.
    pub fn serialize<S: Serializer>(h: &Histogram<u64>, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&super::encode_histogram(h))
    }

    /// Reads what [`serialize`] wrote; anything else is an error.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Histogram<u64>, D::Error> {
        let text = String::deserialize(d)?;
        super::decode_histogram(&text)
            .ok_or_else(|| serde::de::Error::custom("not a V2+DEFLATE histogram in base64"))
    }

    /// The same for a map of histograms.
    pub mod map {
        use std::collections::BTreeMap;

        use hdrhistogram::Histogram;
        use serde::{Deserialize as _, Deserializer, Serializer};

        /// Writes each histogram in the V2+DEFLATE encoding, base64.
        pub fn serialize<S: Serializer>(
            m: &BTreeMap<String, Histogram<u64>>,
            s: S,
        ) -> Result<S::Ok, S::Error> {
            s.collect_map(
                m.iter()
                    .map(|(k, h)| (k, super::super::encode_histogram(h))),
            )
        }

        /// Reads what [`serialize`] wrote.
        pub fn deserialize<'de, D: Deserializer<'de>>(
            d: D,
        ) -> Result<BTreeMap<String, Histogram<u64>>, D::Error> {
            BTreeMap::<String, String>::deserialize(d)?
                .into_iter()
                .map(|(k, text)| {
                    super::super::decode_histogram(&text)
                        .map(|h| (k, h))
                        .ok_or_else(|| {
                            serde::de::Error::custom("not a V2+DEFLATE histogram in base64")
                        })
                })
                .collect()
        }
    }
}

/// Recording into [`latency_histogram`]s: a value larger than any so far grows the
/// histogram (`Histogram::saturating_record` would clamp it to the current top instead).
pub trait RecordUs {
    /// Records `value` once.
    fn record_us(&mut self, value: u64);
    /// Records `value` `count` times.
    fn record_us_n(&mut self, value: u64, count: u64);
}

impl RecordUs for Histogram<u64> {
    fn record_us(&mut self, value: u64) {
        self.record_us_n(value, 1);
    }

    fn record_us_n(&mut self, value: u64, count: u64) {
        // Fails only for a histogram that cannot grow, or a value beyond any range:
        // clamp then.
        if self.record_n(value, count).is_err() {
            self.saturating_record_n(value, count);
        }
    }
}

/// The measured window, shared by every role of a phase. Both ends start "unset"
/// (`u64::MAX`), so nothing counts until the window is opened.
#[derive(Debug)]
pub struct Window {
    start_ns: AtomicU64,
    end_ns: AtomicU64,
}

impl Default for Window {
    fn default() -> Self {
        Window {
            start_ns: AtomicU64::new(u64::MAX),
            end_ns: AtomicU64::new(u64::MAX),
        }
    }
}

impl Window {
    /// Opens the window at `start_ns` (run clock), with no end yet.
    pub fn open(&self, start_ns: u64) {
        self.end_ns.store(u64::MAX, Ordering::Release);
        self.start_ns.store(start_ns, Ordering::Release);
    }

    /// Closes the window at `end_ns`: frames scheduled later no longer count.
    pub fn close(&self, end_ns: u64) {
        self.end_ns.store(end_ns, Ordering::Release);
    }

    /// Whether a frame scheduled at `t_ns` counts.
    #[inline]
    pub fn contains(&self, t_ns: u64) -> bool {
        let start = self.start_ns.load(Ordering::Acquire);
        start != u64::MAX && t_ns >= start && t_ns < self.end_ns.load(Ordering::Acquire)
    }

    /// `(start, end)`, if the window has been opened (end is `u64::MAX` while open).
    pub fn bounds(&self) -> Option<(u64, u64)> {
        let start = self.start_ns.load(Ordering::Acquire);
        (start != u64::MAX).then(|| (start, self.end_ns.load(Ordering::Acquire)))
    }
}

/// Counters and histograms for one direction of one link, as seen by the receiver.
/// Serialised (histograms in the V2 encoding) when it travels from an agent.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct LinkMetrics {
    /// Frames received whose scheduled time is in the window.
    pub frames: u64,
    /// Their payload bytes.
    pub bytes: u64,
    /// Those that arrived more than one frame interval after they were due.
    pub late_frames: u64,
    /// Frames missing from the sequence (gaps between consecutive sequence numbers).
    pub sequence_gaps: u64,
    /// Last byte read − scheduled time, µs (coordinated-omission corrected).
    #[serde(with = "histogram_v2")]
    pub latency_us: Histogram<u64>,
    /// Last byte read − sent time, µs (what a naive measurement would report).
    #[serde(with = "histogram_v2")]
    pub uncorrected_latency_us: Histogram<u64>,
    /// Delay variation, µs: each frame's (last byte read − scheduled time) less the least
    /// of its stream so far (RFC 5481's packet delay variation, per frame). A constant
    /// offset between the sender's and the receiver's clocks cancels out of it, so it
    /// holds across hosts whose clocks disagree; it is corrected for coordinated omission
    /// like `latency_us`, and is `latency_us` less each stream's best.
    #[serde(with = "histogram_v2")]
    pub delay_variation_us: Histogram<u64>,
    /// TCP connect time per connection, µs.
    #[serde(with = "histogram_v2")]
    pub connect_us: Histogram<u64>,
    /// TLS handshake time per connection (client side), µs.
    #[serde(with = "histogram_v2")]
    pub handshake_us: Histogram<u64>,
    /// Subscribe → first key frame fully received, per stream, µs.
    #[serde(with = "histogram_v2")]
    pub ttff_us: Histogram<u64>,
    /// Time from losing a connection to the first frame of each stream on the failover
    /// server, µs.
    #[serde(with = "histogram_v2")]
    pub recovery_us: Histogram<u64>,
    /// Whole-transfer times (configuration downloads: request → last byte), µs.
    #[serde(with = "histogram_v2")]
    pub transfer_us: Histogram<u64>,
    /// Connections that were set up.
    pub connections: u64,
    /// Connections set up again after one was lost (failover).
    pub reconnects: u64,
    /// Failures by category (`untrusted_ca`, `wrong_host`, `io`, …).
    pub errors: BTreeMap<String, u64>,
    /// What the TLS handshakes negotiated (the last one seen; all are pinned alike).
    pub negotiated: Option<Negotiated>,
    /// Bytes on the wire as the application and the kernel counted them (the kernel
    /// cross-check of goodput).
    pub wire: WireCount,
}

/// The kernel cross-check: bytes counted between the same two points of each connection —
/// after the first frame scheduled inside the window, and after the first frame scheduled
/// at or after its end (or when the connection ends first) — by the application and by
/// the kernel's TCP stack.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WireCount {
    /// Bytes the application read from the socket (below TLS: frame headers, payloads,
    /// TLS record headers and tags).
    pub app_bytes: u64,
    /// Bytes of TCP payload the kernel handed to the application: `TCP_INFO`
    /// `tcpi_bytes_received` less what was still unread in the socket (`SIOCINQ`).
    pub kernel_bytes: u64,
    /// Frame payload bytes decoded between the two points.
    pub payload_bytes: u64,
    /// Messages (frame headers of 40 bytes each) decoded between the two points.
    pub messages: u64,
    /// Connections that contributed (those where the kernel gave its count).
    pub connections: u64,
}

impl std::ops::AddAssign for WireCount {
    fn add_assign(&mut self, o: WireCount) {
        self.app_bytes += o.app_bytes;
        self.kernel_bytes += o.kernel_bytes;
        self.payload_bytes += o.payload_bytes;
        self.messages += o.messages;
        self.connections += o.connections;
    }
}

impl Default for LinkMetrics {
    fn default() -> Self {
        LinkMetrics {
            frames: 0,
            bytes: 0,
            late_frames: 0,
            sequence_gaps: 0,
            latency_us: latency_histogram(),
            uncorrected_latency_us: latency_histogram(),
            delay_variation_us: latency_histogram(),
            connect_us: latency_histogram(),
            handshake_us: latency_histogram(),
            ttff_us: latency_histogram(),
            recovery_us: latency_histogram(),
            transfer_us: latency_histogram(),
            connections: 0,
            reconnects: 0,
            errors: BTreeMap::new(),
            negotiated: None,
            wire: WireCount::default(),
        }
    }
}

/// Converts ns to whole µs, rounding up so that a non-zero latency never records as 0.
#[inline]
pub fn ns_to_us(ns: u64) -> u64 {
    ns.div_ceil(1000).max(1)
}

impl LinkMetrics {
    /// Counts one received frame: `recv_ns` is when its last byte was read.
    #[inline]
    pub fn record_frame(
        &mut self,
        payload_len: u32,
        scheduled_ns: u64,
        sent_ns: u64,
        recv_ns: u64,
        interval_ns: u64,
    ) {
        let corrected = recv_ns.saturating_sub(scheduled_ns);
        self.frames += 1;
        self.bytes += u64::from(payload_len);
        if corrected > interval_ns {
            self.late_frames += 1;
        }
        self.latency_us.record_us(ns_to_us(corrected));
        self.uncorrected_latency_us
            .record_us(ns_to_us(recv_ns.saturating_sub(sent_ns)));
    }

    /// Adds another link's figures into this one (histograms merge losslessly).
    pub fn merge(&mut self, o: &LinkMetrics) {
        self.frames += o.frames;
        self.bytes += o.bytes;
        self.late_frames += o.late_frames;
        self.sequence_gaps += o.sequence_gaps;
        self.connections += o.connections;
        self.reconnects += o.reconnects;
        for (a, b) in [
            (&mut self.latency_us, &o.latency_us),
            (&mut self.uncorrected_latency_us, &o.uncorrected_latency_us),
            (&mut self.delay_variation_us, &o.delay_variation_us),
            (&mut self.connect_us, &o.connect_us),
            (&mut self.handshake_us, &o.handshake_us),
            (&mut self.ttff_us, &o.ttff_us),
            (&mut self.recovery_us, &o.recovery_us),
            (&mut self.transfer_us, &o.transfer_us),
        ] {
            // Same bounds on both sides, so adding cannot fail; saturate if it ever did.
            if a.add(b).is_err() {
                for v in b.iter_recorded() {
                    a.record_us_n(v.value_iterated_to(), v.count_at_value());
                }
            }
        }
        for (k, v) in &o.errors {
            *self.errors.entry(k.clone()).or_default() += v;
        }
        if o.negotiated.is_some() {
            self.negotiated.clone_from(&o.negotiated);
        }
        self.wire += o.wire;
    }
}

/// What a sender counts for the window: frames offered to subscribers, frames and bytes
/// written, frames it had to drop.
#[derive(Debug, Default)]
pub(crate) struct SenderCounters {
    /// Frames scheduled in the window and offered to a subscriber (queued or dropped).
    pub(crate) frames_offered: AtomicU64,
    /// Frames written whose scheduled time is in the window.
    pub(crate) frames_sent: AtomicU64,
    /// Their payload bytes.
    pub(crate) bytes_sent: AtomicU64,
    /// Frames scheduled in the window and dropped because a subscriber's queue was full
    /// (or because the stream was waiting for a key frame after such a drop).
    pub(crate) dropped_frames: AtomicU64,
}

impl SenderCounters {
    /// A plain-number copy.
    pub(crate) fn snapshot(&self) -> SenderSnapshot {
        SenderSnapshot {
            frames_offered: self.frames_offered.load(Ordering::Relaxed),
            frames_sent: self.frames_sent.load(Ordering::Relaxed),
            bytes_sent: self.bytes_sent.load(Ordering::Relaxed),
            dropped_frames: self.dropped_frames.load(Ordering::Relaxed),
        }
    }
}

impl std::ops::AddAssign for SenderSnapshot {
    fn add_assign(&mut self, o: SenderSnapshot) {
        self.frames_offered += o.frames_offered;
        self.frames_sent += o.frames_sent;
        self.bytes_sent += o.bytes_sent;
        self.dropped_frames += o.dropped_frames;
    }
}

/// A copy of a sender's counts for the window, in plain numbers.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SenderSnapshot {
    /// Frames offered to subscribers in the window.
    pub frames_offered: u64,
    /// Frames written in the window.
    pub frames_sent: u64,
    /// Payload bytes written in the window.
    pub bytes_sent: u64,
    /// Frames dropped in the window.
    pub dropped_frames: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Found by the `histogram` fuzz target: 130 bytes whose inflated V2 header announces a
    /// payload of about 1 GB, which `hdrhistogram` allocated before reading.
    #[test]
    fn a_histogram_claiming_a_huge_payload_is_refused_without_allocating_it() {
        let text = "HISTFACAADp4nC2IsQ0AEBQFn6eUaLQG0f3NVDYwjklURmCDL+FfcZdcbj0JqPh4q3sWVTl2uP9\
                    GRkZGRkY6TUaoAQAAAAAA+/9FRkZGRj1GRkdGRkZGRkZGRkY6TUYIAAAAAAAAAEZGRkdGRg3\
                    ///92uP97FFX///8I9Q0NAQ4tLw==";
        assert!(decode_histogram(text).is_none());
    }

    /// Found by the `histogram` fuzz target: a zero run of `i64::MIN`, which hdrhistogram
    /// negates (overflow; a panic in builds with overflow checks). The input the fuzzer
    /// found also fails its zlib checksum, which is now checked before anything is read;
    /// the same run with nothing else wrong is refused too.
    #[test]
    fn a_zero_run_of_i64_min_is_refused() {
        use base64::Engine as _;
        let text = "HISTFACAADp4nC2IsQ0AEBQFn6eUaLQG0f3NVDYwjklURmCDL+FfcZdcbj0BqPh4q3sWVTl2\
                    uP8GAAAAezgWVQAAAAB2uP//////////PWdVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVV\
                    VVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVV\
                    VVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVV4ChcKP///wED/1U5Ag24FnurVTl2uP97FlX///8I\
                    9Q==";
        assert!(decode_histogram(text).is_none());
        // V2 without DEFLATE: payload of 9 bytes, no offset, 3 digits, 1..10 000, ratio 1.
        let mut plain = Vec::new();
        for word in [0x1c84_9313u32, 9, 0, 3] {
            plain.extend_from_slice(&word.to_be_bytes());
        }
        plain.extend_from_slice(&1u64.to_be_bytes());
        plain.extend_from_slice(&10_000u64.to_be_bytes());
        plain.extend_from_slice(&1f64.to_be_bytes());
        plain.extend_from_slice(&[0xff; 9]);
        let text = base64::engine::general_purpose::STANDARD.encode(&plain);
        assert!(decode_histogram(&text).is_none());
    }

    #[test]
    fn histograms_round_trip_and_garbage_is_refused() {
        let mut h = latency_histogram();
        for v in [1, 999, 1_000_000, 3_600_000_000] {
            h.record(v).expect("auto-resizing histogram");
        }
        let back = decode_histogram(&encode_histogram(&h)).expect("decodes");
        assert_eq!(back, h);
        assert!(decode_histogram("").is_none());
        assert!(decode_histogram("HISTFAAAAAA=").is_none());
        assert!(decode_histogram("not base64").is_none());
    }

    #[test]
    fn window_counts_only_scheduled_times_inside_it() {
        let w = Window::default();
        assert!(!w.contains(5));
        w.open(10);
        assert!(w.contains(10) && w.contains(1 << 60) && !w.contains(9));
        w.close(20);
        assert!(w.contains(19) && !w.contains(20));
        assert_eq!(w.bounds(), Some((10, 20)));
    }

    #[test]
    fn corrected_latency_counts_from_schedule_and_late_means_over_one_interval() {
        let mut m = LinkMetrics::default();
        // Due at 0, sent at 900 ms (sender stalled), received at 901 ms.
        m.record_frame(100, 0, 900_000_000, 901_000_000, 33_333_333);
        m.record_frame(100, 1_000_000_000, 1_000_000_000, 1_000_500_000, 33_333_333);
        assert_eq!(m.frames, 2);
        assert_eq!(m.bytes, 200);
        assert_eq!(m.late_frames, 1);
        assert!(m.latency_us.max() >= 900_000);
        assert!(
            m.uncorrected_latency_us.max() <= 1_001,
            "{}",
            m.uncorrected_latency_us.max()
        );
        let mut total = LinkMetrics::default();
        total.merge(&m);
        total.merge(&m);
        assert_eq!(total.frames, 4);
        assert_eq!(total.latency_us.len(), 4);
    }
}

/// Histograms of one shard of a [`Meter`].
#[derive(Debug)]
struct Shard {
    latency_us: Histogram<u64>,
    uncorrected_latency_us: Histogram<u64>,
    delay_variation_us: Histogram<u64>,
    connect_us: Histogram<u64>,
    handshake_us: Histogram<u64>,
    ttff_us: Histogram<u64>,
    recovery_us: Histogram<u64>,
    transfer_us: Histogram<u64>,
    /// Latency of the frames received since the sampler last took it.
    interval_latency_us: Histogram<u64>,
}

impl Default for Shard {
    fn default() -> Self {
        Shard {
            latency_us: latency_histogram(),
            uncorrected_latency_us: latency_histogram(),
            delay_variation_us: latency_histogram(),
            connect_us: latency_histogram(),
            handshake_us: latency_histogram(),
            ttff_us: latency_histogram(),
            recovery_us: latency_histogram(),
            transfer_us: latency_histogram(),
            interval_latency_us: latency_histogram(),
        }
    }
}

/// Adds `from` into `into`; the histograms share their bounds, so adding cannot fail, and
/// if it ever did the values are recorded one by one.
fn add_into(into: &mut Histogram<u64>, from: &Histogram<u64>) {
    if into.add(from).is_err() {
        for v in from.iter_recorded() {
            into.record_us_n(v.value_iterated_to(), v.count_at_value());
        }
    }
}

/// What a group of clients measures, shared by all of them.
#[derive(Debug)]
pub struct Meter {
    frames: AtomicU64,
    bytes: AtomicU64,
    late_frames: AtomicU64,
    sequence_gaps: AtomicU64,
    connections: AtomicU64,
    reconnects: AtomicU64,
    clients: AtomicU64,
    settled: AtomicU64,
    shards: Box<[Mutex<Shard>]>,
    errors: Mutex<BTreeMap<String, u64>>,
    negotiated: Mutex<Option<Negotiated>>,
    wire: Mutex<WireCount>,
}

/// The most shards a meter has: enough that the threads of a role rarely wait for each
/// other, few enough that a group's histograms stay small.
pub const MAX_SHARDS: usize = 4;

impl Meter {
    /// A meter for up to `clients` clients (at least one shard, at most [`MAX_SHARDS`]).
    pub fn new(clients: usize) -> Arc<Meter> {
        let shards = clients.clamp(1, MAX_SHARDS);
        Arc::new(Meter {
            frames: AtomicU64::new(0),
            bytes: AtomicU64::new(0),
            late_frames: AtomicU64::new(0),
            sequence_gaps: AtomicU64::new(0),
            connections: AtomicU64::new(0),
            reconnects: AtomicU64::new(0),
            clients: AtomicU64::new(0),
            settled: AtomicU64::new(0),
            shards: (0..shards).map(|_| Mutex::new(Shard::default())).collect(),
            errors: Mutex::new(BTreeMap::new()),
            negotiated: Mutex::new(None),
            wire: Mutex::new(WireCount::default()),
        })
    }

    /// A handle for the next client of the group: clients take the shards in turn.
    pub fn client(self: &Arc<Self>) -> ClientMeter {
        let index = self.clients.fetch_add(1, Ordering::Relaxed) as usize;
        ClientMeter {
            meter: self.clone(),
            shard: index % self.shards.len(),
        }
    }

    /// Clients that have taken a handle.
    pub fn clients(&self) -> u64 {
        self.clients.load(Ordering::Relaxed)
    }

    /// Clients that have settled: every stream flowing (or the client given up), a login
    /// done; see [`ClientMeter::settle`].
    pub fn settled(&self) -> u64 {
        self.settled.load(Ordering::Relaxed)
    }

    /// Connections its clients have set up so far.
    pub fn connections(&self) -> u64 {
        self.connections.load(Ordering::Relaxed)
    }

    /// Frames received so far (scheduled in the window), without copying anything.
    pub fn frames(&self) -> u64 {
        self.frames.load(Ordering::Relaxed)
    }

    /// Their payload bytes.
    pub fn bytes(&self) -> u64 {
        self.bytes.load(Ordering::Relaxed)
    }

    /// Adds the latency of the frames received since the last call into `into`, and starts
    /// the next interval (for per-second samples).
    pub fn take_interval(&self, into: &mut Histogram<u64>) {
        for shard in self.shards.iter() {
            if let Ok(mut s) = shard.lock() {
                add_into(into, &s.interval_latency_us);
                s.interval_latency_us.reset();
            }
        }
    }

    /// Everything the group measured so far, merged.
    pub fn snapshot(&self) -> LinkMetrics {
        let mut m = LinkMetrics {
            frames: self.frames(),
            bytes: self.bytes(),
            late_frames: self.late_frames.load(Ordering::Relaxed),
            sequence_gaps: self.sequence_gaps.load(Ordering::Relaxed),
            connections: self.connections.load(Ordering::Relaxed),
            reconnects: self.reconnects.load(Ordering::Relaxed),
            errors: self.errors.lock().map(|e| e.clone()).unwrap_or_default(),
            negotiated: self.negotiated.lock().ok().and_then(|n| n.clone()),
            wire: self.wire.lock().map(|w| *w).unwrap_or_default(),
            ..LinkMetrics::default()
        };
        for shard in self.shards.iter() {
            let Ok(s) = shard.lock() else { continue };
            add_into(&mut m.latency_us, &s.latency_us);
            add_into(&mut m.uncorrected_latency_us, &s.uncorrected_latency_us);
            add_into(&mut m.delay_variation_us, &s.delay_variation_us);
            add_into(&mut m.connect_us, &s.connect_us);
            add_into(&mut m.handshake_us, &s.handshake_us);
            add_into(&mut m.ttff_us, &s.ttff_us);
            add_into(&mut m.recovery_us, &s.recovery_us);
            add_into(&mut m.transfer_us, &s.transfer_us);
        }
        m
    }
}

/// One client's way into its group's [`Meter`].
#[derive(Clone, Debug)]
pub struct ClientMeter {
    meter: Arc<Meter>,
    shard: usize,
}

impl ClientMeter {
    /// A meter of its own, for a client measured alone.
    pub fn alone() -> ClientMeter {
        Meter::new(1).client()
    }

    /// The group's meter.
    pub fn meter(&self) -> &Arc<Meter> {
        &self.meter
    }

    fn shard(&self) -> Option<MutexGuard<'_, Shard>> {
        self.meter.shards.get(self.shard)?.lock().ok()
    }

    /// Counts one received frame: `recv_ns` is when its last byte was read;
    /// `variation_ns` its delay variation when the receiver tracks its stream (see
    /// [`LinkMetrics::delay_variation_us`]).
    #[inline]
    pub fn record_frame(
        &self,
        payload_len: u32,
        scheduled_ns: u64,
        sent_ns: u64,
        recv_ns: u64,
        interval_ns: u64,
        variation_ns: Option<u64>,
    ) {
        let m = &self.meter;
        let corrected = ns_to_us(recv_ns.saturating_sub(scheduled_ns));
        m.frames.fetch_add(1, Ordering::Relaxed);
        m.bytes.fetch_add(u64::from(payload_len), Ordering::Relaxed);
        if recv_ns.saturating_sub(scheduled_ns) > interval_ns {
            m.late_frames.fetch_add(1, Ordering::Relaxed);
        }
        if let Some(mut s) = self.shard() {
            s.latency_us.record_us(corrected);
            s.interval_latency_us.record_us(corrected);
            s.uncorrected_latency_us
                .record_us(ns_to_us(recv_ns.saturating_sub(sent_ns)));
            if let Some(v) = variation_ns {
                s.delay_variation_us.record_us(ns_to_us(v));
            }
        }
    }

    /// The client has settled: it has done what it does before steady state (every stream
    /// has delivered its first frame, a login is done) or has given up. Call once.
    pub fn settle(&self) {
        self.meter.settled.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts frames missing from a stream (a gap in its sequence numbers).
    pub fn record_gap(&self, frames: u64) {
        if frames > 0 {
            self.meter
                .sequence_gaps
                .fetch_add(frames, Ordering::Relaxed);
        }
    }

    /// Counts a connection set up (again, after a loss, when `reconnect`), with its TCP
    /// connect and (for TLS) handshake times and what the handshake negotiated.
    pub fn record_connection(
        &self,
        reconnect: bool,
        connect_ns: u64,
        handshake: Option<(u64, &Negotiated)>,
    ) {
        let m = &self.meter;
        m.connections.fetch_add(1, Ordering::Relaxed);
        if reconnect {
            m.reconnects.fetch_add(1, Ordering::Relaxed);
        }
        if let Some(mut s) = self.shard() {
            s.connect_us.record_us(ns_to_us(connect_ns));
            if let Some((ns, _)) = handshake {
                s.handshake_us.record_us(ns_to_us(ns));
            }
        }
        if let (Some((_, n)), Ok(mut slot)) = (handshake, m.negotiated.lock()) {
            *slot = Some(n.clone());
        }
    }

    /// A stream's time to first frame (subscribe → first key frame), ns.
    pub fn record_ttff(&self, ns: u64) {
        if let Some(mut s) = self.shard() {
            s.ttff_us.record_us(ns_to_us(ns));
        }
    }

    /// A stream's recovery after a lost connection (loss → first frame again), ns.
    pub fn record_recovery(&self, ns: u64) {
        if let Some(mut s) = self.shard() {
            s.recovery_us.record_us(ns_to_us(ns));
        }
    }

    /// A whole transfer (request → last byte of a configuration download), ns.
    pub fn record_transfer(&self, ns: u64) {
        if let Some(mut s) = self.shard() {
            s.transfer_us.record_us(ns_to_us(ns));
        }
    }

    /// Counts one failure of `category`.
    pub fn record_error(&self, category: &str) {
        if let Ok(mut e) = self.meter.errors.lock() {
            *e.entry(category.to_owned()).or_default() += 1;
        }
    }

    /// Adds one connection's kernel cross-check.
    pub fn add_wire(&self, count: WireCount) {
        if let Ok(mut w) = self.meter.wire.lock() {
            *w += count;
        }
    }
}
