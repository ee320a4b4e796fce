//! The control connection of a distributed run: how an agent and the coordinator find,
//! authenticate and greet each other, and how they notice that the other is gone.
//!
//! `channel` carries the messages (TLS, token proof, length-prefixed JSON); the phase's
//! messages themselves belong to the deployment (`deployment::remote`). The greeting:
//! the agent dials and sends [`Hello`] (protocol version, its name, its host, its proof of
//! the token, its machine); the coordinator answers [`Answer::Welcome`] with its own proof,
//! or [`Answer::Refused`] with the reason (another protocol version, an unknown name, a
//! wrong token), and the agent gives up with that reason.

pub(crate) mod channel;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{anyhow, bail, Context as _};
use serde::{Deserialize, Serialize};
use tokio::net::{TcpListener, TcpStream};

use channel::{ControlStream, Side};
pub(crate) use channel::{Receiver, Sender};

use crate::sys::environment::Environment;

/// The version of the control protocol; both ends must speak the same one.
pub(crate) const PROTOCOL: u32 = 1;

/// How often each end says it is alive when it has nothing else to say.
pub(crate) const HEARTBEAT: Duration = Duration::from_secs(1);

/// Silence after which the other end counts as lost: three missed heartbeats.
pub(crate) const LOST_AFTER: Duration = Duration::from_secs(3);

/// What an agent says first.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Hello {
    /// The protocol version it speaks.
    pub protocol: u32,
    /// Its name, as the placement names it.
    pub agent: String,
    /// The version of vmsbench it is.
    pub version: String,
    /// Its proof of the token on this session.
    pub proof: String,
    /// Where the servers it runs will listen (`agent --listen`), if it says.
    #[serde(default)]
    pub listen: Option<std::net::IpAddr>,
    /// Its machine.
    pub environment: Environment,
}

/// The coordinator's answer.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub(crate) enum Answer {
    /// Accepted; the coordinator's own proof.
    Welcome { protocol: u32, proof: String },
    /// Refused, and why.
    Refused { reason: String },
}

/// An agent that has been welcomed, seen from the coordinator.
#[derive(Debug)]
pub(crate) struct Agent {
    /// Its name.
    pub name: String,
    /// Where it connected from.
    pub peer: SocketAddr,
    /// Its machine.
    pub environment: Environment,
    /// Where the servers it runs will listen, if it said.
    pub listen: Option<std::net::IpAddr>,
    /// Its control connection.
    pub tx: Sender,
    pub rx: Receiver,
}

/// How long a peer that connects to the coordinator has for its TLS handshake, and then
/// again for its hello: a peer that says nothing, or too slowly, is refused then.
pub(crate) const GREETING_TIMEOUT: Duration = Duration::from_secs(5);

/// The largest hello accepted, bytes: it is read before the peer has proved that it knows
/// the token, so it gets only the room a hello needs (a few hundred bytes in practice).
const MAX_HELLO: usize = 64 * 1024;

/// The coordinator's listener for agents.
pub(crate) struct Rendezvous {
    listener: TcpListener,
    acceptor: tokio_rustls::TlsAcceptor,
    token: String,
    greeting_timeout: Duration,
    /// Connections refused, by category.
    refused: std::sync::Mutex<BTreeMap<&'static str, u64>>,
}

impl std::fmt::Debug for Rendezvous {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Rendezvous")
            .field("listener", &self.listener)
            .finish_non_exhaustive()
    }
}

/// Why a connection to the coordinator was refused, and the category it is counted under:
/// `timeout` (no handshake or hello in time), `reset` (closed before its hello),
/// `protocol` (not TLS, or not a hello: garbage, an oversized length), `refused` (a hello
/// the coordinator turned down: another protocol version, a wrong token, an unknown or
/// duplicate name).
#[derive(Debug)]
struct Refusal {
    category: &'static str,
    reason: anyhow::Error,
}

impl Refusal {
    fn new(category: &'static str, reason: anyhow::Error) -> Self {
        Refusal { category, reason }
    }
}

