//! The kind provider's use of the `kind` and `docker` CLIs: commands as data, cluster
//! configuration, bounded and retried creation, verified deletion, and the host preflight.
//!
//! Every command is built by a pure function (snapshot-tested below) and run through
//! [`crate::process`]. `kind delete clusters` always exits 0 even when a deletion failed
//! (reference §6), so deletion here is one `kind delete cluster` per name followed by
//! `kind get clusters` to check that none of them is left.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use futures::StreamExt;

use crate::deploy::helm::{self, HelmError, HelmVersion};
use crate::process::{self, Command, Environment, Output, ProcessError};

/// Every cluster orgmesh creates has a name starting with this, so `orgmesh down --all` can tell
/// its clusters from the user's.
pub const CLUSTER_PREFIX: &str = "orgmesh-";

/// The longest cluster name accepted. kind derives container and host names from it
/// (`<name>-control-plane`), which must stay well under the 63 characters of a DNS label.
pub const MAX_CLUSTER_NAME_LENGTH: usize = 50;

/// The most clusters one run may create: each needs its own pod and service subnet.
pub const MAX_CLUSTERS: usize = 50;

/// How many clusters are created at the same time by default; more starves a laptop.
pub const DEFAULT_CONCURRENCY: usize = 2;

/// How many times a cluster creation is tried by default.
pub const DEFAULT_ATTEMPTS: u32 = 3;

/// How long `kind create cluster --wait` waits for the control-plane node by default.
pub const DEFAULT_WAIT: Duration = Duration::from_secs(120);

/// Time allowed for pulling the node image and starting containers, beyond `--wait`.
const CREATE_GRACE: Duration = Duration::from_secs(300);

/// How long deletions, log exports and image loads may take.
const DELETE_TIMEOUT: Duration = Duration::from_secs(180);

/// How long quick queries (`kind get clusters`, versions) may take.
const QUERY_TIMEOUT: Duration = Duration::from_secs(30);

const KIND_INSTALL: &str = "see https://kind.sigs.k8s.io/docs/user/quick-start/#installation (go install sigs.k8s.io/kind@v0.32.0)";
const HELM_INSTALL: &str = "https://helm.sh/docs/intro/install/";
const DOCKER_INSTALL: &str = "see https://docs.docker.com/engine/install/";

/// Why a kind operation failed.
#[derive(Debug, thiserror::Error)]
pub enum KindError {
    #[error(
        "cluster name `{name}` is {length} characters long; kind clusters may have at most {MAX_CLUSTER_NAME_LENGTH}: use a shorter run id or cluster name"
    )]
    NameTooLong { name: String, length: usize },
    #[error(
        "a run may create at most {MAX_CLUSTERS} kind clusters; cluster index {index} is past that"
    )]
    TooManyClusters { index: usize },
    #[error("could not create kind cluster `{name}` after {attempts} attempts{}", logs_note(.logs))]
    Create {
        name: String,
        attempts: u32,
        logs: Option<PathBuf>,
        #[source]
        source: ProcessError,
    },
    #[error(
        "could not create kind cluster `{name}` after {attempts} attempts ({create}), and could not delete what was left of it{}",
        logs_note(.logs)
    )]
    CreateLeftBehind {
        name: String,
        attempts: u32,
        logs: Option<PathBuf>,
        create: ProcessError,
        #[source]
        source: Box<KindError>,
    },
    #[error("`kind get clusters` failed")]
    GetClusters {
        #[source]
        source: ProcessError,
    },
    #[error(
        "kind clusters still exist after deleting them: {}; hint: delete them with `kind delete cluster --name NAME`{}",
        names.join(", "),
        failures_note(.failures)
    )]
    NotDeleted {
        names: Vec<String>,
        failures: Vec<String>,
    },
}

fn logs_note(logs: &Option<PathBuf>) -> String {
    logs.as_ref()
        .map(|path| format!("; its logs are in {}", path.display()))
        .unwrap_or_default()
}

