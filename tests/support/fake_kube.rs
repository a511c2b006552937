//! An in-process fake Kubernetes API server for one fake cluster, so the kind and existing
//! providers can be tested end to end without Docker or a cluster.
//!
//! It serves, over real HTTP on `127.0.0.1:0`, the few API endpoints `orgmesh::provider::kube`
//! reads (nodes, namespaces, Deployments, Jobs, pods with label selectors, pod logs, events
//! and the exec WebSocket), plus control endpoints under `/orgmesh-fake/` that the fake `helm`
//! calls. A backend "install" runs [`SimNetwork::install_backend`] for the organization named
//! like the namespace, bound on the cluster's node IP and the values' NodePort, and then
//! records the objects the chart would create: the server Deployment and its pod, the
//! migrations Job (Failed when the simulated Job fails) and its pod, and events. Exec in a
//! server pod runs [`SimNetwork::exec`] and streams the output as the kubelet does.
//!
//! Control endpoints (plain HTTP, JSON answers, errors as plain text):
//! - `POST /orgmesh-fake/helm/upgrade?namespace=NS&release=REL&chart=CHART&version=VER`, body:
//!   the merged values as YAML. 500 with the error text when the install fails.
//! - `POST /orgmesh-fake/helm/uninstall?namespace=NS&release=REL` (404 when not installed).
//! - `GET /orgmesh-fake/helm/list[?namespace=NS]`: like `helm list -o json`.
//! - `POST /orgmesh-fake/down`: the cluster is deleted; afterwards every request gets 503 and
//!   new connections are refused.
//!
//! Not modelled: watches (the waits poll), the simulated servers stopping when the cluster
//! goes down (the simulator cannot unbind one organization), and a NodePort change on a
//! reinstall (the organization stays bound where it was first bound).

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use axum::Router;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Path, Query, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use k8s_openapi::api::apps::v1::{Deployment, DeploymentSpec, DeploymentStatus};
use k8s_openapi::api::batch::v1::{Job, JobCondition, JobSpec, JobStatus};
use k8s_openapi::api::core::v1::{
    Container, ContainerState, ContainerStateRunning, ContainerStateTerminated, ContainerStatus,
    Event, Namespace, Node, NodeAddress, NodeStatus, ObjectReference, Pod, PodCondition, PodSpec,
    PodStatus, PodTemplateSpec,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta, Time};
use k8s_openapi::jiff::Timestamp;
use orgmesh::charts::ChartVersion;
use orgmesh::error::error_chain;
use orgmesh::provider::sim::{SimError, SimNetwork};
use serde_json::{Value, json};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// Bytes of stdout per WebSocket frame: above kube-rs's 1 KiB pipe, so a client that does not
/// read stdout and stderr at the same time stalls.
const STDOUT_FRAME_BYTES: usize = 4096;

/// How long [`FakeCluster::stop`] lets open connections finish.
const STOP_GRACE: Duration = Duration::from_secs(5);

/// Namespaces every cluster has.
const SYSTEM_NAMESPACES: [&str; 4] = ["default", "kube-system", "kube-public", "kube-node-lease"];

/// Where a pod's log comes from.
#[derive(Clone)]
enum LogSource {
    /// The organization's activity: installs and execs.
    Organization(String),
    /// A fixed text (a migrations pod).
    Fixed(String),
}

struct FakePod {
    pod: Pod,
    release: String,
    /// The organization whose simulated server answers exec in this pod.
    organization: Option<String>,
    log: LogSource,
}

struct Release {
    chart: String,
    version: String,
    revision: u32,
    status: &'static str,
    app_version: String,
    updated: Timestamp,
}

#[derive(Default)]
struct Objects {
    namespaces: BTreeSet<String>,
    releases: BTreeMap<(String, String), Release>,
    /// Keyed by (namespace, name); each remembers the release that made it.
    deployments: BTreeMap<(String, String), (String, Deployment)>,
    jobs: BTreeMap<(String, String), (String, Job)>,
    pods: BTreeMap<(String, String), FakePod>,
    events: Vec<(String, Event)>,
    /// Organizations this cluster has bound in the shared network.
    bound: HashSet<String>,
    activity: HashMap<String, Vec<String>>,
    requests: Vec<String>,
    down: bool,
    counter: u32,
}

struct Shared {
    name: String,
    node_ip: Ipv4Addr,
    network: SimNetwork,
    objects: Mutex<Objects>,
    shutdown: watch::Sender<bool>,
}

