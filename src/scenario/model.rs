//! The scenario file as written (format version 1, DESIGN §2): serde types that keep every
//! name's position so that validation errors can point at file, line and column.
//!
//! Unknown keys are errors (`deny_unknown_fields`) and duplicate keys are rejected by the
//! parser, so a duplicated organization can never silently replace another. The JSON Schema
//! printed by `orgmesh schema` is derived from these types; `Spanned` fields are described by
//! the type they wrap.

use std::collections::BTreeMap;

use indexmap::IndexMap;
use schemars::JsonSchema;
use serde::Deserialize;
use serde_saphyr::Spanned;

/// A name with its position in the file.
pub type Name = Spanned<String>;

/// A scenario file, exactly as written.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[schemars(title = "orgmesh scenario", extend("$id" = "https://orgmesh.dev/schema/scenario-v1.json"))]
pub struct RawScenario {
    /// Format version; only 1 exists.
    #[schemars(with = "Option<u32>", range(min = 1, max = 1))]
    pub version: Option<Spanned<u32>>,
    /// DNS-1123 label of at most 30 characters, used in cluster and run names.
    #[schemars(
        with = "String",
        regex(pattern = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"),
        length(max = 30)
    )]
    pub name: Name,
    /// One line saying what the scenario reproduces.
    pub description: Option<String>,
    /// Where to run it; `orgmesh run --provider` wins. Default `sim`.
    #[schemars(with = "Option<ProviderName>")]
    pub provider: Option<Spanned<ProviderName>>,
    /// Chart versions; defaults are the latest known-good pair.
    pub charts: Option<RawCharts>,
    /// Clusters by name; default: one cluster per organization, named after it.
    #[schemars(with = "Option<BTreeMap<String, RawCluster>>")]
    pub clusters: Option<IndexMap<Name, RawCluster>>,
    /// Images to load into every kind cluster (`kind load docker-image`) before installing.
    #[schemars(with = "Option<Vec<String>>")]
    pub images: Option<Vec<Name>>,
    /// Where the orchestrator runs; default: the first cluster.
    pub orchestrator: Option<RawOrchestrator>,
    /// Channels by name, each with its member organizations.
    #[schemars(with = "BTreeMap<String, Vec<String>>")]
    pub channels: IndexMap<Name, Vec<Name>>,
    /// Organizations by name.
    #[schemars(with = "BTreeMap<String, RawOrganization>")]
    pub organizations: IndexMap<Name, RawOrganization>,
    /// Which organizations are linked.
    pub links: Option<RawLinks>,
    /// What the run does, in order. Default `[deploy, link, verify]`.
    #[schemars(with = "Option<Vec<StepSchema>>")]
    pub steps: Option<Vec<Spanned<RawStep>>>,
    /// Misconfigurations and outages to reproduce.
    #[schemars(with = "Option<Vec<RawFault>>")]
    pub faults: Option<Vec<Spanned<RawFault>>>,
    /// Expected outcomes per directed link, overriding the derived ones.
    pub expect: Option<Vec<RawExpectation>>,
}

/// The providers a scenario may name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum ProviderName {
    Sim,
    Kind,
    Existing,
    K3s,
}

/// The backend and orchestrator charts.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawCharts {
    pub backend: Option<RawChart>,
    pub orchestrator: Option<RawChart>,
}

/// One chart: a version from a repository, or a packaged chart on disk.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawChart {
    /// `MAJOR.MINOR.PATCH`.
    #[schemars(with = "Option<String>")]
    pub version: Option<Spanned<String>>,
    /// Helm repository URL.
    pub repo: Option<String>,
    /// A packaged chart (`.tgz`) or chart directory, relative to the scenario file.
    #[schemars(with = "Option<String>")]
    pub path: Option<Spanned<String>>,
    /// Backend only: image repositories for the Bitnami subcharts, e.g. when a registry
    /// moved its tags: `bitnamilegacy/postgresql` (the subcharts prefix their `image.registry`, docker.io).
    #[schemars(with = "Option<RawSubchartImages>")]
    pub images: Option<Spanned<RawSubchartImages>>,
}

