//! Providers whose clusters are real Kubernetes: `kind` and `k3s` (orgmesh creates and deletes
//! the clusters) and `existing` (kubeconfig contexts the user owns). All install with the helm
//! CLI and wait, exec, and collect diagnostics with kube-rs; they differ in where clusters
//! come from, how organizations are addressed, and what teardown may delete. Once a cluster is
//! up — a kubeconfig, a context and, on kind and k3s, a node address — the code is the same.
//!
//! Ownership rules: kind deletes only clusters named with this run's prefix; k3s removes only
//! containers and networks labelled with this run's id; existing (and k3s servers attached
//! with `$ORGMESH_K3S_ATTACH`) never creates or deletes clusters, installs only into
//! namespaces that hold no helm release, and uninstalls only the releases it installed in this
//! run.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use serde_json::{Value, json};

use super::k3s::{self, K3sClusters};
use super::kind::{self, ClusterSpec, CreateOptions, Requirements};
use super::kube::KubeCluster;
use super::profile::{self, ImageOverrides, OrchestratorEndpoint};
use super::{ExecOutput, ProviderError};
use crate::charts::ChartVersion;
use crate::deploy::helm::{self, ChartRef, HelmVersion, Release};
use crate::plan::{ORCHESTRATOR_RELEASE, backend_release};
use crate::process::Environment;
use crate::scenario::{ChartSource, Scenario};

/// Which kind of Kubernetes provider.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavor {
    Kind,
    Existing,
    /// k3s containers (or attached k3s servers, see [`super::k3s::Source`]).
    K3s,
}

/// How long a helm install or upgrade may take (`--timeout`), and the waits after it.
pub const RELEASE_TIMEOUT: Duration = Duration::from_secs(600);
/// The orchestrator chart's Deployment for release `orchestrator` (`<release>-server`).
pub const ORCHESTRATOR_DEPLOYMENT: &str = "orchestrator-server";
/// How long loading one image into one kind cluster may take.
pub const IMAGE_LOAD_TIMEOUT: Duration = Duration::from_secs(600);
/// How long one exec in a server container may take.
pub const EXEC_TIMEOUT: Duration = Duration::from_secs(120);

struct ClusterHandle {
    kubeconfig: PathBuf,
    context: Option<String>,
    kube: KubeCluster,
    node_ip: String,
}

struct Placement {
    cluster: String,
    namespace: String,
    release: String,
    address: String,
}

/// A release this run installed, for teardown.
#[derive(Debug, Clone)]
struct Installed {
    cluster: String,
    namespace: String,
    release: String,
}

