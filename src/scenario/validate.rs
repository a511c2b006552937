//! Validation: a [`RawScenario`] becomes a [`Scenario`] in which every name resolves, or a list
//! of diagnostics, each pointing at the offending position and saying what would be valid.
//!
//! Rules (DESIGN §2): names are DNS-1123 labels; an organization's cluster and channels exist;
//! channel members are declared organizations; MSP ids are unique and contain no `:` or
//! whitespace; explicit pairs name two different declared organizations that share a channel;
//! faults and expectations refer to links that exist.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_saphyr::Spanned;

use super::diagnostic::{Position, ScenarioDiagnostic, ScenarioErrors};
use super::model::{
    AuthOutcome, LinkMode, Name, ProviderName, RawChart, RawFault, RawReach, RawScenario, RawStep,
    ReachWord, StepName,
};
use crate::charts::{self, ChartVersion};

/// The longest scenario name: it becomes part of run and cluster names.
pub const MAX_SCENARIO_NAME: usize = 30;
/// The longest cluster name, so that `orgmesh-<run id>-<cluster>` stays within kind's limits.
pub const MAX_CLUSTER_NAME: usize = 30;
/// The longest organization name, so that release `backend-<org>` and its resources fit in 63.
pub const MAX_ORGANIZATION_NAME: usize = 40;

/// A validated scenario.
#[derive(Debug, Clone)]
pub struct Scenario {
    /// The file it came from, as given.
    pub file: PathBuf,
    pub name: String,
    pub description: Option<String>,
    pub provider: Option<ProviderName>,
    pub charts: Charts,
    pub clusters: Vec<Cluster>,
    /// The cluster the orchestrator runs in.
    pub orchestrator_cluster: String,
    /// Images loaded into every kind cluster before installing.
    pub images: Vec<String>,
    pub channels: Vec<Channel>,
    pub organizations: Vec<Organization>,
    pub links: Links,
    pub steps: Vec<Located<ScenarioStep>>,
    pub faults: Vec<Located<Fault>>,
    pub expectations: Vec<Located<Expectation>>,
}

/// One validated step.
#[derive(Debug, Clone, PartialEq)]
pub enum ScenarioStep {
    Deploy,
    DeployLinked,
    Link,
    Verify,
    /// New secrets for these directed links (both directions of each written pair, `(a, a)`
    /// for a self link); `None` for every link.
    RotateSecrets {
        links: Option<Vec<(String, String)>>,
    },
    /// Upgrade releases to these chart versions with the same link values.
    UpgradeChart {
        backend: Option<ChartVersion>,
        orchestrator: Option<ChartVersion>,
    },
    /// Install a new organization, a member of `organization.channels`.
    AddOrganization {
        organization: Organization,
    },
    /// Uninstall an organization.
    RemoveOrganization {
        name: String,
    },
}

/// A value and where it was written, for diagnostics found after validation.
#[derive(Debug, Clone, PartialEq)]
pub struct Located<T> {
    pub value: T,
    pub position: Position,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Charts {
    pub backend: Chart,
    pub orchestrator: Chart,
}

/// A chart and where it comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chart {
    pub version: ChartVersion,
    pub source: ChartSource,
    /// Backend only: Bitnami subchart image repositories; `None` keeps the chart's.
    pub images: SubchartImages,
}

