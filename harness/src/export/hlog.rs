//! HdrHistogram interval logs (`.hlog`), the format HdrHistogram's `HistogramLogWriter`
//! writes and its log processors and plotters read: one file per link and mode,
//! `DIR/viewer-recorder.tls.latency.hlog`, holding the frame-latency histogram of every
//! second of every window (corrected for coordinated omission), each line tagged with its
//! repeat (`r1`, `r2`, …).
//!
//! Each histogram is written in the compressed V2 encoding, unaltered: a tool that adds
//! the intervals gets exactly the counts vmsbench measured. Histograms are recorded in µs;
//! the log's `MaxValueDivisor` of 1000 makes the maximum column milliseconds. Interval
//! start times are seconds after the window of their repeat opened; `StartTime` is when
//! the run started.

use std::time::Duration;

use hdrhistogram::serialization::interval_log::{IntervalLogWriterBuilder, Tag};
use hdrhistogram::serialization::V2DeflateSerializer;

use super::hgrm::{file_safe, OUTPUT_SCALING};
use super::{Document, Export, ExportError, Exporter};
use crate::report::{decode_histogram, IntervalRecord};

/// `--export-hlog DIR`.
#[derive(Debug, Default)]
pub(crate) struct HlogExporter;

impl Exporter for HlogExporter {
    fn export(&self, doc: Document<'_>) -> Result<Export, ExportError> {
        let report = doc.run("--export-hlog")?;
        let fail = |reason: String| ExportError::Render {
            flag: "--export-hlog",
            reason,
        };
        let started = humantime::parse_rfc3339(&report.started_at)
            .map_err(|e| fail(format!("started_at {:?}: {e}", report.started_at)))?;
        let mut logs: Vec<((String, String), Vec<&IntervalRecord>)> = Vec::new();
        for i in &report.intervals {
            let key = (i.link.clone(), i.mode.to_string());
            match logs.iter_mut().find(|(k, _)| *k == key) {
                Some((_, v)) => v.push(i),
                None => logs.push((key, vec![i])),
            }
        }
        let mut files = Vec::new();
        for ((link, mode), intervals) in logs {
            let mut bytes = Vec::new();
            let mut serializer = V2DeflateSerializer::new();
            let mut log = IntervalLogWriterBuilder::new()
                .add_comment(&format!(
                    "vmsbench frame latency of {link} ({mode}), per second, µs; tags are repeats"
                ))
                .with_start_time(started)
                .with_base_time(started)
                .with_max_value_divisor(OUTPUT_SCALING)
                .begin_log_with(&mut bytes, &mut serializer)
                .map_err(|e| fail(e.to_string()))?;
            for i in intervals {
                let Some(h) = i.histogram.as_deref().and_then(decode_histogram) else {
                    continue;
                };
                let start = Duration::from_secs_f64((i.t_s - i.interval_s).max(0.0));
                let name = format!("r{}", i.repeat);
                let tag = Tag::new(&name);
                log.write_histogram(&h, start, Duration::from_secs_f64(i.interval_s), tag)
                    .map_err(|e| fail(format!("{link} {mode}: {e:?}")))?;
            }
            drop(log);
            let name = format!("{}.{mode}.latency.hlog", file_safe(&link));
            files.push((name, bytes));
        }
        Ok(Export::Files(files))
    }
}