fn failures_note(failures: &[String]) -> String {
    if failures.is_empty() {
        String::new()
    } else {
        format!(" ({})", failures.join("; "))
    }
}

/// The kind cluster name of a scenario cluster in a run: `orgmesh-<run>-<cluster>`.
pub fn cluster_name(run_id: &str, cluster: &str) -> Result<String, KindError> {
    let name = format!("{CLUSTER_PREFIX}{run_id}-{cluster}");
    let length = name.chars().count();
    if length > MAX_CLUSTER_NAME_LENGTH {
        return Err(KindError::NameTooLong { name, length });
    }
    Ok(name)
}

/// The prefix shared by every cluster of one run.
pub fn run_prefix(run_id: &str) -> String {
    format!("{CLUSTER_PREFIX}{run_id}-")
}

/// The kind `v1alpha4` configuration of the `index`-th cluster of a run (0-based).
///
/// Each cluster gets its own pod subnet `10.(16+2i).0.0/16` and service subnet
/// `10.(17+2i).0.0/16`, so pod and service addresses never collide across clusters (a
/// precondition for routing between them, kind#926). For the at most [`MAX_CLUSTERS`] clusters
/// that is 10.16.0.0 to 10.115.255.255, which stays clear of Docker's `kind` network
/// (172.18.0.0/16) and of kind's default pod subnet 10.244.0.0/16. A user's own kind cluster
/// with the default service subnet 10.96.0.0/16 may share addresses with cluster 40, which is
/// harmless: service addresses are only routed inside their own cluster.
pub fn cluster_config(index: usize) -> Result<String, KindError> {
    if index >= MAX_CLUSTERS {
        return Err(KindError::TooManyClusters { index });
    }
    let pod_octet = 16 + index * 2;
    let service_octet = pod_octet + 1;
    Ok(format!(
        "# orgmesh cluster {index}: its own pod and service subnets, so no two clusters overlap.\n\
         kind: Cluster\n\
         apiVersion: kind.x-k8s.io/v1alpha4\n\
         networking:\n\
         \x20 apiServerAddress: 127.0.0.1\n\
         \x20 podSubnet: 10.{pod_octet}.0.0/16\n\
         \x20 serviceSubnet: 10.{service_octet}.0.0/16\n\
         nodes:\n\
         \x20 - role: control-plane\n"
    ))
}

fn path_text(path: &Path) -> String {
    path.to_string_lossy().into_owned()
}

/// `kind create cluster`. `retain` keeps the node containers of a failed creation so their logs
/// can be exported; it is only given on the last attempt.
pub fn create_cluster(
    name: &str,
    config_path: &Path,
    kubeconfig_path: &Path,
    wait: Duration,
    retain: bool,
) -> Command {
    let command = Command::new("kind")
        .args(["create", "cluster"])
        .args(["--name", name])
        .args(["--config", &path_text(config_path)])
        .args(["--kubeconfig", &path_text(kubeconfig_path)])
        .args(["--wait", &format!("{}s", wait.as_secs())]);
    if retain {
        command.arg("--retain")
    } else {
        command
    }
}

/// `kind delete cluster`; with a kubeconfig, kind also removes the cluster's context from it
/// instead of from the user's default kubeconfig.
pub fn delete_cluster(name: &str, kubeconfig_path: Option<&Path>) -> Command {
    let command = Command::new("kind")
        .args(["delete", "cluster"])
        .args(["--name", name]);
    match kubeconfig_path {
        Some(path) => command.args(["--kubeconfig", &path_text(path)]),
        None => command,
    }
}

/// `kind get clusters`.
pub fn get_clusters() -> Command {
    Command::new("kind").args(["get", "clusters"])
}

/// `kind export logs DIR --name N`.
pub fn export_logs(name: &str, directory: &Path) -> Command {
    Command::new("kind")
        .args(["export", "logs", &path_text(directory)])
        .args(["--name", name])
}

