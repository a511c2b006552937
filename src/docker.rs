//! The Docker engine as orgmesh uses it: run-labelled networks, the sweep of what a run left
//! behind, and the API-version relay that lets testcontainers talk to older engines.
//!
//! Everything orgmesh creates in Docker carries [`RUN_LABEL`]`=<run id>`; teardown and
//! `orgmesh down` remove by that label and touch nothing else.
//!
//! testcontainers 0.27 (bollard 0.20) sends every request as API version 1.52, which only
//! Docker 29 and later accept: Docker 20.10 answers `client version 1.52 is too new. Maximum
//! supported API version is 1.41`. Before the runtime starts, [`prepare_testcontainers`] asks the
//! engine which version it speaks; when that is older, it points `DOCKER_HOST` at a private
//! socket whose [`Relay`] forwards every request with the engine's version in its path
//! (connection upgrades included, for `exec`). The engine ignores request fields it does not
//! know, and every response field bollard reads is optional.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::BodyExt;
use http_body_util::combinators::BoxBody;
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use testcontainers::bollard::{self, Docker};
use tokio::net::{UnixListener, UnixStream};

/// The label on every container and network of a run; its value is the run id.
pub const RUN_LABEL: &str = "dev.orgmesh.run";
/// The label that names the scenario cluster a container stands for.
pub const CLUSTER_LABEL: &str = "dev.orgmesh.cluster";

/// The API version testcontainers' bollard sends.
const TESTCONTAINERS_API: (u32, u32) = (1, 52);
/// How long a request to the engine may take.
const ENGINE_TIMEOUT: Duration = Duration::from_secs(120);
/// How long the synchronous version probe may take.
const PROBE_TIMEOUT: Duration = Duration::from_secs(10);

/// Why Docker could not be used.
#[derive(Debug, thiserror::Error)]
pub enum DockerError {
    #[error(
        "Docker is not available at {socket}: {reason}\nhint: start the Docker engine, or set DOCKER_HOST to its socket (unix:///…)"
    )]
    Unavailable { socket: String, reason: String },
    #[error("Docker: {context}: {source}")]
    Engine {
        context: String,
        #[source]
        source: bollard::errors::Error,
    },
    #[error("Docker relay: {0}")]
    Relay(#[source] std::io::Error),
}

impl DockerError {
    fn engine(context: impl Into<String>) -> impl FnOnce(bollard::errors::Error) -> Self {
        let context = context.into();
        move |source| Self::Engine { context, source }
    }
}

/// The engine's unix socket: `DOCKER_HOST` when it is `unix://…`, else the default socket.
/// `None` when `DOCKER_HOST` names a socket that is not a local file (tcp, ssh).
pub fn engine_socket() -> Option<PathBuf> {
    match std::env::var("DOCKER_HOST") {
        Ok(host) if !host.trim().is_empty() => host.strip_prefix("unix://").map(PathBuf::from),
        _ => Some(PathBuf::from("/var/run/docker.sock")),
    }
}

/// Reads `"ApiVersion":"1.41"` from the engine's `/version` answer.
pub fn parse_api_version(body: &str) -> Option<(u32, u32)> {
    let json_start = body.find('{')?;
    let version: serde_json::Value = serde_json::from_str(body[json_start..].trim()).ok()?;
    let text = version.get("ApiVersion")?.as_str()?;
    let (major, minor) = text.split_once('.')?;
    Some((major.parse().ok()?, minor.parse().ok()?))
}

/// Asks the engine at `socket` for its API version, without a runtime (HTTP/1.0, one request).
pub fn probe_api_version(socket: &Path) -> Result<(u32, u32), DockerError> {
    let unavailable = |reason: String| DockerError::Unavailable {
        socket: socket.display().to_string(),
        reason,
    };
    let mut stream =
        std::os::unix::net::UnixStream::connect(socket).map_err(|e| unavailable(e.to_string()))?;
    stream
        .set_read_timeout(Some(PROBE_TIMEOUT))
        .and_then(|()| stream.set_write_timeout(Some(PROBE_TIMEOUT)))
        .and_then(|()| stream.write_all(b"GET /version HTTP/1.0\r\nHost: docker\r\n\r\n"))
        .map_err(|e| unavailable(e.to_string()))?;
    let mut answer = String::new();
    stream
        .read_to_string(&mut answer)
        .map_err(|e| unavailable(e.to_string()))?;
    parse_api_version(&answer)
        .ok_or_else(|| unavailable("its /version answer has no ApiVersion".into()))
}

