//! One simulated cluster inside its container: `orgmesh sim-node serve` runs the simulator
//! backends of that cluster's organizations behind a small control API, and `orgmesh
//! sim-node exec` is what `docker exec` runs to reach one of them, the way `kubectl exec` runs
//! `./manage.py` in a server pod.
//!
//! The control API speaks JSON over HTTP/1 on [`CONTROL_PORT`]:
//!
//! | request | body | answer |
//! |---|---|---|
//! | `POST /bind` | `{organization, ip}` | `{address}` |
//! | `POST /install` | `{organization, chart, values}` | a [`BackendRegistration`] |
//! | `POST /uninstall` | `{organization}` | `{}` |
//! | `PUT /registry` | a [`RegistrySnapshot`] | `{}` |
//! | `POST /exec` | `{organization, argv}` | `{stdout, stderr, exit_code}` |
//!
//! A failed operation answers 422 with `{error}`: the simulator error's text and its causes.
//! Nothing it logs or answers contains a values document.

use std::net::{Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tokio::net::TcpListener;

use crate::charts::ChartVersion;
use crate::error::error_chain;
use crate::provider::sim::{
    BackendRegistration, RegistrySnapshot, SimError, SimNetwork, SimOptions,
};

/// The control API's port in every node container.
pub const CONTROL_PORT: u16 = 7070;
/// The line a node prints once it accepts control requests.
pub const READY_LINE: &str = "orgmesh sim-node ready";
/// The largest control request a node reads (a values document of a hundred peers is ~60 KB).
const MAX_REQUEST_BYTES: usize = 16 * 1024 * 1024;

/// `POST /bind`.
#[derive(Debug, Serialize, Deserialize)]
pub struct BindRequest {
    pub organization: String,
    pub ip: Ipv4Addr,
}

/// `POST /install`.
#[derive(Debug, Serialize, Deserialize)]
pub struct InstallRequest {
    pub organization: String,
    pub chart: String,
    pub values: Value,
}

/// `POST /exec` (and `/uninstall`, without `argv`).
#[derive(Debug, Serialize, Deserialize)]
pub struct ExecRequest {
    pub organization: String,
    #[serde(default)]
    pub argv: Vec<String>,
}

/// `POST /exec`'s answer.
#[derive(Debug, Serialize, Deserialize)]
pub struct ExecAnswer {
    pub stdout: String,
    pub stderr: String,
    pub exit_code: i32,
}

fn answer(status: StatusCode, body: &Value) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body.to_string())));
    *response.status_mut() = status;
    response
}

/// Why a control request got no answer of its own.
enum Failure {
    BadRequest(String),
    NotFound(String),
    Sim(SimError),
}

impl From<SimError> for Failure {
    fn from(error: SimError) -> Self {
        Self::Sim(error)
    }
}

fn parse<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, Failure> {
    serde_json::from_slice(body)
        .map_err(|error| Failure::BadRequest(format!("bad control request: {error}")))
}

async fn route(
    network: &SimNetwork,
    method: &Method,
    path: &str,
    body: &[u8],
) -> Result<Value, Failure> {
    match (method, path) {
        (&Method::GET, "/health") => Ok(json!({})),
        (&Method::POST, "/bind") => {
            let bind: BindRequest = parse(body)?;
            let address = network
                .bind_organization(&bind.organization, bind.ip)
                .await?;
            Ok(json!({"address": address}))
        }
        (&Method::POST, "/install") => {
            let install: InstallRequest = parse(body)?;
            let chart = install.chart.parse::<ChartVersion>().map_err(|error| {
                Failure::BadRequest(format!("chart version {}: {error}", install.chart))
            })?;
            let registration = network
                .apply_backend(&install.organization, chart, &install.values)
                .await?;
            Ok(json!(registration))
        }
        (&Method::POST, "/uninstall") => {
            let uninstall: ExecRequest = parse(body)?;
            network.uninstall_backend(&uninstall.organization).await?;
            Ok(json!({}))
        }
        (&Method::PUT, "/registry") => {
            let snapshot: RegistrySnapshot = parse(body)?;
            network.mirror_registry(&snapshot, Instant::now());
            Ok(json!({}))
        }
        (&Method::POST, "/exec") => {
            let exec: ExecRequest = parse(body)?;
            let output = network.exec(&exec.organization, &exec.argv).await?;
            Ok(json!(ExecAnswer {
                stdout: output.stdout,
                stderr: output.stderr,
                exit_code: output.exit_code,
            }))
        }
        (_, path) => Err(Failure::NotFound(format!("no control endpoint {path}"))),
    }
}