/// `kind load docker-image IMAGE --name N`.
pub fn load_image(name: &str, image: &str) -> Command {
    Command::new("kind")
        .args(["load", "docker-image", image])
        .args(["--name", name])
}

/// `kind version`.
pub fn version() -> Command {
    Command::new("kind").arg("version")
}

/// `docker info --format '{{.ServerVersion}}'`: succeeds only when the engine is reachable.
pub fn docker_info() -> Command {
    Command::new("docker").args(["info", "--format", "{{.ServerVersion}}"])
}

/// The cluster names printed by `kind get clusters`, one per line. When there are none kind
/// prints "No kind clusters found." on stderr, so stdout is empty.
pub fn parse_clusters(stdout: &str) -> Vec<String> {
    stdout
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && *line != "No kind clusters found.")
        .map(str::to_owned)
        .collect()
}

/// One cluster to create.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterSpec {
    pub name: String,
    pub config_path: PathBuf,
    pub kubeconfig_path: PathBuf,
}

/// How clusters are created.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreateOptions {
    /// How many clusters are created at once (at least one).
    pub concurrency: usize,
    /// How many times each cluster is tried (at least one).
    pub attempts: u32,
    /// `--wait` for the control-plane node.
    pub wait: Duration,
    /// Logs of a cluster that could not be created go to `<diagnostics>/kind/<name>`.
    pub diagnostics_dir: PathBuf,
}

impl CreateOptions {
    /// The defaults, with logs of failed creations under `diagnostics_dir`.
    pub fn new(diagnostics_dir: impl Into<PathBuf>) -> Self {
        Self {
            concurrency: DEFAULT_CONCURRENCY,
            attempts: DEFAULT_ATTEMPTS,
            wait: DEFAULT_WAIT,
            diagnostics_dir: diagnostics_dir.into(),
        }
    }
}

/// The outcome of creating one cluster.
#[derive(Debug)]
pub struct Created {
    pub name: String,
    pub result: Result<(), KindError>,
}

/// Creates every cluster, at most `options.concurrency` at a time, trying each up to
/// `options.attempts` times. Between attempts the half-created cluster is deleted; after the last
/// failed attempt its logs are exported and it is deleted, so a failed cluster is never left
/// behind. `on_created` is called with each name as soon as that cluster exists, so the caller
/// can register its teardown at once. The outcomes are in the order of `specs`.
pub async fn create_clusters(
    environment: &Environment,
    specs: Vec<ClusterSpec>,
    options: &CreateOptions,
    on_created: impl Fn(&str),
) -> Vec<Created> {
    let on_created = &on_created;
    futures::stream::iter(specs.into_iter().map(|spec| async move {
        let result = create_with_retries(environment, &spec, options).await;
        if result.is_ok() {
            on_created(&spec.name);
        }
        Created {
            name: spec.name,
            result,
        }
    }))
    .buffered(options.concurrency.max(1))
    .collect()
    .await
}

async fn create_with_retries(
    environment: &Environment,
    spec: &ClusterSpec,
    options: &CreateOptions,
) -> Result<(), KindError> {
    let attempts = options.attempts.max(1);
    let mut attempt = 1;
    let error = loop {
        let is_last = attempt == attempts;
        let command = environment.apply(create_cluster(
            &spec.name,
            &spec.config_path,
            &spec.kubeconfig_path,
            options.wait,
            is_last,
        ));
        match process::run(&command, options.wait + CREATE_GRACE).await {
            Ok(_) => return Ok(()),
            Err(error) if is_last => break error,
            Err(_) => {
                // A failed creation can leave node containers behind, and the next attempt
                // would then fail with "node(s) already exist". kind deletion is idempotent.
                let delete =
                    environment.apply(delete_cluster(&spec.name, Some(&spec.kubeconfig_path)));
                let _ = process::run(&delete, DELETE_TIMEOUT).await;
                attempt += 1;
            }
        }
    };
    let logs = options.diagnostics_dir.join("kind").join(&spec.name);
    let logs = export_cluster_logs(environment, &spec.name, &logs)
        .await
        .then_some(logs);
    let cleanup = delete_clusters_with_kubeconfig(
        environment,
        &[(spec.name.clone(), Some(spec.kubeconfig_path.clone()))],
    )
    .await;
    match cleanup {
        Ok(()) => Err(KindError::Create {
            name: spec.name.clone(),
            attempts,
            logs,
            source: error,
        }),
        Err(cleanup) => Err(KindError::CreateLeftBehind {
            name: spec.name.clone(),
            attempts,
            logs,
            create: error,
            source: Box::new(cleanup),
        }),
    }
}

