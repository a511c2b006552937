//! The Kubernetes operations the kind and existing providers need, on kube-rs: connecting from
//! an explicit kubeconfig file, waiting for the backend's Deployment and migrations Job,
//! finding the server pod, `kubectl exec` with the exit code, and the diagnostics (logs, pods,
//! events) a failed run reports.
//!
//! Readiness is decided by pure predicates over one observed object ([`is_rolled_out`],
//! [`job_state`]); [`KubeCluster::wait_deployment`] and [`KubeCluster::wait_job`] only poll
//! them, and the caller gives every wait its timeout. Polling (rather than watching) keeps the
//! fake API server of the tests simple and costs one small GET per [`POLL_INTERVAL`].

use std::fmt::Write as _;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::time::Duration;

use ::kube::api::{Api, AttachParams, ListParams, LogParams};
use ::kube::config::{KubeConfigOptions, Kubeconfig, KubeconfigError};
use ::kube::{Client, Config};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{Event, Namespace, Node, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Status;
use tokio::io::AsyncReadExt as _;
use tokio::time::Instant;

use super::ExecOutput;

/// How often the waits look at the object again.
pub const POLL_INTERVAL: Duration = Duration::from_millis(500);

/// How long [`KubeCluster::connect`] waits for the API server to answer `/version`.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(20);

/// How many log lines of a failed Job's pod go into [`KubeError::JobFailed`].
const FAILED_JOB_LOG_LINES: i64 = 20;

/// Why a Kubernetes operation failed. Every variant names the cluster's context.
#[derive(Debug, thiserror::Error)]
pub enum KubeError {
    #[error("cannot read the kubeconfig {}", path.display())]
    ReadKubeconfig {
        path: PathBuf,
        #[source]
        source: KubeconfigError,
    },
    #[error(
        "cannot use context `{context}` of the kubeconfig {}",
        path.display()
    )]
    LoadKubeconfig {
        path: PathBuf,
        context: String,
        #[source]
        source: KubeconfigError,
    },
    #[error("cannot build a Kubernetes client for context `{context}`")]
    CreateClient {
        context: String,
        #[source]
        source: ::kube::Error,
    },
    #[error(
        "the API server of context `{context}` does not answer\nhint: is the cluster up? `kubectl --context {context} version`"
    )]
    Reach {
        context: String,
        #[source]
        source: ::kube::Error,
    },
    #[error(
        "the API server of context `{context}` did not answer within {}",
        humantime::format_duration(*timeout)
    )]
    ReachTimeout { context: String, timeout: Duration },
    #[error("cannot list the nodes of context `{context}`")]
    ListNodes {
        context: String,
        #[source]
        source: ::kube::Error,
    },
    #[error("no node of context `{context}` has an InternalIP address")]
    NoNodeAddress { context: String },
    #[error("cannot restart deployment {namespace}/{name} in context `{context}`")]
    RestartDeployment {
        context: String,
        namespace: String,
        name: String,
        #[source]
        source: ::kube::Error,
    },
    #[error("cannot read deployment {namespace}/{name} in context `{context}`")]
    GetDeployment {
        context: String,
        namespace: String,
        name: String,
        #[source]
        source: ::kube::Error,
    },
    #[error(
        "deployment {namespace}/{name} in context `{context}` did not roll out within {}: {progress}",
        humantime::format_duration(*timeout)
    )]
    DeploymentTimeout {
        context: String,
        namespace: String,
        name: String,
        timeout: Duration,
        progress: String,
    },
    #[error("cannot read job {namespace}/{name} in context `{context}`")]
    GetJob {
        context: String,
        namespace: String,
        name: String,
        #[source]
        source: ::kube::Error,
    },
    #[error(
        "job {namespace}/{name} in context `{context}` failed: {message}{}",
        log.as_deref().map(|log| format!("\nits pod's last log lines:\n{log}")).unwrap_or_default()
    )]
    JobFailed {
        context: String,
        namespace: String,
        name: String,
        message: String,
        /// The last lines of the Job's newest pod, when they could be read.
        log: Option<String>,
    },
    #[error(
        "job {namespace}/{name} in context `{context}` did not complete within {}: {progress}",
        humantime::format_duration(*timeout)
    )]
    JobTimeout {
        context: String,
        namespace: String,
        name: String,
        timeout: Duration,
        progress: String,
    },
    #[error("cannot list the pods of namespace {namespace} ({selector}) in context `{context}`")]
    ListPods {
        context: String,
        namespace: String,
        selector: String,
        #[source]
        source: ::kube::Error,
    },
    #[error(
        "no running pod matches {selector} in namespace {namespace} of context `{context}` (pods: {seen})"
    )]
    NoRunningPod {
        context: String,
        namespace: String,
        selector: String,
        /// The matching pods and their phases, or `none`.
        seen: String,
    },
    #[error("cannot start `{command}` in {namespace}/{pod} ({container}) of context `{context}`")]
    ExecStart {
        context: String,
        namespace: String,
        pod: String,
        container: String,
        /// The program and its first argument only: later arguments can be long scripts.
        command: String,
        #[source]
        source: ::kube::Error,
    },
    #[error("the output of `{command}` in {namespace}/{pod} of context `{context}` broke off")]
    ExecRead {
        context: String,
        namespace: String,
        pod: String,
        command: String,
        #[source]
        source: std::io::Error,
    },
    #[error("the exec stream of `{command}` in {namespace}/{pod} of context `{context}` failed")]
    ExecStream {
        context: String,
        namespace: String,
        pod: String,
        command: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error("`{command}` in {namespace}/{pod} of context `{context}` ended without an exit status")]
    ExecNoStatus {
        context: String,
        namespace: String,
        pod: String,
        command: String,
    },
    #[error(
        "`{command}` in {namespace}/{pod} of context `{context}` could not run: {reason}: {message}"
    )]
    ExecFailed {
        context: String,
        namespace: String,
        pod: String,
        command: String,
        reason: String,
        message: String,
    },
    #[error(
        "`{command}` in {namespace}/{pod} of context `{context}` did not finish within {}",
        humantime::format_duration(*timeout)
    )]
    ExecTimeout {
        context: String,
        namespace: String,
        pod: String,
        command: String,
        timeout: Duration,
    },
    #[error("cannot read the log of {namespace}/{pod} in context `{context}`")]
    Logs {
        context: String,
        namespace: String,
        pod: String,
        #[source]
        source: ::kube::Error,
    },
    #[error("cannot list the events of namespace {namespace} in context `{context}`")]
    Events {
        context: String,
        namespace: String,
        #[source]
        source: ::kube::Error,
    },
    #[error("cannot read namespace {namespace} in context `{context}`")]
    GetNamespace {
        context: String,
        namespace: String,
        #[source]
        source: ::kube::Error,
    },
}

