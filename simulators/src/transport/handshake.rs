//! The deadline every TLS handshake runs under: on either side of a link, and for the
//! legacy client's offer of TLS 1.1.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use super::error::{ConnectError, FailureCategory};

/// How long a TLS handshake may take before the connection is abandoned. A peer that
/// connects and then says nothing must not hold a server task forever.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Runs `handshake` with the peer `host` (the name dialled, or the peer's address on the
/// server side) at `addr` for at most `limit` (usually [`HANDSHAKE_TIMEOUT`]): the stream
/// it gives, or why it gave none.
pub(super) async fn within_timeout<S>(
    host: &str,
    addr: SocketAddr,
    limit: Duration,
    handshake: impl Future<Output = io::Result<S>>,
) -> Result<S, ConnectError> {
    match tokio::time::timeout(limit, handshake).await {
        Ok(Ok(stream)) => Ok(stream),
        Ok(Err(e)) => Err(ConnectError::from_io(host, addr, e)),
        Err(_) => Err(ConnectError::new(
            host,
            addr,
            FailureCategory::Timeout,
            format!("the TLS handshake did not finish within {limit:?}"),
        )),
    }
}
