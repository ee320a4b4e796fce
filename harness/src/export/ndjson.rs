//! Interval samples as NDJSON: one JSON object per line, per second of each window, per
//! repeat, mode and link, in the order they were taken:
//!
//! ```json
//! {"t_s":1.0,"repeat":1,"mode":"tls","link":"viewer-recorder","goodput_mbit_s":70.8,"frames":406,"latency_us":{"p50":142,"p99":2380,"max":2519},"interval_s":1.0}
//! ```
//!
//! `t_s` is the end of the interval in seconds after the window opened; frames count when
//! they are received (of those scheduled in the window), so goodput per second shows
//! stalls and bursts that the window's average hides.

use super::{Document, Export, ExportError, Exporter};

/// `--export-ndjson`.
#[derive(Debug, Default)]
pub(crate) struct NdjsonExporter;

impl Exporter for NdjsonExporter {
    fn export(&self, doc: Document<'_>) -> Result<Export, ExportError> {
        let report = doc.run("--export-ndjson")?;
        let mut out = String::new();
        for i in &report.intervals {
            let line = serde_json::to_string(i).map_err(|e| ExportError::Render {
                flag: "--export-ndjson",
                reason: e.to_string(),
            })?;
            out.push_str(&line);
            out.push('\n');
        }
        Ok(Export::Document(out.into_bytes()))
    }
}