/// Where a Job is, as its conditions say.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobState {
    /// Neither complete nor failed yet.
    Running,
    /// The `Complete` condition is true.
    Complete,
    /// The `Failed` (or, since Kubernetes 1.31, the earlier `FailureTarget`) condition is true:
    /// its message, or its reason when it has none.
    Failed(String),
}

/// `kubectl rollout status` semantics: the controller has seen the latest spec, every wanted
/// replica is updated, no old replica is left, and every updated replica is available.
pub fn is_rolled_out(deployment: &Deployment) -> bool {
    let (Some(spec), Some(status)) = (&deployment.spec, &deployment.status) else {
        return false;
    };
    let generation = deployment.metadata.generation.unwrap_or(0);
    if status.observed_generation.unwrap_or(-1) < generation {
        return false;
    }
    let wanted = spec.replicas.unwrap_or(1);
    let updated = status.updated_replicas.unwrap_or(0);
    updated >= wanted
        && status.replicas.unwrap_or(0) <= updated
        && status.available_replicas.unwrap_or(0) >= updated
}

/// What a Deployment's status says, for a timeout message.
pub fn rollout_progress(deployment: &Deployment) -> String {
    let wanted = deployment
        .spec
        .as_ref()
        .and_then(|spec| spec.replicas)
        .unwrap_or(1);
    let Some(status) = &deployment.status else {
        return format!("no status yet ({wanted} replicas wanted)");
    };
    let generation = deployment.metadata.generation.unwrap_or(0);
    let observed = status.observed_generation.unwrap_or(0);
    let mut progress = format!(
        "{} of {wanted} updated, {} total, {} available",
        status.updated_replicas.unwrap_or(0),
        status.replicas.unwrap_or(0),
        status.available_replicas.unwrap_or(0),
    );
    if observed < generation {
        let _ = write!(
            progress,
            "; generation {generation} not yet observed (at {observed})"
        );
    }
    progress
}

/// Reads a Job's conditions. Failure wins over completion: a Job never has both, and reporting
/// a failure is the safer mistake.
pub fn job_state(job: &Job) -> JobState {
    let conditions = job
        .status
        .as_ref()
        .and_then(|status| status.conditions.as_deref())
        .unwrap_or_default();
    let is_true = |kind: &str| {
        conditions
            .iter()
            .find(|condition| condition.type_ == kind && condition.status == "True")
    };
    if let Some(condition) = is_true("Failed").or_else(|| is_true("FailureTarget")) {
        let message = condition
            .message
            .clone()
            .filter(|message| !message.is_empty())
            .or_else(|| condition.reason.clone())
            .unwrap_or_else(|| "no reason given".to_owned());
        return JobState::Failed(message);
    }
    if is_true("Complete").is_some() {
        JobState::Complete
    } else {
        JobState::Running
    }
}

/// What a Job's status counts, for a timeout message.
pub fn job_progress(job: &Job) -> String {
    let Some(status) = &job.status else {
        return "no status yet".to_owned();
    };
    format!(
        "{} active, {} succeeded, {} failed",
        status.active.unwrap_or(0),
        status.succeeded.unwrap_or(0),
        status.failed.unwrap_or(0)
    )
}

/// The exit code a channel-3 status of an exec stream stands for: `Success` is 0, a
/// `NonZeroExitCode` failure carries its code in an `ExitCode` cause (kubelet `writeStatus`).
/// `None` for anything else, such as an `InternalError` when the program cannot start.
pub fn exit_code(status: &Status) -> Option<i32> {
    match status.status.as_deref() {
        Some("Success") => Some(0),
        Some("Failure") if status.reason.as_deref() == Some("NonZeroExitCode") => status
            .details
            .as_ref()
            .and_then(|details| details.causes.as_deref())
            .unwrap_or_default()
            .iter()
            .find(|cause| cause.reason.as_deref() == Some("ExitCode"))
            .and_then(|cause| cause.message.as_deref())
            .and_then(|message| message.trim().parse().ok()),
        _ => None,
    }
}

