//! Where a command writes its report, in which formats. One run writes any set of them;
//! `-` is standard output (one export at most; the terminal table is then left out).

use std::path::{Path, PathBuf};

use clap::Args;

use crate::export::ExportType;

/// The document exports every command that makes a report offers: JSON, Markdown, HTML.
#[derive(Clone, Debug, Default, Args)]
pub struct DocumentExportArgs {
    /// Write the whole report as JSON to FILE (`-` for standard output; the layout of run
    /// and bulk reports: harness/schema/report-v1.schema.json).
    #[arg(long = "export-json", visible_alias = "json", value_name = "FILE")]
    pub json: Option<PathBuf>,
    /// Write the report as Markdown tables (results, environment, warnings) to FILE.
    #[arg(long = "export-markdown", value_name = "FILE")]
    pub markdown: Option<PathBuf>,
    /// Write the report as one self-contained HTML page with plots to FILE (readable
    /// offline).
    #[arg(long = "export-html", value_name = "FILE")]
    pub html: Option<PathBuf>,
}

impl DocumentExportArgs {
    /// The exports asked for, by format.
    pub fn requested(&self) -> Vec<(ExportType, &Path)> {
        [
            (ExportType::Json, &self.json),
            (ExportType::Markdown, &self.markdown),
            (ExportType::Html, &self.html),
        ]
        .into_iter()
        .filter_map(|(kind, path)| Some((kind, path.as_deref()?)))
        .collect()
    }
}

/// The exports of a measuring run: the documents, plus per-second samples and histograms.
#[derive(Clone, Debug, Default, Args)]
pub struct ExportArgs {
    /// JSON, Markdown and HTML.
    #[command(flatten)]
    pub documents: DocumentExportArgs,
    /// Write per-second samples of every link, mode and repeat as NDJSON to FILE.
    #[arg(long = "export-ndjson", value_name = "FILE")]
    pub ndjson: Option<PathBuf>,
    /// Write HdrHistogram percentile distributions (.hgrm, values in ms) into DIR, one file
    /// per link, mode and latency kind.
    #[arg(long = "export-hgrm", value_name = "DIR")]
    pub hgrm: Option<PathBuf>,
    /// Write HdrHistogram interval logs (.hlog: the latency histogram of every second,
    /// values in ms, each repeat tagged) into DIR, one file per link and mode, for
    /// HdrHistogram's log tools.
    #[arg(long = "export-hlog", value_name = "DIR")]
    pub hlog: Option<PathBuf>,
}

impl ExportArgs {
    /// The exports asked for, by format.
    pub fn requested(&self) -> Vec<(ExportType, &Path)> {
        let mut out = self.documents.requested();
        out.extend(
            [
                (ExportType::Ndjson, &self.ndjson),
                (ExportType::Hgrm, &self.hgrm),
                (ExportType::Hlog, &self.hlog),
            ]
            .into_iter()
            .filter_map(|(kind, path)| Some((kind, path.as_deref()?))),
        );
        out
    }
}