/// kind, k3s or existing clusters, driven by helm and kube-rs.
pub struct KubernetesProvider {
    flavor: Flavor,
    /// The k3s flavor's clusters.
    k3s: Option<K3sClusters>,
    environment: Environment,
    run_id: String,
    run_dir: PathBuf,
    helm: Option<HelmVersion>,
    clusters: HashMap<String, ClusterHandle>,
    organizations: HashMap<String, Placement>,
    orchestrator_cluster: String,
    backend_chart: Option<ChartSource>,
    orchestrator_chart: Option<ChartSource>,
    images: ImageOverrides,
    /// kind clusters that exist because of this run, registered as soon as each is created.
    created: Arc<Mutex<Vec<String>>>,
    installed: Mutex<Vec<Installed>>,
    revisions: Mutex<HashMap<String, u32>>,
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl KubernetesProvider {
    pub fn new(flavor: Flavor, environment: Environment, run_id: &str, run_dir: &Path) -> Self {
        let k3s = (flavor == Flavor::K3s).then(|| {
            K3sClusters::new(k3s::Source::from_environment(&environment), run_id, run_dir)
        });
        Self {
            flavor,
            k3s,
            environment,
            run_id: run_id.to_owned(),
            run_dir: run_dir.to_path_buf(),
            helm: None,
            clusters: HashMap::new(),
            organizations: HashMap::new(),
            orchestrator_cluster: String::new(),
            backend_chart: None,
            orchestrator_chart: None,
            images: ImageOverrides::default(),
            created: Arc::new(Mutex::new(Vec::new())),
            installed: Mutex::new(Vec::new()),
            revisions: Mutex::new(HashMap::new()),
        }
    }

    pub fn flavor(&self) -> Flavor {
        self.flavor
    }

    /// Whether this run created the clusters (and so may do anything in them and must delete
    /// them): kind, and k3s containers; not existing contexts or attached k3s servers.
    fn owns_clusters(&self) -> bool {
        match self.flavor {
            Flavor::Kind => true,
            Flavor::Existing => false,
            Flavor::K3s => self.k3s.as_ref().is_some_and(|k| k.source().is_owned()),
        }
    }

    /// Checks the host before anything is created: tools, versions, kernel limits, memory.
    pub async fn preflight(&mut self, scenario: &Scenario) -> Result<String, ProviderError> {
        match self.flavor {
            Flavor::Kind => {
                let found = kind::preflight(
                    &self.environment,
                    Requirements {
                        clusters: scenario.clusters.len(),
                        organizations: scenario.organizations.len(),
                    },
                )
                .await?;
                let summary = format!(
                    "docker {}, kind {}, helm {}",
                    found.docker, found.kind, found.helm.text
                );
                self.helm = Some(found.helm);
                Ok(summary)
            }
            Flavor::Existing => {
                let version = helm::detect_version(&self.environment).await?;
                let summary = format!("helm {}", version.text);
                self.helm = Some(version);
                Ok(summary)
            }
            Flavor::K3s => {
                let clusters = self
                    .k3s
                    .as_mut()
                    .ok_or_else(|| ProviderError::Refused("the k3s clusters are missing".into()))?;
                let found = clusters.preflight(scenario).await?;
                let version = helm::detect_version(&self.environment).await?;
                let summary = format!("{found}, helm {}", version.text);
                self.helm = Some(version);
                Ok(summary)
            }
        }
    }

    fn helm(&self) -> HelmVersion {
        self.helm.clone().unwrap_or(HelmVersion {
            major: 3,
            text: "v3".into(),
        })
    }

    /// Creates (kind) or connects to (existing) every cluster and places every organization.
    pub async fn up(
        &mut self,
        scenario: &Scenario,
    ) -> Result<Vec<(String, String)>, ProviderError> {
        self.orchestrator_cluster = scenario.orchestrator_cluster.clone();
        let images = &scenario.charts.backend.images;
        self.images = ImageOverrides {
            postgresql: images.postgresql.clone(),
            redis: images.redis.clone(),
            minio: images.minio.clone(),
        };
        self.backend_chart = Some(scenario.charts.backend.source.clone());
        self.orchestrator_chart = Some(scenario.charts.orchestrator.source.clone());
        let kubeconfig_dir = self.run_dir.join("kubeconfig");
        crate::cli::create_private_dir(&kubeconfig_dir)
            .map_err(|e| ProviderError::Io(e.to_string()))?;
        // (cluster, kubeconfig, context, node address when the provider knows it already).
        let mut connections: Vec<(String, PathBuf, Option<String>, Option<String>)> = Vec::new();
        match self.flavor {
            Flavor::K3s => {
                let clusters = self
                    .k3s
                    .as_ref()
                    .ok_or_else(|| ProviderError::Refused("the k3s clusters are missing".into()))?;
                for started in clusters.up(scenario).await? {
                    connections.push((
                        started.cluster,
                        started.kubeconfig,
                        Some(started.context),
                        Some(started.node_ip),
                    ));
                }
            }
            Flavor::Kind => {
                let config_dir = self.run_dir.join("kind");
                crate::cli::create_private_dir(&config_dir)
                    .map_err(|e| ProviderError::Io(e.to_string()))?;
                let mut specs = Vec::new();
                for (index, cluster) in scenario.clusters.iter().enumerate() {
                    let name = kind::cluster_name(&self.run_id, &cluster.name)?;
                    let config_path = config_dir.join(format!("{}.yaml", cluster.name));
                    std::fs::write(&config_path, kind::cluster_config(index)?).map_err(|e| {
                        ProviderError::Io(format!("{}: {e}", config_path.display()))
                    })?;
                    let kubeconfig_path = kubeconfig_dir.join(format!("{}.yaml", cluster.name));
                    connections.push((
                        cluster.name.clone(),
                        kubeconfig_path.clone(),
                        Some(format!("kind-{name}")),
                        None,
                    ));
                    specs.push(ClusterSpec {
                        name,
                        config_path,
                        kubeconfig_path,
                    });
                }
                let created = Arc::clone(&self.created);
                let options = CreateOptions::new(self.run_dir.join("diagnostics"));
                let outcomes =
                    kind::create_clusters(&self.environment, specs, &options, move |name| {
                        lock(&created).push(name.to_owned());
                    })
                    .await;
                let failures: Vec<String> = outcomes
                    .into_iter()
                    .filter_map(|o| o.result.err().map(|e| format!("{}: {e}", o.name)))
                    .collect();
                if !failures.is_empty() {
                    return Err(ProviderError::Refused(format!(
                        "creating kind clusters failed: {}",
                        failures.join("; ")
                    )));
                }
                // Preloaded images spare the clusters a pull (and work without a registry).
                for image in &scenario.images {
                    for cluster in &scenario.clusters {
                        let name = kind::cluster_name(&self.run_id, &cluster.name)?;
                        let command = self.environment.apply(kind::load_image(&name, image));
                        crate::process::run(&command, IMAGE_LOAD_TIMEOUT)
                            .await
                            .map_err(|e| {
                                ProviderError::Refused(format!(
                                    "loading image `{image}` into `{name}` failed: {e}"
                                ))
                            })?;
                    }
                }
            }
            Flavor::Existing => {
                for cluster in &scenario.clusters {
                    let Some(context) = &cluster.context else {
                        return Err(ProviderError::Refused(format!(
                            "cluster `{}` has no `context`: the existing provider connects to kubeconfig contexts",
                            cluster.name
                        )));
                    };
                    let kubeconfig = match &cluster.kubeconfig {
                        Some(path) => expand_home(path),
                        None => default_kubeconfig(),
                    };
                    connections.push((
                        cluster.name.clone(),
                        kubeconfig,
                        Some(context.clone()),
                        None,
                    ));
                }
                for organization in &scenario.organizations {
                    if organization.address.is_none() {
                        return Err(ProviderError::Refused(format!(
                            "organization `{}` has no `address`: on existing clusters orgmesh cannot know how peers reach it",
                            organization.name
                        )));
                    }
                }
            }
        }
        let mut ready = Vec::new();
        for (name, kubeconfig, context, known_ip) in connections {
            let kube = KubeCluster::connect(&kubeconfig, context.as_deref()).await?;
            let node_ip = match (self.flavor, known_ip) {
                (_, Some(ip)) => ip,
                (Flavor::Kind, None) => kube.node_internal_ip().await?,
                (Flavor::Existing | Flavor::K3s, None) => String::new(),
            };
            ready.push((
                name.clone(),
                if node_ip.is_empty() {
                    context.clone().unwrap_or_default()
                } else {
                    node_ip.clone()
                },
            ));
            self.clusters.insert(
                name,
                ClusterHandle {
                    kubeconfig,
                    context,
                    kube,
                    node_ip,
                },
            );
        }
        let mut per_cluster: HashMap<&str, usize> = HashMap::new();
        for organization in &scenario.organizations {
            let index = per_cluster
                .entry(organization.cluster.as_str())
                .or_default();
            let address = match (&organization.address, self.flavor) {
                (Some(address), _) => address.clone(),
                (None, _) => {
                    let node_ip = self
                        .clusters
                        .get(&organization.cluster)
                        .map(|c| c.node_ip.clone())
                        .unwrap_or_default();
                    format!("http://{node_ip}:{}", profile::backend_node_port(*index))
                }
            };
            *index += 1;
            self.organizations.insert(
                organization.name.clone(),
                Placement {
                    cluster: organization.cluster.clone(),
                    namespace: organization.name.clone(),
                    release: backend_release(&organization.name),
                    address,
                },
            );
        }
        Ok(ready)
    }

    pub fn address(&self, organization: &str) -> Option<&str> {
        self.organizations
            .get(organization)
            .map(|p| p.address.as_str())
    }

    /// The provider layer of a backend's values.
    pub fn profile(&self, organization: &str) -> Value {
        let Some(placement) = self.organizations.get(organization) else {
            return Value::Null;
        };
        match self.flavor {
            // The same layer: a k3s node is reached at its container's address as a kind node
            // is, NodePorts included.
            Flavor::Kind | Flavor::K3s => {
                let node_ip = self
                    .clusters
                    .get(&placement.cluster)
                    .map_or("", |c| c.node_ip.as_str());
                let orchestrator_ip = self
                    .clusters
                    .get(&self.orchestrator_cluster)
                    .map_or("", |c| c.node_ip.as_str());
                let endpoint = OrchestratorEndpoint::for_cluster(
                    &placement.cluster,
                    &self.orchestrator_cluster,
                    orchestrator_ip,
                );
                let port = placement
                    .address
                    .rsplit(':')
                    .next()
                    .and_then(|p| p.parse().ok())
                    .unwrap_or(profile::BACKEND_NODE_PORT_BASE);
                profile::kind_backend(&placement.namespace, node_ip, port, &endpoint, &self.images)
            }
            Flavor::Existing => {
                let host = host_of(&placement.address);
                json!({
                    "server": {"defaultDomain": placement.address},
                    "config": {"ALLOWED_HOSTS": json!([host]).to_string()},
                })
            }
        }
    }

    /// The provider layer of the orchestrator's values.
    pub fn orchestrator_profile(&self) -> Value {
        match self.flavor {
            Flavor::Kind | Flavor::K3s => profile::kind_orchestrator(),
            Flavor::Existing => Value::Null,
        }
    }

    fn placement(&self, organization: &str) -> Result<&Placement, ProviderError> {
        self.organizations
            .get(organization)
            .ok_or_else(|| ProviderError::NotUp {
                organization: organization.to_owned(),
            })
    }

    fn cluster(&self, name: &str) -> Result<&ClusterHandle, ProviderError> {
        self.clusters
            .get(name)
            .ok_or_else(|| ProviderError::Refused(format!("cluster `{name}` is not up")))
    }

    /// Writes the values of one helm call (0600) and returns the path.
    fn values_file(&self, release: &str, values: &Value) -> Result<PathBuf, ProviderError> {
        let directory = self.run_dir.join("values").join("releases");
        crate::cli::create_private_dir(&directory).map_err(|e| ProviderError::Io(e.to_string()))?;
        let revision = {
            let mut revisions = lock(&self.revisions);
            let revision = revisions.entry(release.to_owned()).or_insert(0);
            *revision += 1;
            *revision
        };
        let path = directory.join(format!("{release}-{revision}.yaml"));
        let text = crate::values::to_yaml(values).map_err(|e| ProviderError::Io(e.to_string()))?;
        crate::cli::write_private_file(&path, &text, true)
            .map_err(|e| ProviderError::Io(e.to_string()))?;
        Ok(path)
    }

    fn chart_ref(source: Option<&ChartSource>, chart: &str, version: ChartVersion) -> ChartRef {
        match source {
            Some(ChartSource::Path(path)) => ChartRef::Path { path: path.clone() },
            Some(ChartSource::Repository(repository)) => ChartRef::Repository {
                repository: repository.clone(),
                chart: chart.to_owned(),
                version: version.to_string(),
            },
            None => ChartRef::Repository {
                repository: crate::charts::DEFAULT_CHART_REPO.to_owned(),
                chart: chart.to_owned(),
                version: version.to_string(),
            },
        }
    }

    /// Refuses a namespace that holds a helm release this run did not install.
    async fn check_namespace(
        &self,
        cluster: &ClusterHandle,
        namespace: &str,
        release: &str,
    ) -> Result<(), ProviderError> {
        if self.owns_clusters() {
            return Ok(());
        }
        let ours = lock(&self.installed)
            .iter()
            .any(|i| i.namespace == namespace && i.release == release);
        if ours {
            return Ok(());
        }
        let releases = helm::list_releases(
            &self.environment,
            namespace,
            &cluster.kubeconfig,
            cluster.context.as_deref(),
            &self.helm(),
        )
        .await?;
        if let Some(foreign) = releases.first() {
            return Err(ProviderError::Refused(format!(
                "namespace `{namespace}` already holds release `{}` ({}), which orgmesh did not install in this run; orgmesh only installs into namespaces that are empty or its own",
                foreign.name, foreign.chart
            )));
        }
        // Pods that no helm release made are someone's too (kubectl apply, an operator).
        if cluster.kube.namespace_exists(namespace).await? {
            let pods = cluster.kube.pod_names(namespace).await?;
            if let Some(pod) = pods.first() {
                return Err(ProviderError::Refused(format!(
                    "namespace `{namespace}` is not empty (pod `{pod}`, {} in all) and orgmesh did not create it; orgmesh only installs into namespaces that are empty or its own",
                    pods.len()
                )));
            }
        }
        Ok(())
    }

    async fn install(
        &self,
        cluster_name: &str,
        namespace: &str,
        release_name: &str,
        chart: ChartRef,
        values: &Value,
    ) -> Result<(), ProviderError> {
        let cluster = self.cluster(cluster_name)?;
        self.check_namespace(cluster, namespace, release_name)
            .await?;
        let values_file = self.values_file(release_name, values)?;
        let release = Release {
            name: release_name.to_owned(),
            namespace: namespace.to_owned(),
            chart,
            values_file,
            kubeconfig: cluster.kubeconfig.clone(),
            context: cluster.context.clone(),
            timeout: RELEASE_TIMEOUT,
        };
        {
            let mut installed = lock(&self.installed);
            let known = installed.iter().any(|i| {
                i.namespace == namespace && i.release == release_name && i.cluster == cluster_name
            });
            if !known {
                // Registered before the call: a release helm half-installed must be torn down too.
                installed.push(Installed {
                    cluster: cluster_name.to_owned(),
                    namespace: namespace.to_owned(),
                    release: release_name.to_owned(),
                });
            }
        }
        helm::install(&self.environment, &release, &self.helm()).await?;
        Ok(())
    }

    pub async fn install_orchestrator(
        &self,
        chart: ChartVersion,
        values: &Value,
    ) -> Result<(), ProviderError> {
        let chart = Self::chart_ref(self.orchestrator_chart.as_ref(), "orchestrator", chart);
        self.install(
            &self.orchestrator_cluster,
            ORCHESTRATOR_RELEASE,
            ORCHESTRATOR_RELEASE,
            chart,
            values,
        )
        .await?;
        let cluster = self.cluster(&self.orchestrator_cluster)?;
        let upgraded = lock(&self.revisions)
            .get(ORCHESTRATOR_RELEASE)
            .is_some_and(|revision| *revision > 1);
        if upgraded {
            // The chart mounts its channel ConfigMap by subPath, which is never refreshed, and
            // its checksum annotation does not cover it (facts §1): without a restart the
            // orchestrator keeps the old channel membership.
            cluster
                .kube
                .restart_deployment(ORCHESTRATOR_RELEASE, ORCHESTRATOR_DEPLOYMENT)
                .await?;
        }
        cluster
            .kube
            .wait_deployment(
                ORCHESTRATOR_RELEASE,
                ORCHESTRATOR_DEPLOYMENT,
                RELEASE_TIMEOUT,
            )
            .await?;
        Ok(())
    }

    pub async fn install_backend(
        &self,
        organization: &str,
        chart: ChartVersion,
        values: &Value,
    ) -> Result<(), ProviderError> {
        let placement = self.placement(organization)?;
        let chart_ref = Self::chart_ref(self.backend_chart.as_ref(), "substra-backend", chart);
        self.install(
            &placement.cluster,
            &placement.namespace,
            &placement.release,
            chart_ref,
            values,
        )
        .await?;
        let cluster = self.cluster(&placement.cluster)?;
        let server = format!("{}-substra-backend-server", placement.release);
        let migrations = format!("{}-substra-backend-migrations", placement.release);
        cluster
            .kube
            .wait_deployment(&placement.namespace, &server, RELEASE_TIMEOUT)
            .await?;
        cluster
            .kube
            .wait_job(&placement.namespace, &migrations, RELEASE_TIMEOUT)
            .await?;
        Ok(())
    }

    /// `helm uninstall` of one backend (waiting until its resources are gone); it is no
    /// longer this run's to tear down.
    pub async fn uninstall_backend(&self, organization: &str) -> Result<(), ProviderError> {
        let placement =
            self.organizations
                .get(organization)
                .ok_or_else(|| ProviderError::NotUp {
                    organization: organization.to_owned(),
                })?;
        let cluster = self.cluster(&placement.cluster)?;
        let command = helm::uninstall(
            &placement.release,
            &placement.namespace,
            &cluster.kubeconfig,
            cluster.context.as_deref(),
        );
        crate::process::run(&self.environment.apply(command), RELEASE_TIMEOUT)
            .await
            .map_err(|e| {
                ProviderError::Refused(format!("uninstalling {} failed: {e}", placement.release))
            })?;
        lock(&self.installed).retain(|i| {
            !(i.cluster == placement.cluster
                && i.namespace == placement.namespace
                && i.release == placement.release)
        });
        Ok(())
    }

    fn server_selector(release: &str) -> String {
        format!(
            "app.kubernetes.io/name=substra-backend-server,app.kubernetes.io/instance={release}"
        )
    }

    pub async fn exec(
        &self,
        organization: &str,
        argv: &[String],
    ) -> Result<ExecOutput, ProviderError> {
        let placement = self.placement(organization)?;
        let cluster = self.cluster(&placement.cluster)?;
        let pod = cluster
            .kube
            .find_pod(
                &placement.namespace,
                &Self::server_selector(&placement.release),
            )
            .await?;
        Ok(cluster
            .kube
            .exec(&placement.namespace, &pod, "server", argv, EXEC_TIMEOUT)
            .await?)
    }

    /// What an operator would look at first, one text per file: pods, events, logs of the
    /// server and of the migrations Job, and `helm status`.
    pub async fn diagnostics(&self, organization: &str) -> Vec<(String, String)> {
        let Some(placement) = self.organizations.get(organization) else {
            return Vec::new();
        };
        let Ok(cluster) = self.cluster(&placement.cluster) else {
            return Vec::new();
        };
        let namespace = placement.namespace.as_str();
        let text = |result: Result<String, super::kube::KubeError>| {
            result.unwrap_or_else(|e| format!("could not collect: {e}\n"))
        };
        let mut files = vec![
            (
                "pods.txt".to_owned(),
                text(cluster.kube.describe_pods(namespace).await),
            ),
            (
                "events.txt".to_owned(),
                text(cluster.kube.events(namespace).await),
            ),
        ];
        let server = match cluster
            .kube
            .find_pod(namespace, &Self::server_selector(&placement.release))
            .await
        {
            Ok(pod) => text(
                cluster
                    .kube
                    .logs(namespace, &pod, Some("server"), 200)
                    .await,
            ),
            Err(error) => format!("could not find the server pod: {error}\n"),
        };
        files.push(("server.log".to_owned(), server));
        let job_selector = format!("job-name={}-substra-backend-migrations", placement.release);
        let migrations = match cluster.kube.find_pod(namespace, &job_selector).await {
            Ok(pod) => text(cluster.kube.logs(namespace, &pod, None, 200).await),
            Err(error) => format!("could not find the migrations pod: {error}\n"),
        };
        files.push(("migrations.log".to_owned(), migrations));
        let status = helm::status(
            &placement.release,
            namespace,
            &cluster.kubeconfig,
            cluster.context.as_deref(),
        );
        let status =
            match crate::process::run(&self.environment.apply(status), Duration::from_secs(60))
                .await
            {
                Ok(output) => output.stdout,
                Err(error) => format!("helm status failed: {error}\n"),
            };
        files.push(("helm-status.json".to_owned(), status));
        files
    }

    /// kind: deletes every cluster this run created (and any left half-created with this run's
    /// prefix), verified with `kind get clusters`. k3s: removes this run's containers and
    /// network. existing and attached k3s servers: uninstalls this run's releases, last
    /// installed first.
    pub async fn down(&self) -> Result<(), ProviderError> {
        match self.flavor {
            Flavor::Kind => {
                let mut names = lock(&self.created).clone();
                if let Ok(leftovers) = kind::run_clusters(&self.environment, &self.run_id).await {
                    for name in leftovers {
                        if !names.contains(&name) {
                            names.push(name);
                        }
                    }
                }
                if names.is_empty() {
                    return Ok(());
                }
                // Each cluster's own kubeconfig: `kind delete` edits the kubeconfig it is given,
                // and the user's must never be touched.
                let kubeconfig_dir = self.run_dir.join("kubeconfig");
                let clusters: Vec<(String, Option<PathBuf>)> = names
                    .into_iter()
                    .map(|name| {
                        let cluster = name
                            .strip_prefix(&kind::run_prefix(&self.run_id))
                            .unwrap_or(&name)
                            .to_owned();
                        let path = kubeconfig_dir.join(format!("{cluster}.yaml"));
                        (name, Some(path))
                    })
                    .collect();
                kind::delete_clusters_with_kubeconfig(&self.environment, &clusters).await?;
                Ok(())
            }
            Flavor::K3s if self.owns_clusters() => match &self.k3s {
                Some(clusters) => Ok(clusters.down().await?),
                None => Ok(()),
            },
            Flavor::Existing | Flavor::K3s => {
                let installed: Vec<Installed> =
                    lock(&self.installed).iter().rev().cloned().collect();
                let mut failures = Vec::new();
                for release in installed {
                    let Ok(cluster) = self.cluster(&release.cluster) else {
                        continue;
                    };
                    let command = helm::uninstall(
                        &release.release,
                        &release.namespace,
                        &cluster.kubeconfig,
                        cluster.context.as_deref(),
                    );
                    if let Err(error) =
                        crate::process::run(&self.environment.apply(command), RELEASE_TIMEOUT).await
                    {
                        failures.push(error.to_string());
                    }
                }
                if failures.is_empty() {
                    Ok(())
                } else {
                    Err(ProviderError::Refused(format!(
                        "uninstalling failed: {}",
                        failures.join("; ")
                    )))
                }
            }
        }
    }
}

/// The host part of an address such as `https://api.cluster-1.example:443`.
pub fn host_of(address: &str) -> String {
    let rest = address.split_once("://").map_or(address, |(_, rest)| rest);
    let authority = rest.split('/').next().unwrap_or(rest);
    match authority.rsplit_once(':') {
        Some((host, port)) if port.bytes().all(|b| b.is_ascii_digit()) => host.to_owned(),
        _ => authority.to_owned(),
    }
}

fn expand_home(path: &str) -> PathBuf {
    match path.strip_prefix("~/") {
        Some(rest) => std::env::var_os("HOME").map_or_else(
            || PathBuf::from(path),
            |home| PathBuf::from(home).join(rest),
        ),
        None => PathBuf::from(path),
    }
}

/// `$KUBECONFIG` (its first entry), else `~/.kube/config`: read, never written.
fn default_kubeconfig() -> PathBuf {
    if let Some(value) = std::env::var_os("KUBECONFIG")
        && let Some(first) = std::env::split_paths(&value).next()
    {
        return first;
    }
    expand_home("~/.kube/config")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_of_addresses() {
        assert_eq!(
            host_of("https://api.cluster-1.example:443"),
            "api.cluster-1.example"
        );
        assert_eq!(host_of("http://172.18.0.3:30800/"), "172.18.0.3");
        assert_eq!(host_of("http://backend.org-1"), "backend.org-1");
    }
}