impl Shared {
    fn objects(&self) -> MutexGuard<'_, Objects> {
        self.objects.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// One fake cluster: an axum server on `127.0.0.1:0`.
pub struct FakeCluster {
    shared: Arc<Shared>,
    address: SocketAddr,
    server: JoinHandle<()>,
}

impl FakeCluster {
    /// Starts a fake API server for a cluster named `name` whose single node has InternalIP
    /// `node_ip` (e.g. 127.0.201.1), sharing `network` with other fake clusters.
    pub async fn start(name: &str, node_ip: Ipv4Addr, network: SimNetwork) -> FakeCluster {
        let (shutdown, mut shutdown_signal) = watch::channel(false);
        let shared = Arc::new(Shared {
            name: name.to_owned(),
            node_ip,
            network,
            objects: Mutex::new(Objects {
                namespaces: SYSTEM_NAMESPACES.iter().map(|n| (*n).to_owned()).collect(),
                ..Objects::default()
            }),
            shutdown,
        });
        let app = Router::new()
            .route("/version", get(version))
            .route("/api/v1/nodes", get(list_nodes))
            .route("/api/v1/namespaces/{namespace}", get(get_namespace))
            .route(
                "/apis/apps/v1/namespaces/{namespace}/deployments/{name}",
                get(get_deployment).patch(patch_deployment),
            )
            .route(
                "/apis/batch/v1/namespaces/{namespace}/jobs/{name}",
                get(get_job),
            )
            .route("/api/v1/namespaces/{namespace}/pods", get(list_pods))
            .route(
                "/api/v1/namespaces/{namespace}/pods/{name}/log",
                get(pod_log),
            )
            .route("/api/v1/namespaces/{namespace}/pods/{name}/exec", get(exec))
            .route("/api/v1/namespaces/{namespace}/events", get(list_events))
            .route("/orgmesh-fake/helm/upgrade", post(helm_upgrade))
            .route("/orgmesh-fake/helm/uninstall", post(helm_uninstall))
            .route("/orgmesh-fake/helm/list", get(helm_list))
            .route("/orgmesh-fake/down", post(down))
            .fallback(not_served)
            .layer(middleware::from_fn_with_state(Arc::clone(&shared), record))
            .with_state(Arc::clone(&shared));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("a loopback port for the fake API server");
        let address = listener
            .local_addr()
            .expect("the fake API server's address");
        let server = tokio::spawn(async move {
            let signal = async move {
                let _ = shutdown_signal.wait_for(|down| *down).await;
            };
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(signal)
                .await;
        });
        FakeCluster {
            shared,
            address,
            server,
        }
    }

    /// "http://127.0.0.1:PORT".
    pub fn url(&self) -> String {
        format!("http://{}", self.address)
    }

    /// The cluster's name, as given to [`Self::start`].
    pub fn name(&self) -> &str {
        &self.shared.name
    }

    /// The InternalIP of the cluster's node.
    pub fn node_ip(&self) -> Ipv4Addr {
        self.shared.node_ip
    }

    /// A kubeconfig (JSON, which is YAML) with one cluster, user and `context`, no auth.
    pub fn kubeconfig_json(&self, context: &str) -> String {
        let name = &self.shared.name;
        json!({
            "apiVersion": "v1",
            "kind": "Config",
            "preferences": {},
            "clusters": [{"name": name, "cluster": {"server": self.url()}}],
            "users": [{"name": name, "user": {}}],
            "contexts": [{"name": context, "context": {"cluster": name, "user": name}}],
            "current-context": context,
        })
        .to_string()
    }

    /// Every request so far, as "METHOD /path?query".
    pub fn requests(&self) -> Vec<String> {
        self.shared.objects().requests.clone()
    }

    /// Adds a namespace that no release made (for the existing provider's ownership checks).
    pub fn add_namespace(&self, namespace: &str) {
        self.shared
            .objects()
            .namespaces
            .insert(namespace.to_owned());
    }

    /// Adds a Running pod that no release made, in `namespace` (created if needed).
    pub fn add_pod(&self, namespace: &str, name: &str, labels: &[(&str, &str)]) {
        let labels = labels
            .iter()
            .map(|(key, value)| ((*key).to_owned(), (*value).to_owned()))
            .collect();
        let pod = running_pod(namespace, name, labels, "main", true);
        let mut objects = self.shared.objects();
        objects.namespaces.insert(namespace.to_owned());
        objects.pods.insert(
            (namespace.to_owned(), name.to_owned()),
            FakePod {
                pod,
                release: String::new(),
                organization: None,
                log: LogSource::Fixed(String::new()),
            },
        );
    }

    /// The fake helm's releases on this cluster, as `namespace/name`.
    pub async fn helm_releases(&self) -> Vec<String> {
        let (status, body) = self.request("GET", "/orgmesh-fake/helm/list", "").await;
        assert_eq!(status, 200, "{body}");
        let list: serde_json::Value = serde_json::from_str(&body).expect("a JSON list");
        list.as_array()
            .into_iter()
            .flatten()
            .map(|r| {
                format!(
                    "{}/{}",
                    r["namespace"].as_str().unwrap_or(""),
                    r["name"].as_str().unwrap_or("")
                )
            })
            .collect()
    }

    /// Sends one plain HTTP/1.1 request to the fake (a control endpoint, as the fake `helm`
    /// does) and returns the status code and body.
    pub async fn request(&self, method: &str, path_and_query: &str, body: &str) -> (u16, String) {
        use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
        let mut stream = tokio::net::TcpStream::connect(self.address)
            .await
            .expect("the fake API server accepts connections");
        let request = format!(
            "{method} {path_and_query} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/yaml\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            self.address,
            body.len()
        );
        stream
            .write_all(request.as_bytes())
            .await
            .expect("the request is sent");
        let mut response = Vec::new();
        stream
            .read_to_end(&mut response)
            .await
            .expect("the response is read");
        let response = String::from_utf8_lossy(&response).into_owned();
        let (head, body) = response.split_once("\r\n\r\n").unwrap_or((&response, ""));
        let status = head
            .split(' ')
            .nth(1)
            .and_then(|code| code.parse().ok())
            .expect("an HTTP status line");
        (status, body.to_owned())
    }