/// What [`prepare_testcontainers`] arranged.
#[derive(Debug)]
pub struct Prepared {
    /// The engine's socket.
    pub engine: PathBuf,
    /// The engine's API version.
    pub version: (u32, u32),
    /// The relay's listener, when the engine is older than testcontainers' bollard.
    pub relay: Option<(std::os::unix::net::UnixListener, PathBuf)>,
}

impl Prepared {
    /// Starts the relay, if one is needed; it serves until the returned value is dropped.
    /// Needs the runtime.
    pub fn start_relay(self) -> Result<Option<Relay>, DockerError> {
        match self.relay {
            Some((listener, path)) => {
                Relay::start(listener, path, self.engine, self.version).map(Some)
            }
            None => Ok(None),
        }
    }
}

/// Makes testcontainers usable with this machine's engine. MUST run before any other thread
/// exists (it may set `DOCKER_HOST` for this process): call it before building the runtime.
pub fn prepare_testcontainers() -> Result<Prepared, DockerError> {
    let Some(engine) = engine_socket() else {
        // A remote engine: testcontainers connects to it itself.
        return Ok(Prepared {
            engine: PathBuf::new(),
            version: TESTCONTAINERS_API,
            relay: None,
        });
    };
    let version = probe_api_version(&engine)?;
    if version >= TESTCONTAINERS_API {
        return Ok(Prepared {
            engine,
            version,
            relay: None,
        });
    }
    let directory = std::env::temp_dir().join(format!("orgmesh-docker-{}", std::process::id()));
    std::fs::create_dir_all(&directory).map_err(DockerError::Relay)?;
    std::fs::set_permissions(&directory, std::fs::Permissions::from_mode(0o700))
        .map_err(DockerError::Relay)?;
    let path = directory.join("docker.sock");
    let _ = std::fs::remove_file(&path);
    let listener = std::os::unix::net::UnixListener::bind(&path).map_err(DockerError::Relay)?;
    listener.set_nonblocking(true).map_err(DockerError::Relay)?;
    // SAFETY: documented precondition: no other thread runs yet, so nothing reads the
    // environment concurrently.
    unsafe { std::env::set_var("DOCKER_HOST", format!("unix://{}", path.display())) };
    Ok(Prepared {
        engine,
        version,
        relay: Some((listener, path)),
    })
}

/// Rewrites `/v1.52/containers/json` to `/v1.41/containers/json` when the requested version
/// is newer than the engine's; other paths are unchanged.
pub fn rewrite_path(path_and_query: &str, engine: (u32, u32)) -> String {
    let Some(rest) = path_and_query.strip_prefix("/v") else {
        return path_and_query.to_owned();
    };
    let Some((version, tail)) = rest.split_once('/') else {
        return path_and_query.to_owned();
    };
    let requested = version
        .split_once('.')
        .and_then(|(major, minor)| Some((major.parse::<u32>().ok()?, minor.parse::<u32>().ok()?)));
    match requested {
        Some(requested) if requested > engine => format!("/v{}.{}/{tail}", engine.0, engine.1),
        _ => path_and_query.to_owned(),
    }
}

type RelayBody = BoxBody<Bytes, hyper::Error>;

/// The API-version relay between testcontainers and the engine.
#[derive(Debug)]
pub struct Relay {
    path: PathBuf,
    task: tokio::task::JoinHandle<()>,
}

impl Relay {
    /// Serves the relay on `listener` until dropped.
    pub fn start(
        listener: std::os::unix::net::UnixListener,
        path: PathBuf,
        engine: PathBuf,
        version: (u32, u32),
    ) -> Result<Self, DockerError> {
        let listener = UnixListener::from_std(listener).map_err(DockerError::Relay)?;
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let engine = engine.clone();
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |request| {
                        forward(request, engine.clone(), version)
                    });
                    // A connection the client dropped has nothing left to relay.
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .with_upgrades()
                        .await;
                });
            }
        });
        Ok(Self { path, task })
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.task.abort();
        let _ = std::fs::remove_file(&self.path);
        if let Some(directory) = self.path.parent() {
            let _ = std::fs::remove_dir(directory);
        }
    }
}

