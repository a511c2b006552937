//! Providers: where clusters come from and how releases get installed (DESIGN §5).
//!
//! One enum, one variant per provider; each gives clusters up and down, the address of each
//! organization, install/upgrade of releases, and `exec` in an organization's server. The
//! verifier only uses `exec`, so it is the same code for every provider.

pub mod containers;
pub mod k3s;
pub mod kind;
pub mod kube;
pub mod kubernetes;
pub mod profile;
pub mod sim;

use std::collections::HashMap;
use std::net::Ipv4Addr;

use serde_json::{Value, json};

use crate::charts::ChartVersion;
use crate::process::Environment;
use crate::scenario::{Fault, ProviderName, Scenario};

pub use kubernetes::{Flavor, KubernetesProvider};

/// Where the simulator's clusters run (`--isolation`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Isolation {
    /// Every cluster a loopback address of this process.
    #[default]
    InProcess,
    /// Every cluster a Docker container on a run-private network.
    Containers,
}

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
    #[error(transparent)]
    Preflight(Box<kind::PreflightError>),
    #[error(transparent)]
    Kind(Box<kind::KindError>),
    #[error(transparent)]
    Helm(Box<crate::deploy::helm::HelmError>),
    #[error(transparent)]
    Kube(Box<kube::KubeError>),
    #[error(transparent)]
    K3s(Box<k3s::K3sError>),
    #[error("{0}")]
    Container(String),
    /// The organization's cluster was stopped (`cluster-down`): nothing runs in it.
    #[error("cluster {cluster} is down: {detail}")]
    ClusterDown { cluster: String, detail: String },
    #[error("{0}")]
    Io(String),
    #[error("{0}")]
    Refused(String),
}

// The operation errors are large (argv, stderr, context); boxed, every `Result` stays small.
macro_rules! boxed_from {
    ($($variant:ident($error:ty)),* $(,)?) => {
        $(impl From<$error> for ProviderError {
            fn from(error: $error) -> Self {
                Self::$variant(Box::new(error))
            }
        })*
    };
}

