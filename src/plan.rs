//! The plan: a scenario and its topology as ordered steps, with the releases each step
//! touches. Pure; `orgmesh plan` prints it, the runner executes it.

use std::fmt::Write as _;

use crate::charts::ChartVersion;
use crate::scenario::{Fault, Organization, Scenario, ScenarioStep};
use crate::topology::Topology;

/// The namespace and release of the orchestrator.
pub const ORCHESTRATOR_RELEASE: &str = "orchestrator";

/// The release name of an organization's backend (facts §4: resources are `<release>-substra-backend-*`).
pub fn backend_release(organization: &str) -> String {
    format!("backend-{organization}")
}

/// One step of a run, as data.
#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    /// Install the orchestrator, then every backend; with or without link values.
    Deploy { linked: bool },
    /// Upgrade every backend once with its complete link values.
    Link,
    /// Check every directed link, and the secrets rotated since the last verify.
    Verify,
    /// New secrets for these directed links (`None`: every link); one upgrade per
    /// organization whose values change.
    RotateSecrets {
        links: Option<Vec<(String, String)>>,
    },
    /// Upgrade the named charts' releases with the same link values.
    UpgradeChart {
        backend: Option<ChartVersion>,
        orchestrator: Option<ChartVersion>,
    },
    /// Install a new organization; upgrade the orchestrator when channel membership changes
    /// and each peer whose values change, once.
    AddOrganization { organization: Organization },
    /// Uninstall an organization; upgrade the orchestrator and each former peer, once.
    RemoveOrganization { name: String },
}

impl Step {
    pub fn name(&self) -> &'static str {
        match self {
            Self::Deploy { linked: false } => "deploy",
            Self::Deploy { linked: true } => "deploy-linked",
            Self::Link => "link",
            Self::Verify => "verify",
            Self::RotateSecrets { .. } => "rotate-secrets",
            Self::UpgradeChart { .. } => "upgrade-chart",
            Self::AddOrganization { .. } => "add-organization",
            Self::RemoveOrganization { .. } => "remove-organization",
        }
    }
}

/// The ordered steps of a scenario.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    pub steps: Vec<Step>,
}

impl Plan {
    pub fn new(scenario: &Scenario) -> Self {
        let steps = scenario
            .steps
            .iter()
            .map(|step| match &step.value {
                ScenarioStep::Deploy => Step::Deploy { linked: false },
                ScenarioStep::DeployLinked => Step::Deploy { linked: true },
                ScenarioStep::Link => Step::Link,
                ScenarioStep::Verify => Step::Verify,
                ScenarioStep::RotateSecrets { links } => Step::RotateSecrets {
                    links: links.clone(),
                },
                ScenarioStep::UpgradeChart {
                    backend,
                    orchestrator,
                } => Step::UpgradeChart {
                    backend: *backend,
                    orchestrator: *orchestrator,
                },
                ScenarioStep::AddOrganization { organization } => Step::AddOrganization {
                    organization: organization.clone(),
                },
                ScenarioStep::RemoveOrganization { name } => {
                    Step::RemoveOrganization { name: name.clone() }
                }
            })
            .collect();
        Self { steps }
    }

    /// The phase name of each step, as the report lists them: the step's name, numbered from
    /// its second occurrence on (`verify`, `verify-2`, `verify-3`...), so that every phase, and
    /// the checks a verify phase made, can be told apart.
    pub fn phase_names(&self) -> Vec<String> {
        let mut seen: std::collections::HashMap<&str, usize> = std::collections::HashMap::new();
        self.steps
            .iter()
            .map(|step| {
                let count = seen.entry(step.name()).or_default();
                *count += 1;
                if *count == 1 {
                    step.name().to_owned()
                } else {
                    format!("{}-{count}", step.name())
                }
            })
            .collect()
    }
}

fn fault_text(fault: &Fault) -> String {
    match fault {
        Fault::WrongSecret { from, to } => format!("wrong-secret {from}→{to}"),
        Fault::MissingIncoming { from, to } => format!("missing-incoming {from}→{to}"),
        Fault::MissingOutgoing { from, to } => format!("missing-outgoing {from}→{to}"),
        Fault::ChannelOnIncoming { at } => format!("channel-on-incoming at {at}"),
        Fault::Partition { from, to } => format!("partition {from}→{to}"),
        Fault::ClusterDown { cluster } => format!("cluster-down {cluster} during verify"),
    }
}

