//! Providers: where clusters come from and how releases get installed (DESIGN §5).
//!
//! One enum, one variant per provider; each gives clusters up and down, the address of each
//! organization, install/upgrade of releases, and `exec` in an organization's server. The
//! verifier only uses `exec`, so it is the same code for every provider.

pub mod kube;
pub mod sim;

use std::collections::HashMap;
use std::net::Ipv4Addr;

use serde_json::{Value, json};

use crate::charts::ChartVersion;
use crate::scenario::{Fault, Scenario};

/// What a command run in a server printed and how it ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecOutput {
    pub stdout: String,
    pub stderr: String,
    pub exit_code: i32,
}

/// Why a provider operation failed.
#[derive(Debug, thiserror::Error)]
pub enum ProviderError {
    #[error("the simulator has room for {max} clusters; the scenario has {count}")]
    TooManyClusters { count: usize, max: usize },
    #[error("organization `{organization}` has no address: its cluster is not up")]
    NotUp { organization: String },
    #[error(transparent)]
    Sim(#[from] sim::SimError),
}

/// The most clusters the simulator can address: 127.0.1.1 to 127.0.254.1.
pub const MAX_SIM_CLUSTERS: usize = 254;

/// The loopback address of the `index`-th cluster (0-based) in the simulator.
pub fn sim_cluster_ip(index: usize) -> Ipv4Addr {
    Ipv4Addr::new(127, 0, (index + 1).min(254) as u8, 1)
}

/// The embedded simulator, in process.
pub struct SimProvider {
    network: sim::SimNetwork,
    cluster_ips: HashMap<String, Ipv4Addr>,
    clusters_of: HashMap<String, String>,
    addresses: HashMap<String, String>,
}

/// A provider, ready to bring clusters up.
pub enum Provider {
    Sim(SimProvider),
}

impl Provider {
    /// The simulator provider with its options.
    pub fn sim(options: sim::SimOptions) -> Self {
        Self::Sim(SimProvider {
            network: sim::SimNetwork::new(options),
            cluster_ips: HashMap::new(),
            clusters_of: HashMap::new(),
            addresses: HashMap::new(),
        })
    }

    pub fn name(&self) -> &'static str {
        match self {
            Self::Sim(_) => "sim",
        }
    }

    /// Brings every cluster up and learns every organization's address. Returns the clusters'
    /// addresses, in scenario order.
    pub async fn up(
        &mut self,
        scenario: &Scenario,
    ) -> Result<Vec<(String, String)>, ProviderError> {
        match self {
            Self::Sim(sim) => {
                if scenario.clusters.len() > MAX_SIM_CLUSTERS {
                    return Err(ProviderError::TooManyClusters {
                        count: scenario.clusters.len(),
                        max: MAX_SIM_CLUSTERS,
                    });
                }
                let mut clusters = Vec::new();
                for (index, cluster) in scenario.clusters.iter().enumerate() {
                    let ip = sim_cluster_ip(index);
                    sim.cluster_ips.insert(cluster.name.clone(), ip);
                    clusters.push((cluster.name.clone(), ip.to_string()));
                }
                for organization in &scenario.organizations {
                    let ip = sim
                        .cluster_ips
                        .get(&organization.cluster)
                        .copied()
                        .ok_or_else(|| ProviderError::NotUp {
                            organization: organization.name.clone(),
                        })?;
                    let address = sim
                        .network
                        .bind_organization(&organization.name, ip)
                        .await?;
                    sim.addresses.insert(organization.name.clone(), address);
                    sim.clusters_of
                        .insert(organization.name.clone(), organization.cluster.clone());
                }
                Ok(clusters)
            }
        }
    }

    /// The address peers use for `organization` (its `server.defaultDomain`).
    pub fn address(&self, organization: &str) -> Option<&str> {
        match self {
            Self::Sim(sim) => sim.addresses.get(organization).map(String::as_str),
        }
    }

    /// The provider's layer of an organization's values: where it is reached and which hosts
    /// it accepts (facts §2).
    pub fn profile(&self, organization: &str) -> Value {
        match self {
            Self::Sim(sim) => {
                let Some(address) = sim.addresses.get(organization) else {
                    return Value::Null;
                };
                let host = sim
                    .clusters_of
                    .get(organization)
                    .and_then(|c| sim.cluster_ips.get(c))
                    .map(Ipv4Addr::to_string)
                    .unwrap_or_default();
                json!({
                    "server": {"defaultDomain": address},
                    "config": {"ALLOWED_HOSTS": format!("[\"{host}\"]")},
                })
            }
        }
    }

    /// Applies the network faults that the provider enforces (partitions).
    pub fn apply_network_faults(&self, scenario: &Scenario) {
        match self {
            Self::Sim(sim) => {
                for fault in &scenario.faults {
                    if let Fault::Partition { from, to } = &fault.value
                        && let (Some(from), Some(to)) =
                            (sim.cluster_ips.get(from), sim.cluster_ips.get(to))
                    {
                        sim.network.partition(*from, *to);
                    }
                }
            }
        }
    }

    /// `helm upgrade --install` of the orchestrator.
    pub async fn install_orchestrator(
        &self,
        _chart: ChartVersion,
        values: &Value,
    ) -> Result<(), ProviderError> {
        match self {
            Self::Sim(sim) => Ok(sim.network.install_orchestrator(values).await?),
        }
    }

    /// `helm upgrade --install` of one backend with its complete values.
    pub async fn install_backend(
        &self,
        organization: &str,
        chart: ChartVersion,
        values: &Value,
    ) -> Result<(), ProviderError> {
        match self {
            Self::Sim(sim) => Ok(sim
                .network
                .install_backend(organization, chart, values)
                .await?),
        }
    }

    /// Runs `argv` in the organization's server container.
    pub async fn exec(
        &self,
        organization: &str,
        argv: &[String],
    ) -> Result<ExecOutput, ProviderError> {
        match self {
            Self::Sim(sim) => {
                let output = sim.network.exec(organization, argv).await?;
                Ok(ExecOutput {
                    stdout: output.stdout,
                    stderr: output.stderr,
                    exit_code: output.exit_code,
                })
            }
        }
    }

    /// Tears everything down; afterwards nothing of this run is left.
    pub async fn down(&self) {
        match self {
            Self::Sim(sim) => sim.network.shutdown().await,
        }
    }
}