/// Image repositories for the backend chart's Bitnami subcharts.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SubchartImages {
    pub postgresql: Option<String>,
    pub redis: Option<String>,
    pub minio: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChartSource {
    Repository(String),
    /// Resolved against the scenario file's directory.
    Path(PathBuf),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cluster {
    pub name: String,
    pub context: Option<String>,
    pub kubeconfig: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Channel {
    pub name: String,
    /// Organization names, in file order.
    pub members: Vec<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Organization {
    pub name: String,
    pub msp_id: String,
    pub cluster: String,
    /// The channels it is a member of, in file order.
    pub channels: Vec<String>,
    pub address: Option<String>,
    /// The user's Helm values (a mapping), or `Null`.
    pub values: serde_json::Value,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Links {
    pub mode: LinkMode,
    pub self_links: bool,
    /// Explicit mode: unordered pairs, as written.
    pub pairs: Vec<(String, String)>,
}

/// A validated fault. Organizations and clusters are names that exist.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Fault {
    WrongSecret { from: String, to: String },
    MissingIncoming { from: String, to: String },
    MissingOutgoing { from: String, to: String },
    ChannelOnIncoming { at: String },
    Partition { from: String, to: String },
    ClusterDown { cluster: String },
}

/// An expected reach outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Reach {
    Status(u16),
    Error,
    Absent,
}

/// An explicit expectation for one directed link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expectation {
    pub from: String,
    pub to: String,
    pub reach: Option<Reach>,
    pub auth: Option<AuthOutcome>,
}

impl Scenario {
    pub fn organization(&self, name: &str) -> Option<&Organization> {
        self.organizations.iter().find(|o| o.name == name)
    }

    /// The organizations added by `add-organization` steps, in step order.
    pub fn added_organizations(&self) -> impl Iterator<Item = &Organization> {
        self.steps.iter().filter_map(|step| match &step.value {
            ScenarioStep::AddOrganization { organization } => Some(organization),
            _ => None,
        })
    }

    /// The scenario with every organization it ever has, declared and added, each a member of
    /// its channels: what a provider places before the first step, so that an added
    /// organization has an address (and a namespace) when its step comes.
    pub fn with_every_organization(&self) -> Self {
        let mut every = self.clone();
        for organization in self.added_organizations() {
            every.join(organization.clone());
        }
        every
    }

    /// The organizations, channel members, faults and expectations in effect before step
    /// `index` runs (after steps `0..index`): added organizations joined, removed ones gone,
    /// with the faults and expectations that name them.
    pub fn before_step(&self, index: usize) -> Self {
        let mut state = self.clone();
        for step in self.steps.iter().take(index) {
            match &step.value {
                ScenarioStep::AddOrganization { organization } => state.join(organization.clone()),
                ScenarioStep::RemoveOrganization { name } => {
                    state.organizations.retain(|o| o.name != *name);
                    for channel in &mut state.channels {
                        channel.members.retain(|m| m != name);
                    }
                }
                _ => {}
            }
        }
        let present: HashSet<String> = state.organizations.iter().map(|o| o.name.clone()).collect();
        let is_present = |name: &String| present.contains(name);
        state.faults.retain(|fault| match &fault.value {
            Fault::WrongSecret { from, to }
            | Fault::MissingIncoming { from, to }
            | Fault::MissingOutgoing { from, to } => is_present(from) && is_present(to),
            Fault::ChannelOnIncoming { at } => is_present(at),
            Fault::Partition { .. } | Fault::ClusterDown { .. } => true,
        });
        state
            .expectations
            .retain(|e| is_present(&e.value.from) && is_present(&e.value.to));
        state
    }

    fn join(&mut self, organization: Organization) {
        for channel in &mut self.channels {
            if organization.channels.contains(&channel.name)
                && !channel.members.contains(&organization.name)
            {
                channel.members.push(organization.name.clone());
            }
        }
        self.organizations.push(organization);
    }
}

/// Whether `name` is a DNS-1123 label: lowercase letters, digits and `-`, starting and ending
/// with a letter or digit, at most 63 characters.
pub fn is_dns_label(name: &str) -> bool {
    let bytes = name.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= 63
        && bytes
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-')
        && bytes[0] != b'-'
        && bytes[bytes.len() - 1] != b'-'
}

/// Collects diagnostics for one file.
struct Checker<'a> {
    file: &'a str,
    source: &'a Arc<str>,
    diagnostics: Vec<ScenarioDiagnostic>,
}

impl Checker<'_> {
    fn error(&mut self, position: Position, message: String, hint: String) {
        self.diagnostics.push(
            ScenarioDiagnostic::new(self.file, position, message)
                .with_hint(hint)
                .with_source(self.source),
        );
    }

    fn at<T>(&mut self, spanned: &Spanned<T>, message: String, hint: String) {
        self.error(Position::of(&spanned.referenced), message, hint);
    }

    fn label(&mut self, name: &Name, what: &str, max: usize) {
        if !is_dns_label(&name.value) || name.value.len() > max {
            self.at(
                name,
                format!("`{}` is not a valid {what} name", name.value),
                format!(
                    "use a DNS-1123 label of at most {max} characters: lowercase letters, digits and `-`, starting and ending with a letter or digit"
                ),
            );
        }
    }
}

/// Names, comma-separated and quoted, for hints.
fn listing<'a>(names: impl IntoIterator<Item = &'a str>) -> String {
    let names: Vec<String> = names.into_iter().map(|n| format!("`{n}`")).collect();
    if names.is_empty() {
        "none".to_owned()
    } else {
        names.join(", ")
    }
}

/// Validates a parsed scenario. `file` is the path as given; relative chart paths are resolved
/// against its directory.
pub fn validate(
    file: &Path,
    source: &Arc<str>,
    raw: RawScenario,
) -> Result<Scenario, ScenarioErrors> {
    let display = file.display().to_string();
    let mut checker = Checker {
        file: &display,
        source,
        diagnostics: Vec::new(),
    };
    let scenario = check(&mut checker, file, raw);
    let mut diagnostics = checker.diagnostics;
    if diagnostics.is_empty() {
        Ok(scenario)
    } else {
        diagnostics.sort_by_key(|d| (d.position.line, d.position.column));
        Err(ScenarioErrors {
            file: display,
            diagnostics,
        })
    }
}