async fn handle(network: SimNetwork, request: Request<Incoming>) -> Response<Full<Bytes>> {
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let body = http_body_util::Limited::new(request.into_body(), MAX_REQUEST_BYTES)
        .collect()
        .await
        .map(|body| body.to_bytes())
        .map_err(|error| Failure::BadRequest(format!("cannot read the request: {error}")));
    let result = match body {
        Ok(body) => route(&network, &method, &path, &body).await,
        Err(failure) => Err(failure),
    };
    let response = match result {
        Ok(value) => answer(StatusCode::OK, &value),
        Err(Failure::BadRequest(message)) => {
            answer(StatusCode::BAD_REQUEST, &json!({"error": message}))
        }
        Err(Failure::NotFound(message)) => {
            answer(StatusCode::NOT_FOUND, &json!({"error": message}))
        }
        Err(Failure::Sim(error)) => answer(
            StatusCode::UNPROCESSABLE_ENTITY,
            &json!({"error": error_chain(&error)}),
        ),
    };
    // The node's log (and a failed organization's diagnostics): what was asked, and how it
    // ended; never a body, which may hold values and secrets.
    println!("{method} {path} {}", response.status().as_u16());
    response
}

/// `orgmesh sim-node serve`: serves the control API on `0.0.0.0:`[`CONTROL_PORT`] until killed.
pub async fn serve(http_client_timeout: Duration) -> std::io::Result<()> {
    let network = SimNetwork::new(SimOptions {
        http_client_timeout,
        ..SimOptions::default()
    });
    let listener =
        TcpListener::bind(SocketAddr::from((Ipv4Addr::UNSPECIFIED, CONTROL_PORT))).await?;
    println!("{READY_LINE}");
    serve_control(listener, network).await
}

/// Serves the control API of `network` on `listener`.
pub async fn serve_control(listener: TcpListener, network: SimNetwork) -> std::io::Result<()> {
    loop {
        let (stream, _) = listener.accept().await?;
        let network = network.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |request| {
                let network = network.clone();
                async move { Ok::<_, std::convert::Infallible>(handle(network, request).await) }
            });
            // A control connection that breaks has nothing to clean up.
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

/// Why a control request failed.
#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    #[error("cannot reach the node at {address}: {reason}")]
    Unreachable { address: SocketAddr, reason: String },
    #[error("{0}")]
    Refused(String),
}

/// Sends one control request to the node at `address` and returns its JSON answer.
pub async fn request(
    address: SocketAddr,
    method: Method,
    path: &str,
    body: &Value,
    timeout: Duration,
) -> Result<Value, ControlError> {
    let unreachable = |reason: String| ControlError::Unreachable { address, reason };
    let exchange = async {
        let stream = tokio::net::TcpStream::connect(address)
            .await
            .map_err(|e| unreachable(e.to_string()))?;
        let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| unreachable(e.to_string()))?;
        tokio::spawn(connection);
        let http_request = Request::builder()
            .method(method)
            .uri(path)
            .header("host", address.to_string())
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from(body.to_string())))
            .map_err(|e| unreachable(e.to_string()))?;
        let response = sender
            .send_request(http_request)
            .await
            .map_err(|e| unreachable(e.to_string()))?;
        let status = response.status();
        let bytes = response
            .into_body()
            .collect()
            .await
            .map_err(|e| unreachable(e.to_string()))?
            .to_bytes();
        let value: Value = serde_json::from_slice(&bytes)
            .map_err(|e| unreachable(format!("the answer is not JSON: {e}")))?;
        if status.is_success() {
            Ok(value)
        } else {
            Err(ControlError::Refused(
                value
                    .get("error")
                    .and_then(Value::as_str)
                    .unwrap_or("the node refused the request")
                    .to_owned(),
            ))
        }
    };
    tokio::time::timeout(timeout, exchange)
        .await
        .unwrap_or_else(|_| Err(unreachable(format!("no answer within {timeout:?}"))))
}

/// `orgmesh sim-node exec --organization ORG -- ARGV...`, run inside the node's container:
/// prints what the command printed and returns its exit code.
pub async fn exec(organization: &str, argv: &[String], timeout: Duration) -> i32 {
    let body = json!(ExecRequest {
        organization: organization.to_owned(),
        argv: argv.to_vec(),
    });
    let address = SocketAddr::from((Ipv4Addr::LOCALHOST, CONTROL_PORT));
    match request(address, Method::POST, "/exec", &body, timeout).await {
        Ok(answer) => match serde_json::from_value::<ExecAnswer>(answer) {
            Ok(output) => {
                print!("{}", output.stdout);
                eprint!("{}", output.stderr);
                output.exit_code
            }
            Err(error) => {
                eprintln!("orgmesh sim-node exec: unexpected answer: {error}");
                126
            }
        },
        Err(error) => {
            eprintln!("orgmesh sim-node exec: {error}");
            126
        }
    }
}

