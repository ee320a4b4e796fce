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

/// The coordinator's listener for agents.
pub(crate) struct Rendezvous {
    listener: TcpListener,
    acceptor: tokio_rustls::TlsAcceptor,
    token: String,
}

impl std::fmt::Debug for Rendezvous {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Rendezvous")
            .field("listener", &self.listener)
            .finish_non_exhaustive()
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
        })
    }

    /// Where agents reach it.
    pub(crate) fn local_addr(&self) -> anyhow::Result<SocketAddr> {
        Ok(self.listener.local_addr()?)
    }

    /// Waits until every agent of `names` has connected and been welcomed, for at most
    /// `timeout`. Connections that fail to authenticate, speak another protocol or give a
    /// name not in `names` (or one already connected) are refused with the reason, and the
    /// wait goes on.
    pub(crate) async fn gather(
        &self,
        names: &[String],
        timeout: Duration,
    ) -> anyhow::Result<BTreeMap<String, Agent>> {
        let mut agents = BTreeMap::new();
        let deadline = tokio::time::Instant::now() + timeout;
        while agents.len() < names.len() {
            let accepted = tokio::time::timeout_at(deadline, self.listener.accept()).await;
            let Ok(accepted) = accepted else {
                let missing: Vec<&str> = names
                    .iter()
                    .filter(|n| !agents.contains_key(*n))
                    .map(String::as_str)
                    .collect();
                bail!(
                    "agent(s) {} did not connect within {} (start `vmsbench agent --coordinator \
                     {} --name NAME --token …` on each host)",
                    missing.join(", "),
                    humantime::format_duration(timeout),
                    self.local_addr()?
                );
            };
            let (tcp, peer) = accepted.context("accepting an agent")?;
            match self.greet(tcp, peer, names, &agents).await {
                Ok(agent) => {
                    crate::output::progress::note(&format!(
                        "agent {} connected from {peer} ({}, {} cores)",
                        agent.name, agent.environment.hostname, agent.environment.cores
                    ));
                    agents.insert(agent.name.clone(), agent);
                }
                Err(e) => {
                    crate::output::progress::note(&format!("refused an agent from {peer}: {e:#}"))
                }
            }
        }
        Ok(agents)
    }

    async fn greet(
        &self,
        tcp: TcpStream,
        peer: SocketAddr,
        names: &[String],
        agents: &BTreeMap<String, Agent>,
    ) -> anyhow::Result<Agent> {
        let _ = tcp.set_nodelay(true);
        let tls = tokio::time::timeout(HEARTBEAT * 5, self.acceptor.accept(tcp))
            .await
            .map_err(|_| anyhow!("no TLS handshake within {:?}", HEARTBEAT * 5))?
            .context("TLS handshake")?;
        let mut stream = ControlStream::Server(tls);
        let hello: Hello = tokio::time::timeout(HEARTBEAT * 5, channel::read_message(&mut stream))
            .await
            .map_err(|_| anyhow!("no hello"))??
            .ok_or_else(|| anyhow!("closed before its hello"))?;
        let refusal = if hello.protocol != PROTOCOL {
            Some(format!(
                "agent {} speaks control protocol {} (vmsbench {}), this coordinator protocol \
                 {PROTOCOL} (vmsbench {}): run the same version on every host",
                hello.agent,
                hello.protocol,
                hello.version,
                env!("CARGO_PKG_VERSION")
            ))
        } else if !channel::verify(&stream, &self.token, Side::Agent, &hello.proof)? {
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
        if let Some(reason) = refusal {
            let answer = Answer::Refused {
                reason: reason.clone(),
            };
            let _ = channel::write_message(&mut stream, &answer).await;
            bail!(reason);
        }
        let answer = Answer::Welcome {
            protocol: PROTOCOL,
            proof: channel::proof(&stream, &self.token, Side::Coordinator)?,
        };
        channel::write_message(&mut stream, &answer).await?;
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
