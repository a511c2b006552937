//! Container isolation for the simulator (`--isolation containers`): every scenario cluster
//! is a Docker container on a run-private network, running orgmesh's own simulator backends
//! for that cluster's organizations ([`node`]). Peers reach each other at the containers'
//! addresses, so a partition is a packet filter in one container's network namespace and a
//! lost cluster is a stopped container: faults the network enforces, not orgmesh's code.
//!
//! The orchestrator stays with the harness: this process keeps the registry (membership,
//! first addresses, registration times) and pushes a copy to every node after each change,
//! so every backend reads the same channel organizations with the same sync lag.
//!
//! Containers start through testcontainers from the image `orgmesh image build` makes (built
//! on first use); each one and the network carry `dev.orgmesh.run=<run id>`, and teardown
//! removes exactly those.

pub mod node;

use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::{Duration, Instant};

use hyper::Method;
use indexmap::IndexMap;
use serde_json::{Value, json};
use testcontainers::core::{ExecCommand, WaitFor};
use testcontainers::runners::AsyncRunner;
use testcontainers::{ContainerAsync, GenericImage, ImageExt};

use super::{ExecOutput, ProviderError};
use crate::charts::ChartVersion;
use crate::docker::{self, CLUSTER_LABEL, RUN_LABEL};
use crate::error::error_chain;
use crate::process::{self, Command, Environment};
use crate::provider::sim::{SimNetwork, SimOptions};
use crate::scenario::{Fault, Scenario};

/// How long a node container may take to print its ready line.
const START_TIMEOUT: Duration = Duration::from_secs(60);
/// How long one control request may take (installs parse a values document; nothing waits).
const CONTROL_TIMEOUT: Duration = Duration::from_secs(30);
/// How long `nsenter … iptables` may take.
const FILTER_TIMEOUT: Duration = Duration::from_secs(20);

/// Whether this process runs as root: `Uid:` of /proc/self/status (real, effective, ...).
fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status").is_ok_and(|status| {
        status
            .lines()
            .find_map(|line| line.strip_prefix("Uid:"))
            .and_then(|ids| ids.split_whitespace().nth(1))
            == Some("0")
    })
}

/// A partition is a packet filter entered into a container's namespace: that takes root and
/// the `nsenter` and `iptables` commands.
fn partition_preflight() -> Result<(), ProviderError> {
    let missing: Vec<&str> = ["nsenter", "iptables"]
        .into_iter()
        .filter(|program| process::find_program(program).is_none())
        .collect();
    if !missing.is_empty() {
        return Err(ProviderError::Container(format!(
            "a partition needs {} on the host\nhint: install util-linux (nsenter) and iptables, e.g. `apt-get install util-linux iptables`",
            missing.join(" and ")
        )));
    }
    if !is_root() {
        return Err(ProviderError::Container(
            "a partition is cut inside a container's network namespace, which needs root\nhint: run orgmesh as root (or with sudo), or drop the partition fault".into(),
        ));
    }
    Ok(())
}

/// `orgmesh doctor --isolation containers`: the engine, the node image and, when `scenario`
/// has partitions (or there is no scenario), what cutting them takes. Builds nothing.
pub async fn doctor(scenario: Option<&Scenario>) -> Result<String, ProviderError> {
    let docker = docker::connect().await.map_err(docker_error)?;
    let version = docker.client_version();
    let relayed = (version.major_version, version.minor_version) < (1, 52);
    let reference = crate::image::image_reference()
        .map_err(|e| ProviderError::Container(format!("cannot name the node image: {e}")))?;
    let image = if docker::image_exists(&docker, &reference)
        .await
        .map_err(docker_error)?
    {
        format!("node image {reference} present")
    } else {
        format!("node image {reference} not built yet (the first run builds it)")
    };
    let partitions = scenario.is_none_or(|scenario| {
        scenario
            .faults
            .iter()
            .any(|f| matches!(f.value, Fault::Partition { .. }))
    });
    let cut = match (partitions, partition_preflight()) {
        (_, Ok(())) => "partitions can be cut (root, nsenter, iptables)".to_owned(),
        (true, Err(error)) if scenario.is_some() => return Err(error),
        (_, Err(error)) => format!("partitions cannot be cut here: {error}"),
    };
    Ok(format!(
        "Docker engine API {}.{}{}; {image}; {cut}",
        version.major_version,
        version.minor_version,
        if relayed {
            " (testcontainers is relayed from API 1.52)"
        } else {
            ""
        }
    ))
}