/// Image repositories for the backend chart's Bitnami subcharts.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawSubchartImages {
    pub postgresql: Option<String>,
    pub redis: Option<String>,
    pub minio: Option<String>,
}

/// One cluster.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawCluster {
    /// `existing` provider: the kubeconfig context.
    pub context: Option<String>,
    /// `existing` provider: the kubeconfig file; default the usual kubeconfig.
    pub kubeconfig: Option<String>,
}

/// Where the orchestrator runs.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawOrchestrator {
    #[schemars(with = "String")]
    pub cluster: Name,
}

/// One organization: one substra-backend release.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawOrganization {
    /// The cluster it runs in; default the cluster named after it.
    #[schemars(with = "Option<String>")]
    pub cluster: Option<Name>,
    /// Its MSP id (`orchestrator.mspID`); default its name.
    #[serde(rename = "mspId")]
    #[schemars(with = "Option<String>")]
    pub msp_id: Option<Name>,
    /// `existing` provider: the address peers use, with scheme.
    pub address: Option<String>,
    /// Helm values deep-merged over the generated ones (maps merge, lists replace).
    #[schemars(with = "Option<BTreeMap<String, serde_json::Value>>")]
    pub values: Option<Spanned<serde_json::Value>>,
}

/// Which organizations are linked.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawLinks {
    #[schemars(with = "Option<LinkMode>")]
    pub mode: Option<Spanned<LinkMode>>,
    /// Link each organization to itself too (the guide's self pairs). Default true.
    #[serde(rename = "self")]
    pub self_links: Option<bool>,
    /// Explicit mode only: unordered pairs of organizations.
    #[schemars(with = "Option<Vec<[String; 2]>>")]
    pub pairs: Option<Vec<Spanned<Vec<Name>>>>,
}

/// How links are derived.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum LinkMode {
    /// Every pair of organizations sharing a channel.
    Channels,
    /// Every pair of organizations.
    Full,
    /// Only the pairs listed in `pairs`.
    Explicit,
}

/// A step of the run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum StepName {
    /// Install every release without links.
    Deploy,
    /// Upgrade every backend once with its complete link values.
    Link,
    /// Install every release with its link values (the guide's "at deployment time").
    DeployLinked,
    /// Check every directed link (and, after `rotate-secrets`, the rotated secrets).
    Verify,
    /// New secrets for every directed link, one upgrade per organization whose values change.
    RotateSecrets,
}

/// The names a step may have, for "unknown step" errors.
const STEP_NAMES: &[&str] = &[
    "deploy",
    "link",
    "deploy-linked",
    "verify",
    "rotate-secrets",
    "upgrade-chart",
    "add-organization",
    "remove-organization",
];

/// The steps that take arguments, written as a map with one key.
const STEPS_WITH_ARGUMENTS: &[&str] = &[
    "rotate-secrets",
    "upgrade-chart",
    "add-organization",
    "remove-organization",
];

/// A step as written: a name, or a map with one key for the steps that take arguments.
///
/// Deserialized by hand rather than `untagged`, so that the arguments are read in place:
/// their positions survive and `deny_unknown_fields` errors point at the offending key.
#[derive(Debug, Clone)]
pub enum RawStep {
    /// `deploy`, `link`, `deploy-linked`, `verify`, `rotate-secrets`.
    Name(StepName),
    /// `{rotate-secrets: {links: [[a, b]]}}`.
    RotateSecrets(RawRotateSecrets),
    /// `{upgrade-chart: {backend: X.Y.Z, orchestrator: X.Y.Z}}`.
    UpgradeChart(RawUpgradeChart),
    /// `{add-organization: {name, cluster, channels, mspId}}`.
    AddOrganization(RawAddOrganization),
    /// `{remove-organization: {name}}`.
    RemoveOrganization(RawRemoveOrganization),
}

impl<'de> Deserialize<'de> for RawStep {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        use serde::de::{self, IntoDeserializer as _};

        struct StepVisitor;

