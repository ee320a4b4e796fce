//! vmsbench library.
pub mod environment;
pub mod process;
pub mod units;
