//! HdrHistogram percentile distributions (`.hgrm`), the text layout HdrHistogram's
//! `outputPercentileDistribution` writes and its plotters read, one file per link, mode and
//! kind of latency: `DIR/viewer-recorder.tls.latency_ms.hgrm` (corrected for coordinated
//! omission: last byte read − scheduled time) and
//! `DIR/viewer-recorder.tls.uncorrected_latency_ms.hgrm` (last byte read − sent time).
//!
//! The histograms are recorded in µs and written with an output scaling ratio of 1000, the
//! usual convention, so values are **milliseconds** with three decimals (µs resolution),
//! as the unit in the file name says and as HdrHistogram's plotters label their axis. Each
//! file describes every repeat of its link and mode merged.

use std::fmt::Write as _;

use hdrhistogram::Histogram;

use super::{Document, Export, ExportError, Exporter};

/// µs per output unit (ms).
pub(crate) const OUTPUT_SCALING: f64 = 1000.0;
/// Percentile ticks per halving distance, as HdrHistogram's own tools default to.
pub(crate) const TICKS_PER_HALF_DISTANCE: u32 = 5;

/// `--export-hgrm DIR`.
#[derive(Debug, Default)]
pub(crate) struct HgrmExporter;

impl Exporter for HgrmExporter {
    fn export(&self, doc: Document<'_>) -> Result<Export, ExportError> {
        let report = doc.run("--export-hgrm")?;
        let mut files = Vec::new();
        for h in &report.histograms {
            for (kind, hist) in [
                ("latency_ms", h.latency()),
                ("uncorrected_latency_ms", h.uncorrected_latency()),
            ] {
                let hist = hist.ok_or_else(|| ExportError::Render {
                    flag: "--export-hgrm",
                    reason: format!("the {} {} histogram does not decode", h.link, h.mode),
                })?;
                let name = format!("{}.{}.{kind}.hgrm", file_safe(&h.link), h.mode);
                files.push((
                    name,
                    percentile_distribution(&hist, OUTPUT_SCALING).into_bytes(),
                ));
            }
        }
        Ok(Export::Files(files))
    }
}

/// Link ids are already file-safe; anything else is replaced, to be sure.
pub(crate) fn file_safe(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// The percentile distribution of `h` as HdrHistogram's `outputPercentileDistribution`
/// prints it, values divided by `scaling`.
pub(crate) fn percentile_distribution(h: &Histogram<u64>, scaling: f64) -> String {
    let digits = usize::from(h.sigfig());
    let mut out = String::new();
    let _ = write!(
        out,
        "{:>12} {:>14} {:>10} {:>14}\n\n",
        "Value", "Percentile", "TotalCount", "1/(1-Percentile)"
    );
    let mut total = 0u64;
    if !h.is_empty() {
        for v in h.iter_quantiles(TICKS_PER_HALF_DISTANCE) {
            total += v.count_since_last_iteration();
            let q = v.quantile_iterated_to();
            let value = v.value_iterated_to() as f64 / scaling;
            if q < 1.0 {
                let _ = writeln!(
                    out,
                    "{value:12.digits$} {q:2.12} {total:10} {:14.2}",
                    1.0 / (1.0 - q)
                );
            } else {
                let _ = writeln!(out, "{value:12.digits$} {q:2.12} {total:10}");
            }
        }
    }
    let (mean, stdev, max) = if h.is_empty() {
        (0.0, 0.0, 0.0)
    } else {
        (
            h.mean() / scaling,
            h.stdev() / scaling,
            h.max() as f64 / scaling,
        )
    };
    let _ = writeln!(
        out,
        "#[Mean    = {mean:12.digits$}, StdDeviation   = {stdev:12.digits$}]"
    );
    let _ = writeln!(
        out,
        "#[Max     = {max:12.digits$}, Total count    = {:12}]",
        h.len()
    );
    let _ = writeln!(
        out,
        "#[Buckets = {:12}, SubBuckets     = {:12}]",
        h.buckets(),
        sub_buckets(h.sigfig())
    );
    out
}

/// HdrHistogram's sub-bucket count for `sigfig` significant digits.
fn sub_buckets(sigfig: u8) -> u64 {
    let single_unit = 2 * 10u64.pow(u32::from(sigfig));
    single_unit.next_power_of_two()
}
