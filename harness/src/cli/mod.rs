//! Arguments that several commands share, and the parsers of the values people type
//! (`10s`, `64KiB`, `1k`). Each command owns its own arguments (in `commands/`); what lives
//! here names no command.

mod export;
mod limits;
mod measure;
mod parse;
mod placement;
mod tls;

pub use export::{DocumentExportArgs, ExportArgs};
pub use limits::{parse_budget, WithLimitsArgs};
pub use measure::{
    parse_multiplier, MeasureArgs, ModeArg, MAX_MULTIPLIER, MAX_REPEAT, MAX_WARMUP, MAX_WINDOW,
    MIN_SCALED_WARMUP, MIN_WINDOW,
};
pub use parse::{
    count_within, duration_within, parse_frame_size, parse_positive_u32, parse_positive_usize,
    parse_u32_count, parse_usize_count,
};
pub use placement::{HostTarget, PlacementArgs, DEFAULT_CONTROL_PORT};
pub use tls::{ThreadArgs, TlsArgs};