/// Whether a pod can take an exec: Running, not being deleted, and every container ready.
pub fn is_serving(pod: &Pod) -> bool {
    let Some(status) = &pod.status else {
        return false;
    };
    let is_ready = status
        .container_statuses
        .as_deref()
        .is_some_and(|containers| {
            !containers.is_empty() && containers.iter().all(|container| container.ready)
        });
    status.phase.as_deref() == Some("Running")
        && pod.metadata.deletion_timestamp.is_none()
        && is_ready
}

/// The pod to exec in among those a selector matched: the newest serving one, or else the
/// newest that is at least Running (its readiness probe may lag behind a usable container).
pub fn choose_pod(pods: &[Pod]) -> Option<&Pod> {
    fn newest<'pod>(candidates: impl Iterator<Item = &'pod Pod>) -> Option<&'pod Pod> {
        candidates.max_by_key(|pod| pod.metadata.creation_timestamp.as_ref().map(|time| time.0))
    }
    let is_running = |pod: &&Pod| {
        pod.metadata.deletion_timestamp.is_none()
            && pod
                .status
                .as_ref()
                .and_then(|status| status.phase.as_deref())
                == Some("Running")
    };
    newest(pods.iter().filter(|pod| is_serving(pod)))
        .or_else(|| newest(pods.iter().filter(is_running)))
}

/// One line for a pod: name, phase, readiness and each container's state and restarts.
pub fn describe_pod(pod: &Pod) -> String {
    let name = pod.metadata.name.as_deref().unwrap_or("<unnamed>");
    let Some(status) = &pod.status else {
        return format!("{name} (no status)");
    };
    let phase = status.phase.as_deref().unwrap_or("Unknown");
    let containers = status.container_statuses.as_deref().unwrap_or_default();
    let ready = containers
        .iter()
        .filter(|container| container.ready)
        .count();
    let mut line = format!("{name} {phase} ready {ready}/{}", containers.len());
    if pod.metadata.deletion_timestamp.is_some() {
        line.push_str(" terminating");
    }
    let init_containers = status
        .init_container_statuses
        .as_deref()
        .unwrap_or_default();
    for (role, container) in init_containers
        .iter()
        .map(|container| ("init ", container))
        .chain(containers.iter().map(|container| ("", container)))
    {
        let state = container.state.as_ref();
        let state = if let Some(waiting) = state.and_then(|state| state.waiting.as_ref()) {
            format!("waiting {}", waiting.reason.as_deref().unwrap_or("-"))
        } else if let Some(terminated) = state.and_then(|state| state.terminated.as_ref()) {
            format!(
                "terminated {} exit {}",
                terminated.reason.as_deref().unwrap_or("-"),
                terminated.exit_code
            )
        } else if state.and_then(|state| state.running.as_ref()).is_some() {
            "running".to_owned()
        } else {
            "unknown".to_owned()
        };
        let _ = write!(
            line,
            "; {role}{} {state}, {} restarts",
            container.name, container.restart_count
        );
    }
    if let Some(message) = status.message.as_deref().filter(|m| !m.is_empty()) {
        let _ = write!(line, "; {message}");
    }
    line
}

/// One line for an event: time, type, reason, object, message, and the count when repeated.
pub fn describe_event(event: &Event) -> String {
    let time = event_time(event)
        .map(|time| time.to_string())
        .unwrap_or_else(|| "-".to_owned());
    let object = &event.involved_object;
    let mut line = format!(
        "{time} {} {} {}/{}: {}",
        event.type_.as_deref().unwrap_or("-"),
        event.reason.as_deref().unwrap_or("-"),
        object.kind.as_deref().unwrap_or("-").to_lowercase(),
        object.name.as_deref().unwrap_or("-"),
        event.message.as_deref().unwrap_or("").trim(),
    );
    if let Some(count) = event.count.filter(|count| *count > 1) {
        let _ = write!(line, " (x{count})");
    }
    line
}

/// When an event last happened, from whichever of its time fields is set.
fn event_time(event: &Event) -> Option<k8s_openapi::jiff::Timestamp> {
    event
        .last_timestamp
        .as_ref()
        .map(|time| time.0)
        .or_else(|| event.event_time.as_ref().map(|time| time.0))
        .or_else(|| event.first_timestamp.as_ref().map(|time| time.0))
        .or_else(|| {
            event
                .metadata
                .creation_timestamp
                .as_ref()
                .map(|time| time.0)
        })
}

/// The program and first argument of an argv, for messages: later arguments can be scripts.
fn short_command(argv: &[String]) -> String {
    argv.iter()
        .take(2)
        .map(String::as_str)
        .collect::<Vec<_>>()
        .join(" ")
}

/// What one look at an awaited object found.
enum Observation<T> {
    /// The wait is over.
    Done(T),
    /// Not yet; how far along it is, for the timeout message.
    Pending(String),
}

/// Calls `observe` every [`POLL_INTERVAL`] until it is done, fails, or `timeout` has passed
/// (then `Err(last progress)`). A slow observation is cut off at the deadline, and the last
/// look, taken at the deadline, gets at most one more [`POLL_INTERVAL`].
async fn poll<T, F, Fut>(timeout: Duration, mut observe: F) -> Result<Result<T, String>, KubeError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<Observation<T>, KubeError>>,
{
    let deadline = Instant::now() + timeout;
    let mut progress = "not observed yet".to_owned();
    loop {
        match tokio::time::timeout_at(deadline, observe()).await {
            Err(_elapsed) => return Ok(Err(progress)),
            Ok(observation) => match observation? {
                Observation::Done(value) => return Ok(Ok(value)),
                Observation::Pending(now) => progress = now,
            },
        }
        if Instant::now() + POLL_INTERVAL >= deadline {
            tokio::time::sleep_until(deadline).await;
            // One last look at the deadline, so a wait shorter than the interval still sees
            // a state that was reached meanwhile.
            return match tokio::time::timeout(POLL_INTERVAL, observe()).await {
                Ok(Ok(Observation::Done(value))) => Ok(Ok(value)),
                Ok(Err(error)) => Err(error),
                Ok(Ok(Observation::Pending(now))) => Ok(Err(now)),
                Err(_elapsed) => Ok(Err(progress)),
            };
        }
        tokio::time::sleep(POLL_INTERVAL).await;
    }
}