    /// Stops the server and waits (a little) for open connections to finish.
    pub async fn stop(self) {
        self.shared.shutdown.send_replace(true);
        let abort = self.server.abort_handle();
        if tokio::time::timeout(STOP_GRACE, self.server).await.is_err() {
            abort.abort();
        }
    }
}

/// Logs the request and turns every request away once the cluster is down.
async fn record(State(shared): State<Arc<Shared>>, request: Request, next: Next) -> Response {
    let line = format!(
        "{} {}",
        request.method(),
        request
            .uri()
            .path_and_query()
            .map_or_else(|| request.uri().path(), |path| path.as_str())
    );
    let is_down = {
        let mut objects = shared.objects();
        objects.requests.push(line);
        objects.down
    };
    if is_down {
        return status_response(
            StatusCode::SERVICE_UNAVAILABLE,
            "ServiceUnavailable",
            "the cluster has been deleted",
        );
    }
    next.run(request).await
}

/// A `metav1.Status` failure, as the API server answers errors.
fn status_response(code: StatusCode, reason: &str, message: &str) -> Response {
    let body = json!({
        "kind": "Status", "apiVersion": "v1", "metadata": {},
        "status": "Failure", "message": message, "reason": reason, "code": code.as_u16(),
    });
    json_response(code, &body)
}

fn not_found(kind: &str, name: &str) -> Response {
    status_response(
        StatusCode::NOT_FOUND,
        "NotFound",
        &format!("{kind} \"{name}\" not found"),
    )
}

fn json_response(code: StatusCode, body: &Value) -> Response {
    (
        code,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

fn text_response(code: StatusCode, text: String) -> Response {
    (code, [(header::CONTENT_TYPE, "text/plain")], text).into_response()
}

fn to_json<T: serde::Serialize>(object: &T) -> Value {
    serde_json::to_value(object).expect("k8s-openapi objects serialize")
}

fn list_response(api_version: &str, kind: &str, items: Vec<Value>) -> Response {
    json_response(
        StatusCode::OK,
        &json!({
            "apiVersion": api_version, "kind": kind,
            "metadata": {"resourceVersion": "1"},
            "items": items,
        }),
    )
}

async fn not_served(request: Request) -> Response {
    status_response(
        StatusCode::NOT_FOUND,
        "NotFound",
        &format!(
            "the fake API server does not serve {}",
            request.uri().path()
        ),
    )
}

async fn version() -> Response {
    json_response(
        StatusCode::OK,
        &json!({
            "major": "1", "minor": "36", "gitVersion": "v1.36.1", "gitCommit": "fake",
            "gitTreeState": "clean", "buildDate": "2026-05-01T00:00:00Z",
            "goVersion": "go1.26", "compiler": "gc", "platform": "linux/amd64",
        }),
    )
}

async fn list_nodes(State(shared): State<Arc<Shared>>) -> Response {
    let node = Node {
        metadata: ObjectMeta {
            name: Some(format!("{}-control-plane", shared.name)),
            ..ObjectMeta::default()
        },
        spec: None,
        status: Some(NodeStatus {
            addresses: Some(vec![
                NodeAddress {
                    type_: "InternalIP".to_owned(),
                    address: shared.node_ip.to_string(),
                },
                NodeAddress {
                    type_: "Hostname".to_owned(),
                    address: format!("{}-control-plane", shared.name),
                },
            ]),
            ..NodeStatus::default()
        }),
    };
    list_response("v1", "NodeList", vec![to_json(&node)])
}

async fn get_namespace(
    State(shared): State<Arc<Shared>>,
    Path(namespace): Path<String>,
) -> Response {
    if !shared.objects().namespaces.contains(&namespace) {
        return not_found("namespaces", &namespace);
    }
    let object = Namespace {
        metadata: ObjectMeta {
            name: Some(namespace),
            ..ObjectMeta::default()
        },
        ..Namespace::default()
    };
    json_response(StatusCode::OK, &to_json(&object))
}

async fn get_deployment(
    State(shared): State<Arc<Shared>>,
    Path((namespace, name)): Path<(String, String)>,
) -> Response {
    let objects = shared.objects();
    match objects.deployments.get(&(namespace, name.clone())) {
        Some((_, deployment)) => json_response(StatusCode::OK, &to_json(deployment)),
        None => not_found("deployments.apps", &name),
    }
}

/// `kubectl rollout restart` (a pod-template annotation patch): the fake's pods are the
/// simulator's, which need no restart, so the Deployment is returned unchanged; the request
/// log shows that it was asked.
async fn patch_deployment(state: State<Arc<Shared>>, path: Path<(String, String)>) -> Response {
    get_deployment(state, path).await
}

async fn get_job(
    State(shared): State<Arc<Shared>>,
    Path((namespace, name)): Path<(String, String)>,
) -> Response {
    let objects = shared.objects();
    match objects.jobs.get(&(namespace, name.clone())) {
        Some((_, job)) => json_response(StatusCode::OK, &to_json(job)),
        None => not_found("jobs.batch", &name),
    }
}

/// Whether `labels` satisfy a selector of `key=value`, `key==value`, `key!=value` and `key`
/// terms joined by commas.
fn matches_selector(labels: Option<&BTreeMap<String, String>>, selector: &str) -> bool {
    let empty = BTreeMap::new();
    let labels = labels.unwrap_or(&empty);
    selector
        .split(',')
        .map(str::trim)
        .filter(|term| !term.is_empty())
        .all(|term| {
            if let Some((key, value)) = term.split_once("!=") {
                labels.get(key.trim()).map(String::as_str) != Some(value.trim())
            } else if let Some((key, value)) = term.split_once('=') {
                let value = value.trim_start_matches('=');
                labels.get(key.trim()).map(String::as_str) == Some(value.trim())
            } else {
                labels.contains_key(term)
            }
        })
}

async fn list_pods(
    State(shared): State<Arc<Shared>>,
    Path(namespace): Path<String>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let selector = query.get("labelSelector").cloned().unwrap_or_default();
    let objects = shared.objects();
    let items = objects
        .pods
        .iter()
        .filter(|((pod_namespace, _), _)| *pod_namespace == namespace)
        .filter(|(_, fake)| matches_selector(fake.pod.metadata.labels.as_ref(), &selector))
        .map(|(_, fake)| to_json(&fake.pod))
        .collect();
    list_response("v1", "PodList", items)
}

/// The last `tail` lines of `text` (all of it when `tail` is `None`).
fn tail_lines(text: &str, tail: Option<usize>) -> String {
    let lines: Vec<&str> = text.lines().collect();
    let start = tail.map_or(0, |tail| lines.len().saturating_sub(tail));
    lines[start..]
        .iter()
        .map(|line| format!("{line}\n"))
        .collect()
}

async fn pod_log(
    State(shared): State<Arc<Shared>>,
    Path((namespace, name)): Path<(String, String)>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let objects = shared.objects();
    let Some(fake) = objects.pods.get(&(namespace, name.clone())) else {
        return not_found("pods", &name);
    };
    if let Some(container) = query.get("container")
        && !has_container(&fake.pod, container)
    {
        return status_response(
            StatusCode::BAD_REQUEST,
            "BadRequest",
            &format!("container {container} is not valid for pod {name}"),
        );
    }
    let text = match &fake.log {
        LogSource::Fixed(text) => text.clone(),
        LogSource::Organization(organization) => objects
            .activity
            .get(organization)
            .map(|lines| lines.join("\n") + "\n")
            .unwrap_or_default(),
    };
    let tail = query.get("tailLines").and_then(|tail| tail.parse().ok());
    text_response(StatusCode::OK, tail_lines(&text, tail))
}

fn has_container(pod: &Pod, container: &str) -> bool {
    pod.spec
        .as_ref()
        .is_some_and(|spec| spec.containers.iter().any(|c| c.name == container))
}

async fn list_events(State(shared): State<Arc<Shared>>, Path(namespace): Path<String>) -> Response {
    let objects = shared.objects();
    let items = objects
        .events
        .iter()
        .filter(|(event_namespace, _)| *event_namespace == namespace)
        .map(|(_, event)| to_json(event))
        .collect();
    list_response("v1", "EventList", items)
}

/// One WebSocket frame of the channel protocol: the channel byte, then the payload.
fn frame(channel: u8, payload: &[u8]) -> Message {
    let mut bytes = Vec::with_capacity(payload.len() + 1);
    bytes.push(channel);
    bytes.extend_from_slice(payload);
    Message::Binary(bytes.into())
}

/// The channel-3 status for an exit code, as the kubelet writes it.
fn exit_status(exit_code: i32) -> Value {
    if exit_code == 0 {
        json!({"metadata": {}, "status": "Success"})
    } else {
        json!({
            "metadata": {}, "status": "Failure", "reason": "NonZeroExitCode",
            "message": format!("command terminated with non-zero exit code: exit status {exit_code}"),
            "details": {"causes": [{"reason": "ExitCode", "message": exit_code.to_string()}]},
        })
    }
}

async fn exec(
    State(shared): State<Arc<Shared>>,
    Path((namespace, name)): Path<(String, String)>,
    Query(query): Query<Vec<(String, String)>>,
    upgrade: WebSocketUpgrade,
) -> Response {
    let argv: Vec<String> = query
        .iter()
        .filter(|(key, _)| key == "command")
        .map(|(_, value)| value.clone())
        .collect();
    let container = query
        .iter()
        .find(|(key, _)| key == "container")
        .map(|(_, value)| value.clone());
    let organization = {
        let objects = shared.objects();
        let Some(fake) = objects.pods.get(&(namespace, name.clone())) else {
            return not_found("pods", &name);
        };
        if let Some(container) = &container
            && !has_container(&fake.pod, container)
        {
            return status_response(
                StatusCode::BAD_REQUEST,
                "BadRequest",
                &format!("container {container} is not valid for pod {name}"),
            );
        }
        fake.organization.clone()
    };
    upgrade
        .protocols(["v5.channel.k8s.io", "v4.channel.k8s.io"])
        .on_upgrade(move |socket| run_exec(shared, socket, organization, argv))
}

async fn run_exec(
    shared: Arc<Shared>,
    mut socket: WebSocket,
    organization: Option<String>,
    argv: Vec<String>,
) {
    // The kubelet opens each stream with a frame holding only its channel byte.
    for channel in [1, 2, 3] {
        let _ = socket.send(Message::Binary(vec![channel].into())).await;
    }
    let (stdout, stderr, status) = match &organization {
        None => (
            String::new(),
            String::new(),
            json!({"metadata": {}, "status": "Failure", "reason": "InternalError",
                   "message": "the fake cluster runs nothing in this pod"}),
        ),
        Some(organization) => match shared.network.exec(organization, &argv).await {
            Ok(output) => {
                let program = argv.iter().take(2).cloned().collect::<Vec<_>>().join(" ");
                shared
                    .objects()
                    .activity
                    .entry(organization.clone())
                    .or_default()
                    .push(format!("exec `{program}`: exit {}", output.exit_code));
                (output.stdout, output.stderr, exit_status(output.exit_code))
            }
            Err(error) => (
                String::new(),
                String::new(),
                json!({"metadata": {}, "status": "Failure", "reason": "InternalError",
                       "message": error_chain(&error)}),
            ),
        },
    };
    // Stderr first, then stdout in frames above 1 KiB: a client reading stdout to its end
    // before touching stderr would stall on a long stderr.
    for chunk in stderr.as_bytes().chunks(STDOUT_FRAME_BYTES) {
        let _ = socket.send(frame(2, chunk)).await;
    }
    for chunk in stdout.as_bytes().chunks(STDOUT_FRAME_BYTES) {
        let _ = socket.send(frame(1, chunk)).await;
    }
    let _ = socket.send(frame(3, status.to_string().as_bytes())).await;
    let _ = socket.send(Message::Close(None)).await;
}

fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(key, value)| ((*key).to_owned(), (*value).to_owned()))
        .collect()
}

fn now() -> Time {
    Time(Timestamp::now())
}

fn running_pod(
    namespace: &str,
    name: &str,
    labels: BTreeMap<String, String>,
    container: &str,
    ready: bool,
) -> Pod {
    let is_ready = if ready { "True" } else { "False" };
    Pod {
        metadata: ObjectMeta {
            name: Some(name.to_owned()),
            namespace: Some(namespace.to_owned()),
            labels: Some(labels),
            creation_timestamp: Some(now()),
            ..ObjectMeta::default()
        },
        spec: Some(PodSpec {
            containers: vec![Container {
                name: container.to_owned(),
                ..Container::default()
            }],
            ..PodSpec::default()
        }),
        status: Some(PodStatus {
            phase: Some("Running".to_owned()),
            conditions: Some(vec![PodCondition {
                type_: "Ready".to_owned(),
                status: is_ready.to_owned(),
                ..PodCondition::default()
            }]),
            container_statuses: Some(vec![ContainerStatus {
                name: container.to_owned(),
                ready,
                started: Some(true),
                state: Some(ContainerState {
                    running: Some(ContainerStateRunning {
                        started_at: Some(now()),
                    }),
                    ..ContainerState::default()
                }),
                ..ContainerStatus::default()
            }]),
            ..PodStatus::default()
        }),
    }
}

fn finished_pod(
    namespace: &str,
    name: &str,
    labels: BTreeMap<String, String>,
    container: &str,
    exit_code: i32,
) -> Pod {
    let (phase, reason) = if exit_code == 0 {
        ("Succeeded", "Completed")
    } else {
        ("Failed", "Error")
    };
    Pod {
        metadata: ObjectMeta {
            name: Some(name.to_owned()),
            namespace: Some(namespace.to_owned()),
            labels: Some(labels),
            creation_timestamp: Some(now()),
            ..ObjectMeta::default()
        },
        spec: Some(PodSpec {
            containers: vec![Container {
                name: container.to_owned(),
                ..Container::default()
            }],
            ..PodSpec::default()
        }),
        status: Some(PodStatus {
            phase: Some(phase.to_owned()),
            container_statuses: Some(vec![ContainerStatus {
                name: container.to_owned(),
                state: Some(ContainerState {
                    terminated: Some(ContainerStateTerminated {
                        exit_code,
                        reason: Some(reason.to_owned()),
                        ..ContainerStateTerminated::default()
                    }),
                    ..ContainerState::default()
                }),
                ..ContainerStatus::default()
            }]),
            ..PodStatus::default()
        }),
    }
}

fn deployment(
    namespace: &str,
    name: &str,
    pod_labels: BTreeMap<String, String>,
    generation: i64,
    available: bool,
) -> Deployment {
    let available = i32::from(available);
    Deployment {
        metadata: ObjectMeta {
            name: Some(name.to_owned()),
            namespace: Some(namespace.to_owned()),
            generation: Some(generation),
            labels: Some(pod_labels.clone()),
            ..ObjectMeta::default()
        },
        spec: Some(DeploymentSpec {
            replicas: Some(1),
            selector: LabelSelector {
                match_labels: Some(pod_labels.clone()),
                ..LabelSelector::default()
            },
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some(pod_labels),
                    ..ObjectMeta::default()
                }),
                spec: None,
            },
            ..DeploymentSpec::default()
        }),
        status: Some(DeploymentStatus {
            observed_generation: Some(generation),
            replicas: Some(1),
            updated_replicas: Some(1),
            ready_replicas: Some(available),
            available_replicas: Some(available),
            unavailable_replicas: Some(1 - available),
            ..DeploymentStatus::default()
        }),
    }
}

