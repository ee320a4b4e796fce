//! What the operating system tells about this machine and this process.

pub(crate) mod allocator;
pub mod cpu;
pub mod environment;
pub(crate) mod process;
