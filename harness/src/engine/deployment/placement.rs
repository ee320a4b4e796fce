//! Where the roles of a plan run: in this process (the default) or on named agents.
//!
//! A placement is a list of rules `KEY=AGENT[,AGENT…]`. A key names a role by its runtime
//! (`mgmt`, `recorder-1`, `viewers`, `phones`, … — the names the report's CPU table uses)
//! or a server by its host name. A server goes to one agent; a group of clients named with
//! several agents is split into equal contiguous shares, one per agent (the first agents
//! take one more when it does not divide). Roles no rule names stay in this process.

use std::collections::BTreeMap;

use anyhow::{bail, Context as _};
use serde::Serialize;

use super::plan::{ClientGroup, Plan, RoleKind, RoleSpec};

/// One rule: the roles `key` names run on `agents`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub(crate) struct Rule {
    /// A runtime or a server's host name.
    pub key: String,
    /// The agents, by name.
    pub agents: Vec<String>,
}

/// Which agents run which roles; empty means everything runs in this process.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub(crate) struct Placement {
    rules: Vec<Rule>,
}

/// A plan divided among the processes of a distributed phase: the roles of each, in the
/// plan's order, every share a whole plan with fewer roles.
#[derive(Debug)]
pub(crate) struct Shares {
    /// What this process runs.
    pub local: Plan,
    /// What each agent runs, by name (agents the placement names but this plan gives
    /// nothing are absent).
    pub remote: BTreeMap<String, Plan>,
    /// For each role of the whole plan, where it runs: `None` here, or the agent and the
    /// role's index in that agent's share. Used to start roles in the plan's order.
    pub order: Vec<(Option<String>, usize)>,
}

impl Placement {
    /// Parses `KEY=AGENT[,AGENT…]` rules as given on the command line.
    pub(crate) fn parse(rules: &[String]) -> anyhow::Result<Placement> {
        let mut out = Vec::new();
        for text in rules {
            let (key, agents) = text.split_once('=').with_context(|| {
                format!("placement {text:?}: expected ROLE=AGENT or HOST=AGENT[,AGENT…]")
            })?;
            let agents: Vec<String> = agents
                .split(',')
                .map(|a| a.trim().to_owned())
                .filter(|a| !a.is_empty())
                .collect();
            if key.trim().is_empty() || agents.is_empty() {
                bail!("placement {text:?}: expected ROLE=AGENT or HOST=AGENT[,AGENT…]");
            }
            out.push(Rule {
                key: key.trim().to_owned(),
                agents,
            });
        }
        Ok(Placement { rules: out })
    }

    /// Whether every role runs in this process.
    pub(crate) fn is_local(&self) -> bool {
        self.rules.is_empty()
    }

    /// The rules.
    pub(crate) fn rules(&self) -> &[Rule] {
        &self.rules
    }

    /// Every agent named, sorted, once each.
    pub(crate) fn agents(&self) -> Vec<String> {
        let mut names: Vec<String> = self.rules.iter().flat_map(|r| r.agents.clone()).collect();
        names.sort();
        names.dedup();
        names
    }

    /// The agents the first rule naming `role` gives it.
    fn agents_of(&self, role: &RoleSpec) -> Option<&[String]> {
        let host = server_host(role);
        self.rules
            .iter()
            .find(|r| r.key == role.runtime || Some(r.key.as_str()) == host)
            .map(|r| r.agents.as_slice())
    }

    /// Divides `plan` among this process and the agents. Fails when a rule names nothing
    /// in the plan, or gives a server to more than one agent.
    pub(crate) fn split(&self, plan: &Plan) -> anyhow::Result<Shares> {
        for rule in &self.rules {
            if !plan
                .roles
                .iter()
                .any(|r| r.runtime == rule.key || server_host(r) == Some(rule.key.as_str()))
            {
                let mut known: Vec<&str> = plan
                    .roles
                    .iter()
                    .flat_map(|r| [Some(r.runtime.as_str()), server_host(r)])
                    .flatten()
                    .collect();
                known.sort_unstable();
                known.dedup();
                bail!(
                    "placement {}: no role or server host of the scenario is called {:?} (roles \
                     and hosts: {})",
                    rule.key,
                    rule.key,
                    known.join(", ")
                );
            }
        }
        let empty = || Plan {
            roles: Vec::new(),
            ..plan.clone()
        };
        let mut local = empty();
        let mut remote: BTreeMap<String, Plan> = BTreeMap::new();
        let mut order = Vec::new();
        for role in &plan.roles {
            let Some(agents) = self.agents_of(role) else {
                order.push((None, local.roles.len()));
                local.roles.push(role.clone());
                continue;
            };
            if agents.len() > 1 && server_host(role).is_some() {
                bail!(
                    "placement: the server {} runs on one agent, not on {}",
                    server_host(role).unwrap_or(&role.runtime),
                    agents.join(", ")
                );
            }
            for (agent, part) in agents.iter().zip(divide(role, agents.len())) {
                let share = remote.entry(agent.clone()).or_insert_with(empty);
                order.push((Some(agent.clone()), share.roles.len()));
                share.roles.push(part);
            }
        }
        Ok(Shares {
            local,
            remote,
            order,
        })
    }
}

/// The host of a server role.
fn server_host(role: &RoleSpec) -> Option<&str> {
    match &role.kind {
        RoleKind::Management(m) => Some(&m.host),
        RoleKind::Streaming(s) => Some(&s.host),
        _ => None,
    }
}

/// `role` in `n` parts: a client group in equal contiguous shares (none empty), anything
/// else whole.
fn divide(role: &RoleSpec, n: usize) -> Vec<RoleSpec> {
    fn chunks<C: Clone>(g: &ClientGroup<C>, n: usize) -> Vec<ClientGroup<C>> {
        let n = n.clamp(1, g.clients.len().max(1));
        let (base, extra) = (g.clients.len() / n, g.clients.len() % n);
        let mut at = 0;
        (0..n)
            .map(|i| {
                let len = base + usize::from(i < extra);
                let part = g.clients[at..at + len].to_vec();
                at += len;
                ClientGroup {
                    link: g.link,
                    clients: part,
                }
            })
            .collect()
    }
    let with = |kind: RoleKind| RoleSpec {
        kind,
        ..role.clone()
    };
    match &role.kind {
        RoleKind::VideoClients(g) if n > 1 => chunks(g, n)
            .into_iter()
            .map(|g| with(RoleKind::VideoClients(g)))
            .collect(),
        RoleKind::RpcClients(g) if n > 1 => chunks(g, n)
            .into_iter()
            .map(|g| with(RoleKind::RpcClients(g)))
            .collect(),
        _ => vec![role.clone()],
    }
}