fn job(namespace: &str, name: &str, failure: Option<&str>) -> Job {
    let conditions = match failure {
        None => vec![
            JobCondition {
                type_: "SuccessCriteriaMet".to_owned(),
                status: "True".to_owned(),
                ..JobCondition::default()
            },
            JobCondition {
                type_: "Complete".to_owned(),
                status: "True".to_owned(),
                ..JobCondition::default()
            },
        ],
        Some(message) => ["FailureTarget", "Failed"]
            .into_iter()
            .map(|kind| JobCondition {
                type_: kind.to_owned(),
                status: "True".to_owned(),
                reason: Some("BackoffLimitExceeded".to_owned()),
                message: Some(message.to_owned()),
                ..JobCondition::default()
            })
            .collect(),
    };
    Job {
        metadata: ObjectMeta {
            name: Some(name.to_owned()),
            namespace: Some(namespace.to_owned()),
            ..ObjectMeta::default()
        },
        spec: Some(JobSpec {
            template: PodTemplateSpec::default(),
            ..JobSpec::default()
        }),
        status: Some(JobStatus {
            succeeded: Some(i32::from(failure.is_none())),
            failed: Some(i32::from(failure.is_some())),
            conditions: Some(conditions),
            ..JobStatus::default()
        }),
    }
}