/// One Kubernetes cluster, reached through a kubeconfig context.
#[derive(Clone)]
pub struct KubeCluster {
    client: Client,
    /// The kubeconfig context, for messages.
    context: String,
}

impl std::fmt::Debug for KubeCluster {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("KubeCluster")
            .field("context", &self.context)
            .finish_non_exhaustive()
    }
}

impl KubeCluster {
    /// From a kubeconfig FILE (never `~/.kube/config` or `$KUBECONFIG` implicitly) and an
    /// optional context (the file's current context otherwise). Checks that the API server
    /// answers, within [`CONNECT_TIMEOUT`].
    pub async fn connect(kubeconfig: &Path, context: Option<&str>) -> Result<Self, KubeError> {
        let file =
            Kubeconfig::read_from(kubeconfig).map_err(|source| KubeError::ReadKubeconfig {
                path: kubeconfig.to_owned(),
                source,
            })?;
        let context_name = context
            .map(str::to_owned)
            .or_else(|| file.current_context.clone())
            .unwrap_or_default();
        let options = KubeConfigOptions {
            context: context.map(str::to_owned),
            ..KubeConfigOptions::default()
        };
        let config = Config::from_custom_kubeconfig(file, &options)
            .await
            .map_err(|source| KubeError::LoadKubeconfig {
                path: kubeconfig.to_owned(),
                context: context_name.clone(),
                source,
            })?;
        let client = Client::try_from(config).map_err(|source| KubeError::CreateClient {
            context: context_name.clone(),
            source,
        })?;
        match tokio::time::timeout(CONNECT_TIMEOUT, client.apiserver_version()).await {
            Err(_elapsed) => Err(KubeError::ReachTimeout {
                context: context_name,
                timeout: CONNECT_TIMEOUT,
            }),
            Ok(Err(source)) => Err(KubeError::Reach {
                context: context_name,
                source,
            }),
            Ok(Ok(_version)) => Ok(Self {
                client,
                context: context_name,
            }),
        }
    }

    /// The kubeconfig context this cluster was reached through.
    pub fn context(&self) -> &str {
        &self.context
    }

    /// The InternalIP of the first node (kind: the single control-plane node).
    pub async fn node_internal_ip(&self) -> Result<String, KubeError> {
        let nodes: Api<Node> = Api::all(self.client.clone());
        let list =
            nodes
                .list(&ListParams::default())
                .await
                .map_err(|source| KubeError::ListNodes {
                    context: self.context.clone(),
                    source,
                })?;
        list.items
            .iter()
            .filter_map(|node| node.status.as_ref()?.addresses.as_ref())
            .flatten()
            .find(|address| address.type_ == "InternalIP")
            .map(|address| address.address.clone())
            .ok_or_else(|| KubeError::NoNodeAddress {
                context: self.context.clone(),
            })
    }

    /// Waits until the Deployment is rolled out ([`is_rolled_out`]); a Deployment that does
    /// not exist yet is waited for too.
    pub async fn wait_deployment(
        &self,
        namespace: &str,
        name: &str,
        timeout: Duration,
    ) -> Result<(), KubeError> {
        let deployments: Api<Deployment> = Api::namespaced(self.client.clone(), namespace);
        let outcome = poll(timeout, || async {
            match deployments.get_opt(name).await {
                Ok(Some(deployment)) if is_rolled_out(&deployment) => Ok(Observation::Done(())),
                Ok(Some(deployment)) => Ok(Observation::Pending(rollout_progress(&deployment))),
                Ok(None) => Ok(Observation::Pending("it does not exist".to_owned())),
                Err(source) => Err(KubeError::GetDeployment {
                    context: self.context.clone(),
                    namespace: namespace.to_owned(),
                    name: name.to_owned(),
                    source,
                }),
            }
        })
        .await?;
        outcome.map_err(|progress| KubeError::DeploymentTimeout {
            context: self.context.clone(),
            namespace: namespace.to_owned(),
            name: name.to_owned(),
            timeout,
            progress,
        })
    }

    /// Restarts a Deployment's pods, as `kubectl rollout restart` does (a new pod-template
    /// annotation). Callers wait for the rollout with [`Self::wait_deployment`].
    pub async fn restart_deployment(&self, namespace: &str, name: &str) -> Result<(), KubeError> {
        let deployments: Api<Deployment> = Api::namespaced(self.client.clone(), namespace);
        deployments
            .restart(name)
            .await
            .map(|_| ())
            .map_err(|source| KubeError::RestartDeployment {
                context: self.context.clone(),
                namespace: namespace.to_owned(),
                name: name.to_owned(),
                source,
            })
    }