/// Exports the logs of a retained cluster; returns whether that worked. Logs are diagnostics,
/// so a failure here must not hide the creation error.
async fn export_cluster_logs(environment: &Environment, name: &str, directory: &Path) -> bool {
    if tokio::fs::create_dir_all(directory).await.is_err() {
        return false;
    }
    let command = environment.apply(export_logs(name, directory));
    process::run(&command, DELETE_TIMEOUT).await.is_ok()
}

/// The names of every kind cluster on this host.
pub async fn list_clusters(environment: &Environment) -> Result<Vec<String>, KindError> {
    let output = process::run(&environment.apply(get_clusters()), QUERY_TIMEOUT)
        .await
        .map_err(|source| KindError::GetClusters { source })?;
    Ok(parse_clusters(&output.stdout))
}

/// The kind clusters orgmesh created, from any run (for `orgmesh down --all`). The user's own
/// clusters are never included.
pub async fn orgmesh_clusters(environment: &Environment) -> Result<Vec<String>, KindError> {
    Ok(list_clusters(environment)
        .await?
        .into_iter()
        .filter(|name| name.starts_with(CLUSTER_PREFIX))
        .collect())
}

/// The kind clusters of one run.
pub async fn run_clusters(
    environment: &Environment,
    run_id: &str,
) -> Result<Vec<String>, KindError> {
    let prefix = run_prefix(run_id);
    Ok(list_clusters(environment)
        .await?
        .into_iter()
        .filter(|name| name.starts_with(&prefix))
        .collect())
}

/// Deletes each cluster with `kind delete cluster`, then checks with `kind get clusters` that
/// none of them is left.
pub async fn delete_clusters(environment: &Environment, names: &[String]) -> Result<(), KindError> {
    let clusters: Vec<(String, Option<PathBuf>)> =
        names.iter().map(|name| (name.clone(), None)).collect();
    delete_clusters_with_kubeconfig(environment, &clusters).await
}

/// Like [`delete_clusters`], also removing each cluster's context from its own kubeconfig.
pub async fn delete_clusters_with_kubeconfig(
    environment: &Environment,
    clusters: &[(String, Option<PathBuf>)],
) -> Result<(), KindError> {
    let mut failures = Vec::new();
    for (name, kubeconfig) in clusters {
        let command = environment.apply(delete_cluster(name, kubeconfig.as_deref()));
        if let Err(error) = process::run(&command, DELETE_TIMEOUT).await {
            failures.push(error.to_string());
        }
    }
    let remaining = list_clusters(environment).await?;
    let survivors: Vec<String> = clusters
        .iter()
        .map(|(name, _)| name)
        .filter(|name| remaining.contains(name))
        .cloned()
        .collect();
    if survivors.is_empty() {
        Ok(())
    } else {
        Err(KindError::NotDeleted {
            names: survivors,
            failures,
        })
    }
}

/// What a scenario needs from the host.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Requirements {
    pub clusters: usize,
    pub organizations: usize,
}

/// The tools found by a successful preflight.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Preflight {
    /// The Docker engine's version, e.g. `28.2.2`.
    pub docker: String,
    /// kind's version, e.g. `v0.32.0`.
    pub kind: String,
    pub helm: HelmVersion,
}