fn bad_gateway(reason: String) -> Response<RelayBody> {
    let mut response = Response::new(
        http_body_util::Full::new(Bytes::from(format!("{{\"message\":{reason:?}}}")))
            .map_err(|never| match never {})
            .boxed(),
    );
    *response.status_mut() = StatusCode::BAD_GATEWAY;
    response
}

async fn forward(
    mut request: Request<Incoming>,
    engine: PathBuf,
    version: (u32, u32),
) -> Result<Response<RelayBody>, hyper::Error> {
    let path = request
        .uri()
        .path_and_query()
        .map_or("/", |p| p.as_str())
        .to_owned();
    let rewritten = rewrite_path(&path, version);
    if let Ok(uri) = rewritten.parse() {
        *request.uri_mut() = uri;
    }
    let downstream = hyper::upgrade::on(&mut request);
    let stream = match UnixStream::connect(&engine).await {
        Ok(stream) => stream,
        Err(error) => return Ok(bad_gateway(format!("{}: {error}", engine.display()))),
    };
    let (mut sender, connection) =
        match hyper::client::conn::http1::handshake(TokioIo::new(stream)).await {
            Ok(pair) => pair,
            Err(error) => return Ok(bad_gateway(error.to_string())),
        };
    tokio::spawn(connection.with_upgrades());
    let mut response = match sender.send_request(request).await {
        Ok(response) => response,
        Err(error) => return Ok(bad_gateway(error.to_string())),
    };
    if response.status() == StatusCode::SWITCHING_PROTOCOLS {
        let upstream = hyper::upgrade::on(&mut response);
        tokio::spawn(async move {
            if let (Ok(upstream), Ok(downstream)) = (upstream.await, downstream.await) {
                let _ = tokio::io::copy_bidirectional(
                    &mut TokioIo::new(upstream),
                    &mut TokioIo::new(downstream),
                )
                .await;
            }
        });
    }
    Ok(response.map(BodyExt::boxed))
}

/// A client of the engine itself (not through the relay), at the engine's own version.
pub async fn connect() -> Result<Docker, DockerError> {
    let socket = match engine_socket() {
        Some(socket) => socket.display().to_string(),
        None => std::env::var("DOCKER_HOST").unwrap_or_default(),
    };
    let unavailable = |reason: String| DockerError::Unavailable {
        socket: socket.clone(),
        reason,
    };
    let docker = match std::env::var("DOCKER_HOST") {
        Ok(host) if !host.starts_with("unix://") && !host.trim().is_empty() => {
            Docker::connect_with_defaults().map_err(|e| unavailable(e.to_string()))?
        }
        // From bollard's own version down to the engine's (negotiated below).
        _ => Docker::connect_with_unix(
            &socket,
            ENGINE_TIMEOUT.as_secs(),
            bollard::API_DEFAULT_VERSION,
        )
        .map_err(|e| unavailable(e.to_string()))?,
    };
    let docker = docker
        .negotiate_version()
        .await
        .map_err(|e| unavailable(e.to_string()))?;
    docker
        .ping()
        .await
        .map_err(|e| unavailable(e.to_string()))?;
    Ok(docker)
}

/// The labels of everything a run creates.
pub fn run_labels(run_id: &str) -> HashMap<String, String> {
    HashMap::from([(RUN_LABEL.to_owned(), run_id.to_owned())])
}

/// Creates the run's network, labelled with the run id. `internal`: no route out of it.
pub async fn create_network(
    docker: &Docker,
    name: &str,
    run_id: &str,
    internal: bool,
) -> Result<(), DockerError> {
    docker
        .create_network(bollard::models::NetworkCreateRequest {
            name: name.to_owned(),
            driver: Some("bridge".into()),
            internal: Some(internal),
            labels: Some(run_labels(run_id)),
            ..Default::default()
        })
        .await
        .map(|_| ())
        .map_err(DockerError::engine(format!("creating network {name}")))
}