fn event(
    namespace: &str,
    counter: u32,
    kind: &str,
    object: &str,
    type_: &str,
    reason: &str,
    message: &str,
) -> (String, Event) {
    let time = now();
    let event = Event {
        metadata: ObjectMeta {
            name: Some(format!("{object}.{counter:016x}")),
            namespace: Some(namespace.to_owned()),
            creation_timestamp: Some(time.clone()),
            ..ObjectMeta::default()
        },
        involved_object: ObjectReference {
            kind: Some(kind.to_owned()),
            name: Some(object.to_owned()),
            namespace: Some(namespace.to_owned()),
            ..ObjectReference::default()
        },
        type_: Some(type_.to_owned()),
        reason: Some(reason.to_owned()),
        message: Some(message.to_owned()),
        count: Some(1),
        first_timestamp: Some(time.clone()),
        last_timestamp: Some(time),
        ..Event::default()
    };
    (namespace.to_owned(), event)
}

/// The chart a `chart` argument names: the last path segment, without a `.tgz` suffix.
fn chart_name(chart: &str) -> &str {
    let base = chart.rsplit('/').next().unwrap_or(chart);
    let base = base.strip_suffix(".tgz").unwrap_or(base);
    // A packaged chart file is NAME-VERSION.tgz.
    match base.rsplit_once('-') {
        Some((name, version)) if version.starts_with(|c: char| c.is_ascii_digit()) => name,
        _ => base,
    }
}

