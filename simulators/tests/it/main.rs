//! Integration tests of the simulated roles over real sockets on 127.0.0.1.
//! One test binary (modules below) keeps link time down.

mod faults;
mod hostile;
mod interop;
mod lifecycle;
mod management;
mod pki;
mod streaming;
mod support;
mod verify;