/// The process id of a running container's init (for `nsenter`).
pub async fn container_pid(docker: &Docker, container: &str) -> Result<u32, DockerError> {
    let inspected = docker
        .inspect_container(
            container,
            None::<bollard::query_parameters::InspectContainerOptions>,
        )
        .await
        .map_err(DockerError::engine(format!(
            "inspecting container {container}"
        )))?;
    inspected
        .state
        .and_then(|state| state.pid)
        .filter(|pid| *pid > 0)
        .and_then(|pid| u32::try_from(pid).ok())
        .ok_or_else(|| DockerError::Engine {
            context: format!("container {container} is not running"),
            source: bollard::errors::Error::DockerResponseServerError {
                status_code: 409,
                message: "no process id".into(),
            },
        })
}

/// Whether the image is present in the engine.
pub async fn image_exists(docker: &Docker, reference: &str) -> Result<bool, DockerError> {
    match docker.inspect_image(reference).await {
        Ok(_) => Ok(true),
        Err(bollard::errors::Error::DockerResponseServerError {
            status_code: 404, ..
        }) => Ok(false),
        Err(error) => Err(DockerError::engine(format!("inspecting image {reference}"))(error)),
    }
}

/// What a sweep removed.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Swept {
    pub containers: Vec<String>,
    pub networks: Vec<String>,
}

/// Removes every container, then every network, labelled [`RUN_LABEL`] (`=run_id` when given).
/// Nothing without the label is listed, so nothing else can be removed.
pub async fn sweep(docker: &Docker, run_id: Option<&str>) -> Result<Swept, DockerError> {
    let filter = match run_id {
        Some(run_id) => format!("{RUN_LABEL}={run_id}"),
        None => RUN_LABEL.to_owned(),
    };
    let filters = HashMap::from([("label".to_owned(), vec![filter])]);
    let mut swept = Swept::default();
    let containers = docker
        .list_containers(Some(bollard::query_parameters::ListContainersOptions {
            all: true,
            filters: Some(filters.clone()),
            ..Default::default()
        }))
        .await
        .map_err(DockerError::engine("listing containers"))?;
    for container in containers {
        let Some(id) = container.id else { continue };
        let name = container
            .names
            .and_then(|names| names.into_iter().next())
            .map_or_else(|| id.clone(), |n| n.trim_start_matches('/').to_owned());
        docker
            .remove_container(
                &id,
                Some(bollard::query_parameters::RemoveContainerOptions {
                    force: true,
                    v: true,
                    ..Default::default()
                }),
            )
            .await
            .map_err(DockerError::engine(format!("removing container {name}")))?;
        swept.containers.push(name);
    }
    let networks = docker
        .list_networks(Some(bollard::query_parameters::ListNetworksOptions {
            filters: Some(filters),
        }))
        .await
        .map_err(DockerError::engine("listing networks"))?;
    for network in networks {
        let Some(name) = network.name else { continue };
        docker
            .remove_network(&name)
            .await
            .map_err(DockerError::engine(format!("removing network {name}")))?;
        swept.networks.push(name);
    }
    Ok(swept)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    #[rstest]
    #[case("/v1.52/containers/json?all=true", (1, 41), "/v1.41/containers/json?all=true")]
    #[case("/v1.41/networks", (1, 41), "/v1.41/networks")]
    #[case("/v1.40/networks", (1, 41), "/v1.40/networks")]
    #[case("/_ping", (1, 41), "/_ping")]
    #[case("/version", (1, 41), "/version")]
    #[case("/v2.0/x", (1, 52), "/v1.52/x")]
    fn newer_versions_are_pinned_to_the_engine(
        #[case] path: &str,
        #[case] engine: (u32, u32),
        #[case] expected: &str,
    ) {
        assert_eq!(rewrite_path(path, engine), expected);
    }

    #[test]
    fn the_version_answer_gives_the_api_version() {
        let answer = "HTTP/1.0 200 OK\r\nApi-Version: 1.41\r\nContent-Type: application/json\r\n\r\n{\"Version\":\"20.10.24+dfsg1\",\"ApiVersion\":\"1.41\",\"MinAPIVersion\":\"1.12\"}\n";
        assert_eq!(parse_api_version(answer), Some((1, 41)));
        assert_eq!(parse_api_version("HTTP/1.0 500 x\r\n\r\n"), None);
    }
}
