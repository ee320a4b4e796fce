//! Exports of a report. One command writes any set of them (`--export-json`,
//! `--export-markdown`, `--export-html`; for `run` and `bulk` also `--export-ndjson` and
//! `--export-hgrm`), each format behind the one [`Exporter`] trait, in the manner of
//! hyperfine's `export/` module. Every exporter serves every kind of report
//! ([`Document`]): a run (or bulk) report, a capacity search, the handshake matrix.
//!
//! `-` sends a document to standard output (one export at most; the terminal table is then
//! left out so that standard output stays machine-readable). `.hgrm` files are a directory
//! of files and cannot go to standard output. Files are written to a temporary name and
//! renamed, so that a reader never sees half a file.

pub(crate) mod hgrm;
pub(crate) mod hlog;
pub(crate) mod html;
pub(crate) mod json;
pub(crate) mod markdown;
pub(crate) mod ndjson;
#[cfg(test)]
pub(crate) mod tests;

use std::io::Write as _;
use std::path::{Path, PathBuf};

use crate::report::capacity::CapacityReport;
use crate::report::handshakes::HandshakesReport;
use crate::report::limits::LimitsReport;
use crate::report::Report;

/// A report any exporter can write.
#[derive(Clone, Copy, Debug)]
pub enum Document<'a> {
    /// What `run` or `bulk` measured.
    Run(&'a Report),
    /// A capacity search.
    Capacity(&'a CapacityReport),
    /// The handshake matrix.
    Handshakes(&'a HandshakesReport),
    /// This machine's ceilings.
    Limits(&'a LimitsReport),
}

impl Document<'_> {
    /// The command that made it (`run`, `bulk`, `capacity`, `handshakes`).
    pub fn command(&self) -> &str {
        match self {
            Document::Run(r) => &r.command,
            Document::Capacity(r) => &r.command,
            Document::Handshakes(r) => &r.command,
            Document::Limits(r) => &r.command,
        }
    }

    /// Whether the command was interrupted before it finished.
    pub fn partial(&self) -> bool {
        match self {
            Document::Run(r) => r.partial,
            Document::Capacity(r) => r.partial,
            Document::Handshakes(r) => r.partial,
            Document::Limits(r) => r.partial,
        }
    }

    /// The table printed on standard output (with a line per link and mode beside this
    /// machine's limits, when they were measured).
    pub fn terminal(&self) -> String {
        let (mut out, limits) = match self {
            Document::Run(r) => (r.render_table(), r.limits.as_ref()),
            Document::Capacity(r) => (r.render_table(), r.limits.as_ref()),
            Document::Handshakes(r) => (r.render_table(), None),
            Document::Limits(r) => (r.render_table(), None),
        };
        for line in crate::output::terminal::share_lines(limits) {
            out.push_str(&line);
            out.push('\n');
        }
        out
    }

    /// The report as JSON.
    pub fn to_json(self) -> serde_json::Result<String> {
        match self {
            Document::Run(r) => serde_json::to_string_pretty(r),
            Document::Capacity(r) => serde_json::to_string_pretty(r),
            Document::Handshakes(r) => serde_json::to_string_pretty(r),
            Document::Limits(r) => serde_json::to_string_pretty(r),
        }
    }

    /// The run report, for the formats only a run has (per-second samples, histograms):
    /// `flag` names the export that asked, in the error otherwise.
    fn run(&self, flag: &'static str) -> Result<&Report, ExportError> {
        match self {
            Document::Run(r) => Ok(r),
            _ => Err(ExportError::Render {
                flag,
                reason: format!(
                    "a {} report has no per-link samples or histograms",
                    self.command()
                ),
            }),
        }
    }
}

/// What an exporter makes of a report.
#[derive(Debug, PartialEq, Eq)]
pub enum Export {
    /// One document (for a file or standard output).
    Document(Vec<u8>),
    /// Several files, by name, for a directory.
    Files(Vec<(String, Vec<u8>)>),
}

/// A format a report can be exported in.
pub trait Exporter {
    /// Renders `doc`.
    fn export(&self, doc: Document<'_>) -> Result<Export, ExportError>;
}

/// Why an export failed; every message names the flag at fault.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    /// The file (or directory) could not be written.
    #[error("{flag} {}: {source}", path.display())]
    Write {
        /// The flag that asked for it.
        flag: &'static str,
        /// Where.
        path: PathBuf,
        /// What went wrong.
        source: std::io::Error,
    },
    /// The report could not be rendered.
    #[error("{flag}: cannot render the report: {reason}")]
    Render {
        /// The flag that asked for it.
        flag: &'static str,
        /// Why.
        reason: String,
    },
    /// Two exports asked for standard output.
    #[error("{first} and {second} both ask for standard output (-); only one export can go there")]
    TwoOnStdout {
        /// The first flag.
        first: &'static str,
        /// The second flag.
        second: &'static str,
    },
    /// A directory export was asked to go to standard output.
    #[error("{flag} writes one file per link and mode into a directory; give a directory, not -")]
    NotADocument {
        /// The flag.
        flag: &'static str,
    },
    /// The file's directory does not exist.
    #[error("{flag} {}: the directory {} does not exist", path.display(), dir.display())]
    NoDirectory {
        /// The flag.
        flag: &'static str,
        /// The file asked for.
        path: PathBuf,
        /// Its directory.
        dir: PathBuf,
    },
    /// Some exports failed; the others were written, and the measurement was kept.
    #[error("{}; {}", failed.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "), kept_note(kept.as_deref()))]
    Some {
        /// Each export that failed, with why.
        failed: Vec<ExportError>,
        /// Where the JSON report was kept when no JSON export was written.
        kept: Option<PathBuf>,
    },
}

/// Writes the export `kind` of `doc` to `path` (standard output for `-`).
fn write_one(kind: ExportType, path: &Path, doc: Document<'_>) -> Result<(), ExportError> {
    let flag = kind.flag();
    let fail = |p: &Path, source| ExportError::Write {
        flag,
        path: p.to_path_buf(),
        source,
    };
    match kind.exporter().export(doc)? {
        Export::Document(bytes) if is_stdout(path) => {
            let mut out = std::io::stdout().lock();
            out.write_all(&bytes)
                .and_then(|()| out.flush())
                .map_err(|e| fail(path, e))
        }
        Export::Document(bytes) => {
            crate::output::atomic::write(path, &bytes).map_err(|e| fail(path, e))
        }
        Export::Files(files) => {
            std::fs::create_dir_all(path).map_err(|e| fail(path, e))?;
            for (name, bytes) in files {
                let file = path.join(name);
                crate::output::atomic::write(&file, &bytes).map_err(|e| fail(&file, e))?;
            }
            Ok(())
        }
    }
}

/// What a partial failure says about the measurement.
fn kept_note(kept: Option<&Path>) -> String {
    match kept {
        Some(p) => format!(
            "the other exports were written, and the whole report is kept in {}",
            p.display()
        ),
        None => "the other exports were written, the JSON report among them".into(),
    }
}

/// The export formats.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExportType {
    /// The whole report as JSON (`schema_version` 1; `harness/schema/report-v1.schema.json`).
    Json,
    /// Tables for pull-request comments and wikis.
    Markdown,
    /// One self-contained page with plots.
    Html,
    /// One JSON object per line: each link's figures per second of each window.
    Ndjson,
    /// HdrHistogram percentile distributions, one file per link, mode and latency kind.
    Hgrm,
    /// HdrHistogram interval logs of the per-second latency histograms, one file per link
    /// and mode.
    Hlog,
}

impl ExportType {
    /// The flag that asks for it.
    pub fn flag(self) -> &'static str {
        match self {
            ExportType::Json => "--export-json",
            ExportType::Markdown => "--export-markdown",
            ExportType::Html => "--export-html",
            ExportType::Ndjson => "--export-ndjson",
            ExportType::Hgrm => "--export-hgrm",
            ExportType::Hlog => "--export-hlog",
        }
    }

    /// Its exporter.
    pub fn exporter(self) -> Box<dyn Exporter> {
        match self {
            ExportType::Json => Box::new(json::JsonExporter),
            ExportType::Markdown => Box::new(markdown::MarkdownExporter),
            ExportType::Html => Box::new(html::HtmlExporter),
            ExportType::Ndjson => Box::new(ndjson::NdjsonExporter),
            ExportType::Hgrm => Box::new(hgrm::HgrmExporter),
            ExportType::Hlog => Box::new(hlog::HlogExporter),
        }
    }

    /// Whether it writes a directory rather than one document.
    fn is_directory(self) -> bool {
        matches!(self, ExportType::Hgrm | ExportType::Hlog)
    }
}

