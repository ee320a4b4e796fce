//! The simulated roles of a video-management system (VMS), on real sockets.
//!
//! Data flows from the [`video`] model (what a camera produces and when) through a
//! [`role::recorder`] (a recording server) over the [`transport`] (plaintext or TLS,
//! with certificates from the deployment's [`pki`]) using the [`wire`] codec, to a
//! [`role::viewer`] that measures what arrived and when into [`metrics`].
//!
//! Nothing here knows about reports or the command line; the `vmsbench` harness does.

pub mod clock;
pub mod legacy;
pub mod metrics;
pub mod pki;
pub mod role;
pub mod transport;
pub mod verify;
pub mod video;
pub mod wire;
