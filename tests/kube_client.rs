//! `orgmesh::provider::kube` against the in-process fake API server (`support::fake_kube`):
//! connecting from a kubeconfig file, the node address, waiting for the backend's Deployment
//! and migrations Job, finding the server pod, exec with exit codes and outputs above kube-rs's
//! 1 KiB pipes, the diagnostics, and a deleted cluster failing fast.
//!
//! Every test uses its own node IPs (127.0.2xx.1) and NodePorts, so they run in parallel.

mod support;

use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use orgmesh::provider::kube::{KubeCluster, KubeError};
use orgmesh::provider::sim::{SimNetwork, SimOptions};
use orgmesh::verify::probe::{ProbeStatus, parse_probe_output, probe_argv, table_argv};
use orgmesh::verify::table::parse_outgoing_table;
use serde_json::{Value, json};
use support::fake_kube::FakeCluster;
use tempfile::TempDir;

const CHANNEL: &str = "our-channel";
const BACKEND_CHART: &str = "substra/substra-backend";
const LATEST: &str = "26.15.3";
const WAIT: Duration = Duration::from_secs(20);
const EXEC: Duration = Duration::from_secs(20);

fn network() -> SimNetwork {
    SimNetwork::new(SimOptions {
        sync_lag: Duration::ZERO,
        ..SimOptions::default()
    })
}

fn node(third: u8) -> Ipv4Addr {
    Ipv4Addr::new(127, 0, third, 1)
}

/// Writes the fake's kubeconfig into `directory` and connects with `context`.
async fn connect(cluster: &FakeCluster, directory: &TempDir, context: &str) -> KubeCluster {
    let path = kubeconfig(cluster, directory, context);
    KubeCluster::connect(&path, Some(context))
        .await
        .unwrap_or_else(|error| panic!("connect to {}: {error:?}", cluster.url()))
}

fn kubeconfig(cluster: &FakeCluster, directory: &TempDir, context: &str) -> PathBuf {
    let path = directory
        .path()
        .join(format!("{}.kubeconfig", cluster.name()));
    std::fs::write(&path, cluster.kubeconfig_json(context)).unwrap();
    path
}

fn accounts(entries: &[(String, String)]) -> Value {
    entries
        .iter()
        .map(|(name, secret)| json!({"name": name, "secret": secret}))
        .collect()
}

/// One organization of a test: its name (= namespace), MSP id, node and NodePort.
#[derive(Clone)]
struct Organization {
    name: &'static str,
    msp_id: &'static str,
    node: Ipv4Addr,
    port: u16,
}

impl Organization {
    fn release(&self) -> String {
        format!("backend-{}", self.name)
    }

    fn selector(&self) -> String {
        format!(
            "app.kubernetes.io/name=substra-backend-server,app.kubernetes.io/instance={}",
            self.release()
        )
    }

    fn deployment(&self) -> String {
        format!("{}-substra-backend-server", self.release())
    }

    fn job(&self) -> String {
        format!("{}-substra-backend-migrations", self.release())
    }
}

/// The backend values of `organization`, linked (both ways, and to itself) with every
/// organization of `mesh`, plus `extra_outgoing` peers that never register.
fn backend_values(
    organization: &Organization,
    mesh: &[Organization],
    extra_outgoing: &[String],
) -> Value {
    let incoming: Vec<(String, String)> = mesh
        .iter()
        .map(|peer| {
            (
                peer.msp_id.to_owned(),
                format!("s-{}-{}", peer.name, organization.name),
            )
        })
        .collect();
    let mut outgoing: Vec<(String, String)> = mesh
        .iter()
        .map(|peer| {
            (
                peer.msp_id.to_owned(),
                format!("s-{}-{}", organization.name, peer.name),
            )
        })
        .collect();
    outgoing.extend(
        extra_outgoing
            .iter()
            .map(|peer| (peer.clone(), "an-unused-secret".to_owned())),
    );
    json!({
        "organizationName": organization.name,
        "config": {"ALLOWED_HOSTS": format!("[\"{}\"]", organization.node)},
        "server": {
            "defaultDomain": format!("http://{}:{}", organization.node, organization.port),
            "service": {"type": "NodePort", "nodePort": organization.port},
        },
        "orchestrator": {
            "mspID": organization.msp_id,
            "channels": [{CHANNEL: {"restricted": false, "model_export_enabled": true}}],
        },
        "addAccountOperator": {
            "incomingOrganizations": accounts(&incoming),
            "outgoingOrganizations": accounts(&outgoing),
            "users": [],
        },
    })
}