    /// Waits for a Job to be Complete; fails as soon as it is Failed, with the condition's
    /// message and the last log lines of its newest pod.
    pub async fn wait_job(
        &self,
        namespace: &str,
        name: &str,
        timeout: Duration,
    ) -> Result<(), KubeError> {
        let jobs: Api<Job> = Api::namespaced(self.client.clone(), namespace);
        let outcome = poll(timeout, || async {
            match jobs.get_opt(name).await {
                Ok(Some(job)) => match job_state(&job) {
                    JobState::Complete => Ok(Observation::Done(None)),
                    JobState::Failed(message) => Ok(Observation::Done(Some(message))),
                    JobState::Running => Ok(Observation::Pending(job_progress(&job))),
                },
                Ok(None) => Ok(Observation::Pending("it does not exist".to_owned())),
                Err(source) => Err(KubeError::GetJob {
                    context: self.context.clone(),
                    namespace: namespace.to_owned(),
                    name: name.to_owned(),
                    source,
                }),
            }
        })
        .await?;
        match outcome {
            Ok(None) => Ok(()),
            Ok(Some(message)) => Err(KubeError::JobFailed {
                context: self.context.clone(),
                namespace: namespace.to_owned(),
                name: name.to_owned(),
                message,
                log: self.job_log(namespace, name).await,
            }),
            Err(progress) => Err(KubeError::JobTimeout {
                context: self.context.clone(),
                namespace: namespace.to_owned(),
                name: name.to_owned(),
                timeout,
                progress,
            }),
        }
    }

    /// The last lines of a Job's newest pod, if there is one and its log can be read: only
    /// for an error message, so failures to read it are not errors themselves.
    async fn job_log(&self, namespace: &str, job: &str) -> Option<String> {
        let pods: Api<Pod> = Api::namespaced(self.client.clone(), namespace);
        let list = pods
            .list(&ListParams::default().labels(&format!("job-name={job}")))
            .await
            .ok()?;
        let newest = list
            .items
            .iter()
            .max_by_key(|pod| pod.metadata.creation_timestamp.as_ref().map(|time| time.0))?;
        let name = newest.metadata.name.as_deref()?;
        let params = LogParams {
            tail_lines: Some(FAILED_JOB_LOG_LINES),
            ..LogParams::default()
        };
        let log = pods.logs(name, &params).await.ok()?;
        let log = log.trim_end();
        (!log.is_empty()).then(|| log.to_owned())
    }

    /// The name of a Running pod matching the label selector, preferring ready ones
    /// ([`choose_pod`]). One look: the caller waits for the Deployment first.
    pub async fn find_pod(&self, namespace: &str, selector: &str) -> Result<String, KubeError> {
        let pods: Api<Pod> = Api::namespaced(self.client.clone(), namespace);
        let list = pods
            .list(&ListParams::default().labels(selector))
            .await
            .map_err(|source| KubeError::ListPods {
                context: self.context.clone(),
                namespace: namespace.to_owned(),
                selector: selector.to_owned(),
                source,
            })?;
        if let Some(name) = choose_pod(&list.items).and_then(|pod| pod.metadata.name.clone()) {
            return Ok(name);
        }
        let seen: Vec<String> = list
            .items
            .iter()
            .map(|pod| {
                format!(
                    "{} {}",
                    pod.metadata.name.as_deref().unwrap_or("<unnamed>"),
                    pod.status
                        .as_ref()
                        .and_then(|status| status.phase.as_deref())
                        .unwrap_or("Unknown")
                )
            })
            .collect();
        Err(KubeError::NoRunningPod {
            context: self.context.clone(),
            namespace: namespace.to_owned(),
            selector: selector.to_owned(),
            seen: if seen.is_empty() {
                "none".to_owned()
            } else {
                seen.join(", ")
            },
        })
    }

    /// Runs `argv` in the container, as `kubectl exec` without stdin or a TTY. Stdout and
    /// stderr are read at the same time (kube-rs buffers only 1 KiB of each), and the
    /// channel-3 status becomes the exit code ([`exit_code`]). Bounded by `timeout`.
    pub async fn exec(
        &self,
        namespace: &str,
        pod: &str,
        container: &str,
        argv: &[String],
        timeout: Duration,
    ) -> Result<ExecOutput, KubeError> {
        let command = short_command(argv);
        match tokio::time::timeout(
            timeout,
            self.exec_unbounded(namespace, pod, container, argv),
        )
        .await
        {
            Ok(result) => result,
            Err(_elapsed) => Err(KubeError::ExecTimeout {
                context: self.context.clone(),
                namespace: namespace.to_owned(),
                pod: pod.to_owned(),
                command,
                timeout,
            }),
        }
    }

