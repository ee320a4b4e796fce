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

    /// The agent that runs the server whose runtime is `runtime` and host `host`, if one
    /// does.
    pub(crate) fn agent_of_server(&self, runtime: &str, host: &str) -> Option<&str> {
        self.rules
            .iter()
            .find(|r| r.key == runtime || r.key == host)
            .and_then(|r| r.agents.first())
            .map(String::as_str)
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
pub(crate) fn server_host(role: &RoleSpec) -> Option<&str> {
    match &role.kind {
        RoleKind::Management(m) => Some(&m.host),
        RoleKind::Streaming(s) => Some(&s.host),
        RoleKind::BulkSender(b) => Some(&b.host),
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

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use simulators::transport::Mode;

    use super::*;
    use crate::engine::scenario::file;

    fn small() -> Plan {
        let s = file::load_preset("small").expect("preset");
        Plan::new(&s, Mode::Tls, 0, Duration::from_secs(2))
    }

    fn clients(p: &Plan, runtime: &str) -> usize {
        p.roles
            .iter()
            .filter(|r| r.runtime == runtime)
            .map(|r| match &r.kind {
                RoleKind::VideoClients(g) => g.clients.len(),
                RoleKind::RpcClients(g) => g.clients.len(),
                _ => 0,
            })
            .sum()
    }

    #[test]
    fn roles_go_where_their_runtime_or_host_is_placed_and_the_rest_stay_here() {
        let plan = small();
        let p = Placement::parse(&["mgmt.vms.test=a".into(), "viewers=b".into()]).expect("parses");
        let shares = p.split(&plan).expect("splits");
        assert_eq!(shares.remote.keys().collect::<Vec<_>>(), ["a", "b"]);
        let runtimes = |p: &Plan| {
            p.roles
                .iter()
                .map(|r| r.runtime.clone())
                .collect::<Vec<_>>()
        };
        assert_eq!(runtimes(&shares.remote["a"]), ["mgmt"]);
        assert_eq!(runtimes(&shares.remote["b"]), ["viewers"]);
        assert!(runtimes(&shares.local).contains(&"recorder-1".to_owned()));
        // Every role once, in the plan's order.
        assert_eq!(shares.order.len(), plan.roles.len());
        assert_eq!(shares.order[0], (Some("a".to_owned()), 0));
    }

    #[test]
    fn a_client_group_on_several_agents_is_split_evenly_and_loses_no_client() {
        let plan = small();
        let total = clients(&plan, "viewers");
        let p = Placement::parse(&["viewers=a,b,c".into()]).expect("parses");
        let shares = p.split(&plan).expect("splits");
        let parts: Vec<usize> = ["a", "b", "c"]
            .iter()
            .map(|a| clients(&shares.remote[*a], "viewers"))
            .collect();
        assert_eq!(parts.iter().sum::<usize>(), total, "{parts:?}");
        let (min, max) = (parts.iter().min(), parts.iter().max());
        assert!(max.zip(min).is_some_and(|(x, n)| x - n <= 1), "{parts:?}");
    }

    #[test]
    fn placing_nothing_that_exists_or_one_server_on_two_agents_is_refused() {
        let plan = small();
        let unknown = Placement::parse(&["recorder-9=a".into()]).expect("parses");
        let e = unknown.split(&plan).expect_err("unknown").to_string();
        assert!(e.contains("recorder-9") && e.contains("recorder-1"), "{e}");
        let twice = Placement::parse(&["recorder-1=a,b".into()]).expect("parses");
        let e = twice.split(&plan).expect_err("a server on two").to_string();
        assert!(e.contains("one agent"), "{e}");
        for bad in ["viewers", "=a", "viewers="] {
            assert!(Placement::parse(&[bad.into()]).is_err(), "{bad}");
        }
        assert!(Placement::parse(&[]).expect("empty").is_local());
    }
}
