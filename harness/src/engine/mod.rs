//! The measuring engine: a scenario brought to life on real sockets, phase by phase.

pub(crate) mod capacity;
pub(crate) mod control;
pub(crate) mod credentials;
pub(crate) mod deployment;
pub(crate) mod pinning;
pub(crate) mod sampler;
pub mod scenario;
pub(crate) mod watcher;