fn check(checker: &mut Checker<'_>, file: &Path, raw: RawScenario) -> Scenario {
    if let Some(version) = &raw.version
        && version.value != 1
    {
        checker.at(
            version,
            format!("scenario format version {} is not supported", version.value),
            "use `version: 1` or leave it out".into(),
        );
    }
    checker.label(&raw.name, "scenario", MAX_SCENARIO_NAME);

    let base = file.parent().unwrap_or(Path::new("."));
    let charts = Charts {
        backend: check_chart(
            checker,
            raw.charts.as_ref().and_then(|c| c.backend.as_ref()),
            charts::DEFAULT_BACKEND_CHART,
            base,
            true,
        ),
        orchestrator: check_chart(
            checker,
            raw.charts.as_ref().and_then(|c| c.orchestrator.as_ref()),
            charts::DEFAULT_ORCHESTRATOR_CHART,
            base,
            false,
        ),
    };

    // Clusters: declared, or one per organization named after it.
    let declared_clusters = raw.clusters.is_some();
    let clusters: Vec<Cluster> = match &raw.clusters {
        Some(clusters) => {
            if clusters.is_empty() {
                checker.error(
                    Position::START,
                    "`clusters` is empty".into(),
                    "declare at least one cluster, or leave `clusters` out for one cluster per organization".into(),
                );
            }
            clusters
                .iter()
                .map(|(name, cluster)| {
                    checker.label(name, "cluster", MAX_CLUSTER_NAME);
                    Cluster {
                        name: name.value.clone(),
                        context: cluster.context.clone(),
                        kubeconfig: cluster.kubeconfig.clone(),
                    }
                })
                .collect()
        }
        None => raw
            .organizations
            .keys()
            .map(|name| Cluster {
                name: name.value.clone(),
                context: None,
                kubeconfig: None,
            })
            .collect(),
    };
    let cluster_names: HashSet<&str> = clusters.iter().map(|c| c.name.as_str()).collect();
    let cluster_hint = || {
        format!(
            "declared clusters: {}",
            listing(clusters.iter().map(|c| c.name.as_str()))
        )
    };

    let orchestrator_cluster = match &raw.orchestrator {
        Some(orchestrator) => {
            if !cluster_names.contains(orchestrator.cluster.value.as_str()) {
                checker.at(
                    &orchestrator.cluster,
                    format!(
                        "the orchestrator's cluster `{}` is not declared",
                        orchestrator.cluster.value
                    ),
                    cluster_hint(),
                );
            }
            orchestrator.cluster.value.clone()
        }
        None => clusters.first().map(|c| c.name.clone()).unwrap_or_default(),
    };

    // Organizations.
    if raw.organizations.is_empty() {
        checker.error(
            Position::START,
            "the scenario declares no organizations".into(),
            "add organizations, e.g. `organizations: {ingen: {}, biotechnica: {}}`".into(),
        );
    }
    let organization_names: HashSet<&str> =
        raw.organizations.keys().map(|k| k.value.as_str()).collect();
    let organization_hint = || {
        format!(
            "declared organizations: {}",
            listing(raw.organizations.keys().map(|k| k.value.as_str()))
        )
    };
    let mut msp_ids: HashMap<String, String> = HashMap::new();
    let mut organizations = Vec::new();
    for (name, organization) in &raw.organizations {
        checker.label(name, "organization", MAX_ORGANIZATION_NAME);
        let cluster = match &organization.cluster {
            Some(cluster) => {
                if !cluster_names.contains(cluster.value.as_str()) {
                    checker.at(
                        cluster,
                        format!(
                            "organization `{}` names cluster `{}`, which is not declared",
                            name.value, cluster.value
                        ),
                        cluster_hint(),
                    );
                }
                cluster.value.clone()
            }
            None if declared_clusters => {
                checker.at(
                    name,
                    format!("organization `{}` has no `cluster`", name.value),
                    format!("add `cluster: NAME`; {}", cluster_hint()),
                );
                String::new()
            }
            None => name.value.clone(),
        };
        let msp_id = match &organization.msp_id {
            Some(msp_id) => {
                let value = &msp_id.value;
                if value.is_empty()
                    || value.contains(':')
                    || value.chars().any(char::is_whitespace)
                    || value.chars().any(char::is_control)
                {
                    checker.at(
                        msp_id,
                        format!("MSP id `{}` of organization `{}` is not valid", value.escape_debug(), name.value),
                        "an MSP id is non-empty and has no `:` or whitespace: it is the Basic-auth user name peers present".into(),
                    );
                }
                value.clone()
            }
            None => name.value.clone(),
        };
        if let Some(other) = msp_ids.get(&msp_id) {
            let position = organization
                .msp_id
                .as_ref()
                .map_or(Position::of(&name.referenced), |m| {
                    Position::of(&m.referenced)
                });
            checker.error(
                position,
                format!("organizations `{other}` and `{}` have the same MSP id `{msp_id}`", name.value),
                "MSP ids identify organizations to the orchestrator and to peers; give each a distinct `mspId`".into(),
            );
        } else {
            msp_ids.insert(msp_id.clone(), name.value.clone());
        }
        if let Some(address) = &organization.address
            && !(address.starts_with("http://") || address.starts_with("https://"))
        {
            checker.at(
                name,
                format!("the address `{address}` of organization `{}` has no scheme", name.value),
                "write it as the backend's `server.defaultDomain`, e.g. `https://api.cluster-1.example.com:443`".into(),
            );
        }
        let values = match &organization.values {
            Some(values) => {
                if !values.value.is_object() && !values.value.is_null() {
                    checker.at(
                        values,
                        format!("the `values` of organization `{}` are not a mapping", name.value),
                        "write Helm values as a mapping, e.g. `values: {server: {replicaCount: 1}}`".into(),
                    );
                }
                values.value.clone()
            }
            None => serde_json::Value::Null,
        };
        organizations.push(Organization {
            name: name.value.clone(),
            msp_id,
            cluster,
            channels: Vec::new(),
            address: organization.address.clone(),
            values,
        });
    }

    // Channels.
    if raw.channels.is_empty() {
        checker.error(
            Position::START,
            "the scenario declares no channels".into(),
            "organizations exchange assets within channels; add e.g. `channels: {our-channel: [ingen, biotechnica]}`".into(),
        );
    }
    let mut channels = Vec::new();
    for (name, members) in &raw.channels {
        checker.label(name, "channel", 63);
        if members.is_empty() {
            checker.at(
                name,
                format!("channel `{}` has no members", name.value),
                organization_hint(),
            );
        }
        let mut seen = HashSet::new();
        let mut channel_members = Vec::new();
        for member in members {
            if !organization_names.contains(member.value.as_str()) {
                checker.at(
                    member,
                    format!(
                        "channel `{}` lists `{}`, which is not a declared organization",
                        name.value, member.value
                    ),
                    organization_hint(),
                );
            } else if !seen.insert(member.value.as_str()) {
                checker.at(
                    member,
                    format!("channel `{}` lists `{}` twice", name.value, member.value),
                    "list each member once".into(),
                );
            } else {
                channel_members.push(member.value.clone());
            }
        }
        for member in &channel_members {
            if let Some(organization) = organizations.iter_mut().find(|o| &o.name == member) {
                organization.channels.push(name.value.clone());
            }
        }
        channels.push(Channel {
            name: name.value.clone(),
            members: channel_members,
        });
    }
    for (name, _) in &raw.organizations {
        let organization = organizations.iter().find(|o| o.name == name.value);
        if organization.is_some_and(|o| o.channels.is_empty()) && !raw.channels.is_empty() {
            checker.at(
                name,
                format!("organization `{}` is a member of no channel", name.value),
                "a backend registers with the orchestrator per channel; add it to a channel's member list".into(),
            );
        }
    }
    let share_channel = |a: &str, b: &str| {
        channels
            .iter()
            .any(|c| c.members.iter().any(|m| m == a) && c.members.iter().any(|m| m == b))
    };

    // Links.
    let mode = raw.links.as_ref().and_then(|l| l.mode.as_ref());
    let links_mode = mode.map_or(LinkMode::Channels, |m| m.value);
    let self_links = raw
        .links
        .as_ref()
        .and_then(|l| l.self_links)
        .unwrap_or(true);
    let mut pairs = Vec::new();
    let raw_pairs = raw.links.as_ref().and_then(|l| l.pairs.as_ref());
    match (links_mode, raw_pairs) {
        (LinkMode::Explicit, None) => {
            let position = mode.map_or(Position::START, |m| Position::of(&m.referenced));
            checker.error(
                position,
                "`links.mode: explicit` needs `links.pairs`".into(),
                "list the linked pairs, e.g. `pairs: [[ingen, biotechnica]]`".into(),
            );
        }
        (LinkMode::Explicit, Some(raw_pairs)) => {
            let mut seen = HashSet::new();
            for pair in raw_pairs {
                let [a, b] = pair.value.as_slice() else {
                    checker.at(
                        pair,
                        format!("a pair has {} organizations", pair.value.len()),
                        "a pair is two organizations, e.g. `[ingen, biotechnica]`".into(),
                    );
                    continue;
                };
                let mut known = true;
                for member in [a, b] {
                    if !organization_names.contains(member.value.as_str()) {
                        checker.at(
                            member,
                            format!(
                                "pair names `{}`, which is not a declared organization",
                                member.value
                            ),
                            organization_hint(),
                        );
                        known = false;
                    }
                }
                if !known {
                    continue;
                }
                if a.value == b.value {
                    checker.at(
                        pair,
                        format!("`[{0}, {0}]` pairs an organization with itself", a.value),
                        "self links come from `links.self` (default true); list only pairs of two organizations".into(),
                    );
                    continue;
                }
                let key = if a.value < b.value {
                    (a.value.clone(), b.value.clone())
                } else {
                    (b.value.clone(), a.value.clone())
                };
                if !seen.insert(key) {
                    checker.at(
                        pair,
                        format!("the pair `[{}, {}]` is listed twice", a.value, b.value),
                        "list each unordered pair once".into(),
                    );
                    continue;
                }
                if !share_channel(&a.value, &b.value) {
                    checker.at(
                        pair,
                        format!("`{}` and `{}` share no channel", a.value, b.value),
                        "linked organizations exchange assets in a channel they both belong to; add both to one".into(),
                    );
                    continue;
                }
                pairs.push((a.value.clone(), b.value.clone()));
            }
        }
        (_, Some(raw_pairs)) => {
            if let Some(first) = raw_pairs.first() {
                checker.at(
                    first,
                    "`links.pairs` is only used with `links.mode: explicit`".into(),
                    "set `mode: explicit`, or remove `pairs`".into(),
                );
            }
        }
        (LinkMode::Full, None) => {
            'outer: for (i, a) in organizations.iter().enumerate() {
                for b in &organizations[i + 1..] {
                    if !a.channels.is_empty()
                        && !b.channels.is_empty()
                        && !share_channel(&a.name, &b.name)
                    {
                        let position =
                            mode.map_or(Position::START, |m| Position::of(&m.referenced));
                        checker.error(
                            position,
                            format!(
                                "`links.mode: full` links `{}` and `{}`, which share no channel",
                                a.name, b.name
                            ),
                            "use `mode: channels`, or add every organization to a common channel"
                                .into(),
                        );
                        break 'outer;
                    }
                }
            }
        }
        (LinkMode::Channels, None) => {}
    }

    let images: Vec<String> = raw
        .images
        .iter()
        .flatten()
        .map(|image| {
            let value = &image.value;
            if value.is_empty() || value.chars().any(|c| c.is_whitespace() || c.is_control()) {
                checker.at(
                    image,
                    format!("`{}` is not an image reference", value.escape_debug()),
                    "write a reference the local Docker engine has, e.g. `ghcr.io/substra/substra-backend:1.0.1`".into(),
                );
            }
            value.clone()
        })
        .collect();

    // Steps.
    let mut roster = Roster {
        present: organizations.iter().map(|o| o.name.clone()).collect(),
        known: organizations.iter().map(|o| o.name.clone()).collect(),
        msp_ids: msp_ids.keys().cloned().collect(),
        clusters: cluster_names.iter().map(|c| (*c).to_owned()).collect(),
        channels: channels.iter().map(|c| c.name.clone()).collect(),
    };
    let steps: Vec<Located<ScenarioStep>> = match &raw.steps {
        Some(steps) => {
            check_steps(checker, steps);
            steps
                .iter()
                .map(|step| Located {
                    value: validate_step(checker, step, &mut roster),
                    position: Position::of(&step.referenced),
                })
                .collect()
        }
        None => [
            ScenarioStep::Deploy,
            ScenarioStep::Link,
            ScenarioStep::Verify,
        ]
        .into_iter()
        .map(|value| Located {
            value,
            position: Position::START,
        })
        .collect(),
    };

    let faults = raw
        .faults
        .iter()
        .flatten()
        .filter_map(|fault| {
            let position = Position::of(&fault.referenced);
            let org = |name: &Name, checker: &mut Checker<'_>| {
                let ok = organization_names.contains(name.value.as_str());
                if !ok {
                    checker.at(
                        name,
                        format!(
                            "the fault names `{}`, which is not a declared organization",
                            name.value
                        ),
                        organization_hint(),
                    );
                }
                ok
            };
            let value = match &fault.value {
                RawFault::WrongSecret(d)
                | RawFault::MissingIncoming(d)
                | RawFault::MissingOutgoing(d) => {
                    let known = org(&d.from, checker) & org(&d.to, checker);
                    if !known {
                        return None;
                    }
                    let (from, to) = (d.from.value.clone(), d.to.value.clone());
                    match &fault.value {
                        RawFault::WrongSecret(_) => Fault::WrongSecret { from, to },
                        RawFault::MissingIncoming(_) => Fault::MissingIncoming { from, to },
                        _ => Fault::MissingOutgoing { from, to },
                    }
                }
                RawFault::ChannelOnIncoming(at) => {
                    if !org(&at.at, checker) {
                        return None;
                    }
                    Fault::ChannelOnIncoming {
                        at: at.at.value.clone(),
                    }
                }
                RawFault::Partition(d) => {
                    let mut known = true;
                    for cluster in [&d.from, &d.to] {
                        if !cluster_names.contains(cluster.value.as_str()) {
                            checker.at(
                                cluster,
                                format!(
                                    "the partition names `{}`, which is not a declared cluster",
                                    cluster.value
                                ),
                                cluster_hint(),
                            );
                            known = false;
                        }
                    }
                    if !known {
                        return None;
                    }
                    if d.from.value == d.to.value {
                        checker.at(
                            &d.to,
                            format!(
                                "a partition from `{0}` to `{0}` cuts a cluster from itself",
                                d.from.value
                            ),
                            "a partition is between two different clusters".into(),
                        );
                        return None;
                    }
                    Fault::Partition {
                        from: d.from.value.clone(),
                        to: d.to.value.clone(),
                    }
                }
                RawFault::ClusterDown(down) => {
                    if !cluster_names.contains(down.cluster.value.as_str()) {
                        checker.at(
                            &down.cluster,
                            format!(
                                "`cluster-down` names `{}`, which is not a declared cluster",
                                down.cluster.value
                            ),
                            cluster_hint(),
                        );
                        return None;
                    }
                    Fault::ClusterDown {
                        cluster: down.cluster.value.clone(),
                    }
                }
            };
            Some(Located { value, position })
        })
        .collect();

    let expectations = raw
        .expect
        .iter()
        .flatten()
        .filter_map(|expectation| {
            let mut known = true;
            for name in [&expectation.from, &expectation.to] {
                if !organization_names.contains(name.value.as_str()) {
                    checker.at(name, format!("the expectation names `{}`, which is not a declared organization", name.value), organization_hint());
                    known = false;
                }
            }
            if expectation.reach.is_none() && expectation.auth.is_none() {
                checker.at(&expectation.from, "the expectation sets neither `reach` nor `auth`".into(), "add `reach: 200 | error | absent` or `auth: accepted | rejected | error | absent`".into());
                known = false;
            }
            let reach = expectation.reach.as_ref().map(|reach| match reach.value {
                RawReach::Status(code) => {
                    if !(100..=599).contains(&code) {
                        checker.at(reach, format!("`{code}` is not an HTTP status"), "use a status between 100 and 599, `error` or `absent`".into());
                    }
                    Reach::Status(code)
                }
                RawReach::Word(ReachWord::Error) => Reach::Error,
                RawReach::Word(ReachWord::Absent) => Reach::Absent,
            });
            known.then(|| Located {
                value: Expectation {
                    from: expectation.from.value.clone(),
                    to: expectation.to.value.clone(),
                    reach,
                    auth: expectation.auth.as_ref().map(|a| a.value),
                },
                position: Position::of(&expectation.from.referenced),
            })
        })
        .collect();

    Scenario {
        file: file.to_path_buf(),
        name: raw.name.value,
        description: raw.description,
        provider: raw.provider.map(|p| p.value),
        charts,
        clusters,
        orchestrator_cluster,
        images,
        channels,
        organizations,
        links: Links {
            mode: links_mode,
            self_links,
            pairs,
        },
        steps,
        faults,
        expectations,
    }
}

