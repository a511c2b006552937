//! The k3s provider end to end (DESIGN §7, level 4).
//!
//! - Without a k3s image: the real binary against the real Docker engine, with an image whose
//!   pull only touches a closed loopback port (`127.0.0.1:9/...`), so no traffic leaves the
//!   machine. It must exit 3 saying what is missing and how to get it, and leave nothing behind.
//!   Without Docker these tests print `SKIPPED: ...`; `ORGMESH_REQUIRE_DOCKER=1` makes that a
//!   failure.
//! - Without Docker at all: exit 3, saying Docker is needed.
//! - The deploy and verify path on k3s-flavoured clusters: the clusters are in-process fake
//!   Kubernetes API servers (`support::fake_kube`) attached through `$ORGMESH_K3S_ATTACH`, each
//!   given as k3s writes its kubeconfig (YAML, one `default` cluster, user and context, server
//!   on 6443) plus the host port of its API. The real binary then rewrites the kubeconfigs,
//!   runs the fake `helm` with the k3s values, and verifies through kube-rs exec — the kind
//!   provider's code from there on. `DOCKER_HOST` points at a closed port, so any use of Docker
//!   on this path would fail the test.
//!
//! Fake clusters use node IPs 127.0.245.1 and up, apart from every other test file.

mod support;

use std::collections::{BTreeSet, HashMap};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;

use serde_json::{Value, json};
use support::fake_kube::FakeCluster;
use support::{report, text};
use tempfile::TempDir;
use testcontainers::bollard::Docker;

/// An image reference no engine has, whose registry is a closed loopback port: the one pull
/// the provider tries fails at once and never leaves the machine.
const MISSING_IMAGE: &str = "127.0.0.1:9/orgmesh-missing/k3s:v0";
/// A Docker host nothing listens on.
const NO_DOCKER: &str = "tcp://127.0.0.1:9";

/// The tests that use the real engine compare its labelled objects before and after: one at
/// a time.
static DOCKER: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn repository() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// `orgmesh run scenarios/guide.yaml --provider k3s --run-dir RUN_DIR`.
fn guide_on_k3s(run_dir: &Path) -> tokio::process::Command {
    orgmesh(&[
        "run",
        "scenarios/guide.yaml",
        "--provider",
        "k3s",
        "--run-dir",
        run_dir.to_str().expect("a UTF-8 path"),
    ])
}

/// The orgmesh binary with a clean k3s environment and no colour.
fn orgmesh(arguments: &[&str]) -> tokio::process::Command {
    let mut command = tokio::process::Command::new(assert_cmd::cargo::cargo_bin("orgmesh"));
    command
        .args(arguments)
        .current_dir(repository())
        .env("NO_COLOR", "1")
        .env_remove("ORGMESH_K3S_ATTACH")
        .env_remove("ORGMESH_K3S_IMAGE")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true);
    command
}

async fn finish(command: &mut tokio::process::Command) -> Output {
    let child = command.spawn().expect("orgmesh starts");
    tokio::time::timeout(Duration::from_secs(120), child.wait_with_output())
        .await
        .expect("orgmesh finishes within two minutes")
        .expect("orgmesh runs")
}

/// The engine, or `None` after printing why the test is skipped. With
/// `ORGMESH_REQUIRE_DOCKER=1` a missing engine fails the test instead.
async fn docker_or_skip(test: &str) -> Option<Docker> {
    match orgmesh::docker::connect().await {
        Ok(docker) => Some(docker),
        Err(error) => {
            let required = std::env::var("ORGMESH_REQUIRE_DOCKER").is_ok_and(|v| v == "1");
            assert!(
                !required,
                "ORGMESH_REQUIRE_DOCKER=1 but Docker is not usable: {error}"
            );
            println!("SKIPPED: {test}: no Docker engine ({error})");
            None
        }
    }
}

