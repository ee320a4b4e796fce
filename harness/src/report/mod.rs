//! The report model: per link and mode what was measured, what TLS cost, and what a reader
//! must know before trusting it; the same for a capacity search and the handshake matrix.
//!
//! The JSON form of each report is the documented interface (`schema_version` says which
//! layout); the terminal table (`output/terminal`) and the exports
//! (`export/`) are rendered from the same structures.
//!
//! - `run`: the records of a `run` or `bulk` report; `collect` builds them from the
//!   phases' outcomes, with the cost of TLS per link; `warnings` and `verdicts` hold the
//!   rules that decide what to trust.
//! - `capacity` and `objective`: a capacity search's report and the objective its steps
//!   are held to; `handshakes`: the handshake matrix's report; `limits`: this machine's
//!   ceilings, and a run's figures beside them.
//! - `stats`: medians and spreads.

pub(crate) mod capacity;
pub(crate) mod collect;
pub(crate) mod handshakes;
pub(crate) mod interval;
pub(crate) mod limits;
pub(crate) mod objective;
pub(crate) mod run;
pub(crate) mod shares;
pub(crate) mod soak;
pub(crate) mod stats;
pub(crate) mod verdicts;
pub(crate) mod warnings;

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};
use simulators::transport::Negotiated;

pub(crate) use collect::Collector;
pub(crate) use run::*;

/// Version of the JSON layout. Bumped when a field changes meaning or type; fields may be
/// added without a bump. `harness/schema/report-v1.schema.json` describes version 1.
pub const SCHEMA_VERSION: u32 = 1;

pub use simulators::metrics::{decode_histogram, encode_histogram};

/// Latency percentiles in µs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Percentiles {
    /// Median.
    pub p50: u64,
    /// 90th percentile.
    pub p90: u64,
    /// 99th percentile.
    pub p99: u64,
    /// 99.9th percentile.
    pub p999: u64,
    /// Largest value.
    pub max: u64,
}

impl Percentiles {
    /// Percentiles of a histogram (all zero when it is empty).
    pub fn of(h: &Histogram<u64>) -> Self {
        if h.is_empty() {
            return Percentiles::default();
        }
        Percentiles {
            p50: h.value_at_quantile(0.5),
            p90: h.value_at_quantile(0.9),
            p99: h.value_at_quantile(0.99),
            p999: h.value_at_quantile(0.999),
            max: h.max(),
        }
    }
}

/// What TLS negotiated on a link.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TlsInfo {
    /// Protocol version, e.g. `TLSv1_3`.
    pub version: String,
    /// Cipher suite.
    pub suite: String,
    /// Key-exchange group.
    pub group: String,
}

impl From<&Negotiated> for TlsInfo {
    fn from(n: &Negotiated) -> Self {
        TlsInfo {
            version: n.version.clone(),
            suite: n.suite.clone(),
            group: n.group.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use simulators::metrics::{latency_histogram, RecordUs as _};

    /// A deterministic spread of latencies, 1 µs to about 30 s, heavy-tailed like the real
    /// ones: mostly small, some very large.
    fn latencies(n: usize) -> Vec<u64> {
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        (0..n)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                let magnitude = (x % 25) as u32;
                1 + (x >> 32) % (1u64 << magnitude)
            })
            .collect()
    }

    #[test]
    fn parts_encoded_decoded_and_added_equal_the_histogram_of_the_whole() {
        let values = latencies(200_000);
        let mut whole = latency_histogram();
        for v in &values {
            whole.record_us(*v);
        }
        // Seven parts of unequal sizes, as agents with different loads would send them;
        // each grows only to its own largest value.
        let mut merged = latency_histogram();
        let mut rest = values.as_slice();
        for size in [1, 10, 1_000, 9_000, 40_000, 60_000] {
            let (part, tail) = rest.split_at(size);
            rest = tail;
            let mut h = latency_histogram();
            for v in part {
                h.record_us(*v);
            }
            let text = encode_histogram(&h);
            let decoded = decode_histogram(&text).expect("decodes");
            assert_eq!(decoded, h, "the encoding loses nothing");
            merged.add(&decoded).expect("one configuration everywhere");
        }
        let mut last = latency_histogram();
        for v in rest {
            last.record_us(*v);
        }
        merged
            .add(decode_histogram(&encode_histogram(&last)).expect("decodes"))
            .expect("adds");

        assert_eq!(merged.len(), values.len() as u64);
        assert_eq!(
            merged
                .iter_recorded()
                .map(|v| (v.value_iterated_to(), v.count_at_value()))
                .collect::<Vec<_>>(),
            whole
                .iter_recorded()
                .map(|v| (v.value_iterated_to(), v.count_at_value()))
                .collect::<Vec<_>>(),
            "every bucket's count is the same"
        );
        for q in [0.5, 0.9, 0.99, 0.999, 1.0] {
            assert_eq!(
                merged.value_at_quantile(q),
                whole.value_at_quantile(q),
                "q {q}"
            );
        }
        assert_eq!((merged.min(), merged.max()), (whole.min(), whole.max()));
    }
}