fn yaml(values: &Value) -> String {
    orgmesh::values::to_yaml(values).unwrap()
}

async fn helm_upgrade(
    cluster: &FakeCluster,
    namespace: &str,
    release: &str,
    chart: &str,
    version: &str,
    values: &Value,
) -> (u16, String) {
    cluster
        .request(
            "POST",
            &format!(
                "/orgmesh-fake/helm/upgrade?namespace={namespace}&release={release}&chart={chart}&version={version}"
            ),
            &yaml(values),
        )
        .await
}

async fn install_orchestrator(cluster: &FakeCluster, mesh: &[Organization]) {
    let members: Vec<&str> = mesh
        .iter()
        .map(|organization| organization.msp_id)
        .collect();
    let values = json!({"channels": [{"name": CHANNEL, "organizations": members}]});
    let (status, body) = helm_upgrade(
        cluster,
        "orchestrator",
        "orchestrator",
        "substra/orchestrator",
        "8.8.0",
        &values,
    )
    .await;
    assert_eq!(status, 200, "{body}");
}

async fn install_backend(
    cluster: &FakeCluster,
    organization: &Organization,
    version: &str,
    values: &Value,
) -> (u16, String) {
    helm_upgrade(
        cluster,
        organization.name,
        &organization.release(),
        BACKEND_CHART,
        version,
        values,
    )
    .await
}

#[tokio::test]
async fn connects_from_a_kubeconfig_file_and_reads_the_node_address() {
    let cluster = FakeCluster::start("solo", node(201), network()).await;
    let directory = TempDir::new().unwrap();
    let kube = connect(&cluster, &directory, "kind-solo").await;
    assert_eq!(kube.context(), "kind-solo");
    assert_eq!(kube.node_internal_ip().await.unwrap(), "127.0.201.1");
    assert!(kube.namespace_exists("default").await.unwrap());
    assert!(!kube.namespace_exists("absent").await.unwrap());
    cluster.add_pod("foreign", "someone-elses-pod", &[("app", "other")]);
    assert!(kube.namespace_exists("foreign").await.unwrap());
    assert_eq!(
        kube.pod_names("foreign").await.unwrap(),
        vec!["someone-elses-pod".to_owned()]
    );

    // Without a context, the file's current context is used.
    let path = kubeconfig(&cluster, &directory, "kind-solo");
    let by_default = KubeCluster::connect(&path, None).await.unwrap();
    assert_eq!(by_default.context(), "kind-solo");

    let error = KubeCluster::connect(&path, Some("kind-other"))
        .await
        .unwrap_err();
    assert!(
        matches!(error, KubeError::LoadKubeconfig { .. }),
        "{error:?}"
    );
    let error = KubeCluster::connect(&directory.path().join("missing"), None)
        .await
        .unwrap_err();
    assert!(
        matches!(error, KubeError::ReadKubeconfig { .. }),
        "{error:?}"
    );

    let requests = cluster.requests();
    assert!(
        requests.iter().any(|r| r.starts_with("GET /version")),
        "{requests:?}"
    );
    assert!(
        requests.iter().any(|r| r.starts_with("GET /api/v1/nodes")),
        "{requests:?}"
    );
    assert!(
        requests
            .iter()
            .any(|r| r.starts_with("GET /api/v1/namespaces/absent")),
        "{requests:?}"
    );
    cluster.stop().await;
}