/// One scenario cluster's container.
struct Node {
    container: RwLock<Option<Arc<ContainerAsync<GenericImage>>>>,
    name: String,
    ip: Ipv4Addr,
}

impl Node {
    fn container(&self) -> Option<Arc<ContainerAsync<GenericImage>>> {
        self.container
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn control(&self) -> SocketAddr {
        node::control_address(self.ip)
    }
}

/// The simulator with one container per cluster.
pub struct ContainerProvider {
    run_id: String,
    sim: SimOptions,
    environment: Environment,
    /// The harness-side orchestrator: a network with no organizations, only the registry.
    orchestrator: SimNetwork,
    docker: Option<testcontainers::bollard::Docker>,
    nodes: IndexMap<String, Node>,
    clusters_of: HashMap<String, String>,
    addresses: HashMap<String, String>,
    stopped: RwLock<HashSet<String>>,
}

fn docker_error(error: docker::DockerError) -> ProviderError {
    ProviderError::Container(error.to_string())
}

fn control_error(cluster: &str) -> impl Fn(node::ControlError) -> ProviderError + '_ {
    move |error| match error {
        node::ControlError::Refused(message) => ProviderError::Container(message),
        unreachable => ProviderError::Container(format!("cluster {cluster}: {unreachable}")),
    }
}

impl ContainerProvider {
    pub fn new(sim: SimOptions, environment: Environment, run_id: &str) -> Self {
        Self {
            run_id: run_id.to_owned(),
            orchestrator: SimNetwork::new(sim.clone()),
            sim,
            environment,
            docker: None,
            nodes: IndexMap::new(),
            clusters_of: HashMap::new(),
            addresses: HashMap::new(),
            stopped: RwLock::new(HashSet::new()),
        }
    }

    /// The container name of a scenario cluster.
    pub fn container_name(run_id: &str, cluster: &str) -> String {
        format!("orgmesh-{run_id}-{cluster}")
    }

    /// The run's network name.
    pub fn network_name(run_id: &str) -> String {
        format!("orgmesh-{run_id}")
    }

    /// Docker is reachable, partitions can be cut, and the node image exists (it is built
    /// when missing).
    pub async fn preflight(&mut self, scenario: &Scenario) -> Result<String, ProviderError> {
        let partitions = scenario
            .faults
            .iter()
            .any(|f| matches!(f.value, Fault::Partition { .. }));
        if partitions {
            partition_preflight()?;
        }
        let docker = docker::connect().await.map_err(docker_error)?;
        let reference = crate::image::image_reference()
            .map_err(|e| ProviderError::Container(format!("cannot name the node image: {e}")))?;
        let present = docker::image_exists(&docker, &reference)
            .await
            .map_err(docker_error)?;
        if !present {
            crate::image::build(&self.environment).await.map_err(|e| {
                ProviderError::Container(format!(
                    "cannot build the node image {reference}: {}",
                    error_chain(&e)
                ))
            })?;
        }
        self.docker = Some(docker);
        Ok(format!(
            "node image {reference}{}",
            if present { "" } else { " (built)" }
        ))
    }