impl Rendezvous {
    /// Listens on `addr` for agents that know `token`.
    pub(crate) async fn bind(addr: SocketAddr, token: String) -> anyhow::Result<Rendezvous> {
        let listener = TcpListener::bind(addr)
            .await
            .with_context(|| format!("listening for agents on {addr}"))?;
        let acceptor = tokio_rustls::TlsAcceptor::from(channel::coordinator_config()?);
        Ok(Rendezvous {
            listener,
            acceptor,
            token,
            greeting_timeout: GREETING_TIMEOUT,
            refused: std::sync::Mutex::new(BTreeMap::new()),
        })
    }

    /// Where agents reach it.
    pub(crate) fn local_addr(&self) -> anyhow::Result<SocketAddr> {
        Ok(self.listener.local_addr()?)
    }

    /// Connections refused so far, by category (see [`Refusal`]).
    #[cfg(test)]
    fn refused(&self) -> BTreeMap<&'static str, u64> {
        self.refused.lock().map(|r| r.clone()).unwrap_or_default()
    }

    /// Waits until every agent of `names` has connected and been welcomed, for at most
    /// `timeout`. Connections that fail to authenticate, speak another protocol or give a
    /// name not in `names` (or one already connected) are refused with the reason, and the
    /// wait goes on. Each connection is heard on a task of its own, so that a peer that
    /// says nothing (or a thousand of them) delays no other; greetings still under way when
    /// the last agent arrives are dropped.
    pub(crate) async fn gather(
        &self,
        names: &[String],
        timeout: Duration,
    ) -> anyhow::Result<BTreeMap<String, Agent>> {
        let mut agents = BTreeMap::new();
        let mut greetings = tokio::task::JoinSet::new();
        let deadline = tokio::time::Instant::now() + timeout;
        while agents.len() < names.len() {
            tokio::select! {
                accepted = self.listener.accept() => {
                    let (tcp, peer) = accepted.context("accepting an agent")?;
                    let (acceptor, limit) = (self.acceptor.clone(), self.greeting_timeout);
                    greetings.spawn(async move { (peer, hear(acceptor, tcp, limit).await) });
                }
                Some(heard) = greetings.join_next() => {
                    let Ok((peer, heard)) = heard else { continue };
                    let welcomed = match heard {
                        Ok((stream, hello)) => {
                            self.welcome(stream, hello, peer, names, &agents).await
                        }
                        Err(refusal) => Err(refusal),
                    };
                    match welcomed {
                        Ok(agent) => {
                            crate::output::progress::note(&format!(
                                "agent {} connected from {peer} ({}, {} cores)",
                                agent.name, agent.environment.hostname, agent.environment.cores
                            ));
                            agents.insert(agent.name.clone(), agent);
                        }
                        Err(Refusal { category, reason }) => {
                            if let Ok(mut r) = self.refused.lock() {
                                *r.entry(category).or_default() += 1;
                            }
                            crate::output::progress::note(&format!(
                                "refused an agent from {peer} ({category}): {reason:#}"
                            ));
                        }
                    }
                }
                _ = tokio::time::sleep_until(deadline) => {
                    let missing: Vec<&str> = names
                        .iter()
                        .filter(|n| !agents.contains_key(*n))
                        .map(String::as_str)
                        .collect();
                    bail!(
                        "agent(s) {} did not connect within {} (start `vmsbench agent \
                         --coordinator {} --name NAME --token …` on each host)",
                        missing.join(", "),
                        humantime::format_duration(timeout),
                        self.local_addr()?
                    );
                }
            }
        }
        Ok(agents)
    }

    /// Answers a hello: welcomes the agent it names, or refuses it with the reason.
    async fn welcome(
        &self,
        mut stream: ControlStream,
        hello: Hello,
        peer: SocketAddr,
        names: &[String],
        agents: &BTreeMap<String, Agent>,
    ) -> Result<Agent, Refusal> {
        let proved = channel::verify(&stream, &self.token, Side::Agent, &hello.proof)
            .map_err(|e| Refusal::new("protocol", e))?;
        let refusal = if hello.protocol != PROTOCOL {
            Some(format!(
                "agent {} speaks control protocol {} (vmsbench {}), this coordinator protocol \
                 {PROTOCOL} (vmsbench {}): run the same version on every host",
                hello.agent,
                hello.protocol,
                hello.version,
                env!("CARGO_PKG_VERSION")
            ))
        } else if !proved {
            Some("wrong token: give the agent the coordinator's --token".to_owned())
        } else if !names.contains(&hello.agent) {
            Some(format!(
                "no agent named {:?} in the placement (expected {})",
                hello.agent,
                names.join(", ")
            ))
        } else if agents.contains_key(&hello.agent) {
            Some(format!("agent {:?} is already connected", hello.agent))
        } else {
            None
        };
        // An answer is a few hundred bytes into an empty socket buffer; the limit only
        // guards against a peer whose window is closed.
        let limit = self.greeting_timeout;
        if let Some(reason) = refusal {
            let answer = Answer::Refused {
                reason: reason.clone(),
            };
            let _ = tokio::time::timeout(limit, channel::write_message(&mut stream, &answer)).await;
            return Err(Refusal::new("refused", anyhow!(reason)));
        }
        let answer = Answer::Welcome {
            protocol: PROTOCOL,
            proof: channel::proof(&stream, &self.token, Side::Coordinator)
                .map_err(|e| Refusal::new("protocol", e))?,
        };
        match tokio::time::timeout(limit, channel::write_message(&mut stream, &answer)).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return Err(Refusal::new("reset", e)),
            Err(_) => {
                return Err(Refusal::new(
                    "stalled",
                    anyhow!("the agent did not read its welcome within {limit:?}"),
                ))
            }
        }
        let (tx, rx) = channel::split(stream);
        // From the welcome on, the agent hears from this coordinator at least every
        // heartbeat, also while the others are still awaited.
        keep_alive(tx.clone());
        Ok(Agent {
            name: hello.agent,
            peer,
            environment: hello.environment,
            listen: hello.listen,
            tx,
            rx,
        })
    }
}