#[tokio::test]
async fn two_organizations_on_two_clusters_link_and_are_verified_by_exec() {
    let network = network();
    let alpha = Organization {
        name: "alpha",
        msp_id: "AlphaMSP",
        node: node(202),
        port: 30_821,
    };
    let beta = Organization {
        name: "beta",
        msp_id: "BetaMSP",
        node: node(203),
        port: 30_822,
    };
    let mesh = [alpha.clone(), beta.clone()];
    let alpha_cluster = FakeCluster::start("alpha", alpha.node, network.clone()).await;
    let beta_cluster = FakeCluster::start("beta", beta.node, network.clone()).await;
    install_orchestrator(&alpha_cluster, &mesh).await;
    for (cluster, organization) in [(&alpha_cluster, &alpha), (&beta_cluster, &beta)] {
        let (status, body) = install_backend(
            cluster,
            organization,
            LATEST,
            &backend_values(organization, &mesh, &[]),
        )
        .await;
        assert_eq!(status, 200, "{body}");
    }

    let directory = TempDir::new().unwrap();
    let alpha_kube = connect(&alpha_cluster, &directory, "kind-alpha").await;
    let beta_kube = connect(&beta_cluster, &directory, "kind-beta").await;
    alpha_kube
        .wait_deployment("orchestrator", "orchestrator-server", WAIT)
        .await
        .unwrap();
    for (kube, organization) in [(&alpha_kube, &alpha), (&beta_kube, &beta)] {
        kube.wait_deployment(organization.name, &organization.deployment(), WAIT)
            .await
            .unwrap();
        kube.wait_job(organization.name, &organization.job(), WAIT)
            .await
            .unwrap();
        let pod = kube
            .find_pod(organization.name, &organization.selector())
            .await
            .unwrap();
        assert!(
            pod.starts_with(&format!("{}-", organization.deployment())),
            "{pod}"
        );

        let table = kube
            .exec(organization.name, &pod, "server", &table_argv(), EXEC)
            .await
            .unwrap();
        assert_eq!(table.exit_code, 0, "{table:?}");
        let rows = parse_outgoing_table(&table.stdout).unwrap();
        assert_eq!(rows.len(), 2, "{}", table.stdout);
        for row in &rows {
            assert_eq!(row.status_code(), Some(200), "{row:?}");
        }
        let peer = if organization.name == "alpha" {
            &beta
        } else {
            &alpha
        };
        assert!(
            rows.iter().any(|row| row.org_id == peer.msp_id
                && row.address == format!("http://{}:{}", peer.node, peer.port)),
            "{rows:?}"
        );

        let probe = kube
            .exec(organization.name, &pod, "server", &probe_argv(), EXEC)
            .await
            .unwrap();
        assert_eq!(probe.exit_code, 0, "{probe:?}");
        let lines = parse_probe_output(&probe.stdout);
        assert_eq!(lines.len(), 2, "{}", probe.stdout);
        for line in &lines {
            assert_eq!(line.status, ProbeStatus::Code(200), "{line:?}");
            assert_eq!(line.channel.as_deref(), Some(CHANNEL));
        }
    }

    // Diagnostics are text, one line per thing.
    let pod = alpha_kube
        .find_pod("alpha", &alpha.selector())
        .await
        .unwrap();
    let log = alpha_kube
        .logs("alpha", &pod, Some("server"), 50)
        .await
        .unwrap();
    assert!(
        log.contains("helm revision 1: chart substra-backend-26.15.3 installed"),
        "{log}"
    );
    assert!(
        log.contains("exec `./manage.py get_outgoing_organization`: exit 0"),
        "{log}"
    );
    let last = alpha_kube
        .logs("alpha", &pod, Some("server"), 1)
        .await
        .unwrap();
    assert_eq!(last.lines().count(), 1, "{last}");
    let pods = alpha_kube.describe_pods("alpha").await.unwrap();
    assert!(
        pods.contains(&format!("{pod} Running ready 1/1; server running")),
        "{pods}"
    );
    assert!(
        pods.contains("backend-alpha-substra-backend-migrations-"),
        "{pods}"
    );
    assert!(pods.contains("Succeeded"), "{pods}");
    let events = alpha_kube.events("alpha").await.unwrap();
    assert!(
        events.contains("Normal ScalingReplicaSet deployment/backend-alpha-substra-backend-server"),
        "{events}"
    );
    assert!(
        events.contains("Normal Completed job/backend-alpha-substra-backend-migrations"),
        "{events}"
    );

    // An upgrade is a new revision; the server pod stays (accounts sync without a restart).
    let (status, body) = install_backend(
        &alpha_cluster,
        &alpha,
        LATEST,
        &backend_values(&alpha, &mesh, &[]),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        alpha_kube
            .find_pod("alpha", &alpha.selector())
            .await
            .unwrap(),
        pod
    );
    let (status, list) = alpha_cluster
        .request("GET", "/orgmesh-fake/helm/list?namespace=alpha", "")
        .await;
    assert_eq!(status, 200, "{list}");
    let list: Value = serde_json::from_str(&list).unwrap();
    assert_eq!(list[0]["name"], "backend-alpha");
    assert_eq!(list[0]["namespace"], "alpha");
    assert_eq!(list[0]["revision"], "2");
    assert_eq!(list[0]["status"], "deployed");
    assert_eq!(list[0]["chart"], "substra-backend-26.15.3");
    assert_eq!(list[0]["app_version"], "1.0.1");

    let requests = alpha_cluster.requests();
    assert!(
        requests
            .iter()
            .any(|r| r.starts_with("GET /api/v1/namespaces/alpha/pods/")
                && r.contains("/exec?")
                && r.contains("container=server")),
        "{requests:?}"
    );
    assert!(
        requests
            .iter()
            .any(|r| r.contains("labelSelector=app.kubernetes.io%2Fname%3Dsubstra-backend-server")),
        "{requests:?}"
    );

    // Uninstalling removes the release and its objects.
    let (status, body) = alpha_cluster
        .request(
            "POST",
            "/orgmesh-fake/helm/uninstall?namespace=alpha&release=backend-alpha",
            "",
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let error = alpha_kube
        .find_pod("alpha", &alpha.selector())
        .await
        .unwrap_err();
    assert!(matches!(error, KubeError::NoRunningPod { .. }), "{error:?}");
    let (_, list) = alpha_cluster
        .request("GET", "/orgmesh-fake/helm/list?namespace=alpha", "")
        .await;
    assert_eq!(list, "[]");

    alpha_cluster.stop().await;
    beta_cluster.stop().await;
    network.shutdown().await;
}

#[tokio::test]
async fn a_failed_migrations_job_fails_the_wait_at_once_with_its_log() {
    let network = network();
    let gamma = Organization {
        name: "gamma",
        msp_id: "GammaMSP",
        node: node(204),
        port: 30_831,
    };
    let cluster = FakeCluster::start("gamma", gamma.node, network.clone()).await;
    install_orchestrator(&cluster, std::slice::from_ref(&gamma)).await;
    // Charts 26.12.0 to 26.14.1 call `sync_users`, which their default image lacks.
    let (status, body) = install_backend(
        &cluster,
        &gamma,
        "26.13.0",
        &backend_values(&gamma, std::slice::from_ref(&gamma), &[]),
    )
    .await;
    assert_eq!(status, 500, "{body}");
    assert!(body.contains("sync_users"), "{body}");

    let directory = TempDir::new().unwrap();
    let kube = connect(&cluster, &directory, "kind-gamma").await;
    // Helm waited for the server before running the hook: the server is rolled out.
    kube.wait_deployment("gamma", &gamma.deployment(), WAIT)
        .await
        .unwrap();
    let started = Instant::now();
    let error = kube
        .wait_job("gamma", &gamma.job(), Duration::from_secs(120))
        .await
        .unwrap_err();
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    assert!(matches!(error, KubeError::JobFailed { .. }), "{error:?}");
    let message = error.to_string();
    assert!(
        message.contains("Job has reached the specified backoff limit"),
        "{message}"
    );
    assert!(message.contains("sync_users"), "{message}");
    let events = kube.events("gamma").await.unwrap();
    assert!(
        events.contains("Warning BackoffLimitExceeded job/"),
        "{events}"
    );
    let (_, list) = cluster.request("GET", "/orgmesh-fake/helm/list", "").await;
    let list: Value = serde_json::from_str(&list).unwrap();
    let backend = list
        .as_array()
        .unwrap()
        .iter()
        .find(|release| release["name"] == "backend-gamma")
        .unwrap();
    assert_eq!(backend["status"], "failed");
    cluster.stop().await;
    network.shutdown().await;
}

#[tokio::test]
async fn waits_time_out_with_what_they_saw() {
    // No orchestrator: the backend never gets ready and its hook Job never runs.
    let network = network();
    let delta = Organization {
        name: "delta",
        msp_id: "DeltaMSP",
        node: node(205),
        port: 30_841,
    };
    let cluster = FakeCluster::start("delta", delta.node, network.clone()).await;
    let (status, body) = install_backend(
        &cluster,
        &delta,
        LATEST,
        &backend_values(&delta, std::slice::from_ref(&delta), &[]),
    )
    .await;
    assert_eq!(status, 500, "{body}");
    let directory = TempDir::new().unwrap();
    let kube = connect(&cluster, &directory, "kind-delta").await;

    let started = Instant::now();
    let error = kube
        .wait_deployment("delta", &delta.deployment(), Duration::from_millis(1200))
        .await
        .unwrap_err();
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    let KubeError::DeploymentTimeout { progress, .. } = &error else {
        panic!("{error:?}");
    };
    assert_eq!(progress, "1 of 1 updated, 1 total, 0 available", "{error}");

    let error = kube
        .wait_job("delta", &delta.job(), Duration::from_millis(700))
        .await
        .unwrap_err();
    let KubeError::JobTimeout { progress, .. } = &error else {
        panic!("{error:?}");
    };
    assert_eq!(progress, "it does not exist");

    // The pod runs but is not ready; it is still the one to exec in.
    let pod = kube.find_pod("delta", &delta.selector()).await.unwrap();
    let pods = kube.describe_pods("delta").await.unwrap();
    assert!(pods.contains(&format!("{pod} Running ready 0/1")), "{pods}");
    let events = kube.events("delta").await.unwrap();
    assert!(events.contains("Warning Unhealthy pod/"), "{events}");

    let error = kube
        .find_pod("delta", "app.kubernetes.io/instance=nobody")
        .await
        .unwrap_err();
    assert!(
        matches!(error, KubeError::NoRunningPod { ref seen, .. } if seen == "none"),
        "{error:?}"
    );
    cluster.stop().await;
    network.shutdown().await;
}

#[tokio::test]
async fn exec_maps_exit_codes_and_reads_outputs_larger_than_the_pipes() {
    let network = network();
    let epsilon = Organization {
        name: "epsilon",
        msp_id: "EpsilonMSP",
        node: node(206),
        port: 30_851,
    };
    let cluster = FakeCluster::start("epsilon", epsilon.node, network.clone()).await;
    install_orchestrator(&cluster, std::slice::from_ref(&epsilon)).await;
    // Outgoing peers that never register: the probe prints an `unsynced` line for each.
    let unregistered: Vec<String> = (0..80)
        .map(|index| format!("UnregisteredPeerNumber{index:04}MSP"))
        .collect();
    let values = backend_values(&epsilon, std::slice::from_ref(&epsilon), &unregistered);
    let (status, body) = install_backend(&cluster, &epsilon, LATEST, &values).await;
    assert_eq!(status, 200, "{body}");
    let directory = TempDir::new().unwrap();
    let kube = connect(&cluster, &directory, "kind-epsilon").await;
    let pod = kube.find_pod("epsilon", &epsilon.selector()).await.unwrap();

    let probe = kube
        .exec("epsilon", &pod, "server", &probe_argv(), EXEC)
        .await
        .unwrap();
    assert_eq!(probe.exit_code, 0, "{}", probe.stderr);
    assert!(probe.stdout.len() > 3 * 1024, "{}", probe.stdout.len());
    let lines = parse_probe_output(&probe.stdout);
    assert_eq!(lines.len(), 81, "{}", probe.stdout);
    assert_eq!(
        lines
            .iter()
            .filter(|line| line.status == ProbeStatus::Unsynced)
            .count(),
        80
    );
    assert!(probe.stdout.ends_with('\n'));

    let argv = |words: &[&str]| {
        words
            .iter()
            .map(|word| (*word).to_owned())
            .collect::<Vec<String>>()
    };
    let unknown = kube
        .exec(
            "epsilon",
            &pod,
            "server",
            &argv(&["./manage.py", "no_such_command"]),
            EXEC,
        )
        .await
        .unwrap();
    assert_eq!(unknown.exit_code, 1);
    assert_eq!(unknown.stdout, "");
    assert!(
        unknown
            .stderr
            .starts_with("Unknown command: 'no_such_command'"),
        "{}",
        unknown.stderr
    );

    // Stderr above 1 KiB, sent before stdout, arrives whole.
    let long_name = "x".repeat(3000);
    let long = kube
        .exec(
            "epsilon",
            &pod,
            "server",
            &argv(&["./manage.py", &long_name]),
            EXEC,
        )
        .await
        .unwrap();
    assert_eq!(long.exit_code, 1);
    assert!(long.stderr.contains(&long_name), "{}", long.stderr.len());

    let missing = kube
        .exec("epsilon", &pod, "server", &argv(&["ls", "/"]), EXEC)
        .await
        .unwrap();
    assert_eq!(missing.exit_code, 127, "{missing:?}");

    let error = kube
        .exec("epsilon", &pod, "sidecar", &table_argv(), EXEC)
        .await
        .unwrap_err();
    assert!(matches!(error, KubeError::ExecStart { .. }), "{error:?}");
    let error = kube
        .exec("epsilon", "no-such-pod", "server", &table_argv(), EXEC)
        .await
        .unwrap_err();
    assert!(matches!(error, KubeError::ExecStart { .. }), "{error:?}");
    cluster.stop().await;
    network.shutdown().await;
}

#[tokio::test]
async fn a_deleted_cluster_fails_fast() {
    let cluster = FakeCluster::start("zeta", node(207), network()).await;
    let directory = TempDir::new().unwrap();
    let path = kubeconfig(&cluster, &directory, "kind-zeta");
    let kube = KubeCluster::connect(&path, None).await.unwrap();
    let (status, body) = cluster.request("POST", "/orgmesh-fake/down", "").await;
    assert_eq!(status, 200, "{body}");

    let bounded = Duration::from_secs(10);
    let error = tokio::time::timeout(bounded, kube.node_internal_ip())
        .await
        .expect("a request to a deleted cluster does not hang")
        .unwrap_err();
    assert!(matches!(error, KubeError::ListNodes { .. }), "{error:?}");
    let error = tokio::time::timeout(
        bounded,
        kube.wait_deployment("default", "any", Duration::from_secs(60)),
    )
    .await
    .expect("a wait on a deleted cluster does not hang")
    .unwrap_err();
    assert!(
        matches!(error, KubeError::GetDeployment { .. }),
        "{error:?}"
    );
    let error = tokio::time::timeout(bounded, KubeCluster::connect(&path, None))
        .await
        .expect("connecting to a deleted cluster does not hang")
        .unwrap_err();
    assert!(matches!(error, KubeError::Reach { .. }), "{error:?}");
    cluster.stop().await;
}

#[tokio::test]
async fn exec_is_bounded_by_its_timeout() {
    // A peer whose registered address accepts connections and never answers: the probe
    // waits for the backend's HTTP client timeout, far beyond the exec's.
    let network = SimNetwork::new(SimOptions {
        sync_lag: Duration::ZERO,
        http_client_timeout: Duration::from_secs(30),
    });
    let silent = tokio::net::TcpListener::bind((node(209), 0)).await.unwrap();
    let silent_address = silent.local_addr().unwrap();
    let hold = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((connection, _)) = silent.accept().await {
            held.push(connection);
        }
    });
    let eta = Organization {
        name: "eta",
        msp_id: "EtaMSP",
        node: node(208),
        port: 30_861,
    };
    let cluster = FakeCluster::start("eta", eta.node, network.clone()).await;
    let values = json!({"channels": [{"name": CHANNEL, "organizations": ["EtaMSP", "SilentMSP"]}]});
    let (status, body) = helm_upgrade(
        &cluster,
        "orchestrator",
        "orchestrator",
        "substra/orchestrator",
        "8.8.0",
        &values,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    network
        .bind_organization("silent", node(209))
        .await
        .unwrap();
    let silent_values = json!({
        "server": {"defaultDomain": format!("http://{silent_address}")},
        "orchestrator": {"mspID": "SilentMSP", "channels": [{CHANNEL: {"restricted": false}}]},
    });
    network
        .install_backend("silent", LATEST.parse().unwrap(), &silent_values)
        .await
        .unwrap();
    let values = backend_values(&eta, std::slice::from_ref(&eta), &["SilentMSP".to_owned()]);
    let (status, body) = install_backend(&cluster, &eta, LATEST, &values).await;
    assert_eq!(status, 200, "{body}");

    let directory = TempDir::new().unwrap();
    let kube = connect(&cluster, &directory, "kind-eta").await;
    let pod = kube.find_pod("eta", &eta.selector()).await.unwrap();
    let started = Instant::now();
    let error = kube
        .exec(
            "eta",
            &pod,
            "server",
            &probe_argv(),
            Duration::from_millis(800),
        )
        .await
        .unwrap_err();
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    assert!(matches!(error, KubeError::ExecTimeout { .. }), "{error:?}");
    assert!(error.to_string().contains("`./manage.py shell`"), "{error}");
    hold.abort();
    cluster.stop().await;
    network.shutdown().await;
}