/// Where the kernel limits and memory figures are read; tests point these at fake files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostFiles {
    pub max_user_instances: PathBuf,
    pub max_user_watches: PathBuf,
    pub meminfo: PathBuf,
}

impl Default for HostFiles {
    fn default() -> Self {
        Self::under(Path::new("/proc"))
    }
}

/// The environment variable that moves the /proc preflight reads (containers, tests).
pub const PROC_ROOT_VARIABLE: &str = "ORGMESH_PROC_ROOT";

impl HostFiles {
    /// The files under a /proc-like directory.
    pub fn under(root: &Path) -> Self {
        Self {
            max_user_instances: root.join("sys/fs/inotify/max_user_instances"),
            max_user_watches: root.join("sys/fs/inotify/max_user_watches"),
            meminfo: root.join("meminfo"),
        }
    }

    /// `$ORGMESH_PROC_ROOT` if set, else /proc.
    pub fn from_environment() -> Self {
        match std::env::var_os(PROC_ROOT_VARIABLE) {
            Some(root) if !root.is_empty() => Self::under(Path::new(&root)),
            _ => Self::default(),
        }
    }
}

/// The inotify limits kind needs for more than one cluster (kind's known-issues page).
pub const MIN_INOTIFY_INSTANCES: u64 = 512;
pub const MIN_INOTIFY_WATCHES: u64 = 524_288;

const GIBIBYTE: u64 = 1024 * 1024 * 1024;
/// Memory a single-node kind cluster needs: 1.5 GiB.
pub const MEMORY_PER_CLUSTER: u64 = 3 * GIBIBYTE / 2;
/// Memory one organization's releases need: 1 GiB.
pub const MEMORY_PER_ORGANIZATION: u64 = GIBIBYTE;

/// One thing the host lacks, with how to get it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Problem {
    #[error("{tool} is not installed: {hint}")]
    ToolMissing {
        tool: &'static str,
        hint: &'static str,
    },
    #[error(
        "docker is installed but its engine is not reachable ({detail}): start it (`sudo systemctl start docker`, or Docker Desktop) and make sure this user may use it (`sudo usermod -aG docker $USER`, then log in again)"
    )]
    DockerUnreachable { detail: String },
    #[error("`{command}` failed ({detail}): reinstall {tool}: {hint}")]
    ToolFailed {
        tool: &'static str,
        command: String,
        detail: String,
        hint: &'static str,
    },
    #[error("helm {text} is not supported: install Helm 3 or 4: {HELM_INSTALL}")]
    UnsupportedHelm { text: String },
    #[error(
        "fs.inotify.{setting} is {value}, but {clusters} clusters need at least {minimum}: run `sudo sysctl fs.inotify.{setting}={minimum}` (to keep it, add `fs.inotify.{setting} = {minimum}` to /etc/sysctl.d/99-kind.conf)"
    )]
    InotifyLimit {
        setting: &'static str,
        value: u64,
        minimum: u64,
        clusters: usize,
    },
    #[error("could not read {path} ({detail}): check that /proc is mounted")]
    Unreadable { path: PathBuf, detail: String },
    #[error(
        "not enough memory: {clusters} clusters and {organizations} organizations need {} (1.5 GiB per cluster, 1 GiB per organization), but {} is available: free memory, or run a scenario with fewer clusters or organizations",
        gibibytes(*.needed),
        gibibytes(*.available)
    )]
    Memory {
        needed: u64,
        available: u64,
        clusters: usize,
        organizations: usize,
    },
}

fn gibibytes(bytes: u64) -> String {
    format!("{:.1} GiB", bytes as f64 / GIBIBYTE as f64)
}

/// The host is not ready for the kind provider.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PreflightError {
    #[error("the host is not ready for the kind provider:\n{}", ProblemLines(.problems))]
    Unmet { problems: Vec<Problem> },
}