        impl<'de> de::Visitor<'de> for StepVisitor {
            type Value = RawStep;

            fn expecting(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                formatter.write_str(
                    "a step name such as `verify`, or a map with one key such as `rotate-secrets: {links: [[a, b]]}`",
                )
            }

            fn visit_str<E: de::Error>(self, value: &str) -> Result<RawStep, E> {
                match value {
                    "upgrade-chart" => {
                        return Err(E::custom(
                            "`upgrade-chart` needs the versions to upgrade to: `{upgrade-chart: {backend: 26.15.3}}`",
                        ));
                    }
                    "add-organization" | "remove-organization" => {
                        return Err(E::custom(format!(
                            "`{value}` needs the organization: `{{{value}: {{name: NAME, ...}}}}`"
                        )));
                    }
                    _ => {}
                }
                StepName::deserialize(value.into_deserializer())
                    .map(RawStep::Name)
                    .map_err(|_: de::value::Error| E::unknown_variant(value, STEP_NAMES))
            }

            fn visit_map<A: de::MapAccess<'de>>(self, mut map: A) -> Result<RawStep, A::Error> {
                let Some(key) = map.next_key::<String>()? else {
                    return Err(de::Error::custom(
                        "a step map needs one key, e.g. `rotate-secrets`",
                    ));
                };
                let step = match key.as_str() {
                    "rotate-secrets" => RawStep::RotateSecrets(map.next_value()?),
                    "upgrade-chart" => RawStep::UpgradeChart(map.next_value()?),
                    "add-organization" => RawStep::AddOrganization(map.next_value()?),
                    "remove-organization" => RawStep::RemoveOrganization(map.next_value()?),
                    other if STEP_NAMES.contains(&other) => {
                        return Err(de::Error::custom(format!(
                            "`{other}` takes no arguments; write it as a plain name"
                        )));
                    }
                    other => {
                        return Err(de::Error::unknown_variant(other, STEPS_WITH_ARGUMENTS));
                    }
                };
                if map.next_key::<de::IgnoredAny>()?.is_some() {
                    return Err(de::Error::custom(
                        "a step map has exactly one key; write each step as its own list item",
                    ));
                }
                Ok(step)
            }
        }

        deserializer.deserialize_any(StepVisitor)
    }
}

/// The JSON Schema of a step (the hand-written `Deserialize` of [`RawStep`] has no derive).
#[derive(JsonSchema)]
#[serde(untagged)]
#[expect(dead_code, reason = "only its schema is used")]
enum StepSchema {
    Name(StepName),
    RotateSecrets(RotateSecretsStep),
    UpgradeChart(UpgradeChartStep),
    AddOrganization(AddOrganizationStep),
    RemoveOrganization(RemoveOrganizationStep),
}

/// `{add-organization: {...}}`, for the schema.
#[derive(JsonSchema)]
#[serde(deny_unknown_fields)]
#[expect(dead_code, reason = "only its schema is used")]
struct AddOrganizationStep {
    #[serde(rename = "add-organization")]
    add_organization: RawAddOrganization,
}

/// `{remove-organization: {...}}`, for the schema.
#[derive(JsonSchema)]
#[serde(deny_unknown_fields)]
#[expect(dead_code, reason = "only its schema is used")]
struct RemoveOrganizationStep {
    #[serde(rename = "remove-organization")]
    remove_organization: RawRemoveOrganization,
}

/// An organization that joins during the run: installed, linked to the peers its channels
/// give it, which are upgraded once each; the orchestrator learns its channel membership.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawAddOrganization {
    /// A DNS-1123 label no other organization of the scenario has.
    #[schemars(with = "String")]
    pub name: Name,
    /// The cluster it runs in; default the cluster named after it.
    #[schemars(with = "Option<String>")]
    pub cluster: Option<Name>,
    /// The channels it joins; each must be declared under `channels`.
    #[schemars(with = "Vec<String>")]
    pub channels: Vec<Name>,
    /// Its MSP id; default its name.
    #[serde(rename = "mspId")]
    #[schemars(with = "Option<String>")]
    pub msp_id: Option<Name>,
}