    async fn exec_unbounded(
        &self,
        namespace: &str,
        pod: &str,
        container: &str,
        argv: &[String],
    ) -> Result<ExecOutput, KubeError> {
        let command = short_command(argv);
        let pods: Api<Pod> = Api::namespaced(self.client.clone(), namespace);
        let params = AttachParams::default()
            .container(container)
            .stdin(false)
            .stdout(true)
            .stderr(true)
            .tty(false);
        let mut process = pods
            .exec(pod, argv.to_vec(), &params)
            .await
            .map_err(|source| KubeError::ExecStart {
                context: self.context.clone(),
                namespace: namespace.to_owned(),
                pod: pod.to_owned(),
                container: container.to_owned(),
                command: command.clone(),
                source,
            })?;
        let no_status = || KubeError::ExecNoStatus {
            context: self.context.clone(),
            namespace: namespace.to_owned(),
            pod: pod.to_owned(),
            command: command.clone(),
        };
        // All three are present because stdout and stderr were requested and the status was
        // not taken before.
        let (Some(mut stdout), Some(mut stderr), Some(status)) =
            (process.stdout(), process.stderr(), process.take_status())
        else {
            return Err(no_status());
        };
        let (mut stdout_bytes, mut stderr_bytes) = (Vec::new(), Vec::new());
        let (stdout_read, stderr_read) = tokio::join!(
            stdout.read_to_end(&mut stdout_bytes),
            stderr.read_to_end(&mut stderr_bytes)
        );
        let read_error = |source| KubeError::ExecRead {
            context: self.context.clone(),
            namespace: namespace.to_owned(),
            pod: pod.to_owned(),
            command: command.clone(),
            source,
        };
        stdout_read.map_err(read_error)?;
        stderr_read.map_err(read_error)?;
        let status = status.await;
        let joined = process.join().await;
        let status = match (status, joined) {
            (Some(status), _) => status,
            (None, Err(source)) => {
                return Err(KubeError::ExecStream {
                    context: self.context.clone(),
                    namespace: namespace.to_owned(),
                    pod: pod.to_owned(),
                    command: command.clone(),
                    source: Box::new(source),
                });
            }
            (None, Ok(())) => return Err(no_status()),
        };
        let Some(exit_code) = exit_code(&status) else {
            return Err(KubeError::ExecFailed {
                context: self.context.clone(),
                namespace: namespace.to_owned(),
                pod: pod.to_owned(),
                command,
                reason: status
                    .reason
                    .clone()
                    .unwrap_or_else(|| "no reason".to_owned()),
                message: status.message.clone().unwrap_or_default(),
            });
        };
        Ok(ExecOutput {
            stdout: String::from_utf8_lossy(&stdout_bytes).into_owned(),
            stderr: String::from_utf8_lossy(&stderr_bytes).into_owned(),
            exit_code,
        })
    }

    /// The last `tail_lines` lines of a container's log (the pod's only container if `None`).
    pub async fn logs(
        &self,
        namespace: &str,
        pod: &str,
        container: Option<&str>,
        tail_lines: i64,
    ) -> Result<String, KubeError> {
        let pods: Api<Pod> = Api::namespaced(self.client.clone(), namespace);
        let params = LogParams {
            container: container.map(str::to_owned),
            tail_lines: Some(tail_lines),
            ..LogParams::default()
        };
        pods.logs(pod, &params)
            .await
            .map_err(|source| KubeError::Logs {
                context: self.context.clone(),
                namespace: namespace.to_owned(),
                pod: pod.to_owned(),
                source,
            })
    }

    /// The pods of the namespace, one [`describe_pod`] line each, by name.
    pub async fn describe_pods(&self, namespace: &str) -> Result<String, KubeError> {
        let mut pods = self.list_pods(namespace).await?;
        pods.sort_by(|a, b| a.metadata.name.cmp(&b.metadata.name));
        Ok(pods
            .iter()
            .map(|pod| describe_pod(pod) + "\n")
            .collect::<String>())
    }

    /// The names of the pods in the namespace, sorted.
    pub async fn pod_names(&self, namespace: &str) -> Result<Vec<String>, KubeError> {
        let mut names: Vec<String> = self
            .list_pods(namespace)
            .await?
            .into_iter()
            .filter_map(|pod| pod.metadata.name)
            .collect();
        names.sort();
        Ok(names)
    }

    async fn list_pods(&self, namespace: &str) -> Result<Vec<Pod>, KubeError> {
        let pods: Api<Pod> = Api::namespaced(self.client.clone(), namespace);
        pods.list(&ListParams::default())
            .await
            .map(|list| list.items)
            .map_err(|source| KubeError::ListPods {
                context: self.context.clone(),
                namespace: namespace.to_owned(),
                selector: "all pods".to_owned(),
                source,
            })
    }

    /// The namespace's events, oldest first, one [`describe_event`] line each.
    pub async fn events(&self, namespace: &str) -> Result<String, KubeError> {
        let events: Api<Event> = Api::namespaced(self.client.clone(), namespace);
        let mut list = events
            .list(&ListParams::default())
            .await
            .map_err(|source| KubeError::Events {
                context: self.context.clone(),
                namespace: namespace.to_owned(),
                source,
            })?
            .items;
        list.sort_by_key(event_time);
        Ok(list
            .iter()
            .map(|event| describe_event(event) + "\n")
            .collect::<String>())
    }