struct ProblemLines<'a>(&'a [Problem]);

impl fmt::Display for ProblemLines<'_> {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        let lines: Vec<String> = self
            .0
            .iter()
            .map(|problem| format!("  - {problem}"))
            .collect();
        formatter.write_str(&lines.join("\n"))
    }
}

/// Checks that the host can run `requirements` with the kind provider, reading the real /proc.
pub async fn preflight(
    environment: &Environment,
    requirements: Requirements,
) -> Result<Preflight, PreflightError> {
    preflight_with(environment, requirements, &HostFiles::from_environment()).await
}

/// Checks, in order, the Docker engine, kind, helm, the inotify limits (more than one cluster)
/// and the available memory, and reports every problem found, not only the first.
pub async fn preflight_with(
    environment: &Environment,
    requirements: Requirements,
    files: &HostFiles,
) -> Result<Preflight, PreflightError> {
    let mut problems = Vec::new();

    let docker = match query(environment, docker_info()).await {
        Ok(output) => Some(output.stdout.trim().to_owned()),
        Err(ProcessError::NotFound { .. }) => {
            problems.push(Problem::ToolMissing {
                tool: "docker",
                hint: DOCKER_INSTALL,
            });
            None
        }
        Err(error) => {
            problems.push(Problem::DockerUnreachable {
                detail: error_detail(&error),
            });
            None
        }
    };

    let kind = match query(environment, version()).await {
        Ok(output) => Some(parse_kind_version(&output.stdout)),
        Err(error) => {
            problems.push(tool_problem("kind", &version(), KIND_INSTALL, &error));
            None
        }
    };

    let helm = match query(environment, helm::version()).await {
        Ok(output) => match helm::parse_version(&output.stdout) {
            Ok(version) => Some(version),
            Err(HelmError::UnsupportedVersion { text }) => {
                problems.push(Problem::UnsupportedHelm { text });
                None
            }
            Err(error) => {
                problems.push(Problem::ToolFailed {
                    tool: "helm",
                    command: helm::version().display(),
                    detail: error.to_string(),
                    hint: HELM_INSTALL,
                });
                None
            }
        },
        Err(error) => {
            problems.push(tool_problem("helm", &helm::version(), HELM_INSTALL, &error));
            None
        }
    };

    problems.extend(host_problems(requirements, files).await);

    match (docker, kind, helm) {
        (Some(docker), Some(kind), Some(helm)) if problems.is_empty() => {
            Ok(Preflight { docker, kind, helm })
        }
        _ => Err(PreflightError::Unmet { problems }),
    }
}

/// The host's own limits for `requirements`: the inotify limits (more than one cluster) and
/// the available memory. The k3s provider checks the same.
pub async fn host_problems(requirements: Requirements, files: &HostFiles) -> Vec<Problem> {
    let mut problems = Vec::new();
    if requirements.clusters > 1 {
        for (setting, path, minimum) in [
            (
                "max_user_instances",
                &files.max_user_instances,
                MIN_INOTIFY_INSTANCES,
            ),
            (
                "max_user_watches",
                &files.max_user_watches,
                MIN_INOTIFY_WATCHES,
            ),
        ] {
            match read_number(path).await {
                Ok(value) if value < minimum => problems.push(Problem::InotifyLimit {
                    setting,
                    value,
                    minimum,
                    clusters: requirements.clusters,
                }),
                Ok(_) => {}
                Err(problem) => problems.push(problem),
            }
        }
    }

    let needed = MEMORY_PER_CLUSTER * requirements.clusters as u64
        + MEMORY_PER_ORGANIZATION * requirements.organizations as u64;
    match read_available_memory(&files.meminfo).await {
        Ok(available) if available < needed => problems.push(Problem::Memory {
            needed,
            available,
            clusters: requirements.clusters,
            organizations: requirements.organizations,
        }),
        Ok(_) => {}
        Err(problem) => problems.push(problem),
    }
    problems
}