/// Every container and network carrying orgmesh's run label with `value` (any value when
/// `None`), as `kind name`.
async fn labelled(docker: &Docker, value: Option<&str>) -> BTreeSet<String> {
    use testcontainers::bollard::query_parameters::{ListContainersOptions, ListNetworksOptions};
    let label = match value {
        Some(value) => format!("{}={value}", orgmesh::docker::RUN_LABEL),
        None => orgmesh::docker::RUN_LABEL.to_owned(),
    };
    let filters = HashMap::from([("label".to_owned(), vec![label])]);
    let mut found = BTreeSet::new();
    let containers = docker
        .list_containers(Some(ListContainersOptions {
            all: true,
            filters: Some(filters.clone()),
            ..Default::default()
        }))
        .await
        .expect("containers are listed");
    for container in containers {
        found.insert(format!("container {:?}", container.names));
    }
    let networks = docker
        .list_networks(Some(ListNetworksOptions {
            filters: Some(filters),
        }))
        .await
        .expect("networks are listed");
    for network in networks {
        found.insert(format!("network {:?}", network.name));
    }
    found
}

/// The run networks of k3s runs (`orgmesh-<run>-net`) of any run, and the containers of any
/// run made from `image`: what a k3s run of `image` could leave behind. Other orgmesh runs on
/// this engine (container isolation, say) have other names and images.
async fn k3s_leftovers(docker: &Docker, image: &str) -> BTreeSet<String> {
    labelled(docker, None)
        .await
        .into_iter()
        .filter(|object| object.starts_with("network") && object.ends_with("-net\")"))
        .chain(containers_of(docker, image).await)
        .collect()
}