/// Shared by the driver: a node's control address.
pub fn control_address(ip: Ipv4Addr) -> SocketAddr {
    SocketAddr::from((ip, CONTROL_PORT))
}

/// The registration a node answered to `/install`.
pub fn registration(answer: Value) -> Result<BackendRegistration, ControlError> {
    serde_json::from_value(answer)
        .map_err(|e| ControlError::Refused(format!("unexpected /install answer: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::verify::probe::table_argv;

    async fn node() -> (SocketAddr, tokio::task::JoinHandle<std::io::Result<()>>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let task = tokio::spawn(serve_control(
            listener,
            SimNetwork::new(SimOptions {
                sync_lag: Duration::ZERO,
                ..SimOptions::default()
            }),
        ));
        (address, task)
    }

    async fn call(address: SocketAddr, method: Method, path: &str, body: Value) -> Value {
        request(address, method, path, &body, Duration::from_secs(10))
            .await
            .unwrap_or_else(|e| panic!("{path}: {e}"))
    }

    /// The protocol the driver speaks, on loopback: bind, install (the registration comes
    /// back instead of being made), the mirrored registry, then exec of the outgoing table.
    #[tokio::test]
    async fn a_node_installs_registers_through_its_driver_and_execs() {
        let (address, task) = node().await;
        let ip = Ipv4Addr::new(127, 0, 77, 1);
        let bound = call(
            address,
            Method::POST,
            "/bind",
            json!({"organization": "ingen", "ip": ip}),
        )
        .await;
        let org_address = bound["address"].as_str().unwrap().to_owned();
        assert!(
            org_address.starts_with("http://127.0.77.1:"),
            "{org_address}"
        );

        let values = json!({
            "organizationName": "ingen",
            "orchestrator": {"mspID": "IngenMSP", "channels": [{"lab": {"restricted": false}}]},
            "server": {"defaultDomain": org_address},
            "config": {"ALLOWED_HOSTS": "[\"127.0.77.1\"]"},
            "addAccountOperator": {"outgoingOrganizations": [{"name": "IngenMSP", "secret": "s".repeat(128)}],
                                   "incomingOrganizations": [{"name": "IngenMSP", "secret": "s".repeat(128)}]},
        });
        let answer = call(
            address,
            Method::POST,
            "/install",
            json!({"organization": "ingen", "chart": "26.15.3", "values": values}),
        )
        .await;
        let registration = registration(answer).unwrap();
        assert_eq!(registration.msp_id, "IngenMSP");
        assert_eq!(registration.channels, ["lab"]);

        // Before the driver pushes a registry the table crashes as an unsynced backend does.
        let exec = json!({"organization": "ingen", "argv": table_argv()});
        let before: ExecAnswer =
            serde_json::from_value(call(address, Method::POST, "/exec", exec.clone()).await)
                .unwrap();
        assert_ne!(before.exit_code, 0, "{}", before.stdout);

        let orchestrator = SimNetwork::new(SimOptions::default());
        orchestrator
            .install_orchestrator(
                &json!({"channels": [{"name": "lab", "organizations": ["IngenMSP"]}]}),
            )
            .await
            .unwrap();
        orchestrator
            .register_backend(&registration, Instant::now() - Duration::from_secs(1))
            .unwrap();
        let snapshot = orchestrator.registry_snapshot(Instant::now()).unwrap();
        call(address, Method::PUT, "/registry", json!(snapshot)).await;
        let after: ExecAnswer =
            serde_json::from_value(call(address, Method::POST, "/exec", exec).await).unwrap();
        assert_eq!(after.exit_code, 0, "{}", after.stderr);
        assert!(after.stdout.contains("IngenMSP"), "{}", after.stdout);
        assert!(after.stdout.contains("200"), "{}", after.stdout);

        // Failures come back as the simulator's error, never with the values document.
        let refused = request(
            address,
            Method::POST,
            "/install",
            &json!({"organization": "nobody", "chart": "26.15.3", "values": {}}),
            Duration::from_secs(10),
        )
        .await
        .unwrap_err();
        assert!(refused.to_string().contains("nobody"), "{refused}");
        task.abort();
    }
}
