//! Scenario files (TOML) and the built-in presets.
//!
//! A scenario file describes one deployment by hand: its servers (`[management]`,
//! `[[recorder]]`, `[[failover]]`, `[event_server]`, `[mobile_server]`), their clients
//! (`[[viewer]]`, `[[integration]]`, `[[phone]]`, `[[collector]]`), what happens during the
//! run (`[[event]]`), what TLS may negotiate (`[tls]`), which encryption groups the TLS phase
//! turns on (`[encryption]`) and how the roles run (`[run]`). Quantities take the units
//! people type (`"5s"`, `"4MiB"`, `"4Mbit"`, `"10k"`). The presets in `harness/presets/`
//! are commented examples of every part; `vmsbench scenarios small` prints one to start from.
//!
//! [`parse`] reads the text into raw tables that mirror the file (`raw`) and then resolves
//! them into the checked [`Scenario`] (`resolve`): every mistake — TOML syntax, an unknown
//! field, an impossible value, a reference to a host that does not exist, a setup the seed
//! system refuses — is one [`ScenarioError`] naming the file, line and column and what
//! would be valid.

use std::fmt;
use std::ops::Range;
use std::path::Path;

use super::Scenario;

mod raw;
mod resolve;
mod scale;

pub use scale::parse_scale;

/// A scenario that could not be loaded: where and why.
///
/// Displayed as `origin:line:column: message`, or `origin: message` when the problem has
/// no position (a file that cannot be read, an unknown preset name): then `line` and
/// `column` are 0.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScenarioError {
    /// The file's path, or `preset NAME` for a built-in preset.
    pub origin: String,
    /// 1-based line (0: no position).
    pub line: usize,
    /// 1-based column, in characters (0: no position).
    pub column: usize,
    /// What is wrong and what would be valid.
    pub message: String,
}

impl fmt::Display for ScenarioError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            write!(f, "{}: {}", self.origin, self.message)
        } else {
            write!(
                f,
                "{}:{}:{}: {}",
                self.origin, self.line, self.column, self.message
            )
        }
    }
}

impl std::error::Error for ScenarioError {}

/// The built-in presets, smallest first, with their TOML text (`harness/presets/NAME.toml`,
/// compiled into the binary so that they work anywhere).
const PRESETS: &[(&str, &str)] = &[
    ("small", include_str!("../../../../presets/small.toml")),
    ("medium", include_str!("../../../../presets/medium.toml")),
    ("large", include_str!("../../../../presets/large.toml")),
    (
        "multi-site",
        include_str!("../../../../presets/multi-site.toml"),
    ),
    (
        "mixed-integrations",
        include_str!("../../../../presets/mixed-integrations.toml"),
    ),
    (
        "certificate-incidents",
        include_str!("../../../../presets/certificate-incidents.toml"),
    ),
    (
        "connections-8k",
        include_str!("../../../../presets/connections-8k.toml"),
    ),
];

/// The built-in presets' names, smallest first.
pub const PRESET_NAMES: &[&str] = &[
    "small",
    "medium",
    "large",
    "multi-site",
    "mixed-integrations",
    "certificate-incidents",
    "connections-8k",
];

/// The preset `vmsbench run` uses when no scenario is named.
pub const DEFAULT_PRESET: &str = "small";

/// The TOML text of preset `name`.
pub fn preset_text(name: &str) -> Option<&'static str> {
    PRESETS
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, text)| *text)
}

/// Loads a preset by name, or else a scenario file by path.
///
/// A preset name wins over a file of the same name in the current directory; write
/// `./small` (or anything with a `/` or a `.toml` ending) to mean the file.
pub fn load(spec: &str) -> Result<Scenario, ScenarioError> {
    let looks_like_path =
        spec.contains(std::path::MAIN_SEPARATOR) || spec.contains('/') || spec.ends_with(".toml");
    if !looks_like_path && preset_text(spec).is_some() {
        return load_preset(spec);
    }
    let path = Path::new(spec);
    if looks_like_path || path.exists() {
        return load_path(path);
    }
    Err(ScenarioError {
        origin: spec.to_owned(),
        line: 0,
        column: 0,
        message: format!(
            "no preset of that name and no such file; presets are: {} (or give the path of a .toml file)",
            PRESET_NAMES.join(", ")
        ),
    })
}

