//! End-to-end tests of the `vmsbench` program: the real command line, run in-process or as
//! a child process, against real sockets on 127.0.0.1. One test binary: each module is a
//! topic.

mod baseline;
mod capacity;
mod certificates;
mod certs;
mod checks;
mod containers;
mod distributed;
mod export;
mod handshakes;
mod interop;
mod limits;
mod run;
mod scenarios;
mod soak;
mod support;
mod wan;
