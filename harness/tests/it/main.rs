//! End-to-end tests of the `vmsbench` program: the real command line, run in-process or as
//! a child process, against real sockets on 127.0.0.1.

mod certificates;
mod checks;
mod common;
mod export;
mod run;
