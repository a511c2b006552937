//! The k3s provider's clusters: one privileged k3s container per scenario cluster, started with
//! testcontainers' `K3s` module on one Docker network of the run (DESIGN §5).
//!
//! This module only brings clusters up and down. What it hands over is a [`Started`] cluster —
//! a kubeconfig file in the run directory, its context and the node's address — after which
//! [`super::kubernetes::KubernetesProvider`] installs, waits, execs, collects diagnostics and
//! uninstalls exactly as it does on kind.
//!
//! Where the clusters come from is a [`Source`]:
//! - [`Source::Containers`] (the default): the image is `$ORGMESH_K3S_IMAGE` or
//!   [`DEFAULT_IMAGE`]. Preflight checks the engine and the image — present locally, or one pull
//!   — before anything exists. Each container is named `orgmesh-<run>-<cluster>`, labelled
//!   [`crate::docker::RUN_LABEL`] and [`crate::docker::CLUSTER_LABEL`], runs privileged with the
//!   host user namespace, publishes only its API port and only on 127.0.0.1, and gets its own pod
//!   and service subnets (the kind provider's). The kubeconfig k3s writes into the conf mount is
//!   rewritten to the mapped port and kept 0600 under `<run dir>/kubeconfig/`. Organizations are
//!   addressed at the container's IP on the run network and their NodePort, which pods of every
//!   cluster and the harness on the host can reach. Teardown removes the containers, then
//!   sweeps every container and network carrying the run's label.
//! - [`Source::Attached`] (`$ORGMESH_K3S_ATTACH=FILE`): k3s servers someone else started; FILE
//!   says, per scenario cluster, where its kubeconfig is, which host port reaches its API and
//!   the node's address. No Docker is used. Their kubeconfigs get the same rewrite, and as on
//!   the existing provider the clusters are not orgmesh's: teardown only uninstalls this run's
//!   releases. The end-to-end tests attach fake API servers this way.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use futures::StreamExt;
use serde::Deserialize;
use serde_json::{Value, json};
use testcontainers::bollard::Docker;
use testcontainers::bollard::models::PortBinding;
use testcontainers::core::{AccessMode, Mount};
use testcontainers::runners::AsyncRunner;
use testcontainers::{ContainerAsync, ImageExt};
use testcontainers_modules::k3s::{K3s, KUBE_SECURE_PORT};

use super::kind;
use crate::docker::{self, CLUSTER_LABEL, DockerError, RUN_LABEL};
use crate::process::Environment;
use crate::scenario::Scenario;

/// The image used unless `$ORGMESH_K3S_IMAGE` names another: the Kubernetes version of the
/// kind provider's node image (`kindest/node:v1.36.1`).
pub const DEFAULT_IMAGE: &str = "rancher/k3s:v1.36.1-k3s1";
/// Names the k3s image (`[registry/]repository[:tag]`).
pub const IMAGE_VARIABLE: &str = "ORGMESH_K3S_IMAGE";
/// Names a file of already running k3s servers to use instead of containers.
pub const ATTACH_VARIABLE: &str = "ORGMESH_K3S_ATTACH";
/// How long the one pull of a missing image may take.
pub const PULL_TIMEOUT: Duration = Duration::from_secs(600);
/// How long a k3s container may take to report its node controller synced.
pub const STARTUP_TIMEOUT: Duration = Duration::from_secs(240);
/// How long k3s may take to write its kubeconfig once it reports ready.
const KUBECONFIG_TIMEOUT: Duration = Duration::from_secs(30);
/// How many k3s servers start at once: each is a full control plane.
pub const CONCURRENCY: usize = 2;
/// Where k3s imports image archives from when it starts.
const IMAGES_DIRECTORY: &str = "/var/lib/rancher/k3s/agent/images/";

