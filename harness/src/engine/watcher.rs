//! A certificate watcher: a client that dials one server every few hundred milliseconds
//! and records which certificate it was shown, or why the handshake failed.
//!
//! It makes two kinds of connection, because they behave differently once a certificate
//! has expired: a full handshake (no session to resume), which checks the certificate, and
//! a resumed one (TLS 1.3 ticket or TLS 1.2 session id from an earlier connection), which
//! does not look at a certificate at all. Deployments have both kinds of client.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use rustls::client::Resumption;
use rustls::ClientConfig;
use serde::{Deserialize, Serialize};
use simulators::clock::RunClock;
use simulators::transport::{Connector, Stream};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// How often the watcher dials.
pub(crate) const WATCH_INTERVAL: Duration = Duration::from_millis(250);
/// How long the resuming connection waits for the server's session tickets.
const TICKET_WAIT: Duration = Duration::from_millis(20);

/// One connection attempt.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Attempt {
    /// When it started (run clock, ns).
    pub at_ns: u64,
    /// When its outcome was known (run clock, ns).
    pub end_ns: u64,
    /// Whether it offered a session to resume.
    pub resuming: bool,
    /// Whether the server accepted the resumption.
    pub resumed: bool,
    /// The serial number of the certificate shown (full handshakes), or the failure
    /// category.
    pub outcome: Result<Option<String>, String>,
}

/// Attempts around one moment, summarised.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tally {
    /// Full handshakes that succeeded.
    pub full_ok: u64,
    /// Full handshakes that failed, by category.
    pub full_failed: std::collections::BTreeMap<String, u64>,
    /// Connections that resumed a session (no certificate check).
    pub resumed_ok: u64,
    /// Resumption attempts that failed, by category.
    pub resumed_failed: std::collections::BTreeMap<String, u64>,
    /// Serial numbers the full handshakes were shown, in order, without repeats.
    pub serials: Vec<String>,
}

impl Tally {
    /// Adds `a`.
    fn add(&mut self, a: &Attempt) {
        match (&a.outcome, a.resuming) {
            (Ok(_), true) if a.resumed => self.resumed_ok += 1,
            (Ok(serial), _) => {
                self.full_ok += 1;
                if let Some(s) = serial {
                    if self.serials.last() != Some(s) {
                        self.serials.push(s.clone());
                    }
                }
            }
            (Err(c), true) => *self.resumed_failed.entry(c.clone()).or_default() += 1,
            (Err(c), false) => *self.full_failed.entry(c.clone()).or_default() += 1,
        }
    }

    /// The attempts that started at or after `from_ns` and ended before `to_ns`. An
    /// attempt under way when a certificate changed may have been shown either one, so it
    /// counts on neither side.
    pub fn between(attempts: &[Attempt], from_ns: u64, to_ns: u64) -> Tally {
        let mut t = Tally::default();
        for a in attempts
            .iter()
            .filter(|a| a.at_ns >= from_ns && a.end_ns < to_ns)
        {
            t.add(a);
        }
        t
    }
}

/// A running watcher.
#[derive(Debug)]
pub(crate) struct Watcher {
    cancel: CancellationToken,
    task: JoinHandle<Vec<Attempt>>,
}

impl Watcher {
    /// Starts watching `host` at `addr`, trusting what `client` trusts.
    pub(crate) fn start(
        rt: &tokio::runtime::Handle,
        client: &Arc<ClientConfig>,
        addr: SocketAddr,
        host: String,
        clock: RunClock,
    ) -> Watcher {
        let mut full = (**client).clone();
        full.resumption = Resumption::disabled();
        let full = Connector::tls(Arc::new(full));
        // A session store of its own, so that only the watcher's sessions are resumed.
        let mut resuming = (**client).clone();
        resuming.resumption = Resumption::in_memory_sessions(16);
        let resuming = Connector::tls(Arc::new(resuming));
        let cancel = CancellationToken::new();
        let stop = cancel.clone();
        let task = rt.spawn(async move {
            let mut attempts = Vec::new();
            let mut tick = tokio::time::interval(WATCH_INTERVAL);
            loop {
                tokio::select! {
                    _ = stop.cancelled() => break,
                    _ = tick.tick() => {}
                }
                for (connector, offers) in [(&full, false), (&resuming, true)] {
                    let at_ns = clock.now_ns();
                    let attempt = match connector.connect(addr, &host).await {
                        Ok(c) => {
                            let resumed = c.negotiated.as_ref().is_some_and(|n| n.resumed);
                            let serial = serial_of(&c.stream);
                            let mut stream = c.stream;
                            if offers {
                                // TLS 1.3 tickets come after the handshake: read them, so
                                // that the next connection has a session to resume.
                                let mut byte = [0u8; 1];
                                let _ =
                                    tokio::time::timeout(TICKET_WAIT, stream.read(&mut byte)).await;
                            }
                            close(stream).await;
                            Attempt {
                                at_ns,
                                end_ns: clock.now_ns(),
                                resuming: offers,
                                resumed,
                                outcome: Ok(serial),
                            }
                        }
                        Err(e) => Attempt {
                            at_ns,
                            end_ns: clock.now_ns(),
                            resuming: offers,
                            resumed: false,
                            outcome: Err(e.category.as_str().to_owned()),
                        },
                    };
                    attempts.push(attempt);
                }
            }
            attempts
        });
        Watcher { cancel, task }
    }

    /// Stops it and returns every attempt, in order.
    pub(crate) async fn stop(self) -> Vec<Attempt> {
        self.cancel.cancel();
        self.task.await.unwrap_or_default()
    }
}

/// The serial number of the leaf certificate the server showed, hex.
fn serial_of(stream: &Stream) -> Option<String> {
    let leaf = stream.peer_certificates()?.first()?;
    let (_, cert) = x509_parser::parse_x509_certificate(leaf).ok()?;
    Some(
        cert.raw_serial()
            .iter()
            .skip_while(|b| **b == 0)
            .map(|b| format!("{b:02x}"))
            .collect(),
    )
}

/// Ends the connection politely, so that the server does not count it as a failure.
async fn close(mut stream: Stream) {
    stream.send_close_notify();
    let _ = tokio::time::timeout(Duration::from_secs(1), stream.shutdown()).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attempt(at_ns: u64, end_ns: u64, resuming: bool, outcome: Result<&str, &str>) -> Attempt {
        Attempt {
            at_ns,
            end_ns,
            resuming,
            resumed: resuming && outcome.is_ok(),
            outcome: outcome.map(|s| Some(s.to_owned())).map_err(str::to_owned),
        }
    }

    #[test]
    fn a_tally_counts_each_kind_and_leaves_out_attempts_across_its_bounds() {
        let attempts = [
            attempt(10, 20, false, Ok("aa")),
            attempt(30, 40, true, Ok("aa")),
            // Under way at 100, when the certificate changed: on neither side.
            attempt(95, 105, false, Ok("bb")),
            attempt(110, 120, false, Err("expired")),
            attempt(130, 140, true, Ok("aa")),
            attempt(150, 160, false, Ok("bb")),
        ];
        let before = Tally::between(&attempts, 0, 100);
        assert_eq!(before.full_ok, 1);
        assert_eq!(before.resumed_ok, 1);
        assert_eq!(before.serials, ["aa"]);
        let after = Tally::between(&attempts, 100, 200);
        assert_eq!(after.full_ok, 1);
        assert_eq!(after.full_failed.get("expired"), Some(&1));
        assert_eq!(after.resumed_ok, 1);
        assert_eq!(after.serials, ["bb"]);
    }
}