fn check_chart(
    checker: &mut Checker<'_>,
    raw: Option<&RawChart>,
    default_version: &str,
    base: &Path,
    is_backend: bool,
) -> Chart {
    let default = || Chart {
        version: default_version
            .parse()
            .unwrap_or(ChartVersion::new(0, 0, 0)),
        source: ChartSource::Repository(charts::DEFAULT_CHART_REPO.to_owned()),
        images: SubchartImages::default(),
    };
    let Some(raw) = raw else {
        return default();
    };
    let images = match &raw.images {
        Some(images) if !is_backend => {
            checker.at(
                images,
                "`images` applies to the backend chart's Bitnami subcharts".into(),
                "move it under `charts.backend`".into(),
            );
            SubchartImages::default()
        }
        Some(images) => SubchartImages {
            postgresql: images.value.postgresql.clone(),
            redis: images.value.redis.clone(),
            minio: images.value.minio.clone(),
        },
        None => SubchartImages::default(),
    };
    let version = match &raw.version {
        Some(text) => match text.value.parse::<ChartVersion>() {
            Ok(version) => {
                if is_backend && version < ChartVersion::OLDEST_SUPPORTED_BACKEND {
                    checker.at(
                        text,
                        format!("backend chart {version} predates the migrations Job and `incomingOrganizations`"),
                        format!("use a backend chart of at least {}; the latest known-good is {}", ChartVersion::OLDEST_SUPPORTED_BACKEND, charts::DEFAULT_BACKEND_CHART),
                    );
                }
                version
            }
            Err(error) => {
                checker.at(
                    text,
                    error.to_string(),
                    format!("e.g. `version: {default_version}`"),
                );
                default().version
            }
        },
        None => {
            if let Some(path) = &raw.path {
                checker.at(
                    path,
                    "a chart given by `path` needs a `version` too".into(),
                    "orgmesh derives the backend's account behaviour from the chart version; add `version: X.Y.Z`".into(),
                );
            }
            default().version
        }
    };
    let source = match (&raw.repo, &raw.path) {
        (Some(_), Some(path)) => {
            checker.at(
                path,
                "a chart has either `repo` or `path`, not both".into(),
                "keep one of them".into(),
            );
            ChartSource::Path(base.join(&path.value))
        }
        (_, Some(path)) => ChartSource::Path(base.join(&path.value)),
        (Some(repo), None) => ChartSource::Repository(repo.clone()),
        (None, None) => ChartSource::Repository(charts::DEFAULT_CHART_REPO.to_owned()),
    };
    Chart {
        version,
        source,
        images,
    }
}

