//! One module per subcommand, each owning its arguments and its way from them to a result.

pub mod baseline;
pub mod capacity;
pub mod certs;
pub mod handshakes;
pub mod run;
pub mod scenarios;