boxed_from!(
    Preflight(kind::PreflightError),
    Kind(kind::KindError),
    Helm(crate::deploy::helm::HelmError),
    Kube(kube::KubeError),
    K3s(k3s::K3sError),
);

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
    /// The simulator with one Docker container per cluster.
    Containers(Box<containers::ContainerProvider>),
    /// kind, k3s or existing clusters.
    Kubernetes(Box<KubernetesProvider>),
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

    /// The provider `name` for a run. `environment` is added to every external command.
    pub fn new(
        name: ProviderName,
        isolation: Isolation,
        sim_options: sim::SimOptions,
        environment: Environment,
        run_id: &str,
        run_dir: &std::path::Path,
    ) -> Option<Self> {
        match name {
            ProviderName::Sim => Some(match isolation {
                Isolation::InProcess => Self::sim(sim_options),
                Isolation::Containers => Self::Containers(Box::new(
                    containers::ContainerProvider::new(sim_options, environment, run_id),
                )),
            }),
            ProviderName::Kind => Some(Self::Kubernetes(Box::new(KubernetesProvider::new(
                Flavor::Kind,
                environment,
                run_id,
                run_dir,
            )))),
            ProviderName::Existing => Some(Self::Kubernetes(Box::new(KubernetesProvider::new(
                Flavor::Existing,
                environment,
                run_id,
                run_dir,
            )))),
            ProviderName::K3s => Some(Self::Kubernetes(Box::new(KubernetesProvider::new(
                Flavor::K3s,
                environment,
                run_id,
                run_dir,
            )))),
        }
    }

    pub fn name(&self) -> &'static str {
        match self {
            Self::Sim(_) | Self::Containers(_) => "sim",
            Self::Kubernetes(provider) => match provider.flavor() {
                Flavor::Kind => "kind",
                Flavor::Existing => "existing",
                Flavor::K3s => "k3s",
            },
        }
    }

    /// Checks the host before anything is created. Returns what was found, for the log.
    pub async fn preflight(
        &mut self,
        scenario: &Scenario,
    ) -> Result<Option<String>, ProviderError> {
        match self {
            Self::Sim(_) => {
                if scenario.clusters.len() > MAX_SIM_CLUSTERS {
                    return Err(ProviderError::TooManyClusters {
                        count: scenario.clusters.len(),
                        max: MAX_SIM_CLUSTERS,
                    });
                }
                Ok(None)
            }
            Self::Containers(provider) => provider.preflight(scenario).await.map(Some),
            Self::Kubernetes(provider) => provider.preflight(scenario).await.map(Some),
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
            Self::Containers(provider) => provider.up(scenario).await,
            Self::Kubernetes(provider) => provider.up(scenario).await,
        }
    }

    /// The address peers use for `organization` (its `server.defaultDomain`).
    pub fn address(&self, organization: &str) -> Option<&str> {
        match self {
            Self::Sim(sim) => sim.addresses.get(organization).map(String::as_str),
            Self::Containers(provider) => provider.address(organization),
            Self::Kubernetes(provider) => provider.address(organization),
        }
    }

    /// The provider's layer of an organization's values: where it is reached and which hosts
    /// it accepts (facts §2).
    pub fn profile(&self, organization: &str) -> Value {
        let (address, host) = match self {
            Self::Sim(sim) => (
                sim.addresses.get(organization).map(String::as_str),
                sim.clusters_of
                    .get(organization)
                    .and_then(|c| sim.cluster_ips.get(c))
                    .copied(),
            ),
            Self::Containers(provider) => {
                (provider.address(organization), provider.host(organization))
            }
            Self::Kubernetes(provider) => return provider.profile(organization),
        };
        let Some(address) = address else {
            return Value::Null;
        };
        let host = host.map(|ip| ip.to_string()).unwrap_or_default();
        json!({
            "server": {"defaultDomain": address},
            "config": {"ALLOWED_HOSTS": format!("[\"{host}\"]")},
        })
    }

    /// The provider's layer of the orchestrator's values.
    pub fn orchestrator_profile(&self) -> Value {
        match self {
            Self::Sim(_) | Self::Containers(_) => Value::Null,
            Self::Kubernetes(provider) => provider.orchestrator_profile(),
        }
    }

    /// The faults this provider cannot reproduce, as a sentence, if any.
    pub fn unsupported_fault(&self, scenario: &Scenario) -> Option<String> {
        scenario.faults.iter().find_map(|fault| match (&fault.value, self) {
            (Fault::ClusterDown { .. }, Self::Containers(_)) => None,
            (Fault::ClusterDown { .. }, Self::Sim(_)) => Some(format!(
                "{}:{}:{}: `cluster-down` needs clusters as containers: run with `--isolation containers`",
                scenario.file.display(),
                fault.position.line,
                fault.position.column,
            )),
            (Fault::ClusterDown { .. }, _) => Some(format!(
                "{}:{}:{}: `cluster-down` is reproduced by the simulator with `--isolation containers` only; the {} provider does not stop clusters",
                scenario.file.display(),
                fault.position.line,
                fault.position.column,
                self.name()
            )),
            (Fault::Partition { .. }, Self::Kubernetes(_)) => Some(format!(
                "{}:{}:{}: `partition` is enforced by the simulator only; the {} provider cannot cut traffic between clusters yet",
                scenario.file.display(),
                fault.position.line,
                fault.position.column,
                self.name()
            )),
            _ => None,
        })
    }

    /// Applies the network faults that the provider enforces (partitions).
    pub async fn apply_network_faults(&self, scenario: &Scenario) -> Result<(), ProviderError> {
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
                Ok(())
            }
            Self::Containers(provider) => provider.apply_network_faults(scenario).await,
            Self::Kubernetes(_) => Ok(()),
        }
    }

    /// Stops a cluster (the `cluster-down` fault); only container isolation has clusters to stop.
    pub async fn stop_cluster(&self, cluster: &str) -> Result<(), ProviderError> {
        match self {
            Self::Containers(provider) => provider.stop_cluster(cluster).await,
            Self::Sim(_) | Self::Kubernetes(_) => Err(ProviderError::Refused(format!(
                "the {} provider cannot stop cluster {cluster}",
                self.name()
            ))),
        }
    }

    /// `helm upgrade --install` of the orchestrator.
    pub async fn install_orchestrator(
        &self,
        chart: ChartVersion,
        values: &Value,
    ) -> Result<(), ProviderError> {
        match self {
            Self::Sim(sim) => Ok(sim.network.install_orchestrator(values).await?),
            Self::Containers(provider) => provider.install_orchestrator(values).await,
            Self::Kubernetes(provider) => provider.install_orchestrator(chart, values).await,
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
            Self::Containers(provider) => {
                provider.install_backend(organization, chart, values).await
            }
            Self::Kubernetes(provider) => {
                provider.install_backend(organization, chart, values).await
            }
        }
    }

    /// `helm uninstall` of one backend: the organization leaves the network.
    pub async fn uninstall_backend(&self, organization: &str) -> Result<(), ProviderError> {
        match self {
            Self::Sim(sim) => Ok(sim.network.uninstall_backend(organization).await?),
            Self::Containers(provider) => provider.uninstall_backend(organization).await,
            Self::Kubernetes(provider) => provider.uninstall_backend(organization).await,
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
            Self::Containers(provider) => provider.exec(organization, argv).await,
            Self::Kubernetes(provider) => provider.exec(organization, argv).await,
        }
    }

    /// Files of provider-side evidence for an organization (pods, events, logs...).
    pub async fn diagnostics(&self, organization: &str) -> Vec<(String, String)> {
        match self {
            Self::Sim(_) => Vec::new(),
            Self::Containers(provider) => provider.diagnostics(organization).await,
            Self::Kubernetes(provider) => provider.diagnostics(organization).await,
        }
    }

    /// Tears everything down; afterwards nothing of this run is left.
    pub async fn down(&self) -> Result<(), ProviderError> {
        match self {
            Self::Sim(sim) => {
                sim.network.shutdown().await;
                Ok(())
            }
            Self::Containers(provider) => provider.down().await,
            Self::Kubernetes(provider) => provider.down().await,
        }
    }
}