/// Why the k3s provider could not bring its clusters up or down.
#[derive(Debug, thiserror::Error)]
pub enum K3sError {
    #[error(
        "the k3s provider runs its clusters as Docker containers and needs a Docker engine: {source}"
    )]
    DockerNeeded {
        #[source]
        source: DockerError,
    },
    #[error(
        "the k3s image `{image}` is not in the local Docker engine and pulling it failed: {reason}\nhint: load it (`docker load -i k3s.tar`), pull it on a machine with registry access (`docker pull {image}`, then `docker save {image} -o k3s.tar`), or name an image the engine has with {IMAGE_VARIABLE}"
    )]
    ImageUnavailable { image: String, reason: String },
    #[error("the host is not ready for the k3s provider:\n{}", problem_lines(.problems))]
    Host { problems: Vec<kind::Problem> },
    #[error("{IMAGE_VARIABLE}=`{image}` is not an image reference: {reason}")]
    BadImage { image: String, reason: String },
    #[error("{ATTACH_VARIABLE}: {path}: {reason}")]
    Attach { path: PathBuf, reason: String },
    #[error(transparent)]
    Name(#[from] kind::KindError),
    #[error("Docker: {0}")]
    Docker(#[from] DockerError),
    #[error("could not start the k3s container `{name}`: {reason}")]
    Start { name: String, reason: String },
    #[error("the kubeconfig of `{name}`: {reason}")]
    Kubeconfig { name: String, reason: String },
    #[error("{path}: {reason}")]
    Io { path: PathBuf, reason: String },
    #[error("removing the k3s containers failed: {}", .failures.join("; "))]
    NotRemoved { failures: Vec<String> },
}

fn problem_lines(problems: &[kind::Problem]) -> String {
    problems
        .iter()
        .map(|problem| format!("  - {problem}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// A cluster that is up: everything the Kubernetes provider needs from here on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Started {
    /// The scenario cluster.
    pub cluster: String,
    /// Its kubeconfig, rewritten, 0600, in the run directory.
    pub kubeconfig: PathBuf,
    /// The context of that kubeconfig.
    pub context: String,
    /// The node's address, at which pods of every cluster and the host reach its NodePorts.
    pub node_ip: String,
}

/// Where the clusters come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// k3s containers of this image, started and removed by this run.
    Containers { image: String },
    /// k3s servers described by this file, started by someone else.
    Attached { file: PathBuf },
}

impl Source {
    /// `$ORGMESH_K3S_ATTACH` when set, else containers of `$ORGMESH_K3S_IMAGE` or the default
    /// image. `environment` (the tools' extra variables) wins over this process's environment.
    pub fn from_environment(environment: &Environment) -> Self {
        let lookup = |key: &str| {
            environment
                .variables
                .iter()
                .rev()
                .find(|(k, _)| k == key)
                .map(|(_, v)| v.clone())
                .or_else(|| std::env::var(key).ok())
                .filter(|v| !v.trim().is_empty())
        };
        match lookup(ATTACH_VARIABLE) {
            Some(file) => Self::Attached {
                file: PathBuf::from(file),
            },
            None => Self::Containers {
                image: lookup(IMAGE_VARIABLE).unwrap_or_else(|| DEFAULT_IMAGE.to_owned()),
            },
        }
    }

    /// Whether this run creates (and so deletes) the clusters.
    pub fn is_owned(&self) -> bool {
        matches!(self, Self::Containers { .. })
    }
}

/// `[registry[:port]/]repository[:tag]` → (repository with registry, tag). The tag is what
/// follows the last `:` after the last `/`; without one it is `latest`. Digests are refused:
/// testcontainers joins name and tag with `:`.
pub fn split_image(image: &str) -> Result<(String, String), K3sError> {
    let bad = |reason: &str| K3sError::BadImage {
        image: image.to_owned(),
        reason: reason.to_owned(),
    };
    if image.contains('@') {
        return Err(bad("digests are not supported; name the image by tag"));
    }
    if image.is_empty() || image.chars().any(char::is_whitespace) {
        return Err(bad("it is empty or contains whitespace"));
    }
    let last_slash = image.rfind('/').map_or(0, |i| i + 1);
    match image[last_slash..].rfind(':') {
        Some(colon) => {
            let colon = last_slash + colon;
            let (name, tag) = (&image[..colon], &image[colon + 1..]);
            if name.is_empty() || tag.is_empty() {
                return Err(bad("the repository or the tag is empty"));
            }
            Ok((name.to_owned(), tag.to_owned()))
        }
        None => Ok((image.to_owned(), "latest".to_owned())),
    }
}

/// The k3s server command of the `index`-th cluster (0-based): the module's own
/// `server --snapshotter=native` (works on any storage driver, overlay in overlay does not),
/// the kind provider's pod and service subnets for that index so no two clusters overlap, the
/// cluster DNS inside the service subnet, and neither traefik nor metrics-server: backends are
/// NodePort services and nothing reads metrics, so both would only take memory.
pub fn server_command(index: usize) -> Result<Vec<String>, K3sError> {
    if index >= kind::MAX_CLUSTERS {
        return Err(kind::KindError::TooManyClusters { index }.into());
    }
    let pod_octet = 16 + index * 2;
    let service_octet = pod_octet + 1;
    Ok(vec![
        "server".into(),
        "--snapshotter=native".into(),
        format!("--cluster-cidr=10.{pod_octet}.0.0/16"),
        format!("--service-cidr=10.{service_octet}.0.0/16"),
        format!("--cluster-dns=10.{service_octet}.0.10"),
        "--disable=traefik".into(),
        "--disable=metrics-server".into(),
    ])
}

/// The `server` URL with its host and port replaced by `127.0.0.1:port`; scheme and path stay.
pub fn rewrite_server(server: &str, port: u16) -> Result<String, String> {
    let (scheme, rest) = server
        .split_once("://")
        .ok_or_else(|| format!("server `{server}` is not a URL"))?;
    let path = rest.find('/').map_or("", |i| &rest[i..]);
    Ok(format!("{scheme}://127.0.0.1:{port}{path}"))
}

/// The kubeconfig k3s wrote (YAML), for use from the host: every cluster's `server` points at
/// `127.0.0.1:port` (the host port mapped to 6443), and its one cluster, user and context — all
/// named `default` by k3s, so they would clash between clusters — are renamed `name`, which is
/// also the current context. Returned as JSON, which kubectl, helm and kube-rs read as YAML.
pub fn rewrite_kubeconfig(text: &str, port: u16, name: &str) -> Result<Value, String> {
    let mut config: Value =
        serde_saphyr::from_str(text).map_err(|e| format!("it is not YAML: {e}"))?;
    let Value::Object(map) = &mut config else {
        return Err("it is not a mapping".into());
    };
    for key in ["clusters", "users", "contexts"] {
        let count = map.get(key).and_then(Value::as_array).map_or(0, Vec::len);
        if count != 1 {
            return Err(format!(
                "it has {count} {key}; k3s writes exactly one of each"
            ));
        }
    }
    let entry = |map: &mut serde_json::Map<String, Value>, key: &str| -> Result<Value, String> {
        map.get_mut(key)
            .and_then(Value::as_array_mut)
            .and_then(|entries| entries.first_mut())
            .map(std::mem::take)
            .ok_or_else(|| format!("its {key} entry is missing"))
    };
    let mut cluster = entry(map, "clusters")?;
    let server = cluster
        .pointer("/cluster/server")
        .and_then(Value::as_str)
        .ok_or("its cluster has no server")?;
    let server = rewrite_server(server, port)?;
    cluster["cluster"]["server"] = json!(server);
    cluster["name"] = json!(name);
    let mut user = entry(map, "users")?;
    user["name"] = json!(name);
    let mut context = entry(map, "contexts")?;
    context["name"] = json!(name);
    context["context"]["cluster"] = json!(name);
    context["context"]["user"] = json!(name);
    map.insert("clusters".into(), json!([cluster]));
    map.insert("users".into(), json!([user]));
    map.insert("contexts".into(), json!([context]));
    map.insert("current-context".into(), json!(name));
    Ok(config)
}

/// One attached server, as `$ORGMESH_K3S_ATTACH` describes it.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct AttachedServer {
    /// The kubeconfig as k3s wrote it.
    kubeconfig: PathBuf,
    /// The host port that reaches the API server.
    api_port: u16,
    /// The node's address.
    node_ip: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct AttachFile {
    clusters: BTreeMap<String, AttachedServer>,
}

fn read_attach_file(path: &Path, scenario: &Scenario) -> Result<AttachFile, K3sError> {
    let attach = |reason: String| K3sError::Attach {
        path: path.to_owned(),
        reason,
    };
    let text = std::fs::read_to_string(path).map_err(|e| attach(e.to_string()))?;
    let file: AttachFile = serde_json::from_str(&text).map_err(|e| attach(e.to_string()))?;
    for cluster in &scenario.clusters {
        if !file.clusters.contains_key(&cluster.name) {
            return Err(attach(format!(
                "it has no server for scenario cluster `{}`",
                cluster.name
            )));
        }
    }
    Ok(file)
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The k3s clusters of one run.
pub struct K3sClusters {
    source: Source,
    run_id: String,
    run_dir: PathBuf,
    docker: Option<Docker>,
    /// Containers that exist because of this run, registered as soon as each has started.
    containers: Arc<Mutex<Vec<ContainerAsync<K3s>>>>,
}

impl K3sClusters {
    pub fn new(source: Source, run_id: &str, run_dir: &Path) -> Self {
        Self {
            source,
            run_id: run_id.to_owned(),
            run_dir: run_dir.to_path_buf(),
            docker: None,
            containers: Arc::new(Mutex::new(Vec::new())),
        }
    }

    pub fn source(&self) -> &Source {
        &self.source
    }

    /// Checks, before anything is created, that the clusters can come up: for containers, see
    /// [`check_host`]; for attached servers, that the file names one for every cluster.
    /// Returns what was found.
    pub async fn preflight(&mut self, scenario: &Scenario) -> Result<String, K3sError> {
        match &self.source {
            Source::Containers { image } => {
                let requirements = kind::Requirements {
                    clusters: scenario.clusters.len(),
                    organizations: scenario.organizations.len(),
                };
                let (docker, found) = check_host(image, requirements).await?;
                self.docker = Some(docker);
                Ok(found)
            }
            Source::Attached { file } => {
                read_attach_file(file, scenario)?;
                Ok(format!("k3s servers attached from {}", file.display()))
            }
        }
    }

    /// Brings every scenario cluster up, in scenario order.
    pub async fn up(&self, scenario: &Scenario) -> Result<Vec<Started>, K3sError> {
        let kubeconfig_dir = self.run_dir.join("kubeconfig");
        private_dir(&kubeconfig_dir)?;
        match &self.source {
            Source::Attached { file } => {
                let attached = read_attach_file(file, scenario)?;
                let mut started = Vec::new();
                for cluster in &scenario.clusters {
                    let server = &attached.clusters[&cluster.name];
                    let name = kind::cluster_name(&self.run_id, &cluster.name)?;
                    let text = std::fs::read_to_string(&server.kubeconfig).map_err(|e| {
                        K3sError::Attach {
                            path: server.kubeconfig.clone(),
                            reason: e.to_string(),
                        }
                    })?;
                    let kubeconfig = write_kubeconfig(
                        &kubeconfig_dir,
                        &cluster.name,
                        &name,
                        &text,
                        server.api_port,
                    )?;
                    started.push(Started {
                        cluster: cluster.name.clone(),
                        kubeconfig,
                        context: name,
                        node_ip: server.node_ip.clone(),
                    });
                }
                Ok(started)
            }
            Source::Containers { image } => self.start_containers(scenario, image).await,
        }
    }

    async fn start_containers(
        &self,
        scenario: &Scenario,
        image: &str,
    ) -> Result<Vec<Started>, K3sError> {
        let docker = self.docker.as_ref().ok_or_else(|| K3sError::Start {
            name: self.run_id.clone(),
            reason: "preflight did not run".into(),
        })?;
        let (repository, tag) = split_image(image)?;
        let network = kind::cluster_name(&self.run_id, "net")?;
        // Labelled: teardown (and `orgmesh down`) sweeps it with the containers. Existing
        // before the containers, it is not testcontainers' to remove.
        docker::create_network(docker, &network, &self.run_id, false).await?;
        let images = self.export_images(docker, &scenario.images).await?;
        let kubeconfig_dir = self.run_dir.join("kubeconfig");
        let mut requests = Vec::new();
        for (index, cluster) in scenario.clusters.iter().enumerate() {
            let name = kind::cluster_name(&self.run_id, &cluster.name)?;
            let conf = self.run_dir.join("k3s").join(&cluster.name);
            // 0700: k3s writes the kubeconfig (with the admin's key) world-readable.
            private_dir(&conf)?;
            let mut request = K3s::default()
                .with_conf_mount(&conf)
                .with_name(repository.clone())
                .with_tag(tag.clone())
                .with_cmd(server_command(index)?)
                .with_privileged(true)
                .with_userns_mode("host")
                .with_network(network.clone())
                .with_container_name(name.clone())
                .with_label(RUN_LABEL, self.run_id.clone())
                .with_label(CLUSTER_LABEL, cluster.name.clone())
                .with_startup_timeout(STARTUP_TIMEOUT)
                // Only the API port, only on loopback: testcontainers would publish every
                // exposed port on every interface.
                .with_host_config_modifier(|host_config| {
                    host_config.publish_all_ports = Some(false);
                    host_config.port_bindings = Some(HashMap::from([(
                        "6443/tcp".to_owned(),
                        Some(vec![PortBinding {
                            host_ip: Some("127.0.0.1".into()),
                            host_port: Some(String::new()),
                        }]),
                    )]));
                });
            if let Some(images) = &images {
                request = request.with_mount(
                    Mount::bind_mount(images.display().to_string(), IMAGES_DIRECTORY)
                        .with_access_mode(AccessMode::ReadOnly),
                );
            }
            requests.push((cluster.name.clone(), name, conf, request));
        }
        let containers = &self.containers;
        let (network, kubeconfig_dir) = (&network, &kubeconfig_dir);
        let outcomes: Vec<Result<Started, K3sError>> =
            futures::stream::iter(requests.into_iter().map(
                |(cluster, name, conf, request)| async move {
                    let container = request.start().await.map_err(|e| K3sError::Start {
                        name: name.clone(),
                        reason: e.to_string(),
                    })?;
                    let port = container
                        .get_host_port_ipv4(KUBE_SECURE_PORT)
                        .await
                        .map_err(|e| K3sError::Start {
                            name: name.clone(),
                            reason: format!("its API port is not published: {e}"),
                        });
                    // Registered before anything else can fail: teardown removes it.
                    lock(containers).push(container);
                    let port = port?;
                    let node_ip = container_ip(docker, &name, network).await?;
                    let text = read_conf_kubeconfig(&conf, &name).await?;
                    let kubeconfig =
                        write_kubeconfig(kubeconfig_dir, &cluster, &name, &text, port)?;
                    Ok(Started {
                        cluster,
                        kubeconfig,
                        context: name,
                        node_ip,
                    })
                },
            ))
            .buffered(CONCURRENCY)
            .collect()
            .await;
        let mut started = Vec::new();
        let mut failures = Vec::new();
        for outcome in outcomes {
            match outcome {
                Ok(cluster) => started.push(cluster),
                Err(error) => failures.push(error),
            }
        }
        match failures.into_iter().next() {
            Some(error) => Err(error),
            None => Ok(started),
        }
    }

    /// Saves each of the scenario's `images:` from the engine into `<run dir>/k3s/images/`,
    /// which every container mounts where k3s imports archives at start (the kind provider's
    /// `kind load docker-image`). `None` when there are none.
    async fn export_images(
        &self,
        docker: &Docker,
        images: &[String],
    ) -> Result<Option<PathBuf>, K3sError> {
        if images.is_empty() {
            return Ok(None);
        }
        let directory = self.run_dir.join("k3s").join("images");
        private_dir(&directory)?;
        for (index, image) in images.iter().enumerate() {
            let path = directory.join(format!("image-{index}.tar"));
            let io = |e: std::io::Error| K3sError::Io {
                path: path.clone(),
                reason: e.to_string(),
            };
            let mut file = tokio::fs::File::create(&path).await.map_err(io)?;
            let mut stream = docker.export_image(image);
            while let Some(chunk) = stream.next().await {
                let chunk = chunk.map_err(|e| K3sError::Start {
                    name: image.clone(),
                    reason: format!("exporting the image for preloading failed: {e}"),
                })?;
                tokio::io::AsyncWriteExt::write_all(&mut file, &chunk)
                    .await
                    .map_err(io)?;
            }
        }
        Ok(Some(directory))
    }

    /// Removes this run's containers, then every container and network labelled with its run
    /// id (what a failed or interrupted start left). Attached servers are left alone.
    pub async fn down(&self) -> Result<(), K3sError> {
        if !self.source.is_owned() {
            return Ok(());
        }
        let containers: Vec<ContainerAsync<K3s>> = lock(&self.containers).drain(..).collect();
        let Some(docker) = &self.docker else {
            // Preflight never reached the engine, so nothing was created.
            return Ok(());
        };
        let mut failures = Vec::new();
        for container in containers {
            let id = container.id().to_owned();
            if let Err(error) = container.rm().await {
                failures.push(format!("{id}: {error}"));
            }
        }
        match docker::sweep(docker, Some(&self.run_id)).await {
            // The sweep is the backstop: a container it removed is not a failure.
            Ok(_) => Ok(()),
            Err(error) => {
                failures.push(error.to_string());
                Err(K3sError::NotRemoved { failures })
            }
        }
    }
}

/// Checks that this host can run `requirements` as k3s containers of `image`: the Docker
/// engine answers, the image is there (pulled once if it is not), and the kind provider's
/// inotify and memory limits hold. Returns a client of the engine and what was found.
pub async fn check_host(
    image: &str,
    requirements: kind::Requirements,
) -> Result<(Docker, String), K3sError> {
    split_image(image)?;
    let docker = docker::connect()
        .await
        .map_err(|source| K3sError::DockerNeeded { source })?;
    let version = docker
        .version()
        .await
        .ok()
        .and_then(|v| v.version)
        .unwrap_or_else(|| "(unknown version)".into());
    let how = ensure_image(&docker, image).await?;
    let problems = kind::host_problems(requirements, &kind::HostFiles::from_environment()).await;
    if !problems.is_empty() {
        return Err(K3sError::Host { problems });
    }
    Ok((
        docker,
        format!("docker {version}, k3s image {image} ({how})"),
    ))
}

/// `orgmesh doctor` for the k3s provider: [`check_host`] (or, for attached servers, nothing
/// of the host) and helm. Returns what was found.
pub async fn doctor(
    environment: &Environment,
    requirements: kind::Requirements,
) -> Result<String, super::ProviderError> {
    let found = match Source::from_environment(environment) {
        Source::Containers { image } => format!(
            "{}; enough memory and inotify instances for {} clusters and {} organizations",
            check_host(&image, requirements).await?.1,
            requirements.clusters,
            requirements.organizations
        ),
        Source::Attached { file } => format!("k3s servers attached from {}", file.display()),
    };
    let helm = crate::deploy::helm::detect_version(environment).await?;
    Ok(format!("{found}; helm {}", helm.text))
}

/// Whether the image is there; if not, pulls it once. Returns how it was found.
async fn ensure_image(docker: &Docker, image: &str) -> Result<&'static str, K3sError> {
    if docker::image_exists(docker, image).await? {
        return Ok("present");
    }
    let unavailable = |reason: String| K3sError::ImageUnavailable {
        image: image.to_owned(),
        reason,
    };
    let options = testcontainers::bollard::query_parameters::CreateImageOptions {
        from_image: Some(image.to_owned()),
        ..Default::default()
    };
    let pull = async {
        let mut stream = docker.create_image(Some(options), None, None);
        while let Some(progress) = stream.next().await {
            progress.map_err(|e| unavailable(e.to_string()))?;
        }
        Ok::<(), K3sError>(())
    };
    match tokio::time::timeout(PULL_TIMEOUT, pull).await {
        Err(_elapsed) => {
            return Err(unavailable(format!(
                "the pull did not finish within {} s",
                PULL_TIMEOUT.as_secs()
            )));
        }
        Ok(result) => result?,
    }
    // A pull that "succeeded" without the image (another platform, say) is no image.
    if docker::image_exists(docker, image).await? {
        Ok("pulled")
    } else {
        Err(unavailable(
            "the engine reported a pull but has no such image".into(),
        ))
    }
}

/// The container's address on the run network.
async fn container_ip(docker: &Docker, name: &str, network: &str) -> Result<String, K3sError> {
    let inspected = docker
        .inspect_container(
            name,
            None::<testcontainers::bollard::query_parameters::InspectContainerOptions>,
        )
        .await
        .map_err(|e| K3sError::Start {
            name: name.to_owned(),
            reason: format!("inspecting it failed: {e}"),
        })?;
    inspected
        .network_settings
        .and_then(|settings| settings.networks)
        .and_then(|networks| networks.get(network).cloned())
        .and_then(|endpoint| endpoint.ip_address)
        .filter(|ip| !ip.is_empty())
        .ok_or_else(|| K3sError::Start {
            name: name.to_owned(),
            reason: format!("it has no address on network {network}"),
        })
}

/// The kubeconfig k3s writes into its conf mount, once it is there.
async fn read_conf_kubeconfig(conf: &Path, name: &str) -> Result<String, K3sError> {
    let path = conf.join("k3s.yaml");
    let deadline = tokio::time::Instant::now() + KUBECONFIG_TIMEOUT;
    loop {
        match tokio::fs::read_to_string(&path).await {
            Ok(text) if text.contains("server:") => return Ok(text),
            Ok(_) | Err(_) if tokio::time::Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            Ok(_) => {
                return Err(K3sError::Kubeconfig {
                    name: name.to_owned(),
                    reason: format!("{} has no server", path.display()),
                });
            }
            Err(error) => {
                return Err(K3sError::Kubeconfig {
                    name: name.to_owned(),
                    reason: format!("{}: {error}", path.display()),
                });
            }
        }
    }
}

fn private_dir(directory: &Path) -> Result<(), K3sError> {
    crate::cli::create_private_dir(directory).map_err(|e| K3sError::Io {
        path: directory.to_owned(),
        reason: e.to_string(),
    })
}

/// Rewrites `text` and writes it to `<directory>/<cluster>.yaml`, 0600.
fn write_kubeconfig(
    directory: &Path,
    cluster: &str,
    name: &str,
    text: &str,
    port: u16,
) -> Result<PathBuf, K3sError> {
    let config = rewrite_kubeconfig(text, port, name).map_err(|reason| K3sError::Kubeconfig {
        name: name.to_owned(),
        reason,
    })?;
    let path = directory.join(format!("{cluster}.yaml"));
    let text = serde_json::to_string_pretty(&config).map_err(|e| K3sError::Io {
        path: path.clone(),
        reason: e.to_string(),
    })?;
    crate::cli::write_private_file(&path, &(text + "\n"), true).map_err(|e| K3sError::Io {
        path: path.clone(),
        reason: e.to_string(),
    })?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    /// The shape of `/etc/rancher/k3s/k3s.yaml` (keys shortened).
    const K3S_YAML: &str = "apiVersion: v1
clusters:
- cluster:
    certificate-authority-data: LS0tQ0E=
    server: https://127.0.0.1:6443
  name: default
contexts:
- context:
    cluster: default
    user: default
  name: default
current-context: default
kind: Config
preferences: {}
users:
- name: default
  user:
    client-certificate-data: LS0tQ0VSVA==
    client-key-data: LS0tS0VZ
";

    #[test]
    fn the_kubeconfig_points_at_the_mapped_port_under_the_cluster_name() {
        let config = rewrite_kubeconfig(K3S_YAML, 41234, "orgmesh-r1-cluster-1").unwrap();
        insta::assert_yaml_snapshot!("k3s_kubeconfig_rewritten", config);
        assert_eq!(
            config.pointer("/clusters/0/cluster/server"),
            Some(&json!("https://127.0.0.1:41234"))
        );
        assert_eq!(
            config.pointer("/clusters/0/cluster/certificate-authority-data"),
            Some(&json!("LS0tQ0E="))
        );
        assert_eq!(config["current-context"], "orgmesh-r1-cluster-1");
    }

    #[rstest]
    #[case::https("https://127.0.0.1:6443", "https://127.0.0.1:30001")]
    #[case::other_host("https://0.0.0.0:6443", "https://127.0.0.1:30001")]
    #[case::no_port("https://k3s.local", "https://127.0.0.1:30001")]
    #[case::path("http://10.0.0.1:6443/prefix", "http://127.0.0.1:30001/prefix")]
    fn servers_are_rewritten_keeping_scheme_and_path(#[case] server: &str, #[case] expected: &str) {
        assert_eq!(rewrite_server(server, 30001).unwrap(), expected);
    }

    #[rstest]
    #[case::not_yaml("clusters: [", "not YAML")]
    #[case::no_clusters("apiVersion: v1\nusers: []\ncontexts: []\n", "0 clusters")]
    #[case::two_clusters(
        "clusters: [{name: a, cluster: {server: https://x:1}}, {name: b, cluster: {server: https://y:1}}]\nusers: [{name: a}]\ncontexts: [{name: a, context: {}}]\n",
        "2 clusters"
    )]
    #[case::no_server(
        "clusters: [{name: a, cluster: {}}]\nusers: [{name: a}]\ncontexts: [{name: a, context: {}}]\n",
        "no server"
    )]
    #[case::not_a_url(
        "clusters: [{name: a, cluster: {server: localhost}}]\nusers: [{name: a}]\ncontexts: [{name: a, context: {}}]\n",
        "not a URL"
    )]
    fn kubeconfigs_of_another_shape_are_refused(#[case] text: &str, #[case] reason: &str) {
        let error = rewrite_kubeconfig(text, 1, "n").unwrap_err();
        assert!(error.contains(reason), "{error}");
    }

    #[rstest]
    #[case::default(DEFAULT_IMAGE, "rancher/k3s", "v1.36.1-k3s1")]
    #[case::registry_port(
        "127.0.0.1:9/orgmesh-missing/k3s:v0",
        "127.0.0.1:9/orgmesh-missing/k3s",
        "v0"
    )]
    #[case::registry_port_no_tag("localhost:5000/k3s", "localhost:5000/k3s", "latest")]
    #[case::bare("k3s", "k3s", "latest")]
    fn images_split_into_name_and_tag(#[case] image: &str, #[case] name: &str, #[case] tag: &str) {
        assert_eq!(
            split_image(image).unwrap(),
            (name.to_owned(), tag.to_owned())
        );
    }

    #[rstest]
    #[case::digest("rancher/k3s@sha256:abc")]
    #[case::empty("")]
    #[case::space("rancher/k3s v1")]
    #[case::empty_tag("rancher/k3s:")]
    fn bad_images_are_refused(#[case] image: &str) {
        assert!(matches!(split_image(image), Err(K3sError::BadImage { .. })));
    }

    #[test]
    fn server_commands_give_each_cluster_its_own_subnets() {
        insta::assert_yaml_snapshot!(
            "k3s_server_commands",
            vec![server_command(0).unwrap(), server_command(1).unwrap()]
        );
        let mut subnets: Vec<String> = (0..kind::MAX_CLUSTERS)
            .flat_map(|index| server_command(index).unwrap())
            .filter(|argument| argument.contains("-cidr="))
            .collect();
        let count = subnets.len();
        subnets.sort();
        subnets.dedup();
        assert_eq!(subnets.len(), count);
        assert!(server_command(kind::MAX_CLUSTERS).is_err());
    }

    #[test]
    fn the_source_comes_from_the_environment() {
        let attach = Environment::inherit().with(ATTACH_VARIABLE, "/tmp/servers.json");
        assert_eq!(
            Source::from_environment(&attach),
            Source::Attached {
                file: "/tmp/servers.json".into()
            }
        );
        let image = Environment::inherit().with(IMAGE_VARIABLE, "localhost:5000/k3s:v1");
        assert_eq!(
            Source::from_environment(&image),
            Source::Containers {
                image: "localhost:5000/k3s:v1".into()
            }
        );
    }

    #[test]
    fn the_image_message_names_the_image_the_reason_and_the_fixes() {
        let error = K3sError::ImageUnavailable {
            image: "127.0.0.1:9/orgmesh-missing/k3s:v0".into(),
            reason: "connection refused".into(),
        };
        insta::assert_snapshot!("k3s_image_unavailable", error.to_string());
    }
}
