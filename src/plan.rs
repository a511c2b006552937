//! The plan: a scenario and its topology as ordered steps, with the releases each step
//! touches. Pure; `orgmesh plan` prints it, the runner executes it.

use std::fmt::Write as _;

use crate::scenario::{Fault, Scenario, StepName};
use crate::topology::Topology;

/// The namespace and release of the orchestrator.
pub const ORCHESTRATOR_RELEASE: &str = "orchestrator";

/// The release name of an organization's backend (facts §4: resources are `<release>-substra-backend-*`).
pub fn backend_release(organization: &str) -> String {
    format!("backend-{organization}")
}

/// One step of a run, as data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Install the orchestrator, then every backend; with or without link values.
    Deploy { linked: bool },
    /// Upgrade every backend once with its complete link values.
    Link,
    /// Check every directed link.
    Verify,
}

impl Step {
    pub fn name(&self) -> &'static str {
        match self {
            Self::Deploy { linked: false } => "deploy",
            Self::Deploy { linked: true } => "deploy-linked",
            Self::Link => "link",
            Self::Verify => "verify",
        }
    }
}

/// The ordered steps of a scenario.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    pub steps: Vec<Step>,
}

impl Plan {
    pub fn new(scenario: &Scenario) -> Self {
        let steps = scenario
            .steps
            .iter()
            .map(|step| match step {
                StepName::Deploy => Step::Deploy { linked: false },
                StepName::DeployLinked => Step::Deploy { linked: true },
                StepName::Link => Step::Link,
                StepName::Verify => Step::Verify,
            })
            .collect();
        Self { steps }
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
    let self_links = topology.links.iter().filter(|l| l.is_self()).count();
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
    for (number, step) in plan.steps.iter().enumerate() {
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
        };
        let _ = writeln!(text, "  {}. {}: {detail}", number + 1, step.name());
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
