//! The whole report as JSON: the documented interface. `schema_version` says which layout;
//! `harness/schema/report-v1.schema.json` (JSON Schema, draft 2020-12) describes version 1 of
//! the run report.

use super::{Document, Export, ExportError, Exporter};

/// `--export-json` (alias `--json`).
#[derive(Debug, Default)]
pub(crate) struct JsonExporter;

impl Exporter for JsonExporter {
    fn export(&self, doc: Document<'_>) -> Result<Export, ExportError> {
        let mut text = doc.to_json().map_err(|e| ExportError::Render {
            flag: "--export-json",
            reason: e.to_string(),
        })?;
        text.push('\n');
        Ok(Export::Document(text.into_bytes()))
    }
}
