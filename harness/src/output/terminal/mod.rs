//! The tables printed on standard output at the end of each command: one per report
//! kind, all drawn with the one column renderer ([`crate::output::table`]).

mod capacity;
mod handshakes;
mod limits;
mod run;

pub(crate) use handshakes::{cell_row, cpu_cell};
pub(crate) use limits::{floor_rows, handshake_rows, record_rows, share_lines, summary_lines};