/// Completes the TLS handshake of a connection to the coordinator and reads its hello,
/// each within `limit`.
async fn hear(
    acceptor: tokio_rustls::TlsAcceptor,
    tcp: TcpStream,
    limit: Duration,
) -> Result<(ControlStream, Hello), Refusal> {
    let _ = tcp.set_nodelay(true);
    let tls = match tokio::time::timeout(limit, acceptor.accept(tcp)).await {
        Ok(Ok(tls)) => tls,
        Ok(Err(e)) => {
            let category = match e.kind() {
                std::io::ErrorKind::UnexpectedEof
                | std::io::ErrorKind::ConnectionReset
                | std::io::ErrorKind::ConnectionAborted
                | std::io::ErrorKind::BrokenPipe => "reset",
                _ => "protocol",
            };
            return Err(Refusal::new(
                category,
                anyhow::Error::new(e).context("TLS handshake"),
            ));
        }
        Err(_) => {
            return Err(Refusal::new(
                "timeout",
                anyhow!("no TLS handshake within {limit:?}"),
            ))
        }
    };
    let mut stream = ControlStream::Server(tls);
    let hello = tokio::time::timeout(limit, channel::read_message_within(&mut stream, MAX_HELLO));
    match hello.await {
        Ok(Ok(Some(hello))) => Ok((stream, hello)),
        Ok(Ok(None)) => Err(Refusal::new("reset", anyhow!("closed before its hello"))),
        Ok(Err(e)) => {
            let reset = e
                .chain()
                .filter_map(|c| c.downcast_ref::<std::io::Error>())
                .any(|io| {
                    matches!(
                        io.kind(),
                        std::io::ErrorKind::ConnectionReset | std::io::ErrorKind::UnexpectedEof
                    )
                });
            Err(Refusal::new(if reset { "reset" } else { "protocol" }, e))
        }
        Err(_) => Err(Refusal::new(
            "timeout",
            anyhow!("no hello within {limit:?}"),
        )),
    }
}

/// The message either end sends when it has nothing else to say: `{"type": "heartbeat"}`,
/// as the phase messages of both directions spell it.
pub(crate) fn heartbeat() -> serde_json::Value {
    serde_json::json!({ "type": "heartbeat" })
}

/// Sends a heartbeat on `tx` every [`HEARTBEAT`] until the connection is gone.
pub(crate) fn keep_alive(tx: Sender) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(HEARTBEAT);
        loop {
            tick.tick().await;
            if !tx.send(&heartbeat()) {
                return;
            }
        }
    });
}

/// How an agent reaches its coordinator.
#[derive(Clone, Debug)]
pub(crate) struct Dial {
    /// The coordinator's address (`host:port`).
    pub coordinator: String,
    /// The shared token.
    pub token: String,
    /// The agent's name.
    pub name: String,
    /// How long to keep trying while the coordinator is not listening yet.
    pub patience: Duration,
    /// The protocol version to announce (another one only to test refusals).
    pub protocol: u32,
    /// Where the agent's servers will listen, if it was told.
    pub listen: Option<std::net::IpAddr>,
}

