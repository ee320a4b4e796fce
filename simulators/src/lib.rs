//! The simulated roles of a video-management system (VMS), on real sockets.
//!
//! Data flows from the [`video`] model (what a camera produces and when) through a
//! [`role::recorder`] (a recording server) over the [`transport`] (plaintext or TLS,
//! with certificates from the deployment's [`pki`]) using the [`wire`] codec, to a
//! [`role::viewer`] that measures what arrived and when into [`metrics`].
//!
//! Nothing here knows about reports or the command line; the `vmsbench` harness does.
//!
//! # Layout
//!
//! One module per concern; no two files import each other.
//!
//! - [`clock`]: the run clock, the one monotonic time base (ns) every role of a run shares.
//! - [`wire`]: the wire codec: the 40-byte message header, message kinds, subscriptions.
//! - [`video`]: the video model: camera profiles, frame sizes and schedules, payload bytes.
//! - [`transport`]: TCP, plaintext or TLS: settings, client and server sides, streams and
//!   their byte counts, failure categories, and the hand-built TLS 1.1 client
//!   ([`transport::legacy`], also at [`legacy`]).
//! - [`verify`]: the client's check of server certificates (WebPKI plus weak-key and
//!   unknown-issuer diagnoses) and the client configurations that use it.
//! - [`pki`]: the deployment's certificate authority, host identities and the server
//!   configurations presenting them (reloadable, imported from PEM, or deliberately flawed).
//! - [`metrics`]: what the roles measure (latency histograms, per-link metrics, sender
//!   counts) and the window that decides which frames count.
//! - [`role`]: the VMS roles, each on its own runtime: recording server, viewer, bulk
//!   sender, management server and its clients, WAN link.

#![deny(unreachable_pub)]

pub mod clock;
#[doc(hidden)]
pub mod fuzz;
pub mod metrics;
pub mod pki;
pub mod role;
pub mod transport;
pub mod verify;
pub mod video;
pub mod wire;

/// The hand-built TLS 1.1 client of [`transport`], also at the crate root (its path before
/// the transport became a folder).
pub use transport::legacy;