/// The plan as `orgmesh plan` prints it. Holds no secret: none exists yet.
pub fn describe(scenario: &Scenario, topology: &Topology, plan: &Plan, provider: &str) -> String {
    let mut text = String::new();
    let organizations = scenario.organizations.len();
    let _ = writeln!(text, "scenario {}", scenario.name);
    if let Some(description) = &scenario.description {
        let _ = writeln!(text, "  {description}");
    }
    let _ = writeln!(text, "provider: {provider}");
    let _ = writeln!(
        text,
        "charts: substra-backend {}, orchestrator {}",
        scenario.charts.backend.version, scenario.charts.orchestrator.version
    );
    let _ = writeln!(text, "clusters ({}):", scenario.clusters.len());
    for cluster in &scenario.clusters {
        let mut members: Vec<&str> = Vec::new();
        if cluster.name == scenario.orchestrator_cluster {
            members.push(ORCHESTRATOR_RELEASE);
        }
        members.extend(
            scenario
                .organizations
                .iter()
                .filter(|o| o.cluster == cluster.name)
                .map(|o| o.name.as_str()),
        );
        let _ = writeln!(text, "  {}: {}", cluster.name, members.join(", "));
    }
    let _ = writeln!(text, "channels ({}):", scenario.channels.len());
    for channel in &scenario.channels {
        let _ = writeln!(text, "  {}: {}", channel.name, channel.members.join(", "));
    }
    let _ = writeln!(text, "releases ({}):", organizations + 1);
    let _ = writeln!(
        text,
        "  {ORCHESTRATOR_RELEASE} in namespace {ORCHESTRATOR_RELEASE} on {}",
        scenario.orchestrator_cluster
    );
    for organization in &scenario.organizations {
        let _ = writeln!(
            text,
            "  {} in namespace {} on {} (mspID {})",
            backend_release(&organization.name),
            organization.name,
            organization.cluster,
            organization.msp_id
        );
    }
    let _ = writeln!(text, "steps:");
    for (number, (step, phase)) in plan.steps.iter().zip(plan.phase_names()).enumerate() {
        // The organizations present at this step: `add-` and `remove-organization` change them.
        let state = Topology::before_step(scenario, number).ok();
        let (organizations, topology) = match &state {
            Some((state, topology)) => (state.organizations.len(), topology),
            None => (organizations, topology),
        };
        let self_links = topology.links.iter().filter(|l| l.is_self()).count();
        let detail = match step {
            Step::Deploy { linked: false } => {
                format!("install the orchestrator, then {organizations} backends without links")
            }
            Step::Deploy { linked: true } => format!(
                "install the orchestrator, then {organizations} backends with their complete link values"
            ),
            Step::Link => format!(
                "upgrade each of the {organizations} backends once with its complete link values"
            ),
            Step::Verify => format!(
                "check {} directed links ({} self links): {} checks (reach and auth per link, complete per organization)",
                topology.links.len(),
                self_links,
                topology.check_count(organizations)
            ),
            Step::RotateSecrets { links: None } => format!(
                "new secrets for all {} directed links; upgrade each organization whose values change, once",
                topology.links.len()
            ),
            Step::RotateSecrets { links: Some(links) } => format!(
                "new secrets for {} directed links ({}); upgrade each organization whose values change, once",
                links.len(),
                links
                    .iter()
                    .map(|(from, to)| format!("{from}→{to}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            Step::UpgradeChart {
                backend,
                orchestrator,
            } => {
                let mut parts = Vec::new();
                if let Some(version) = orchestrator {
                    parts.push(format!("the orchestrator to chart {version}"));
                }
                if let Some(version) = backend {
                    parts.push(format!(
                        "each of the {organizations} backends to chart {version} with the same link values"
                    ));
                }
                format!("upgrade {}", parts.join(", then "))
            }
            Step::AddOrganization { organization } => format!(
                "install {} on {} (mspID {}, channels {}); upgrade the orchestrator and each peer whose values change, once",
                backend_release(&organization.name),
                organization.cluster,
                organization.msp_id,
                organization.channels.join(", ")
            ),
            Step::RemoveOrganization { name } => format!(
                "uninstall {}; upgrade the orchestrator and each former peer, once",
                backend_release(name)
            ),
        };
        let _ = writeln!(text, "  {}. {phase}: {detail}", number + 1);
    }
    if !scenario.faults.is_empty() {
        let _ = writeln!(text, "faults ({}):", scenario.faults.len());
        for fault in &scenario.faults {
            let _ = writeln!(text, "  {}", fault_text(&fault.value));
        }
    }
    let unhealthy: Vec<_> = topology
        .links
        .iter()
        .filter(|l| !l.expected.is_healthy())
        .collect();
    if !unhealthy.is_empty() {
        let _ = writeln!(text, "expected failures ({}):", unhealthy.len());
        for link in unhealthy {
            let _ = writeln!(
                text,
                "  {}→{}: reach {}, auth {}",
                link.from, link.to, link.expected.reach, link.expected.auth
            );
        }
    }
    text
}