fn port_of(values: &Value) -> Option<u16> {
    let port = values.pointer("/server/service/nodePort")?;
    port.as_u64()
        .or_else(|| port.as_str().and_then(|text| text.parse().ok()))
        .and_then(|port| u16::try_from(port).ok())
}

#[derive(Default)]
struct InstallOutcome {
    /// The helm error, if the install failed.
    error: Option<String>,
    /// The migrations Job's log when it ran (it does not when the server never gets ready).
    migrations_log: Option<(i32, String)>,
    server_ready: bool,
}

async fn install_backend(
    shared: &Shared,
    organization: &str,
    version: ChartVersion,
    values: &Value,
) -> InstallOutcome {
    let Some(port) = port_of(values) else {
        return InstallOutcome {
            error: Some(
                "the fake cluster needs server.service.nodePort in the backend values".to_owned(),
            ),
            ..InstallOutcome::default()
        };
    };
    let is_bound = shared.objects().bound.contains(organization);
    if !is_bound {
        if let Err(error) = shared
            .network
            .bind_organization_at(organization, shared.node_ip, port)
            .await
        {
            return InstallOutcome {
                error: Some(error_chain(&error)),
                ..InstallOutcome::default()
            };
        }
        shared.objects().bound.insert(organization.to_owned());
    }
    match shared
        .network
        .install_backend(organization, version, values)
        .await
    {
        Ok(()) => InstallOutcome {
            error: None,
            migrations_log: Some((
                0,
                "Operations to perform:\n  Apply all migrations: admin, api, auth, organization\nNo migrations to apply.\nsync_users: done\nsync_incoming_organizations: done\nsync_outgoing_organizations: done\n".to_owned(),
            )),
            server_ready: true,
        },
        Err(SimError::MigrationJob { log, .. }) => InstallOutcome {
            error: Some(format!(
                "failed post-install: 1 error occurred:\n\t* job failed: BackoffLimitExceeded\n{log}"
            )),
            migrations_log: Some((1, log)),
            server_ready: true,
        },
        Err(error) => InstallOutcome {
            error: Some(format!(
                "resource Deployment not ready (context deadline exceeded): {}",
                error_chain(&error)
            )),
            migrations_log: None,
            server_ready: false,
        },
    }
}

async fn helm_upgrade(
    State(shared): State<Arc<Shared>>,
    Query(query): Query<HashMap<String, String>>,
    body: String,
) -> Response {
    let parameter = |key: &str| query.get(key).cloned().unwrap_or_default();
    let (namespace, release, chart, version) = (
        parameter("namespace"),
        parameter("release"),
        parameter("chart"),
        parameter("version"),
    );
    if namespace.is_empty() || release.is_empty() || chart.is_empty() {
        return text_response(
            StatusCode::BAD_REQUEST,
            "namespace, release and chart are required".to_owned(),
        );
    }
    let values: Value = if body.trim().is_empty() {
        json!({})
    } else {
        match serde_saphyr::from_str(&body) {
            Ok(Value::Null) => json!({}),
            Ok(values) => values,
            Err(error) => {
                return text_response(
                    StatusCode::BAD_REQUEST,
                    format!("the values are not YAML: {error}"),
                );
            }
        }
    };
    let name = chart_name(&chart).to_owned();
    shared.objects().namespaces.insert(namespace.clone());
    let (outcome, app_version) = if name.ends_with("substra-backend") {
        let parsed: ChartVersion = match version.parse() {
            Ok(parsed) => parsed,
            Err(error) => return text_response(StatusCode::BAD_REQUEST, error.to_string()),
        };
        let outcome = install_backend(&shared, &namespace, parsed, &values).await;
        (outcome, parsed.backend_app_version().to_owned())
    } else if name.ends_with("orchestrator") {
        let outcome = match shared.network.install_orchestrator(&values).await {
            Ok(()) => InstallOutcome {
                server_ready: true,
                ..InstallOutcome::default()
            },
            Err(error) => InstallOutcome {
                error: Some(error_chain(&error)),
                ..InstallOutcome::default()
            },
        };
        (outcome, String::new())
    } else {
        (
            InstallOutcome {
                server_ready: true,
                ..InstallOutcome::default()
            },
            String::new(),
        )
    };
    let revision = record_release(
        &shared,
        &namespace,
        &release,
        &name,
        &version,
        &app_version,
        &outcome,
    );
    match outcome.error {
        Some(error) => text_response(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("UPGRADE FAILED: release {release} failed: {error}"),
        ),
        None => json_response(
            StatusCode::OK,
            &json!({
                "name": release, "namespace": namespace, "version": revision,
                "info": {"status": "deployed"}, "chart": format!("{name}-{version}"),
            }),
        ),
    }
}