async fn query(environment: &Environment, command: Command) -> Result<Output, ProcessError> {
    process::run(&environment.apply(command), QUERY_TIMEOUT).await
}

fn tool_problem(
    tool: &'static str,
    command: &Command,
    hint: &'static str,
    error: &ProcessError,
) -> Problem {
    match error {
        ProcessError::NotFound { .. } => Problem::ToolMissing { tool, hint },
        _ => Problem::ToolFailed {
            tool,
            command: command.display(),
            detail: error_detail(error),
            hint,
        },
    }
}

/// A short account of a failure for one problem line: the last line of stderr.
fn error_detail(error: &ProcessError) -> String {
    match error {
        ProcessError::Failed {
            exit_code, stderr, ..
        } => {
            let last = stderr.lines().last().unwrap_or("").trim();
            if last.is_empty() {
                format!("exit code {exit_code}")
            } else {
                format!("exit code {exit_code}: {last}")
            }
        }
        other => other.to_string(),
    }
}

/// The version word of `kind version` (`kind v0.32.0 go1.24.0 linux/amd64` → `v0.32.0`), or the
/// whole line when it has another shape.
pub fn parse_kind_version(stdout: &str) -> String {
    let line = stdout.trim();
    line.split_whitespace()
        .find(|word| word.starts_with('v') && word[1..].starts_with(|c: char| c.is_ascii_digit()))
        .unwrap_or(line)
        .to_owned()
}

async fn read_number(path: &Path) -> Result<u64, Problem> {
    let text = read_host_file(path).await?;
    text.trim().parse().map_err(|_| Problem::Unreadable {
        path: path.to_owned(),
        detail: format!("`{}` is not a number", text.trim()),
    })
}

async fn read_available_memory(path: &Path) -> Result<u64, Problem> {
    let text = read_host_file(path).await?;
    parse_mem_available(&text).ok_or_else(|| Problem::Unreadable {
        path: path.to_owned(),
        detail: "no MemAvailable line".to_owned(),
    })
}

async fn read_host_file(path: &Path) -> Result<String, Problem> {
    tokio::fs::read_to_string(path)
        .await
        .map_err(|error| Problem::Unreadable {
            path: path.to_owned(),
            detail: error.to_string(),
        })
}