async fn containers_of(docker: &Docker, image: &str) -> Vec<String> {
    use testcontainers::bollard::query_parameters::ListContainersOptions;
    let filters = HashMap::from([("ancestor".to_owned(), vec![image.to_owned()])]);
    docker
        .list_containers(Some(ListContainersOptions {
            all: true,
            filters: Some(filters),
            ..Default::default()
        }))
        .await
        .map(|containers| {
            containers
                .into_iter()
                .map(|c| format!("container {:?}", c.names))
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread")]
async fn without_the_k3s_image_the_run_exits_3_before_creating_anything() {
    let Some(docker) = docker_or_skip("k3s image unavailable").await else {
        return;
    };
    let _one_at_a_time = DOCKER.lock().await;
    assert!(
        !orgmesh::docker::image_exists(&docker, MISSING_IMAGE)
            .await
            .unwrap(),
        "{MISSING_IMAGE} exists in this engine"
    );
    let before = k3s_leftovers(&docker, MISSING_IMAGE).await;
    let work = TempDir::new().unwrap();
    let run_dir = work.path().join("run");
    let output = finish(guide_on_k3s(&run_dir).env("ORGMESH_K3S_IMAGE", MISSING_IMAGE)).await;
    assert_eq!(output.status.code(), Some(3), "{}", text(&output));
    let stderr = String::from_utf8_lossy(&output.stderr);
    for expected in [
        "the k3s image `127.0.0.1:9/orgmesh-missing/k3s:v0` is not in the local Docker engine and pulling it failed",
        "127.0.0.1:9",
        "docker load -i k3s.tar",
        "docker pull 127.0.0.1:9/orgmesh-missing/k3s:v0",
        "ORGMESH_K3S_IMAGE",
    ] {
        assert!(stderr.contains(expected), "missing {expected:?}:\n{stderr}");
    }
    assert!(!run_dir.exists(), "preflight created the run directory");
    assert_eq!(
        k3s_leftovers(&docker, MISSING_IMAGE).await,
        before,
        "the run left containers or networks behind"
    );
    assert!(
        !orgmesh::docker::image_exists(&docker, MISSING_IMAGE)
            .await
            .unwrap()
    );

    // `orgmesh doctor` runs the same check.
    let output =
        finish(orgmesh(&["doctor", "--provider", "k3s"]).env("ORGMESH_K3S_IMAGE", MISSING_IMAGE))
            .await;
    assert_eq!(output.status.code(), Some(3), "{}", text(&output));
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("docker load -i k3s.tar"),
        "{}",
        text(&output)
    );
}

/// An image that exists in the engine but has nothing to run: imported from an empty root
/// file system, so no registry is involved. Removed by the guard.
struct EmptyImage {
    docker: Docker,
    reference: String,
}

impl EmptyImage {
    async fn import(docker: &Docker, repository: &str) -> Self {
        use testcontainers::bollard::query_parameters::CreateImageOptions;
        let options = CreateImageOptions {
            from_src: Some("-".into()),
            repo: Some(repository.into()),
            tag: Some("v0".into()),
            ..Default::default()
        };
        // A tar archive without entries: two zero blocks.
        let empty = bytes::Bytes::from(vec![0u8; 1024]);
        let mut stream = docker.create_image(
            Some(options),
            Some(testcontainers::bollard::body_full(empty)),
            None,
        );
        while let Some(progress) = futures::StreamExt::next(&mut stream).await {
            progress.expect("the empty image is imported");
        }
        Self {
            docker: docker.clone(),
            reference: format!("{repository}:v0"),
        }
    }

    async fn remove(self) {
        let _ = self
            .docker
            .remove_image(
                &self.reference,
                Some(
                    testcontainers::bollard::query_parameters::RemoveImageOptions {
                        force: true,
                        ..Default::default()
                    },
                ),
                None,
            )
            .await;
    }
}

/// The container path itself, on the real engine, up to the point where a real k3s image is
/// needed: preflight passes (the image is present), the run network and both containers are
/// created with the run's labels and the scenario's `images:` exported for preloading, the
/// containers cannot start (the image has no `server` to run; an engine that refuses
/// privileged containers fails them earlier, at `apply caps`), and the run exits 3 with every
/// container and network of the run removed.
#[tokio::test(flavor = "multi_thread")]
async fn a_k3s_container_that_cannot_start_is_an_infrastructure_error_and_is_removed() {
    let Some(docker) = docker_or_skip("k3s container start failure").await else {
        return;
    };
    let _one_at_a_time = DOCKER.lock().await;
    let image = EmptyImage::import(&docker, "orgmesh-test/not-k3s").await;
    let work = TempDir::new().unwrap();
    let state = work.path().join("state");
    // /proc as a host fit for two clusters: this machine's real limits may be lower.
    let proc = work.path().join("proc");
    std::fs::create_dir_all(proc.join("sys/fs/inotify")).unwrap();
    std::fs::write(proc.join("sys/fs/inotify/max_user_instances"), "8192\n").unwrap();
    std::fs::write(proc.join("sys/fs/inotify/max_user_watches"), "1048576\n").unwrap();
    std::fs::write(
        proc.join("meminfo"),
        "MemTotal: 67108864 kB\nMemAvailable: 62914560 kB\n",
    )
    .unwrap();
    let guide = std::fs::read_to_string(repository().join("scenarios/guide.yaml")).unwrap();
    let scenario = work.path().join("images.yaml");
    std::fs::write(&scenario, format!("{guide}images: [{}]\n", image.reference)).unwrap();
    let run_dir = work.path().join("run");
    let fakes = repository().join("tests/fakes");
    let output = finish(
        orgmesh(&[
            "run",
            scenario.to_str().unwrap(),
            "--provider",
            "k3s",
            "--run-dir",
            run_dir.to_str().unwrap(),
        ])
        .env("ORGMESH_K3S_IMAGE", &image.reference)
        .env("ORGMESH_PROC_ROOT", &proc)
        .env("ORGMESH_FAKE_STATE", &state)
        .env(
            "PATH",
            format!(
                "{}:{}",
                fakes.display(),
                std::env::var("PATH").unwrap_or_default()
            ),
        ),
    )
    .await;
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    // `orgmesh: run <id> (k3s): ...`, printed once preflight passed.
    let run_id = stderr
        .split_once("orgmesh: run ")
        .and_then(|(_, rest)| rest.split_whitespace().next())
        .unwrap_or_default()
        .to_owned();
    let left = labelled(&docker, Some(&run_id)).await;
    let from_image = containers_of(&docker, &image.reference).await;
    image.remove().await;
    assert_eq!(output.status.code(), Some(3), "{}", text(&output));
    assert_eq!(run_id.len(), 8, "no run id in:\n{stderr}");
    assert!(
        stderr.contains(&format!(
            "could not start the k3s container `orgmesh-{run_id}-cluster-"
        )) && stderr.contains("failed to start a container"),
        "{stderr}"
    );
    assert!(left.is_empty(), "the run left {left:?} behind");
    assert!(from_image.is_empty(), "containers left: {from_image:?}");
    // What the run did create on the host side: private directories, and the image archive
    // for the containers to import.
    for directory in ["kubeconfig", "k3s", "k3s/cluster-1", "k3s/images"] {
        let mode = std::fs::metadata(run_dir.join(directory))
            .unwrap_or_else(|e| panic!("{directory}: {e}"))
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o700, "{directory}");
    }
    let archive = std::fs::metadata(run_dir.join("k3s/images/image-0.tar")).unwrap();
    assert!(archive.len() > 0);
}

#[rstest::rstest]
#[case::no_socket("unix:///nonexistent", "Docker is not available at /nonexistent")]
#[case::nothing_listening(
    NO_DOCKER,
    "the k3s provider runs its clusters as Docker containers and needs a Docker engine"
)]
#[tokio::test(flavor = "multi_thread")]
async fn without_docker_the_run_exits_3_saying_docker_is_needed(
    #[case] docker_host: &str,
    #[case] expected: &str,
) {
    let work = TempDir::new().unwrap();
    let run_dir = work.path().join("run");
    let output = finish(guide_on_k3s(&run_dir).env("DOCKER_HOST", docker_host)).await;
    assert_eq!(output.status.code(), Some(3), "{}", text(&output));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains(expected), "{stderr}");
    assert!(stderr.contains("hint: start the Docker engine"), "{stderr}");
    assert!(!run_dir.exists(), "a refused run created its directory");
}