/// Dials the coordinator (retrying while it does not listen yet, within `patience`), proves
/// the token and checks the coordinator's proof: the authenticated connection.
pub(crate) async fn dial(d: &Dial) -> anyhow::Result<(Sender, Receiver)> {
    let deadline = tokio::time::Instant::now() + d.patience;
    let tcp = loop {
        // Each attempt is short: a lost SYN must not hold the agent past its patience.
        let attempt = tokio::time::timeout(HEARTBEAT * 2, TcpStream::connect(&d.coordinator))
            .await
            .unwrap_or_else(|_| Err(std::io::ErrorKind::TimedOut.into()));
        match attempt {
            Ok(s) => break s,
            Err(_) if tokio::time::Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(e) => {
                return Err(e).with_context(|| {
                    format!(
                        "no coordinator at {} within {}",
                        d.coordinator,
                        humantime::format_duration(d.patience)
                    )
                })
            }
        }
    };
    let _ = tcp.set_nodelay(true);
    let connector = tokio_rustls::TlsConnector::from(channel::agent_config()?);
    // Not checked against the certificate (see `channel`); any valid name does.
    let name = rustls::pki_types::ServerName::try_from("vmsbench-coordinator")
        .context("the coordinator's name")?
        .to_owned();
    let tls = connector
        .connect(name, tcp)
        .await
        .with_context(|| format!("TLS handshake with the coordinator at {}", d.coordinator))?;
    let mut stream = ControlStream::Client(tls);
    let hello = Hello {
        protocol: d.protocol,
        agent: d.name.clone(),
        version: env!("CARGO_PKG_VERSION").to_owned(),
        proof: channel::proof(&stream, &d.token, Side::Agent)?,
        listen: d.listen,
        environment: Environment::detect(),
    };
    channel::write_message(&mut stream, &hello).await?;
    let answer: Answer = channel::read_message(&mut stream)
        .await?
        .ok_or_else(|| anyhow!("the coordinator closed the connection after the hello"))?;
    match answer {
        Answer::Refused { reason } => bail!("the coordinator refused this agent: {reason}"),
        Answer::Welcome { protocol, proof } => {
            if protocol != d.protocol {
                bail!(
                    "the coordinator speaks control protocol {protocol}, this agent {}",
                    d.protocol
                );
            }
            if !channel::verify(&stream, &d.token, Side::Coordinator, &proof)? {
                bail!(
                    "the coordinator at {} does not know the token: not the coordinator this \
                     agent was meant for",
                    d.coordinator
                );
            }
        }
    }
    Ok(channel::split(stream))
}

#[cfg(test)]
mod tests {
    use tokio::io::AsyncWriteExt;

    use super::*;

    const TOKEN: &str = "a token";

    async fn rendezvous() -> (Rendezvous, SocketAddr) {
        let addr = SocketAddr::from(([127, 0, 0, 1], 0));
        let rv = Rendezvous::bind(addr, TOKEN.to_owned())
            .await
            .expect("bind 127.0.0.1:0");
        let addr = rv.local_addr().expect("address");
        (rv, addr)
    }

    fn agent(addr: SocketAddr, name: &str, token: &str) -> Dial {
        Dial {
            coordinator: addr.to_string(),
            token: token.to_owned(),
            name: name.to_owned(),
            patience: Duration::from_secs(10),
            protocol: PROTOCOL,
            listen: None,
        }
    }

    /// A TLS session with the coordinator, as an agent's would begin, over a TCP
    /// connection that resets instead of closing when dropped.
    async fn tls(addr: SocketAddr) -> tokio_rustls::client::TlsStream<TcpStream> {
        let tcp = TcpStream::connect(addr).await.expect("connect");
        tcp.set_zero_linger().expect("SO_LINGER");
        let name = rustls::pki_types::ServerName::try_from("vmsbench-coordinator")
            .expect("name")
            .to_owned();
        tokio_rustls::TlsConnector::from(channel::agent_config().expect("config"))
            .connect(name, tcp)
            .await
            .expect("TLS handshake")
    }

