//! The topology of a scenario: which directed links exist, which channel each uses, and what
//! each link is expected to show once the faults are applied (DESIGN §3, §4). Pure.
//!
//! A linked unordered pair {A, B} gives the directed links A→B and B→A; a self link gives A→A.
//! Faults change what a link is expected to show; when several touch one link, `absent` wins
//! over `error`, which wins over `rejected`. Explicit `expect` entries override the derived
//! values field by field.

use std::collections::{HashMap, HashSet};

use crate::scenario::{
    AuthOutcome, Fault, LinkMode, Position, Reach, Scenario, ScenarioDiagnostic, ScenarioErrors,
    ScenarioStep,
};

/// One directed link: `from` presents a secret to `to`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    pub from: String,
    pub to: String,
    /// A channel both organizations belong to: the probe's `Substra-Channel-Name`, and the
    /// channel the guide's `channel` key names.
    pub channel: String,
    pub expected: Expected,
}

impl Link {
    pub fn is_self(&self) -> bool {
        self.from == self.to
    }
}

/// What a link is expected to show.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Expected {
    pub reach: Reach,
    pub auth: AuthOutcome,
}

impl Expected {
    /// A healthy link: reachable and authenticated.
    pub const HEALTHY: Self = Self {
        reach: Reach::Status(200),
        auth: AuthOutcome::Accepted,
    };

    pub fn is_healthy(&self) -> bool {
        *self == Self::HEALTHY
    }
}

/// The directed links of a scenario, in a stable order: by `from` in file order, then by `to`
/// in file order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Topology {
    pub links: Vec<Link>,
}

fn reach_rank(reach: Reach) -> u8 {
    match reach {
        Reach::Status(_) => 0,
        Reach::Error => 1,
        Reach::Absent => 2,
    }
}

fn auth_rank(auth: AuthOutcome) -> u8 {
    match auth {
        AuthOutcome::Accepted => 0,
        AuthOutcome::Rejected => 1,
        AuthOutcome::Error => 2,
        AuthOutcome::Absent => 3,
    }
}

impl Expected {
    /// Combines two effects on one link: the stronger outcome wins per field.
    fn worst(self, other: Self) -> Self {
        Self {
            reach: if reach_rank(other.reach) > reach_rank(self.reach) {
                other.reach
            } else {
                self.reach
            },
            auth: if auth_rank(other.auth) > auth_rank(self.auth) {
                other.auth
            } else {
                self.auth
            },
        }
    }
}

/// Every pair a `rotate-secrets` step names must be a link of the organizations present at
/// that step.
fn check_rotations(scenario: &Scenario) -> Result<(), ScenarioErrors> {
    let file = scenario.file.display().to_string();
    let mut diagnostics = Vec::new();
    for (index, step) in scenario.steps.iter().enumerate() {
        let ScenarioStep::RotateSecrets { links: Some(links) } = &step.value else {
            continue;
        };
        let Ok(topology) = Topology::build_state(&scenario.before_step(index)) else {
            continue;
        };
        // Both directions of a written pair are missing together: one error per pair.
        let mut reported = HashSet::new();
        for (from, to) in links {
            let pair = (from.min(to), from.max(to));
            if !topology.has_link(from, to) && reported.insert(pair) {
                diagnostics.push(
                    ScenarioDiagnostic::new(
                        &file,
                        step.position,
                        format!("`rotate-secrets` names `{from}`→`{to}`, which is not a link of this scenario at this step"),
                    )
                    .with_hint("rotate pairs that `links` and `channels` link; `[a, a]` needs `links.self`"),
                );
            }
        }
    }
    if diagnostics.is_empty() {
        Ok(())
    } else {
        Err(ScenarioErrors { file, diagnostics })
    }
}