    /// Creates the network, starts one node per cluster and binds every organization.
    pub async fn up(
        &mut self,
        scenario: &Scenario,
    ) -> Result<Vec<(String, String)>, ProviderError> {
        let docker = match &self.docker {
            Some(docker) => docker.clone(),
            None => docker::connect().await.map_err(docker_error)?,
        };
        let network_name = Self::network_name(&self.run_id);
        // Internal: no route out of the network; the host still reaches every node.
        // The docker client is kept first: teardown sweeps by label even if creating fails.
        self.docker = Some(docker.clone());
        docker::create_network(&docker, &network_name, &self.run_id, true)
            .await
            .map_err(docker_error)?;
        let reference = crate::image::image_reference()
            .map_err(|e| ProviderError::Container(format!("cannot name the node image: {e}")))?;
        let (repository, tag) = reference
            .split_once(':')
            .unwrap_or((reference.as_str(), "latest"));
        let timeout = humantime::format_duration(self.sim.http_client_timeout).to_string();
        let starts = scenario.clusters.iter().map(|cluster| {
            let name = Self::container_name(&self.run_id, &cluster.name);
            let request = GenericImage::new(repository, tag)
                .with_wait_for(WaitFor::message_on_stdout(node::READY_LINE))
                .with_cmd(["sim-node", "serve", "--http-timeout", timeout.as_str()])
                .with_network(network_name.as_str())
                .with_container_name(name.as_str())
                .with_label(RUN_LABEL, self.run_id.as_str())
                .with_label(CLUSTER_LABEL, cluster.name.as_str())
                .with_startup_timeout(START_TIMEOUT);
            async move {
                let container = request.start().await.map_err(|e| {
                    ProviderError::Container(format!("cannot start {name}: {}", error_chain(&e)))
                })?;
                let ip = match container.get_bridge_ip_address().await {
                    Ok(IpAddr::V4(ip)) => ip,
                    Ok(IpAddr::V6(ip)) => {
                        return Err(ProviderError::Container(format!(
                            "{name} has only an IPv6 address ({ip})"
                        )));
                    }
                    Err(e) => {
                        return Err(ProviderError::Container(format!(
                            "cannot read the address of {name}: {}",
                            error_chain(&e)
                        )));
                    }
                };
                Ok::<_, ProviderError>((
                    cluster.name.clone(),
                    Node {
                        container: RwLock::new(Some(Arc::new(container))),
                        name,
                        ip,
                    },
                ))
            }
        });
        let started = futures::future::join_all(starts).await;
        let mut failure = None;
        for result in started {
            match result {
                Ok((cluster, node)) => {
                    self.nodes.insert(cluster, node);
                }
                Err(error) => failure = failure.or(Some(error)),
            }
        }
        if let Some(error) = failure {
            return Err(error);
        }
        for organization in &scenario.organizations {
            let node = self.node(&organization.cluster)?;
            let answer = node::request(
                node.control(),
                Method::POST,
                "/bind",
                &json!(node::BindRequest {
                    organization: organization.name.clone(),
                    ip: node.ip,
                }),
                CONTROL_TIMEOUT,
            )
            .await
            .map_err(control_error(&organization.cluster))?;
            let address = answer
                .get("address")
                .and_then(Value::as_str)
                .ok_or_else(|| {
                    ProviderError::Container("a node answered /bind without an address".into())
                })?;
            self.addresses
                .insert(organization.name.clone(), address.to_owned());
            self.clusters_of
                .insert(organization.name.clone(), organization.cluster.clone());
        }
        Ok(self
            .nodes
            .iter()
            .map(|(cluster, node)| (cluster.clone(), format!("{} ({})", node.ip, node.name)))
            .collect())
    }

    fn node(&self, cluster: &str) -> Result<&Node, ProviderError> {
        self.nodes.get(cluster).ok_or_else(|| ProviderError::NotUp {
            organization: cluster.to_owned(),
        })
    }

    fn node_of(&self, organization: &str) -> Result<(&str, &Node), ProviderError> {
        let cluster = self
            .clusters_of
            .get(organization)
            .ok_or_else(|| ProviderError::NotUp {
                organization: organization.to_owned(),
            })?;
        Ok((cluster, self.node(cluster)?))
    }

    pub fn address(&self, organization: &str) -> Option<&str> {
        self.addresses.get(organization).map(String::as_str)
    }

    /// The address of the container that holds `organization`.
    pub fn host(&self, organization: &str) -> Option<Ipv4Addr> {
        self.node_of(organization).ok().map(|(_, node)| node.ip)
    }

    /// Pushes the orchestrator's registry to every running node.
    async fn push_registry(&self) -> Result<(), ProviderError> {
        let Some(snapshot) = self.orchestrator.registry_snapshot(Instant::now()) else {
            return Ok(());
        };
        let body = json!(snapshot);
        let stopped = self
            .stopped
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        let pushes = self
            .nodes
            .iter()
            .filter(|(cluster, _)| !stopped.contains(*cluster))
            .map(|(cluster, node)| {
                let body = &body;
                async move {
                    node::request(
                        node.control(),
                        Method::PUT,
                        "/registry",
                        body,
                        CONTROL_TIMEOUT,
                    )
                    .await
                    .map_err(control_error(cluster))
                }
            });
        for result in futures::future::join_all(pushes).await {
            result?;
        }
        Ok(())
    }