/// The built-in preset `name` (one of [`PRESET_NAMES`]).
pub fn load_preset(name: &str) -> Result<Scenario, ScenarioError> {
    match preset_text(name) {
        Some(text) => parse(text, &format!("preset {name}")),
        None => Err(ScenarioError {
            origin: format!("preset {name}"),
            line: 0,
            column: 0,
            message: format!("no such preset; presets are: {}", PRESET_NAMES.join(", ")),
        }),
    }
}

/// Reads and resolves the scenario file at `path`.
pub fn load_path(path: &Path) -> Result<Scenario, ScenarioError> {
    let origin = path.display().to_string();
    match std::fs::read_to_string(path) {
        Ok(text) => parse(&text, &origin),
        Err(e) => Err(ScenarioError {
            origin,
            line: 0,
            column: 0,
            message: format!("cannot read the scenario file: {e}"),
        }),
    }
}

/// Parses and resolves scenario `text`; `origin` names it in errors (a path, or `preset
/// NAME`). A file without `name = "…"` is named after `origin`'s file stem.
pub fn parse(text: &str, origin: &str) -> Result<Scenario, ScenarioError> {
    let src = Source { text, origin };
    let raw: raw::RawScenario = toml::from_str(text).map_err(|e| src.toml_error(&e))?;
    resolve::resolve(raw, &src)
}

/// The text being resolved and its name: turns byte spans into positioned errors.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Source<'a> {
    text: &'a str,
    origin: &'a str,
}

impl Source<'_> {
    /// An error at the start of `span` (a byte range into the text).
    fn error(&self, span: Range<usize>, message: impl Into<String>) -> ScenarioError {
        let (line, column) = self.position(span.start);
        ScenarioError {
            origin: self.origin.to_owned(),
            line,
            column,
            message: message.into(),
        }
    }

    /// An error about the whole file (line 1, column 1).
    fn error_at_top(&self, message: impl Into<String>) -> ScenarioError {
        self.error(0..0, message)
    }

    /// A TOML syntax or type error, at the span toml reports.
    fn toml_error(&self, e: &toml::de::Error) -> ScenarioError {
        self.error(e.span().unwrap_or(0..0), tidy_toml_message(e.message()))
    }

    /// 1-based line and column (in characters) of byte `offset`.
    fn position(&self, offset: usize) -> (usize, usize) {
        let mut offset = offset.min(self.text.len());
        while !self.text.is_char_boundary(offset) {
            offset -= 1;
        }
        let before = &self.text[..offset];
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        let line = before.matches('\n').count() + 1;
        let column = before[line_start..].chars().count() + 1;
        (line, column)
    }

    /// The byte span of the key in `key = value`, given the value's span: for errors about
    /// a setting as a whole rather than its value. Falls back to the value's span.
    fn key_span(&self, value: Range<usize>) -> Range<usize> {
        let line_start = self.text[..value.start.min(self.text.len())]
            .rfind('\n')
            .map_or(0, |i| i + 1);
        let before = &self.text[line_start..value.start.min(self.text.len())];
        let Some(eq) = before.trim_end().strip_suffix('=') else {
            return value;
        };
        let key = eq.trim_end();
        // The key is the last token before `=`: a bare or dotted key, possibly quoted.
        let start = key
            .rfind(|c: char| c.is_whitespace() || c == '{' || c == ',')
            .map_or(0, |i| i + 1);
        if start >= key.len() {
            return value;
        }
        line_start + start..line_start + key.len()
    }
}

/// toml's messages, with serde's Rust type names replaced by what a file's author writes.
fn tidy_toml_message(message: &str) -> String {
    let m = message.trim_end();
    let m = m
        .replace("invalid type: map,", "invalid type: table,")
        .replace("invalid type: sequence,", "invalid type: array,");
    m.replace("expected f64", "expected a number")
        .replace("expected a sequence", "expected an array")
}
