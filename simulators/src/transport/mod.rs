//! The transport every link uses: TCP, either plaintext or wrapped in TLS (rustls with the
//! aws-lc-rs provider, always passed explicitly).
//!
//! [`TlsSettings`] pins what may be negotiated (versions, suites, key-exchange groups);
//! [`Negotiated`] records what actually was. A comparison of plaintext and TLS is only
//! meaningful when both are known, so every connection reports them.
//!
//! One file per part; each imports only parts listed above it:
//!
//! - `settings`: [`Mode`], what TLS may negotiate ([`TlsSettings`], [`TlsVersion`],
//!   [`Cipher`], [`KxGroup`], [`SettingsError`]) and what it did ([`Negotiated`]).
//! - `error`: why a connection failed ([`FailureCategory`], [`ConnectError`],
//!   [`explain`]), including failures vmsbench's own checks diagnose (`Diagnosis`).
//! - `readahead`: reads that lend their buffer out while a connection waits
//!   ([`ReadAhead`], [`ReadAheadReader`]).
//! - `stream`: a connected [`Stream`] over a byte-counting socket ([`CountedTcp`]) and
//!   its byte counts, the application's and the kernel's ([`ByteCounter`]).
//! - `handshake`: the deadline every handshake runs under ([`HANDSHAKE_TIMEOUT`]).
//! - [`legacy`]: a hand-built client that offers only TLS 1.1.
//! - `listener`: the server side ([`Listener`], [`Incoming`], [`Accepted`]).
//! - `connector`: the client side ([`Connector`], [`Connected`]).
//! - `direct`: a server connection written from any thread with no task in between
//!   ([`DirectIo`], [`Sent`]).
//! - [`memory`]: a client and a server connected in memory, no socket: the record layer
//!   alone ([`memory::TlsPair`]).

mod connector;
mod direct;
mod error;
mod handshake;
pub mod legacy;
mod listener;
pub mod memory;
mod readahead;
mod settings;
mod stream;

pub use connector::{Connected, Connector};
pub use direct::{DirectIo, Sent};
pub(crate) use error::Diagnosis;
pub use error::{explain, ConnectError, FailureCategory};
pub use handshake::HANDSHAKE_TIMEOUT;
pub use listener::{Accepted, Incoming, Listener};
pub use readahead::{ReadAhead, ReadAheadReader, READ_AHEAD};
pub use settings::{Cipher, KxGroup, Mode, Negotiated, SettingsError, TlsSettings, TlsVersion};
pub use stream::{ByteCounter, CountedTcp, Stream};