/// Records the release and the objects its chart implies; returns the revision.
fn record_release(
    shared: &Shared,
    namespace: &str,
    release: &str,
    name: &str,
    version: &str,
    app_version: &str,
    outcome: &InstallOutcome,
) -> u32 {
    let mut objects = shared.objects();
    let key = (namespace.to_owned(), release.to_owned());
    let revision = objects
        .releases
        .get(&key)
        .map_or(1, |previous| previous.revision + 1);
    objects.releases.insert(
        key,
        Release {
            chart: name.to_owned(),
            version: version.to_owned(),
            revision,
            status: if outcome.error.is_some() {
                "failed"
            } else {
                "deployed"
            },
            app_version: app_version.to_owned(),
            updated: Timestamp::now(),
        },
    );
    let organization = namespace.to_owned();
    if name.ends_with("substra-backend") {
        let server = format!("{release}-substra-backend-server");
        let pod_labels = labels(&[
            ("app.kubernetes.io/name", "substra-backend-server"),
            ("app.kubernetes.io/instance", release),
            ("app.kubernetes.io/part-of", "substra-backend"),
            ("app.kubernetes.io/managed-by", "Helm"),
        ]);
        let line = match &outcome.error {
            None => format!("helm revision {revision}: chart {name}-{version} installed"),
            Some(error) => {
                format!("helm revision {revision}: chart {name}-{version} failed: {error}")
            }
        };
        objects
            .activity
            .entry(organization.clone())
            .or_default()
            .push(line);
        add_server(
            &mut objects,
            namespace,
            release,
            &server,
            pod_labels,
            "server",
            Some(organization),
            i64::from(revision),
            outcome.server_ready,
        );
        if let Some((exit_code, log)) = &outcome.migrations_log {
            add_migrations(&mut objects, namespace, release, *exit_code, log);
        }
    } else if name.ends_with("orchestrator") {
        let fullname = if release.contains("orchestrator") {
            release.to_owned()
        } else {
            format!("{release}-orchestrator")
        };
        let server = format!("{fullname}-server");
        let pod_labels = labels(&[
            ("app.kubernetes.io/name", "orchestrator-server"),
            ("app.kubernetes.io/instance", release),
        ]);
        add_server(
            &mut objects,
            namespace,
            release,
            &server,
            pod_labels,
            "orchestrator",
            None,
            i64::from(revision),
            outcome.server_ready,
        );
    }
    revision
}

/// The Deployment `name`, its one pod (kept across upgrades: the chart does not restart the
/// server when accounts change), and a scaling event.
#[expect(
    clippy::too_many_arguments,
    reason = "two call sites, all plain values"
)]
fn add_server(
    objects: &mut Objects,
    namespace: &str,
    release: &str,
    name: &str,
    pod_labels: BTreeMap<String, String>,
    container: &str,
    organization: Option<String>,
    generation: i64,
    ready: bool,
) {
    objects.counter += 1;
    let counter = objects.counter;
    objects.deployments.insert(
        (namespace.to_owned(), name.to_owned()),
        (
            release.to_owned(),
            deployment(namespace, name, pod_labels.clone(), generation, ready),
        ),
    );
    let existing = objects
        .pods
        .iter_mut()
        .find(|((pod_namespace, pod_name), _)| {
            pod_namespace == namespace && pod_name.starts_with(&format!("{name}-"))
        });
    let pod_name = match existing {
        Some(((_, pod_name), fake)) => {
            fake.pod = running_pod(namespace, pod_name, pod_labels, container, ready);
            pod_name.clone()
        }
        None => {
            let pod_name = format!("{name}-{:09x}-{:05x}", name.len() * 7919, counter);
            let log = organization
                .clone()
                .map_or_else(|| LogSource::Fixed(String::new()), LogSource::Organization);
            objects.pods.insert(
                (namespace.to_owned(), pod_name.clone()),
                FakePod {
                    pod: running_pod(namespace, &pod_name, pod_labels, container, ready),
                    release: release.to_owned(),
                    organization,
                    log,
                },
            );
            objects.events.push(event(
                namespace,
                counter,
                "Deployment",
                name,
                "Normal",
                "ScalingReplicaSet",
                "Scaled up replica set to 1",
            ));
            pod_name
        }
    };
    let (type_, reason, message) = if ready {
        (
            "Normal",
            "Started",
            format!("Started container {container}"),
        )
    } else {
        (
            "Warning",
            "Unhealthy",
            "Readiness probe failed: HTTP probe failed with statuscode: 500".to_owned(),
        )
    };
    objects.counter += 1;
    let counter = objects.counter;
    objects.events.push(event(
        namespace, counter, "Pod", &pod_name, type_, reason, &message,
    ));
}

