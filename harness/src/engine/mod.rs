//! The measuring engine: a scenario brought to life on real sockets, phase by phase.

pub mod capacity;
pub mod credentials;
pub mod deployment;
pub mod sampler;
pub mod scenario;
pub mod watcher;