/// An organization that leaves during the run: uninstalled; its peers are upgraded without it.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawRemoveOrganization {
    #[schemars(with = "String")]
    pub name: Name,
}

/// `{rotate-secrets: {...}}`, for the schema.
#[derive(JsonSchema)]
#[serde(deny_unknown_fields)]
#[expect(dead_code, reason = "only its schema is used")]
struct RotateSecretsStep {
    #[serde(rename = "rotate-secrets")]
    rotate_secrets: RawRotateSecrets,
}

/// `{upgrade-chart: {...}}`, for the schema.
#[derive(JsonSchema)]
#[serde(deny_unknown_fields)]
#[expect(dead_code, reason = "only its schema is used")]
struct UpgradeChartStep {
    #[serde(rename = "upgrade-chart")]
    upgrade_chart: RawUpgradeChart,
}

/// Which links get new secrets.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawRotateSecrets {
    /// Unordered pairs: both directed links of each get new secrets; `[a, a]` is a self link.
    /// Default: every link.
    #[schemars(with = "Option<Vec<[String; 2]>>")]
    pub links: Option<Vec<Spanned<Vec<Name>>>>,
}

/// The chart versions to upgrade to; the link values stay the same.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawUpgradeChart {
    /// The substra-backend chart version, `MAJOR.MINOR.PATCH`.
    #[schemars(with = "Option<String>")]
    pub backend: Option<Spanned<String>>,
    /// The orchestrator chart version, `MAJOR.MINOR.PATCH`.
    #[schemars(with = "Option<String>")]
    pub orchestrator: Option<Spanned<String>>,
}

/// A fault to reproduce (DESIGN §4).
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub enum RawFault {
    /// A's outgoing secret for B differs from B's incoming secret for A.
    WrongSecret(RawDirected),
    /// B has no incoming entry for A.
    MissingIncoming(RawDirected),
    /// A has no outgoing entry for B.
    MissingOutgoing(RawDirected),
    /// Every incoming entry of `at` gets a `channel` key, as the guide writes it.
    ChannelOnIncoming(RawAt),
    /// Traffic from cluster `from` to cluster `to` is dropped.
    Partition(RawDirected),
    /// The cluster stops during verification.
    ClusterDown(RawClusterDown),
}

/// A direction between two organizations (or clusters, for `partition`).
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawDirected {
    #[schemars(with = "String")]
    pub from: Name,
    #[schemars(with = "String")]
    pub to: Name,
}

/// An organization a fault applies to.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawAt {
    #[schemars(with = "String")]
    pub at: Name,
}

/// A cluster that goes down, and when.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawClusterDown {
    #[schemars(with = "String")]
    pub cluster: Name,
    #[schemars(with = "Option<DownPhase>")]
    pub at: Option<Spanned<DownPhase>>,
}

/// When a cluster goes down.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum DownPhase {
    Verify,
}

/// An explicit expectation for one directed link.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawExpectation {
    #[schemars(with = "String")]
    pub from: Name,
    #[schemars(with = "String")]
    pub to: Name,
    /// `200` (or another status code), `error` or `absent`.
    #[schemars(with = "Option<RawReach>")]
    pub reach: Option<Spanned<RawReach>>,
    #[schemars(with = "Option<AuthOutcome>")]
    pub auth: Option<Spanned<AuthOutcome>>,
}

/// An expected reach outcome as written: a status code or a word.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum RawReach {
    Status(#[schemars(range(min = 100, max = 599))] u16),
    Word(ReachWord),
}

/// Reach outcomes that are not a status code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum ReachWord {
    /// The request raised (connection refused, timeout...).
    Error,
    /// No row for the peer in the outgoing table.
    Absent,
}

/// What the credential probe can observe.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum AuthOutcome {
    /// 200: the peer accepted the credentials.
    Accepted,
    /// 401: the peer rejected them.
    Rejected,
    /// The request failed or answered something else.
    Error,
    /// No outgoing entry for the peer, so nothing was presented.
    Absent,
}