/// Fake clusters shaped like k3s servers, and the attach file describing them.
struct World {
    clusters: Vec<FakeCluster>,
    state: TempDir,
    work: TempDir,
}

impl World {
    async fn new(count: usize, base: u8) -> Self {
        Self {
            clusters: support::fake_clusters(count, base, "k3s").await,
            state: TempDir::new().unwrap(),
            work: TempDir::new().unwrap(),
        }
    }

    fn run_dir(&self) -> PathBuf {
        self.work.path().join("run")
    }

    fn api_port(cluster: &FakeCluster) -> u16 {
        cluster
            .url()
            .rsplit(':')
            .next()
            .and_then(|port| port.parse().ok())
            .expect("the fake's URL has a port")
    }

    /// Writes each cluster's kubeconfig the way k3s writes `/etc/rancher/k3s/k3s.yaml` (the
    /// fake speaks plain HTTP, so `http`), and the attach file naming them for `clusters`.
    fn attach_file(&self, clusters: &[&str]) -> PathBuf {
        let mut servers = serde_json::Map::new();
        for (name, cluster) in clusters.iter().zip(&self.clusters) {
            let kubeconfig = self.work.path().join(format!("{name}-k3s.yaml"));
            std::fs::write(
                &kubeconfig,
                "apiVersion: v1
clusters:
- cluster:
    server: http://127.0.0.1:6443
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
  user: {}
",
            )
            .unwrap();
            servers.insert(
                (*name).to_owned(),
                json!({
                    "kubeconfig": kubeconfig,
                    "apiPort": Self::api_port(cluster),
                    "nodeIp": cluster.node_ip().to_string(),
                }),
            );
        }
        let path = self.work.path().join("attach.json");
        std::fs::write(&path, json!({ "clusters": servers }).to_string()).unwrap();
        path
    }

    fn command(&self, arguments: &[&str], attach: &Path) -> tokio::process::Command {
        let fakes = repository().join("tests/fakes");
        let path = format!(
            "{}:{}",
            fakes.display(),
            std::env::var("PATH").unwrap_or_default()
        );
        let mut command = orgmesh(arguments);
        command
            .env("PATH", path)
            .env("ORGMESH_FAKE_STATE", self.state.path())
            .env("ORGMESH_K3S_ATTACH", attach)
            .env("DOCKER_HOST", NO_DOCKER);
        command
    }