    pub async fn install_orchestrator(&self, values: &Value) -> Result<(), ProviderError> {
        self.orchestrator.install_orchestrator(values).await?;
        self.push_registry().await
    }

    /// The chart and migrations Job run in the organization's container; its registration
    /// goes to the harness-side orchestrator, and every node gets the new registry.
    pub async fn install_backend(
        &self,
        organization: &str,
        chart: ChartVersion,
        values: &Value,
    ) -> Result<(), ProviderError> {
        let (cluster, node) = self.node_of(organization)?;
        let answer = node::request(
            node.control(),
            Method::POST,
            "/install",
            &json!(node::InstallRequest {
                organization: organization.to_owned(),
                chart: chart.to_string(),
                values: values.clone(),
            }),
            CONTROL_TIMEOUT,
        )
        .await
        .map_err(control_error(cluster))?;
        let registration = node::registration(answer).map_err(control_error(cluster))?;
        self.orchestrator
            .register_backend(&registration, Instant::now())?;
        self.push_registry().await
    }

    pub async fn uninstall_backend(&self, organization: &str) -> Result<(), ProviderError> {
        let (cluster, node) = self.node_of(organization)?;
        node::request(
            node.control(),
            Method::POST,
            "/uninstall",
            &json!(node::ExecRequest {
                organization: organization.to_owned(),
                argv: Vec::new(),
            }),
            CONTROL_TIMEOUT,
        )
        .await
        .map_err(control_error(cluster))?;
        Ok(())
    }