/// The migrations Job of a backend release and its pod (replacing the previous ones, as the
/// hook's `before-hook-creation` policy does), and an event.
fn add_migrations(
    objects: &mut Objects,
    namespace: &str,
    release: &str,
    exit_code: i32,
    log: &str,
) {
    let name = format!("{release}-substra-backend-migrations");
    objects.pods.retain(|(pod_namespace, _), fake| {
        !(pod_namespace == namespace
            && fake.release == release
            && fake
                .pod
                .metadata
                .labels
                .as_ref()
                .and_then(|labels| labels.get("job-name"))
                == Some(&name))
    });
    let failure = (exit_code != 0).then_some("Job has reached the specified backoff limit");
    objects.jobs.insert(
        (namespace.to_owned(), name.clone()),
        (release.to_owned(), job(namespace, &name, failure)),
    );
    objects.counter += 1;
    let counter = objects.counter;
    let pod_name = format!("{name}-{counter:05x}");
    let pod_labels = labels(&[
        ("job-name", &name),
        ("batch.kubernetes.io/job-name", &name),
        ("app.kubernetes.io/instance", release),
    ]);
    objects.pods.insert(
        (namespace.to_owned(), pod_name.clone()),
        FakePod {
            pod: finished_pod(namespace, &pod_name, pod_labels, "db-migrations", exit_code),
            release: release.to_owned(),
            organization: None,
            log: LogSource::Fixed(log.to_owned()),
        },
    );
    let (type_, reason, message) = match failure {
        None => ("Normal", "Completed", "Job completed".to_owned()),
        Some(message) => ("Warning", "BackoffLimitExceeded", message.to_owned()),
    };
    objects.events.push(event(
        namespace, counter, "Job", &name, type_, reason, &message,
    ));
}

async fn helm_uninstall(
    State(shared): State<Arc<Shared>>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let namespace = query.get("namespace").cloned().unwrap_or_default();
    let release = query.get("release").cloned().unwrap_or_default();
    let refused = {
        let mut objects = shared.objects();
        if objects
            .releases
            .remove(&(namespace.clone(), release.clone()))
            .is_none()
        {
            Some(text_response(
                StatusCode::NOT_FOUND,
                format!("uninstall: Release not loaded: {release}: release: not found"),
            ))
        } else {
            let owned = |(object_namespace, _): &(String, String), owner: &str| {
                *object_namespace == namespace && owner == release
            };
            objects
                .deployments
                .retain(|key, (owner, _)| !owned(key, owner));
            objects.jobs.retain(|key, (owner, _)| !owned(key, owner));
            objects.pods.retain(|key, fake| !owned(key, &fake.release));
            None
        }
    };
    if let Some(response) = refused {
        return response;
    }
    // A backend's pods are a simulator organization: uninstalling stops serving it.
    let organization = release.strip_prefix("backend-").unwrap_or_default();
    let is_bound = shared.objects().bound.contains(organization);
    if is_bound {
        let _ = shared.network.uninstall_backend(organization).await;
    }
    json_response(
        StatusCode::OK,
        &json!({"release": release, "namespace": namespace, "status": "uninstalled"}),
    )
}

async fn helm_list(
    State(shared): State<Arc<Shared>>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let namespace = query.get("namespace").filter(|n| !n.is_empty());
    let objects = shared.objects();
    let releases: Vec<Value> = objects
        .releases
        .iter()
        .filter(|((release_namespace, _), _)| namespace.is_none_or(|n| n == release_namespace))
        .map(|((release_namespace, name), release)| {
            json!({
                "name": name,
                "namespace": release_namespace,
                "revision": release.revision.to_string(),
                "updated": release.updated.strftime("%Y-%m-%d %H:%M:%S.%f +0000 UTC").to_string(),
                "status": release.status,
                "chart": format!("{}-{}", release.chart, release.version),
                "app_version": release.app_version,
            })
        })
        .collect();
    json_response(StatusCode::OK, &Value::Array(releases))
}

async fn down(State(shared): State<Arc<Shared>>) -> Response {
    shared.objects().down = true;
    shared.shutdown.send_replace(true);
    json_response(StatusCode::OK, &json!({"down": true}))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selectors_match_equality_terms() {
        let pod_labels = labels(&[("a", "b"), ("c", "d")]);
        assert!(matches_selector(Some(&pod_labels), "a=b,c=d"));
        assert!(matches_selector(Some(&pod_labels), "a==b"));
        assert!(matches_selector(Some(&pod_labels), ""));
        assert!(matches_selector(Some(&pod_labels), "a"));
        assert!(matches_selector(Some(&pod_labels), "c!=x"));
        assert!(!matches_selector(Some(&pod_labels), "a=b,c=x"));
        assert!(!matches_selector(None, "a=b"));
    }

    #[test]
    fn chart_names() {
        assert_eq!(chart_name("substra/substra-backend"), "substra-backend");
        assert_eq!(
            chart_name("/tmp/charts/substra-backend-26.15.3.tgz"),
            "substra-backend"
        );
        assert_eq!(
            chart_name("oci://ghcr.io/substra/orchestrator"),
            "orchestrator"
        );
    }

    #[test]
    fn tails_lines() {
        assert_eq!(tail_lines("a\nb\nc\n", Some(2)), "b\nc\n");
        assert_eq!(tail_lines("a\nb", None), "a\nb\n");
    }
}