/// The exports one run asked for.
#[derive(Debug, Default)]
pub struct ExportManager {
    targets: Vec<(ExportType, PathBuf)>,
}

fn is_stdout(path: &Path) -> bool {
    path == Path::new("-")
}

impl ExportManager {
    /// The exports of the flags, checked before anything is measured: at most one to
    /// standard output, directories that exist.
    pub fn new(requested: Vec<(ExportType, &Path)>) -> Result<ExportManager, ExportError> {
        let mut m = ExportManager::default();
        for (kind, path) in requested {
            m.add(kind, path.to_path_buf())?;
        }
        Ok(m)
    }

    /// Adds one export.
    pub fn add(&mut self, kind: ExportType, path: PathBuf) -> Result<(), ExportError> {
        if is_stdout(&path) {
            if kind.is_directory() {
                return Err(ExportError::NotADocument { flag: kind.flag() });
            }
            if let Some((first, _)) = self.targets.iter().find(|(_, p)| is_stdout(p)) {
                return Err(ExportError::TwoOnStdout {
                    first: first.flag(),
                    second: kind.flag(),
                });
            }
        } else if !kind.is_directory() {
            let dir = match path.parent() {
                Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
                _ => PathBuf::from("."),
            };
            if !dir.is_dir() {
                return Err(ExportError::NoDirectory {
                    flag: kind.flag(),
                    path,
                    dir,
                });
            }
        }
        self.targets.push((kind, path));
        Ok(())
    }

    /// Whether some export goes to standard output.
    pub fn uses_stdout(&self) -> bool {
        self.targets.iter().any(|(_, p)| is_stdout(p))
    }

    /// Whether any export was asked for.
    pub fn is_empty(&self) -> bool {
        self.targets.is_empty()
    }

    /// Writes every export of `doc`. One that fails does not stop the others; when any
    /// failed and no JSON export was written, the JSON report is kept in a file of the
    /// temporary directory, which the error names, so that no measurement is lost.
    pub fn write_all(&self, doc: Document<'_>) -> Result<(), ExportError> {
        let mut failed = Vec::new();
        let mut json_written = false;
        for (kind, path) in &self.targets {
            match write_one(*kind, path, doc) {
                Ok(()) => json_written |= *kind == ExportType::Json && !is_stdout(path),
                Err(e) => failed.push(e),
            }
        }
        if failed.is_empty() {
            return Ok(());
        }
        let kept = if json_written {
            None
        } else {
            let path = std::env::temp_dir().join(format!(
                "vmsbench-report-{}-{}.json",
                std::process::id(),
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_secs())
            ));
            match write_one(ExportType::Json, &path, doc) {
                Ok(()) => Some(path),
                Err(e) => {
                    failed.push(e);
                    None
                }
            }
        };
        Err(ExportError::Some { failed, kept })
    }
}