fn check_steps(checker: &mut Checker<'_>, steps: &[Spanned<RawStep>]) {
    let Some(first) = steps.first() else {
        checker.error(
            Position::START,
            "`steps` is empty".into(),
            "use e.g. `steps: [deploy, link, verify]`".into(),
        );
        return;
    };
    let is_install = |step: &RawStep| {
        matches!(
            step,
            RawStep::Name(StepName::Deploy | StepName::DeployLinked)
        )
    };
    if !is_install(&first.value) {
        checker.at(
            first,
            "the first step must install the releases".into(),
            "start with `deploy` (then `link`) or `deploy-linked`".into(),
        );
    }
    let mut deployed = false;
    for step in steps {
        if is_install(&step.value) {
            if deployed {
                checker.at(
                    step,
                    "the releases are installed twice".into(),
                    "use `deploy` or `deploy-linked` once, at the start".into(),
                );
            }
            deployed = true;
        }
    }
}

/// What the steps validated so far leave: the organizations present, and every name, MSP id,
/// cluster and channel an added organization must respect.
struct Roster {
    /// The organizations present before the step, in order.
    present: Vec<String>,
    /// Every organization name declared or added: a name is never reused.
    known: HashSet<String>,
    msp_ids: HashSet<String>,
    clusters: HashSet<String>,
    channels: HashSet<String>,
}