/// The unordered pairs (A ≠ B) a scenario links, by organization index, without duplicates.
fn linked_pairs(scenario: &Scenario) -> Vec<(usize, usize)> {
    let index: HashMap<&str, usize> = scenario
        .organizations
        .iter()
        .enumerate()
        .map(|(i, o)| (o.name.as_str(), i))
        .collect();
    let count = scenario.organizations.len();
    let mut pairs = Vec::new();
    match scenario.links.mode {
        LinkMode::Full => {
            for a in 0..count {
                for b in a + 1..count {
                    pairs.push((a, b));
                }
            }
        }
        LinkMode::Channels => {
            let mut seen = HashSet::new();
            for channel in &scenario.channels {
                let members: Vec<usize> = channel
                    .members
                    .iter()
                    .filter_map(|m| index.get(m.as_str()).copied())
                    .collect();
                for (i, &a) in members.iter().enumerate() {
                    for &b in &members[i + 1..] {
                        let pair = (a.min(b), a.max(b));
                        if seen.insert(pair) {
                            pairs.push(pair);
                        }
                    }
                }
            }
        }
        LinkMode::Explicit => {
            for (a, b) in &scenario.links.pairs {
                if let (Some(&a), Some(&b)) = (index.get(a.as_str()), index.get(b.as_str())) {
                    pairs.push((a.min(b), a.max(b)));
                }
            }
        }
    }
    pairs
}

impl Topology {
    /// Derives the directed links and their expectations. Fails when a fault or an expectation
    /// names a link the scenario does not have.
    pub fn build(scenario: &Scenario) -> Result<Self, ScenarioErrors> {
        let topology = Self::build_state(scenario)?;
        check_rotations(scenario)?;
        Ok(topology)
    }

    /// The topology of the organizations present before step `index` (see
    /// [`Scenario::before_step`]), with the scenario of that state.
    pub fn before_step(
        scenario: &Scenario,
        index: usize,
    ) -> Result<(Scenario, Self), ScenarioErrors> {
        let state = scenario.before_step(index);
        let topology = Self::build_state(&state)?;
        Ok((state, topology))
    }

    /// Every link the scenario ever has, declared and added organizations together: the links
    /// that need a secret.
    pub fn of_every_organization(scenario: &Scenario) -> Result<Self, ScenarioErrors> {
        Self::build_state(&scenario.with_every_organization())
    }

    /// The links of one state and their expectations; steps are not looked at.
    fn build_state(scenario: &Scenario) -> Result<Self, ScenarioErrors> {
        let organizations = &scenario.organizations;
        let count = organizations.len();
        // Outgoing peers per organization, as indices; sorted so that order follows the file.
        let mut peers: Vec<Vec<usize>> = vec![Vec::new(); count];
        for (a, b) in linked_pairs(scenario) {
            peers[a].push(b);
            peers[b].push(a);
        }
        if scenario.links.self_links {
            for (a, list) in peers.iter_mut().enumerate() {
                list.push(a);
            }
        }
        let channel_sets: Vec<HashSet<&str>> = organizations
            .iter()
            .map(|o| o.channels.iter().map(String::as_str).collect())
            .collect();
        let mut links = Vec::with_capacity(peers.iter().map(Vec::len).sum());
        for (a, list) in peers.iter_mut().enumerate() {
            list.sort_unstable();
            for &b in list.iter() {
                let from = &organizations[a];
                let to = &organizations[b];
                let channel = from
                    .channels
                    .iter()
                    .find(|c| channel_sets[b].contains(c.as_str()))
                    .cloned()
                    .unwrap_or_default();
                links.push(Link {
                    from: from.name.clone(),
                    to: to.name.clone(),
                    channel,
                    expected: Expected::HEALTHY,
                });
            }
        }
        let mut topology = Self { links };
        topology.apply(scenario)?;
        Ok(topology)
    }