/// `MemAvailable` of a `/proc/meminfo` text, in bytes.
pub fn parse_mem_available(meminfo: &str) -> Option<u64> {
    meminfo.lines().find_map(|line| {
        let rest = line.strip_prefix("MemAvailable:")?;
        let mut words = rest.split_whitespace();
        let value: u64 = words.next()?.parse().ok()?;
        match words.next() {
            Some("kB") | None => Some(value * 1024),
            Some(_) => None,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    #[test]
    fn names_clusters_within_the_limit() {
        assert_eq!(cluster_name("r1", "a").unwrap(), "orgmesh-r1-a");
        let long = "c".repeat(50);
        let error = cluster_name("r1", &long).unwrap_err();
        assert!(matches!(error, KindError::NameTooLong { length: 61, .. }));
        assert!(cluster_name("r1", &"c".repeat(39)).is_ok());
        assert!(cluster_name("r1", &"c".repeat(40)).is_err());
    }

    #[rstest]
    #[case::first(0)]
    #[case::second(1)]
    fn cluster_configs(#[case] index: usize) {
        insta::assert_snapshot!(
            format!("cluster_config_{index}"),
            cluster_config(index).unwrap()
        );
    }

    #[test]
    fn cluster_configs_are_valid_yaml_with_distinct_subnets() {
        let mut subnets = Vec::new();
        for index in 0..MAX_CLUSTERS {
            let config: serde_json::Value =
                serde_saphyr::from_str(&cluster_config(index).unwrap()).unwrap();
            assert_eq!(config["apiVersion"], "kind.x-k8s.io/v1alpha4");
            assert_eq!(config["networking"]["apiServerAddress"], "127.0.0.1");
            assert_eq!(config["nodes"][0]["role"], "control-plane");
            for key in ["podSubnet", "serviceSubnet"] {
                let subnet = config["networking"][key].as_str().unwrap().to_owned();
                assert!(subnet.starts_with("10.") && subnet.ends_with(".0.0/16"));
                subnets.push(subnet);
            }
        }
        let mut distinct = subnets.clone();
        distinct.sort();
        distinct.dedup();
        assert_eq!(distinct.len(), subnets.len());
        assert!(!subnets.iter().any(|subnet| subnet.starts_with("172.")));
        assert!(matches!(
            cluster_config(MAX_CLUSTERS),
            Err(KindError::TooManyClusters { .. })
        ));
    }

    #[rstest]
    #[case::first_attempt(false)]
    #[case::last_attempt(true)]
    fn create_cluster_argv(#[case] retain: bool) {
        let command = create_cluster(
            "orgmesh-r1-a",
            Path::new("/run/kind/orgmesh-r1-a.yaml"),
            Path::new("/run/kubeconfig/orgmesh-r1-a"),
            Duration::from_secs(120),
            retain,
        );
        insta::assert_yaml_snapshot!(format!("create_cluster_retain_{retain}"), command.argv());
    }

    #[test]
    fn other_kind_and_docker_argv() {
        let argv: Vec<Vec<String>> = vec![
            delete_cluster(
                "orgmesh-r1-a",
                Some(Path::new("/run/kubeconfig/orgmesh-r1-a")),
            )
            .argv(),
            delete_cluster("orgmesh-r1-a", None).argv(),
            get_clusters().argv(),
            export_logs(
                "orgmesh-r1-a",
                Path::new("/run/diagnostics/kind/orgmesh-r1-a"),
            )
            .argv(),
            load_image("orgmesh-r1-a", "substra/backend:1.2.3").argv(),
            version().argv(),
            docker_info().argv(),
        ];
        insta::assert_yaml_snapshot!("other_argv", argv);
    }

    #[rstest]
    #[case::two("orgmesh-r1-a\norgmesh-r1-b\n", &["orgmesh-r1-a", "orgmesh-r1-b"])]
    #[case::none("", &[])]
    #[case::message_on_stdout("No kind clusters found.\n", &[])]
    #[case::blank_lines("\n kind \n\n", &["kind"])]
    fn parses_clusters(#[case] stdout: &str, #[case] expected: &[&str]) {
        assert_eq!(parse_clusters(stdout), expected);
    }

    #[rstest]
    #[case::kind("kind v0.32.0 go1.24.0 linux/amd64\n", "v0.32.0")]
    #[case::other("something else", "something else")]
    fn parses_kind_version(#[case] stdout: &str, #[case] expected: &str) {
        assert_eq!(parse_kind_version(stdout), expected);
    }

    #[test]
    fn parses_mem_available() {
        let meminfo =
            "MemTotal:       16000000 kB\nMemFree:  100 kB\nMemAvailable:    8000000 kB\n";
        assert_eq!(parse_mem_available(meminfo), Some(8_000_000 * 1024));
        assert_eq!(parse_mem_available("MemTotal: 1 kB\n"), None);
    }

    #[test]
    fn problems_say_how_to_fix_them() {
        let problems = vec![
            Problem::ToolMissing {
                tool: "kind",
                hint: KIND_INSTALL,
            },
            Problem::InotifyLimit {
                setting: "max_user_instances",
                value: 128,
                minimum: 512,
                clusters: 3,
            },
            Problem::Memory {
                needed: 6 * GIBIBYTE + GIBIBYTE / 2,
                available: 2 * GIBIBYTE,
                clusters: 3,
                organizations: 2,
            },
        ];
        insta::assert_snapshot!(
            "preflight_problems",
            PreflightError::Unmet { problems }.to_string()
        );
    }
}
