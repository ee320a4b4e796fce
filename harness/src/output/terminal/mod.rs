//! The tables printed on standard output at the end of each command: one per report
//! kind, all drawn with the one column renderer ([`crate::output::table`]).

mod capacity;
mod handshakes;
mod run;

pub(crate) use handshakes::{cell_row, cpu_cell};