    /// Every call the fake tools recorded, as argv lines with run paths and ids redacted.
    fn redacted_calls(&self, run_id: &str) -> String {
        let run_dir = self.run_dir().display().to_string();
        let text =
            std::fs::read_to_string(self.state.path().join("calls.jsonl")).unwrap_or_default();
        text.lines()
            .map(|line| {
                let call: Value = serde_json::from_str(line).expect("a JSON line");
                call["argv"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(Value::as_str)
                    .collect::<Vec<_>>()
                    .join(" ")
                    .replace(&run_dir, "<run-dir>")
                    .replace(run_id, "<run-id>")
            })
            .collect::<Vec<_>>()
            .join("\n")
            + "\n"
    }
}

/// The guide on two k3s-flavoured clusters: the kubeconfigs are rewritten and private, helm
/// gets the kind profile at each node's address, every link passes reach and auth through
/// kube-rs exec, and teardown uninstalls every release of the run from the attached servers.
#[tokio::test(flavor = "multi_thread")]
async fn the_guide_on_k3s_clusters_deploys_links_and_verifies_through_the_kind_path() {
    let world = World::new(2, 245).await;
    let attach = world.attach_file(&["cluster-1", "cluster-2"]);
    let run_dir = world.run_dir();
    let output = finish(&mut world.command(
        &[
            "run",
            "scenarios/guide.yaml",
            "--provider",
            "k3s",
            "--seed",
            "1",
            "--jobs",
            "1",
            "--run-dir",
            run_dir.to_str().unwrap(),
        ],
        &attach,
    ))
    .await;
    assert_eq!(output.status.code(), Some(0), "{}", text(&output));
    let report = report(&run_dir);
    assert!(report.passed);
    assert_eq!(report.provider, "k3s");
    support::assert_guide_links_passed(&report);
    for cluster in &world.clusters {
        let execs = cluster
            .requests()
            .iter()
            .filter(|r| r.contains("/exec?"))
            .count();
        assert!(execs >= 2, "{}: {execs} execs", cluster.name());
    }

    // Each kubeconfig: 0600 in the run directory, server rewritten to the API's host port,
    // cluster, user and context named after the cluster's container.
    for (index, cluster) in ["cluster-1", "cluster-2"].iter().enumerate() {
        let path = run_dir.join(format!("kubeconfig/{cluster}.yaml"));
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{}", path.display());
        let config: Value =
            serde_saphyr::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        let name = format!("orgmesh-{}-{cluster}", report.run_id);
        assert_eq!(
            config["clusters"][0]["cluster"]["server"],
            json!(world.clusters[index].url())
        );
        assert_eq!(config["current-context"], json!(name));
        assert_eq!(config["contexts"][0]["context"]["user"], json!(name));
    }
    let kubeconfig_dir = std::fs::metadata(run_dir.join("kubeconfig")).unwrap();
    assert_eq!(kubeconfig_dir.permissions().mode() & 0o777, 0o700);

    // The argv of every tool call (orchestrator first, each backend installed unlinked, then
    // upgraded once with its links; teardown uninstalls them, last installed first).
    insta::assert_snapshot!("guide_on_k3s_calls", world.redacted_calls(&report.run_id));
    // The provider layer of a backend in the other cluster than the orchestrator: NodePort at
    // its node's address, the orchestrator at the first node's NodePort.
    let values: Value = serde_saphyr::from_str(
        &std::fs::read_to_string(run_dir.join("values/releases/backend-biotechnica-1.yaml"))
            .unwrap(),
    )
    .unwrap();
    insta::assert_yaml_snapshot!("guide_on_k3s_biotechnica_values", values);
    assert_eq!(
        values.pointer("/server/defaultDomain"),
        Some(&json!("http://127.0.246.1:30800"))
    );

    for cluster in &world.clusters {
        assert!(
            cluster.helm_releases().await.is_empty(),
            "{}: releases left behind",
            cluster.name()
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn an_attach_file_without_a_scenario_cluster_is_refused_before_anything_runs() {
    let world = World::new(1, 247).await;
    let attach = world.attach_file(&["cluster-1"]);
    let run_dir = world.run_dir();
    let output = finish(&mut world.command(
        &[
            "run",
            "scenarios/guide.yaml",
            "--provider",
            "k3s",
            "--run-dir",
            run_dir.to_str().unwrap(),
        ],
        &attach,
    ))
    .await;
    assert_eq!(output.status.code(), Some(3), "{}", text(&output));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("has no server for scenario cluster `cluster-2`"),
        "{stderr}"
    );
    assert!(!run_dir.exists());
    let calls = std::fs::read_to_string(world.state.path().join("calls.jsonl")).unwrap_or_default();
    assert!(!calls.contains("upgrade"), "{calls}");
}
