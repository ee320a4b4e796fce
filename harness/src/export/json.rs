//! The whole report as JSON: the documented interface. `schema_version` says which layout;
//! `harness/schema/report-v1.schema.json` (JSON Schema, draft 2020-12) describes version 1.

use super::{Export, ExportError, Exporter};
use crate::report::Report;

/// `--export-json` (alias `--json`).
#[derive(Debug, Default)]
pub struct JsonExporter;

impl Exporter for JsonExporter {
    fn export(&self, report: &Report) -> Result<Export, ExportError> {
        let mut text = serde_json::to_string_pretty(report).map_err(|e| ExportError::Render {
            flag: "--export-json",
            reason: e.to_string(),
        })?;
        text.push('\n');
        Ok(Export::Document(text.into_bytes()))
    }
}