    /// Whether the namespace exists. The existing provider refuses a namespace it did not
    /// create unless it is empty ([`Self::pod_names`]).
    pub async fn namespace_exists(&self, namespace: &str) -> Result<bool, KubeError> {
        let namespaces: Api<Namespace> = Api::all(self.client.clone());
        namespaces
            .get_opt(namespace)
            .await
            .map(|found| found.is_some())
            .map_err(|source| KubeError::GetNamespace {
                context: self.context.clone(),
                namespace: namespace.to_owned(),
                source,
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::apps::v1::{DeploymentSpec, DeploymentStatus};
    use k8s_openapi::api::batch::v1::{JobCondition, JobStatus};
    use k8s_openapi::api::core::v1::{
        ContainerState, ContainerStateRunning, ContainerStateWaiting, ContainerStatus, PodStatus,
    };
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{
        ObjectMeta, StatusCause, StatusDetails, Time,
    };
    use rstest::rstest;

    fn deployment(
        generation: i64,
        wanted: Option<i32>,
        observed: Option<i64>,
        replicas: i32,
        updated: i32,
        available: i32,
    ) -> Deployment {
        Deployment {
            metadata: ObjectMeta {
                generation: Some(generation),
                ..ObjectMeta::default()
            },
            spec: Some(DeploymentSpec {
                replicas: wanted,
                ..DeploymentSpec::default()
            }),
            status: Some(DeploymentStatus {
                observed_generation: observed,
                replicas: Some(replicas),
                updated_replicas: Some(updated),
                available_replicas: Some(available),
                ..DeploymentStatus::default()
            }),
        }
    }

    #[rstest]
    #[case::rolled_out(deployment(2, Some(1), Some(2), 1, 1, 1), true)]
    #[case::default_one_replica(deployment(1, None, Some(1), 1, 1, 1), true)]
    #[case::newer_generation_not_observed(deployment(3, Some(1), Some(2), 1, 1, 1), false)]
    #[case::no_observed_generation(deployment(1, Some(1), None, 1, 1, 1), false)]
    #[case::not_all_updated(deployment(1, Some(2), Some(1), 2, 1, 2), false)]
    #[case::old_replica_left(deployment(1, Some(1), Some(1), 2, 1, 1), false)]
    #[case::updated_not_available(deployment(1, Some(1), Some(1), 1, 1, 0), false)]
    #[case::scaled_to_zero(deployment(1, Some(0), Some(1), 0, 0, 0), true)]
    fn rollout(#[case] deployment: Deployment, #[case] expected: bool) {
        assert_eq!(is_rolled_out(&deployment), expected);
    }

    #[test]
    fn a_deployment_without_status_is_not_rolled_out() {
        let mut fresh = deployment(1, Some(1), Some(1), 1, 1, 1);
        fresh.status = None;
        assert!(!is_rolled_out(&fresh));
        assert_eq!(
            rollout_progress(&fresh),
            "no status yet (1 replicas wanted)"
        );
    }

    #[test]
    fn rollout_progress_names_the_unobserved_generation() {
        assert_eq!(
            rollout_progress(&deployment(3, Some(2), Some(2), 2, 1, 1)),
            "1 of 2 updated, 2 total, 1 available; generation 3 not yet observed (at 2)"
        );
    }

    fn condition(
        kind: &str,
        status: &str,
        reason: Option<&str>,
        message: Option<&str>,
    ) -> JobCondition {
        JobCondition {
            type_: kind.to_owned(),
            status: status.to_owned(),
            reason: reason.map(str::to_owned),
            message: message.map(str::to_owned),
            ..JobCondition::default()
        }
    }

    fn job(conditions: Option<Vec<JobCondition>>) -> Job {
        Job {
            status: Some(JobStatus {
                conditions,
                ..JobStatus::default()
            }),
            ..Job::default()
        }
    }

    #[rstest]
    #[case::no_conditions(job(None), JobState::Running)]
    #[case::empty_conditions(job(Some(vec![])), JobState::Running)]
    #[case::complete(job(Some(vec![condition("Complete", "True", None, None)])), JobState::Complete)]
    #[case::complete_false(job(Some(vec![condition("Complete", "False", None, None)])), JobState::Running)]
    #[case::success_criteria_only(
        job(Some(vec![condition("SuccessCriteriaMet", "True", None, None)])),
        JobState::Running
    )]
    #[case::failed_with_message(
        job(Some(vec![condition("Failed", "True", Some("BackoffLimitExceeded"), Some("Job has reached the specified backoff limit"))])),
        JobState::Failed("Job has reached the specified backoff limit".to_owned())
    )]
    #[case::failed_reason_only(
        job(Some(vec![condition("Failed", "True", Some("DeadlineExceeded"), Some(""))])),
        JobState::Failed("DeadlineExceeded".to_owned())
    )]
    #[case::failure_target_before_failed(
        job(Some(vec![condition("FailureTarget", "True", Some("BackoffLimitExceeded"), None)])),
        JobState::Failed("BackoffLimitExceeded".to_owned())
    )]
    #[case::failed_false(job(Some(vec![condition("Failed", "False", None, None)])), JobState::Running)]
    #[case::no_status(Job::default(), JobState::Running)]
    fn job_states(#[case] job: Job, #[case] expected: JobState) {
        assert_eq!(job_state(&job), expected);
    }

    fn exec_status(
        status: &str,
        reason: Option<&str>,
        causes: Option<Vec<(&str, &str)>>,
    ) -> Status {
        Status {
            status: Some(status.to_owned()),
            reason: reason.map(str::to_owned),
            details: causes.map(|causes| StatusDetails {
                causes: Some(
                    causes
                        .into_iter()
                        .map(|(reason, message)| StatusCause {
                            reason: Some(reason.to_owned()),
                            message: Some(message.to_owned()),
                            field: None,
                        })
                        .collect(),
                ),
                ..StatusDetails::default()
            }),
            ..Status::default()
        }
    }

    #[rstest]
    #[case::success(exec_status("Success", None, None), Some(0))]
    #[case::exit_one(exec_status("Failure", Some("NonZeroExitCode"), Some(vec![("ExitCode", "1")])), Some(1))]
    #[case::exit_code_among_causes(
        exec_status("Failure", Some("NonZeroExitCode"), Some(vec![("Other", "x"), ("ExitCode", "137")])),
        Some(137)
    )]
    #[case::non_zero_without_cause(exec_status("Failure", Some("NonZeroExitCode"), None), None)]
    #[case::non_numeric_code(exec_status("Failure", Some("NonZeroExitCode"), Some(vec![("ExitCode", "one")])), None)]
    #[case::internal_error(exec_status("Failure", Some("InternalError"), None), None)]
    #[case::unknown_status(exec_status("Pending", None, None), None)]
    fn exit_codes(#[case] status: Status, #[case] expected: Option<i32>) {
        assert_eq!(exit_code(&status), expected);
    }

    #[test]
    fn the_status_frame_json_of_a_failed_command_parses_to_its_code() {
        let status: Status = serde_json::from_str(
            r#"{"metadata":{},"status":"Failure","reason":"NonZeroExitCode","message":"command terminated with non-zero exit code: exit status 3","details":{"causes":[{"reason":"ExitCode","message":"3"}]}}"#,
        )
        .unwrap();
        assert_eq!(exit_code(&status), Some(3));
    }

    fn pod(name: &str, phase: &str, ready: bool, created: i64, deleting: bool) -> Pod {
        let time = |seconds| Time(k8s_openapi::jiff::Timestamp::from_second(seconds).unwrap());
        Pod {
            metadata: ObjectMeta {
                name: Some(name.to_owned()),
                creation_timestamp: Some(time(created)),
                deletion_timestamp: deleting.then(|| time(created + 100)),
                ..ObjectMeta::default()
            },
            spec: None,
            status: Some(PodStatus {
                phase: Some(phase.to_owned()),
                container_statuses: Some(vec![ContainerStatus {
                    name: "server".to_owned(),
                    ready,
                    restart_count: 2,
                    state: Some(if phase == "Running" {
                        ContainerState {
                            running: Some(ContainerStateRunning::default()),
                            ..ContainerState::default()
                        }
                    } else {
                        ContainerState {
                            waiting: Some(ContainerStateWaiting {
                                reason: Some("ContainerCreating".to_owned()),
                                message: None,
                            }),
                            ..ContainerState::default()
                        }
                    }),
                    ..ContainerStatus::default()
                }]),
                ..PodStatus::default()
            }),
        }
    }

    #[rstest]
    #[case::newest_ready_wins(
        vec![pod("old", "Running", true, 10, false), pod("new", "Running", true, 20, false)],
        Some("new")
    )]
    #[case::ready_beats_newer_unready(
        vec![pod("ready", "Running", true, 10, false), pod("starting", "Running", false, 20, false)],
        Some("ready")
    )]
    #[case::terminating_is_skipped(
        vec![pod("leaving", "Running", true, 30, true), pod("staying", "Running", true, 10, false)],
        Some("staying")
    )]
    #[case::running_unready_as_fallback(vec![pod("starting", "Running", false, 20, false)], Some("starting"))]
    #[case::pending_only(vec![pod("pending", "Pending", false, 20, false)], None)]
    #[case::succeeded_only(vec![pod("done", "Succeeded", false, 20, false)], None)]
    #[case::none(vec![], None)]
    fn pod_choice(#[case] pods: Vec<Pod>, #[case] expected: Option<&str>) {
        assert_eq!(
            choose_pod(&pods).and_then(|pod| pod.metadata.name.as_deref()),
            expected
        );
    }

    #[test]
    fn describes_a_pod_on_one_line() {
        assert_eq!(
            describe_pod(&pod("web-1", "Running", true, 10, false)),
            "web-1 Running ready 1/1; server running, 2 restarts"
        );
        assert_eq!(
            describe_pod(&pod("web-2", "Pending", false, 10, true)),
            "web-2 Pending ready 0/1 terminating; server waiting ContainerCreating, 2 restarts"
        );
    }

    #[test]
    fn describes_an_event_on_one_line() {
        let event = Event {
            type_: Some("Warning".to_owned()),
            reason: Some("BackOff".to_owned()),
            message: Some("Back-off restarting failed container\n".to_owned()),
            count: Some(3),
            last_timestamp: Some(Time(
                k8s_openapi::jiff::Timestamp::from_second(1_800_000_000).unwrap(),
            )),
            involved_object: k8s_openapi::api::core::v1::ObjectReference {
                kind: Some("Pod".to_owned()),
                name: Some("web-1".to_owned()),
                ..Default::default()
            },
            ..Event::default()
        };
        assert_eq!(
            describe_event(&event),
            "2027-01-15T08:00:00Z Warning BackOff pod/web-1: Back-off restarting failed container (x3)"
        );
    }

    #[test]
    fn short_command_keeps_the_program_and_first_argument() {
        let argv = crate::verify::probe::probe_argv();
        assert_eq!(short_command(&argv), "./manage.py shell");
        assert_eq!(short_command(&[]), "");
    }

    #[tokio::test]
    async fn poll_gives_the_last_progress_on_timeout() {
        let mut looks = 0;
        let started = Instant::now();
        let outcome = poll(Duration::from_millis(1200), || {
            looks += 1;
            let progress = format!("look {looks}");
            async move { Ok::<_, KubeError>(Observation::<()>::Pending(progress)) }
        })
        .await
        .unwrap();
        assert_eq!(outcome, Err(format!("look {looks}")));
        // At 0, 0.5 and 1.0 s, and once more at the deadline.
        assert_eq!(looks, 4);
        let elapsed = started.elapsed();
        assert!(elapsed >= Duration::from_millis(1200), "{elapsed:?}");
        assert!(elapsed < Duration::from_secs(3), "{elapsed:?}");
    }

    #[tokio::test]
    async fn poll_returns_once_done() {
        let mut looks = 0;
        let outcome = poll(Duration::from_secs(60), || {
            looks += 1;
            let done = looks == 3;
            async move {
                Ok::<_, KubeError>(if done {
                    Observation::Done(looks)
                } else {
                    Observation::Pending(String::new())
                })
            }
        })
        .await
        .unwrap();
        assert_eq!(outcome, Ok(3));
    }
}