    /// With greetings one at a time, an agent behind twenty peers that never speak would
    /// wait twenty greeting timeouts (100 s), beyond the gathering's 30 s.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn peers_that_never_speak_delay_no_agent() {
        let (rv, addr) = rendezvous().await;
        let mut silent = Vec::new();
        for _ in 0..20 {
            silent.push(TcpStream::connect(addr).await.expect("connect"));
        }
        let names = ["a1".to_owned()];
        let dial = agent(addr, "a1", TOKEN);
        let (gathered, dialled) = tokio::join!(
            rv.gather(&names, Duration::from_secs(30)),
            dial_and_hold(&dial)
        );
        let gathered = gathered.expect("the agent was gathered");
        assert!(gathered.contains_key("a1"), "{:?}", gathered.keys());
        assert!(dialled.is_ok(), "{dialled:?}");
        drop(silent);
    }

    /// Dials as `d` says and keeps the connection until the gathering has seen it.
    async fn dial_and_hold(d: &Dial) -> anyhow::Result<()> {
        let (tx, _rx) = dial(d).await?;
        tokio::time::sleep(Duration::from_millis(200)).await;
        drop(tx);
        Ok(())
    }

    /// Every hostile peer is refused under its category, within the greeting timeout, and
    /// a real agent is still welcomed afterwards.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn hostile_peers_are_refused_by_category_and_an_agent_still_gets_in() {
        let (mut rv, addr) = rendezvous().await;
        rv.greeting_timeout = Duration::from_secs(1);
        let expected = BTreeMap::from([
            ("timeout", 4),
            ("protocol", 2),
            ("reset", 1001),
            ("refused", 1),
        ]);
        let names = ["a1".to_owned()];
        let hostile = async {
            let mut held = Vec::new();
            // Never speaks (no TLS handshake).
            held.push(TcpStream::connect(addr).await.expect("connect"));
            // Completes the handshake, then never speaks.
            let quiet = tls(addr).await;
            // A length at the maximum, and then nothing.
            let mut at_max = tls(addr).await;
            at_max
                .write_all(&(MAX_HELLO as u32).to_be_bytes())
                .await
                .expect("write");
            at_max.flush().await.expect("flush");
            // A length beyond the maximum.
            let mut beyond = tls(addr).await;
            beyond
                .write_all(&(MAX_HELLO as u32 + 1).to_be_bytes())
                .await
                .expect("write");
            beyond.flush().await.expect("flush");
            // A hello in plaintext, to the TLS port.
            let mut plain = TcpStream::connect(addr).await.expect("connect");
            plain
                .write_all(b"\0\0\0\x10{\"protocol\": 1}")
                .await
                .expect("write");
            // Half a message, then a reset.
            let mut cut = tls(addr).await;
            cut.write_all(b"\0\0\0\x64{\"protocol\"")
                .await
                .expect("write");
            cut.flush().await.expect("flush");
            drop(cut);
            // A wrong token.
            let refused = dial(&agent(addr, "a1", "another token")).await;
            assert!(refused.is_err(), "a wrong token was welcomed");
            // A thousand connections opened and dropped.
            for _ in 0..1000 {
                drop(TcpStream::connect(addr).await.expect("connect"));
            }
            // A hello a byte at a time (far quicker than the greeting timeout per byte).
            let mut slow = tls(addr).await;
            for b in b"\0\0\0\x10{\"protocol\": 1}" {
                if slow.write_all(&[*b]).await.is_err() || slow.flush().await.is_err() {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            let counted = wait_for(Duration::from_secs(30), || rv.refused() == expected).await;
            assert!(counted, "refused {:?}, expected {expected:?}", rv.refused());
            drop((held, quiet, at_max, beyond, plain, slow));
            dial_and_hold(&agent(addr, "a1", TOKEN)).await
        };
        let (gathered, dialled) = tokio::join!(rv.gather(&names, Duration::from_secs(60)), hostile);
        assert!(dialled.is_ok(), "{dialled:?}");
        let gathered = gathered.expect("the agent was gathered");
        assert!(gathered.contains_key("a1"), "{:?}", gathered.keys());
    }

    /// Polls `cond` every 10 ms until it holds or `limit` passes.
    async fn wait_for(limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
        let deadline = tokio::time::Instant::now() + limit;
        while !cond() {
            if tokio::time::Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        true
    }
}