/// One step's arguments: organizations that exist at that point, pairs of two, versions that
/// parse, added organizations as strict as declared ones. Whether a rotated pair is a link is
/// the topology's to say.
fn validate_step(
    checker: &mut Checker<'_>,
    step: &Spanned<RawStep>,
    roster: &mut Roster,
) -> ScenarioStep {
    let present: HashSet<&str> = roster.present.iter().map(String::as_str).collect();
    let organization_names = &present;
    match &step.value {
        RawStep::Name(StepName::Deploy) => ScenarioStep::Deploy,
        RawStep::Name(StepName::DeployLinked) => ScenarioStep::DeployLinked,
        RawStep::Name(StepName::Link) => ScenarioStep::Link,
        RawStep::Name(StepName::Verify) => ScenarioStep::Verify,
        RawStep::Name(StepName::RotateSecrets) => ScenarioStep::RotateSecrets { links: None },
        RawStep::RotateSecrets(rotate) => {
            let Some(pairs) = &rotate.links else {
                return ScenarioStep::RotateSecrets { links: None };
            };
            if pairs.is_empty() {
                checker.at(
                    step,
                    "`rotate-secrets.links` is empty, so nothing would be rotated".into(),
                    "list pairs such as `[[ingen, biotechnica]]`, or write `rotate-secrets` for every link".into(),
                );
            }
            let mut links = Vec::new();
            for pair in pairs {
                let [a, b] = pair.value.as_slice() else {
                    checker.at(
                        pair,
                        format!(
                            "a pair has two organizations; this one has {}",
                            pair.value.len()
                        ),
                        "write `[a, b]`, or `[a, a]` for a self link".into(),
                    );
                    continue;
                };
                let mut known = true;
                for name in [a, b] {
                    if !organization_names.contains(name.value.as_str()) {
                        known = false;
                        checker.at(
                            name,
                            format!("`{}` is not a declared organization", name.value),
                            format!(
                                "rotate links between organizations present at this step ({})",
                                sorted(organization_names)
                            ),
                        );
                    }
                }
                if known {
                    links.push((a.value.clone(), b.value.clone()));
                    if a.value != b.value {
                        links.push((b.value.clone(), a.value.clone()));
                    }
                }
            }
            ScenarioStep::RotateSecrets { links: Some(links) }
        }
        RawStep::UpgradeChart(upgrade) => {
            if upgrade.backend.is_none() && upgrade.orchestrator.is_none() {
                checker.at(
                    step,
                    "`upgrade-chart` names no chart to upgrade".into(),
                    "give `backend: X.Y.Z`, `orchestrator: X.Y.Z` or both".into(),
                );
            }
            let mut version = |text: &Option<Spanned<String>>, is_backend: bool| {
                let text = text.as_ref()?;
                match text.value.parse::<ChartVersion>() {
                    Ok(version) => {
                        if is_backend && version < ChartVersion::OLDEST_SUPPORTED_BACKEND {
                            checker.at(
                                text,
                                format!("backend chart {version} predates the migrations Job and `incomingOrganizations`"),
                                format!("use a backend chart of at least {}", ChartVersion::OLDEST_SUPPORTED_BACKEND),
                            );
                        }
                        Some(version)
                    }
                    Err(error) => {
                        checker.at(text, error.to_string(), "e.g. `backend: 26.15.3`".into());
                        None
                    }
                }
            };
            let backend = version(&upgrade.backend, true);
            let orchestrator = version(&upgrade.orchestrator, false);
            ScenarioStep::UpgradeChart {
                backend,
                orchestrator,
            }
        }
        RawStep::AddOrganization(add) => {
            let name = &add.name;
            checker.label(name, "organization", MAX_ORGANIZATION_NAME);
            if roster.known.contains(&name.value) {
                checker.at(
                    name,
                    format!("an organization named `{}` already exists in this scenario", name.value),
                    "give the added organization a name of its own; a removed organization's name is not reused".into(),
                );
            }
            let cluster = add.cluster.as_ref().map_or(name, |c| c);
            if !roster.clusters.contains(&cluster.value) {
                let mut clusters: Vec<&str> = roster.clusters.iter().map(String::as_str).collect();
                clusters.sort_unstable();
                checker.at(
                    cluster,
                    format!(
                        "cluster `{}` is not a cluster of this scenario",
                        cluster.value
                    ),
                    format!("add `cluster: NAME` naming one of: {}", clusters.join(", ")),
                );
            }
            if add.channels.is_empty() {
                checker.at(
                    name,
                    format!("the added organization `{}` joins no channel", name.value),
                    "a backend registers with the orchestrator per channel; add `channels: [NAME]`"
                        .into(),
                );
            }
            for channel in &add.channels {
                if !roster.channels.contains(&channel.value) {
                    let mut channels: Vec<&str> =
                        roster.channels.iter().map(String::as_str).collect();
                    channels.sort_unstable();
                    checker.at(
                        channel,
                        format!("channel `{}` is not declared", channel.value),
                        format!("declared channels: {}", channels.join(", ")),
                    );
                }
            }
            let msp_id = match &add.msp_id {
                Some(msp_id) => {
                    let value = &msp_id.value;
                    if value.is_empty()
                        || value.contains(':')
                        || value.chars().any(|c| c.is_whitespace() || c.is_control())
                    {
                        checker.at(
                            msp_id,
                            format!("MSP id `{}` is not valid", value.escape_debug()),
                            "an MSP id is non-empty and has no `:` or whitespace".into(),
                        );
                    }
                    value.clone()
                }
                None => name.value.clone(),
            };
            // A duplicated name is reported once, not again as its default MSP id.
            if !roster.known.contains(&name.value) && !roster.msp_ids.insert(msp_id.clone()) {
                checker.at(
                    add.msp_id.as_ref().unwrap_or(name),
                    format!("another organization already has the MSP id `{msp_id}`"),
                    "give the added organization a distinct `mspId`".into(),
                );
            }
            roster.known.insert(name.value.clone());
            roster.present.push(name.value.clone());
            ScenarioStep::AddOrganization {
                organization: Organization {
                    name: name.value.clone(),
                    msp_id,
                    cluster: cluster.value.clone(),
                    channels: add.channels.iter().map(|c| c.value.clone()).collect(),
                    address: None,
                    values: serde_json::Value::Null,
                },
            }
        }
        RawStep::RemoveOrganization(remove) => {
            let name = &remove.name;
            if !organization_names.contains(name.value.as_str()) {
                checker.at(
                    name,
                    format!(
                        "`{}` is not an organization present at this step",
                        name.value
                    ),
                    format!("remove one of: {}", sorted(organization_names)),
                );
            } else if roster.present.len() == 1 {
                checker.at(
                    name,
                    format!("removing `{}` would leave no organization", name.value),
                    "keep at least one organization to verify".into(),
                );
            }
            roster.present.retain(|o| *o != name.value);
            ScenarioStep::RemoveOrganization {
                name: name.value.clone(),
            }
        }
    }
}

fn sorted(names: &HashSet<&str>) -> String {
    let mut names: Vec<&str> = names.iter().copied().collect();
    names.sort_unstable();
    names.join(", ")
}

impl std::fmt::Display for Reach {
    /// As report.json writes it: the status code, `error` or `absent`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Status(code) => write!(f, "{code}"),
            Self::Error => f.write_str("error"),
            Self::Absent => f.write_str("absent"),
        }
    }
}

impl std::fmt::Display for AuthOutcome {
    /// As report.json writes it: `accepted`, `rejected`, `error` or `absent`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Accepted => "accepted",
            Self::Rejected => "rejected",
            Self::Error => "error",
            Self::Absent => "absent",
        })
    }
}