    fn apply(&mut self, scenario: &Scenario) -> Result<(), ScenarioErrors> {
        let file = scenario.file.display().to_string();
        let mut diagnostics = Vec::new();
        let position_of: HashMap<(String, String), usize> = self
            .links
            .iter()
            .enumerate()
            .map(|(i, l)| ((l.from.clone(), l.to.clone()), i))
            .collect();
        let cluster_of: HashMap<&str, &str> = scenario
            .organizations
            .iter()
            .map(|o| (o.name.as_str(), o.cluster.as_str()))
            .collect();
        let missing_link = |position: Position, from: &str, to: &str| {
            ScenarioDiagnostic::new(&file, position, format!("`{from}`→`{to}` is not a link of this scenario"))
                .with_hint("faults and expectations apply to linked organizations; check `links` and `channels`")
        };
        let rejected = Expected {
            reach: Reach::Status(200),
            auth: AuthOutcome::Rejected,
        };
        let absent = Expected {
            reach: Reach::Absent,
            auth: AuthOutcome::Absent,
        };
        let error = Expected {
            reach: Reach::Error,
            auth: AuthOutcome::Error,
        };
        let mut effects: Vec<Expected> = vec![Expected::HEALTHY; self.links.len()];
        let mut seen_faults = HashSet::new();
        for fault in &scenario.faults {
            if !seen_faults.insert(&fault.value) {
                diagnostics.push(
                    ScenarioDiagnostic::new(&file, fault.position, "this fault is listed twice")
                        .with_hint("list each fault once"),
                );
                continue;
            }
            match &fault.value {
                Fault::WrongSecret { from, to }
                | Fault::MissingIncoming { from, to }
                | Fault::MissingOutgoing { from, to } => {
                    let Some(&index) = position_of.get(&(from.clone(), to.clone())) else {
                        diagnostics.push(missing_link(fault.position, from, to));
                        continue;
                    };
                    let effect = if matches!(fault.value, Fault::MissingOutgoing { .. }) {
                        absent
                    } else {
                        rejected
                    };
                    effects[index] = effects[index].worst(effect);
                }
                Fault::ChannelOnIncoming { at } => {
                    let mut any = false;
                    for (index, link) in self.links.iter().enumerate() {
                        if &link.to == at {
                            effects[index] = effects[index].worst(rejected);
                            any = true;
                        }
                    }
                    if !any {
                        diagnostics.push(
                            ScenarioDiagnostic::new(&file, fault.position, format!("`{at}` has no incoming links, so `channel-on-incoming` changes nothing"))
                                .with_hint("apply it to an organization that other organizations are linked to"),
                        );
                    }
                }
                Fault::Partition { from, to } => {
                    for (index, link) in self.links.iter().enumerate() {
                        if cluster_of.get(link.from.as_str()) == Some(&from.as_str())
                            && cluster_of.get(link.to.as_str()) == Some(&to.as_str())
                        {
                            effects[index] = effects[index].worst(error);
                        }
                    }
                }
                Fault::ClusterDown { cluster } => {
                    for (index, link) in self.links.iter().enumerate() {
                        if cluster_of.get(link.to.as_str()) == Some(&cluster.as_str()) {
                            effects[index] = effects[index].worst(error);
                        }
                    }
                }
            }
        }
        let mut seen_expectations = HashSet::new();
        for expectation in &scenario.expectations {
            let key = (expectation.value.from.clone(), expectation.value.to.clone());
            let Some(&index) = position_of.get(&key) else {
                diagnostics.push(missing_link(expectation.position, &key.0, &key.1));
                continue;
            };
            if !seen_expectations.insert(key.clone()) {
                diagnostics.push(
                    ScenarioDiagnostic::new(
                        &file,
                        expectation.position,
                        format!("`{}`→`{}` has two expectations", key.0, key.1),
                    )
                    .with_hint("merge them into one entry with `reach` and `auth`"),
                );
                continue;
            }
            if let Some(reach) = expectation.value.reach {
                effects[index].reach = reach;
            }
            if let Some(auth) = expectation.value.auth {
                effects[index].auth = auth;
            }
        }
        for (link, effect) in self.links.iter_mut().zip(effects) {
            link.expected = effect;
        }
        if diagnostics.is_empty() {
            Ok(())
        } else {
            diagnostics.sort_by_key(|d| (d.position.line, d.position.column));
            Err(ScenarioErrors { file, diagnostics })
        }
    }

    /// Whether `from`→`to` is a link.
    pub fn has_link(&self, from: &str, to: &str) -> bool {
        self.links.iter().any(|l| l.from == from && l.to == to)
    }

    /// The links from one organization, in order.
    pub fn links_from<'a>(&'a self, organization: &'a str) -> impl Iterator<Item = &'a Link> + 'a {
        self.links.iter().filter(move |l| l.from == organization)
    }

    /// The number of checks a verification makes: reach and auth per link, and one
    /// `complete` check per organization (its table must list exactly its peers, even none).
    pub fn check_count(&self, organizations: usize) -> usize {
        self.links.len() * 2 + organizations
    }
}