    /// `docker exec` of `orgmesh sim-node exec` in the organization's container.
    pub async fn exec(
        &self,
        organization: &str,
        argv: &[String],
    ) -> Result<ExecOutput, ProviderError> {
        let (cluster, node) = self.node_of(organization)?;
        let is_stopped = || {
            self.stopped
                .read()
                .unwrap_or_else(PoisonError::into_inner)
                .contains(cluster)
        };
        let down = |detail: String| ProviderError::ClusterDown {
            cluster: cluster.to_owned(),
            detail,
        };
        let Some(container) = node.container() else {
            return Err(down("its container is removed".into()));
        };
        let mut command = vec![
            "/orgmesh".to_owned(),
            "sim-node".to_owned(),
            "exec".to_owned(),
            "--organization".to_owned(),
            organization.to_owned(),
            "--".to_owned(),
        ];
        command.extend(argv.iter().cloned());
        let failed = |error: testcontainers::TestcontainersError| {
            let detail = error_chain(&error);
            if is_stopped() {
                down(detail)
            } else {
                ProviderError::Container(format!("docker exec in {}: {detail}", node.name))
            }
        };
        let mut result = container
            .exec(ExecCommand::new(command))
            .await
            .map_err(failed)?;
        let stdout = result.stdout_to_vec().await.map_err(failed)?;
        let stderr = result.stderr_to_vec().await.map_err(failed)?;
        // The streams end when the process does; its exit code follows shortly.
        let mut exit_code = None;
        for _ in 0..50 {
            exit_code = result.exit_code().await.map_err(failed)?;
            if exit_code.is_some() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let Some(exit_code) = exit_code else {
            return Err(ProviderError::Container(format!(
                "docker exec in {} gave no exit code",
                node.name
            )));
        };
        Ok(ExecOutput {
            stdout: String::from_utf8_lossy(&stdout).into_owned(),
            stderr: String::from_utf8_lossy(&stderr).into_owned(),
            exit_code: i32::try_from(exit_code).unwrap_or(i32::MAX),
        })
    }

    /// The `iptables` rule that drops new TCP connections from a container to `target`
    /// (SYN without ACK: replies to connections opened the other way still pass, so the cut
    /// is in one direction only).
    pub fn partition_command(pid: u32, target: Ipv4Addr) -> Command {
        Command::new("nsenter")
            .arg(format!("--target={pid}"))
            .args(["--net", "--", "iptables", "-w", "5", "-I", "OUTPUT", "-d"])
            .arg(format!("{target}/32"))
            .args(["-p", "tcp", "--syn", "-j", "DROP"])
    }

    /// Cuts traffic for every `partition` fault, inside the source container's namespace.
    pub async fn apply_network_faults(&self, scenario: &Scenario) -> Result<(), ProviderError> {
        let Some(docker) = &self.docker else {
            return Ok(());
        };
        for fault in &scenario.faults {
            let Fault::Partition { from, to } = &fault.value else {
                continue;
            };
            let (source, target) = (self.node(from)?, self.node(to)?);
            let pid = docker::container_pid(docker, &source.name)
                .await
                .map_err(docker_error)?;
            let command = self
                .environment
                .apply(Self::partition_command(pid, target.ip));
            process::run(&command, FILTER_TIMEOUT).await.map_err(|e| {
                ProviderError::Container(format!(
                    "cannot cut {from} → {to} in {}'s network namespace: {}\nhint: partitions need root (or CAP_NET_ADMIN and CAP_SYS_ADMIN) and the nsenter and iptables commands on the host",
                    source.name,
                    error_chain(&e)
                ))
            })?;
        }
        Ok(())
    }

    /// Stops a cluster's container at once (the `cluster-down` fault).
    pub async fn stop_cluster(&self, cluster: &str) -> Result<(), ProviderError> {
        let node = self.node(cluster)?;
        self.stopped
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(cluster.to_owned());
        if let Some(container) = node.container() {
            container.stop_with_timeout(Some(0)).await.map_err(|e| {
                ProviderError::Container(format!("cannot stop {}: {}", node.name, error_chain(&e)))
            })?;
        }
        Ok(())
    }

    /// The node's log for a failing organization.
    pub async fn diagnostics(&self, organization: &str) -> Vec<(String, String)> {
        let Ok((_, node)) = self.node_of(organization) else {
            return Vec::new();
        };
        let Some(container) = node.container() else {
            return Vec::new();
        };
        let mut files = Vec::new();
        if let Ok(stdout) = container.stdout_to_vec().await {
            files.push((
                "node.log".to_owned(),
                String::from_utf8_lossy(&stdout).into_owned(),
            ));
        }
        if let Ok(stderr) = container.stderr_to_vec().await {
            files.push((
                "node.stderr.log".to_owned(),
                String::from_utf8_lossy(&stderr).into_owned(),
            ));
        }
        files
    }

    /// Removes every container of this run at once, then sweeps whatever still carries the
    /// run's label (the network, and any container a removal missed). The sweep decides: a
    /// removal that failed because the container was already gone is no failure.
    pub async fn down(&self) -> Result<(), ProviderError> {
        let removals = self.nodes.values().filter_map(|node| {
            let container = node
                .container
                .write()
                .unwrap_or_else(PoisonError::into_inner)
                .take()?;
            let container = Arc::try_unwrap(container).ok()?;
            Some(async move { (node.name.as_str(), container.rm().await) })
        });
        let removed = futures::future::join_all(removals).await;
        let Some(docker) = &self.docker else {
            return Ok(());
        };
        docker::sweep(docker, Some(&self.run_id))
            .await
            .map(|_| ())
            .map_err(|error| {
                let removals = removed
                    .iter()
                    .filter_map(|(name, result)| {
                        result
                            .as_ref()
                            .err()
                            .map(|e| format!("; {name}: {}", error_chain(e)))
                    })
                    .collect::<String>();
                ProviderError::Container(format!("{error}{removals}"))
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_partition_drops_only_new_connections_to_the_target() {
        let argv = ContainerProvider::partition_command(4242, Ipv4Addr::new(172, 18, 0, 3)).argv();
        assert_eq!(
            argv,
            [
                "nsenter",
                "--target=4242",
                "--net",
                "--",
                "iptables",
                "-w",
                "5",
                "-I",
                "OUTPUT",
                "-d",
                "172.18.0.3/32",
                "-p",
                "tcp",
                "--syn",
                "-j",
                "DROP"
            ]
        );
    }

    #[test]
    fn names_carry_the_run_id() {
        assert_eq!(
            ContainerProvider::container_name("1a2b3c4d", "cluster-1"),
            "orgmesh-1a2b3c4d-cluster-1"
        );
        assert_eq!(
            ContainerProvider::network_name("1a2b3c4d"),
            "orgmesh-1a2b3c4d"
        );
    }
}
