//! The kind provider's use of the kind, helm and docker CLIs, end to end against the fake
//! executables in `tests/fakes` (no Docker needed).
//!
//! Each test has its own fake state directory and passes PATH and ORGMESH_FAKE_STATE through a
//! [`Environment`], so tests running in parallel never share the fakes' state or change the
//! environment of the test process.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};
use orgmesh::deploy::helm::{self, ChartRef, HelmVersion, Release};
use orgmesh::process::{self, Command, Environment, ProcessError};
use orgmesh::provider::kind::{
    self, ClusterSpec, CreateOptions, HostFiles, KindError, PreflightError, Problem, Requirements,
};
use tempfile::TempDir;

fn fakes_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fakes")
}

/// One test's fake world: a state directory and the environment that puts the fakes on PATH.
struct Fakes {
    state: TempDir,
    environment: Environment,
}

impl Fakes {
    fn new() -> Self {
        Self::with(&[])
    }

    fn with(variables: &[(&str, &str)]) -> Self {
        let state = tempfile::tempdir().unwrap();
        let path = format!(
            "{}:{}",
            fakes_dir().display(),
            std::env::var("PATH").unwrap_or_default()
        );
        let environment = variables.iter().fold(
            Environment::inherit()
                .with("PATH", path)
                .with("ORGMESH_FAKE_STATE", state.path().to_string_lossy()),
            |environment, (key, value)| environment.with(*key, *value),
        );
        Self { state, environment }
    }

    fn path(&self) -> &Path {
        self.state.path()
    }

    /// Every recorded call, as (tool, argv).
    fn calls(&self) -> Vec<(String, Vec<String>)> {
        let text = std::fs::read_to_string(self.path().join("calls.jsonl")).unwrap_or_default();
        text.lines()
            .map(|line| {
                let value: serde_json::Value = serde_json::from_str(line).unwrap();
                let argv = value["argv"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|word| word.as_str().unwrap().to_owned())
                    .collect();
                (value["tool"].as_str().unwrap().to_owned(), argv)
            })
            .collect()
    }

    /// The kind calls naming `cluster`, as their first two words (`create cluster`, ...).
    fn kind_calls_for(&self, cluster: &str) -> Vec<String> {
        self.calls()
            .into_iter()
            .filter(|(tool, argv)| tool == "kind" && argv.iter().any(|word| word == cluster))
            .map(|(_, argv)| argv[1..3].join(" "))
            .collect()
    }

    async fn run(&self, command: Command) -> process::Output {
        process::run(&self.environment.apply(command), Duration::from_secs(30))
            .await
            .unwrap()
    }

    fn specs(&self, names: &[&str]) -> Vec<ClusterSpec> {
        names
            .iter()
            .enumerate()
            .map(|(index, name)| {
                let config_path = self.path().join(format!("{name}.yaml"));
                std::fs::write(&config_path, kind::cluster_config(index).unwrap()).unwrap();
                ClusterSpec {
                    name: (*name).to_owned(),
                    config_path,
                    kubeconfig_path: self.path().join("kubeconfig").join(name),
                }
            })
            .collect()
    }

    fn options(&self) -> CreateOptions {
        CreateOptions::new(self.path().join("diagnostics"))
    }
}

/// Fake /proc files with the given values.
fn host_files(directory: &Path, instances: u64, watches: u64, available_kib: u64) -> HostFiles {
    let files = HostFiles {
        max_user_instances: directory.join("max_user_instances"),
        max_user_watches: directory.join("max_user_watches"),
        meminfo: directory.join("meminfo"),
    };
    std::fs::write(&files.max_user_instances, format!("{instances}\n")).unwrap();
    std::fs::write(&files.max_user_watches, format!("{watches}\n")).unwrap();
    std::fs::write(
        &files.meminfo,
        format!(
            "MemTotal:       67108864 kB\nMemFree:         1000000 kB\nMemAvailable:   {available_kib} kB\n"
        ),
    )
    .unwrap();
    files
}

fn roomy_host(directory: &Path) -> HostFiles {
    host_files(directory, 8192, 1_048_576, 64 * 1024 * 1024)
}

const TWO_BY_TWO: Requirements = Requirements {
    clusters: 2,
    organizations: 2,
};

fn problems(error: PreflightError) -> Vec<Problem> {
    match error {
        PreflightError::Unmet { problems } => problems,
    }
}

#[tokio::test]
async fn preflight_passes_with_the_fakes_and_reports_versions() {
    let fakes = Fakes::new();
    let files = roomy_host(fakes.path());
    let preflight = kind::preflight_with(&fakes.environment, TWO_BY_TWO, &files)
        .await
        .unwrap();
    assert_eq!(preflight.docker, "28.2.2");
    assert_eq!(preflight.kind, "v0.32.0");
    assert_eq!(
        preflight.helm,
        HelmVersion {
            major: 3,
            text: "v3.21.4+g5c1f8b2".to_owned()
        }
    );
    let tools: Vec<String> = fakes
        .calls()
        .into_iter()
        .map(|(_, argv)| argv.join(" "))
        .collect();
    assert_eq!(
        tools,
        [
            "docker info --format {{.ServerVersion}}",
            "kind version",
            "helm version --short"
        ]
    );
}

#[tokio::test]
async fn preflight_detects_helm_4() {
    let fakes = Fakes::with(&[("ORGMESH_FAKE_HELM_VERSION", "v4.2.4+g0a1b2c3")]);
    let files = roomy_host(fakes.path());
    let preflight = kind::preflight_with(&fakes.environment, TWO_BY_TWO, &files)
        .await
        .unwrap();
    assert_eq!(preflight.helm.major, 4);
}

#[tokio::test]
async fn preflight_lists_every_missing_tool_and_how_to_get_it() {
    let empty = tempfile::tempdir().unwrap();
    let files = roomy_host(empty.path());
    let environment = Environment::inherit().with("PATH", empty.path().to_string_lossy());
    let error = kind::preflight_with(&environment, TWO_BY_TWO, &files)
        .await
        .unwrap_err();
    let message = error.to_string();
    let problems = problems(error);
    let tools: Vec<&str> = problems
        .iter()
        .map(|problem| match problem {
            Problem::ToolMissing { tool, .. } => *tool,
            other => panic!("unexpected problem {other:?}"),
        })
        .collect();
    assert_eq!(tools, ["docker", "kind", "helm"]);
    for line in [
        "docker is not installed: see https://docs.docker.com/engine/install/",
        "kind is not installed: see https://kind.sigs.k8s.io/docs/user/quick-start/#installation (go install sigs.k8s.io/kind@v0.32.0)",
        "helm is not installed: https://helm.sh/docs/intro/install/",
    ] {
        assert!(message.contains(line), "{message}");
    }
}

#[tokio::test]
async fn preflight_reports_an_unreachable_engine_and_an_old_helm_together() {
    let fakes = Fakes::with(&[
        ("ORGMESH_FAKE_DOCKER_DOWN", "1"),
        ("ORGMESH_FAKE_HELM_VERSION", "v2.17.0+ga690bad"),
    ]);
    let files = roomy_host(fakes.path());
    let error = kind::preflight_with(&fakes.environment, TWO_BY_TWO, &files)
        .await
        .unwrap_err();
    let problems = problems(error);
    assert_eq!(problems.len(), 2, "{problems:?}");
    assert!(
        matches!(&problems[0], Problem::DockerUnreachable { detail } if detail.contains("Cannot connect to the Docker daemon"))
    );
    assert!(
        matches!(&problems[1], Problem::UnsupportedHelm { text } if text == "v2.17.0+ga690bad")
    );
}

#[tokio::test]
async fn preflight_checks_inotify_limits_and_memory() {
    let fakes = Fakes::new();
    let files = host_files(fakes.path(), 128, 8192, 1024 * 1024);
    let requirements = Requirements {
        clusters: 3,
        organizations: 2,
    };
    let error = kind::preflight_with(&fakes.environment, requirements, &files)
        .await
        .unwrap_err();
    let message = error.to_string();
    let problems = problems(error);
    assert!(matches!(
        problems[..],
        [
            Problem::InotifyLimit {
                value: 128,
                minimum: 512,
                ..
            },
            Problem::InotifyLimit {
                value: 8192,
                minimum: 524_288,
                ..
            },
            Problem::Memory {
                clusters: 3,
                organizations: 2,
                ..
            },
        ]
    ));
    assert!(message.contains("`sudo sysctl fs.inotify.max_user_instances=512`"));
    assert!(message.contains("`sudo sysctl fs.inotify.max_user_watches=524288`"));
    assert!(message.contains("need 6.5 GiB"), "{message}");
    assert!(message.contains("but 1.0 GiB is available"), "{message}");
}

#[tokio::test]
async fn one_cluster_needs_no_inotify_check() {
    let fakes = Fakes::new();
    let files = host_files(fakes.path(), 128, 8192, 4 * 1024 * 1024);
    let requirements = Requirements {
        clusters: 1,
        organizations: 2,
    };
    assert!(
        kind::preflight_with(&fakes.environment, requirements, &files)
            .await
            .is_ok()
    );
}

#[tokio::test]
async fn unreadable_proc_files_are_problems() {
    let fakes = Fakes::new();
    let mut files = roomy_host(fakes.path());
    files.meminfo = fakes.path().join("missing-meminfo");
    let error = kind::preflight_with(&fakes.environment, TWO_BY_TWO, &files)
        .await
        .unwrap_err();
    assert!(matches!(problems(error)[..], [Problem::Unreadable { .. }]));
}

#[tokio::test]
async fn create_clusters_retries_after_deleting_the_half_created_cluster() {
    let fakes = Fakes::with(&[("ORGMESH_FAKE_KIND_FAIL_CREATE", "orgmesh-t-b:1")]);
    let names = ["orgmesh-t-a", "orgmesh-t-b", "orgmesh-t-c"];
    let created = Mutex::new(Vec::new());
    let outcomes = kind::create_clusters(
        &fakes.environment,
        fakes.specs(&names),
        &fakes.options(),
        |name| created.lock().unwrap().push(name.to_owned()),
    )
    .await;
    let outcome_names: Vec<&str> = outcomes
        .iter()
        .map(|outcome| outcome.name.as_str())
        .collect();
    assert_eq!(outcome_names, names);
    for outcome in &outcomes {
        assert!(outcome.result.is_ok(), "{outcome:?}");
    }
    let mut created = created.into_inner().unwrap();
    created.sort();
    assert_eq!(created, names);

    assert_eq!(
        fakes.kind_calls_for("orgmesh-t-b"),
        ["create cluster", "delete cluster", "create cluster"]
    );
    assert_eq!(fakes.kind_calls_for("orgmesh-t-a"), ["create cluster"]);
    assert!(
        !fakes
            .calls()
            .iter()
            .any(|(_, argv)| argv.contains(&"--retain".to_owned())),
        "only a last attempt retains its nodes"
    );
    assert_eq!(
        kind::list_clusters(&fakes.environment).await.unwrap(),
        names
    );

    // Each cluster has its own kubeconfig with the `kind-<name>` context, and kind got its config.
    for (index, name) in names.iter().enumerate() {
        let kubeconfig: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(fakes.path().join("kubeconfig").join(name)).unwrap(),
        )
        .unwrap();
        assert_eq!(kubeconfig["current-context"], format!("kind-{name}"));
        let config =
            std::fs::read_to_string(fakes.path().join(format!("kind/configs/{name}.yaml")))
                .unwrap();
        assert_eq!(config, kind::cluster_config(index).unwrap());
    }
}

#[tokio::test]
async fn a_cluster_failing_every_attempt_leaves_logs_and_no_cluster() {
    let fakes = Fakes::with(&[("ORGMESH_FAKE_KIND_FAIL_CREATE", "orgmesh-t-bad:3")]);
    let options = fakes.options();
    let outcomes = kind::create_clusters(
        &fakes.environment,
        fakes.specs(&["orgmesh-t-good", "orgmesh-t-bad"]),
        &options,
        |_| {},
    )
    .await;
    assert!(outcomes[0].result.is_ok());
    let logs = options.diagnostics_dir.join("kind").join("orgmesh-t-bad");
    match &outcomes[1].result {
        Err(KindError::Create {
            name,
            attempts: 3,
            logs: Some(path),
            source:
                ProcessError::Failed {
                    exit_code: 1,
                    stderr,
                    ..
                },
        }) => {
            assert_eq!(name, "orgmesh-t-bad");
            assert_eq!(path, &logs);
            assert!(
                stderr.contains("ERROR: failed to create cluster"),
                "{stderr}"
            );
        }
        other => panic!("expected a creation error, got {other:?}"),
    }
    assert!(logs.join("kind-version.txt").exists());
    assert_eq!(
        fakes.kind_calls_for("orgmesh-t-bad"),
        [
            "create cluster",
            "delete cluster",
            "create cluster",
            "delete cluster",
            "create cluster",
            "export logs",
            "delete cluster",
        ]
    );
    let retained: Vec<bool> = fakes
        .calls()
        .iter()
        .filter(|(_, argv)| argv[1] == "create" && argv.contains(&"orgmesh-t-bad".to_owned()))
        .map(|(_, argv)| argv.contains(&"--retain".to_owned()))
        .collect();
    assert_eq!(retained, [false, false, true]);
    assert_eq!(
        kind::list_clusters(&fakes.environment).await.unwrap(),
        ["orgmesh-t-good"]
    );
    let message = outcomes[1].result.as_ref().unwrap_err().to_string();
    assert!(
        message.contains("after 3 attempts; its logs are in"),
        "{message}"
    );
}

#[tokio::test]
async fn delete_clusters_verifies_with_get_clusters() {
    let fakes = Fakes::new();
    let names = ["orgmesh-t-a", "orgmesh-t-b"];
    let outcomes = kind::create_clusters(
        &fakes.environment,
        fakes.specs(&names),
        &fakes.options(),
        |_| {},
    )
    .await;
    assert!(outcomes.iter().all(|outcome| outcome.result.is_ok()));
    let names: Vec<String> = names.iter().map(|name| (*name).to_owned()).collect();
    kind::delete_clusters(&fakes.environment, &names)
        .await
        .unwrap();
    let calls = fakes.calls();
    let last: Vec<String> = calls[calls.len() - 3..]
        .iter()
        .map(|(_, argv)| argv.join(" "))
        .collect();
    assert_eq!(
        last,
        [
            "kind delete cluster --name orgmesh-t-a",
            "kind delete cluster --name orgmesh-t-b",
            "kind get clusters"
        ]
    );
    assert!(
        kind::list_clusters(&fakes.environment)
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn delete_clusters_names_the_survivors() {
    let fakes = Fakes::with(&[("ORGMESH_FAKE_KIND_KEEP_ON_DELETE", "orgmesh-t-stuck")]);
    let names = ["orgmesh-t-stuck", "orgmesh-t-ok"];
    kind::create_clusters(
        &fakes.environment,
        fakes.specs(&names),
        &fakes.options(),
        |_| {},
    )
    .await;
    let names: Vec<String> = names.iter().map(|name| (*name).to_owned()).collect();
    let error = kind::delete_clusters(&fakes.environment, &names)
        .await
        .unwrap_err();
    assert!(matches!(&error, KindError::NotDeleted { names, .. } if names == &["orgmesh-t-stuck"]));
    assert!(error.to_string().contains("orgmesh-t-stuck"));
    assert!(!error.to_string().contains("orgmesh-t-ok"));
}

#[tokio::test]
async fn orgmesh_clusters_ignore_the_users_clusters() {
    let fakes = Fakes::new();
    fakes
        .run(Command::new("kind").args(["create", "cluster", "--name", "user-cluster"]))
        .await;
    let names = ["orgmesh-r1-a", "orgmesh-r1-b", "orgmesh-r2-a"];
    kind::create_clusters(
        &fakes.environment,
        fakes.specs(&names),
        &fakes.options(),
        |_| {},
    )
    .await;
    assert_eq!(
        kind::orgmesh_clusters(&fakes.environment).await.unwrap(),
        names
    );
    assert_eq!(
        kind::run_clusters(&fakes.environment, "r1").await.unwrap(),
        ["orgmesh-r1-a", "orgmesh-r1-b"]
    );
    assert!(
        kind::list_clusters(&fakes.environment)
            .await
            .unwrap()
            .contains(&"user-cluster".to_owned())
    );
}

#[tokio::test]
async fn fake_kind_behaves_like_kind_for_duplicates_and_empty_lists() {
    let fakes = Fakes::new();
    let output = fakes.run(kind::get_clusters()).await;
    assert_eq!(output.stdout, "");
    assert_eq!(output.stderr, "No kind clusters found.\n");
    let spec = &fakes.specs(&["orgmesh-t-a"])[0];
    let create = kind::create_cluster(
        &spec.name,
        &spec.config_path,
        &spec.kubeconfig_path,
        Duration::from_secs(120),
        false,
    );
    fakes.run(create.clone()).await;
    let error = process::run(&fakes.environment.apply(create), Duration::from_secs(30))
        .await
        .unwrap_err();
    assert!(matches!(
        error,
        ProcessError::Failed { exit_code: 1, ref stderr, .. }
            if stderr.contains(r#"node(s) already exist for a cluster with the name "orgmesh-t-a""#)
    ));
    // Deletion is idempotent.
    fakes.run(kind::delete_cluster("orgmesh-t-a", None)).await;
    fakes.run(kind::delete_cluster("orgmesh-t-a", None)).await;
    let load = fakes
        .environment
        .apply(kind::load_image("orgmesh-t-a", "substra/backend:1"));
    let output = process::run_unchecked(&load, Duration::from_secs(30))
        .await
        .unwrap();
    assert_eq!(output.exit_code, 1, "loading into a missing cluster fails");
}

#[test]
fn fakes_refuse_to_run_without_a_state_directory() {
    for tool in ["kind", "helm", "docker"] {
        let output = std::process::Command::new(fakes_dir().join(tool))
            .arg("version")
            .env_remove("ORGMESH_FAKE_STATE")
            .output()
            .unwrap();
        assert_eq!(output.status.code(), Some(97), "{tool}");
        assert!(String::from_utf8_lossy(&output.stderr).contains("ORGMESH_FAKE_STATE"));
    }
}

/// What the stub API server received.
#[derive(Debug, Clone)]
struct Received {
    path: String,
    query: HashMap<String, String>,
    content_type: Option<String>,
    body: String,
}

#[derive(Clone)]
struct Stub {
    received: Arc<Mutex<Vec<Received>>>,
    upgrade_status: StatusCode,
}

/// A minimal stand-in for the fake Kubernetes API server's `/orgmesh-fake/helm/*` endpoints.
async fn stub_server(upgrade_status: StatusCode) -> (String, Arc<Mutex<Vec<Received>>>) {
    async fn upgrade(
        State(stub): State<Stub>,
        Query(query): Query<HashMap<String, String>>,
        headers: HeaderMap,
        body: Bytes,
    ) -> (StatusCode, String) {
        stub.received.lock().unwrap().push(Received {
            path: "upgrade".to_owned(),
            query,
            content_type: headers
                .get("content-type")
                .and_then(|value| value.to_str().ok())
                .map(str::to_owned),
            body: String::from_utf8_lossy(&body).into_owned(),
        });
        if stub.upgrade_status == StatusCode::OK {
            (StatusCode::OK, r#"{"revision": 1}"#.to_owned())
        } else {
            (
                stub.upgrade_status,
                "timed out waiting for the condition".to_owned(),
            )
        }
    }
    async fn list(Query(query): Query<HashMap<String, String>>) -> String {
        format!(
            r#"[{{"name":"backend","namespace":"{}","revision":"1","updated":"","status":"deployed","chart":"substra-backend-26.12.0","app_version":""}}]"#,
            query.get("namespace").cloned().unwrap_or_default()
        )
    }
    async fn uninstall() -> (StatusCode, &'static str) {
        (StatusCode::NOT_FOUND, "not found")
    }
    let received = Arc::new(Mutex::new(Vec::new()));
    let stub = Stub {
        received: received.clone(),
        upgrade_status,
    };
    let app = Router::new()
        .route("/orgmesh-fake/helm/upgrade", post(upgrade))
        .route("/orgmesh-fake/helm/list", get(list))
        .route("/orgmesh-fake/helm/uninstall", post(uninstall))
        .with_state(stub);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("http://{address}"), received)
}

/// A fake kind cluster whose API server is `server`, and a release of `chart` into it.
async fn cluster_and_release(fakes: &Fakes) -> Release {
    let spec = fakes.specs(&["orgmesh-t-a"]).remove(0);
    let outcomes = kind::create_clusters(
        &fakes.environment,
        vec![spec.clone()],
        &fakes.options(),
        |_| {},
    )
    .await;
    assert!(outcomes[0].result.is_ok());
    let values_file = fakes.path().join("values.yaml");
    std::fs::write(
        &values_file,
        "server:\n  defaultDomain: http://172.18.0.3:30080\n",
    )
    .unwrap();
    Release {
        name: "backend-ingen".to_owned(),
        namespace: "org-ingen".to_owned(),
        chart: ChartRef::Repository {
            repository: "https://substra.github.io/charts/".to_owned(),
            chart: "substra-backend".to_owned(),
            version: "26.12.0".to_owned(),
        },
        values_file,
        kubeconfig: spec.kubeconfig_path,
        context: Some("kind-orgmesh-t-a".to_owned()),
        timeout: Duration::from_secs(600),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fake_helm_posts_the_values_to_the_api_server_of_the_context() {
    let (server, received) = stub_server(StatusCode::OK).await;
    let fakes = Fakes::with(&[("ORGMESH_FAKE_APISERVERS", &server)]);
    let release = cluster_and_release(&fakes).await;
    let version = helm::detect_version(&fakes.environment).await.unwrap();
    helm::install(&fakes.environment, &release, &version)
        .await
        .unwrap();
    let received = received.lock().unwrap().clone();
    assert_eq!(received.len(), 1);
    let request = &received[0];
    assert_eq!(request.path, "upgrade");
    assert_eq!(request.query["namespace"], "org-ingen");
    assert_eq!(request.query["release"], "backend-ingen");
    assert_eq!(request.query["chart"], "substra-backend");
    assert_eq!(request.query["version"], "26.12.0");
    assert_eq!(request.content_type.as_deref(), Some("application/yaml"));
    assert_eq!(
        request.body,
        "server:\n  defaultDomain: http://172.18.0.3:30080\n"
    );

    let releases = helm::list_releases(
        &fakes.environment,
        "org-ingen",
        &release.kubeconfig,
        release.context.as_deref(),
        &version,
    )
    .await
    .unwrap();
    assert_eq!(releases[0].name, "backend");
    assert_eq!(releases[0].namespace, "org-ingen");
    assert_eq!(releases[0].revision, 1);

    let uninstall = helm::uninstall(
        "backend-ingen",
        "org-ingen",
        &release.kubeconfig,
        release.context.as_deref(),
    );
    let error = process::run(&fakes.environment.apply(uninstall), Duration::from_secs(30))
        .await
        .unwrap_err();
    assert!(matches!(
        error,
        ProcessError::Failed { exit_code: 1, ref stderr, .. }
            if stderr == "Error: uninstall: Release not loaded: backend-ingen: release: not found"
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_upgrade_keeps_argv_exit_code_and_helms_message() {
    let (server, _) = stub_server(StatusCode::INTERNAL_SERVER_ERROR).await;
    let fakes = Fakes::with(&[("ORGMESH_FAKE_APISERVERS", &server)]);
    let release = cluster_and_release(&fakes).await;
    let version = HelmVersion {
        major: 4,
        text: "v4.2.4".to_owned(),
    };
    let error = helm::install(&fakes.environment, &release, &version)
        .await
        .unwrap_err();
    let helm::HelmError::UpgradeInstall {
        source:
            ProcessError::Failed {
                argv,
                exit_code,
                stderr,
            },
        ..
    } = &error
    else {
        panic!("expected a failed upgrade, got {error:?}");
    };
    assert_eq!(*exit_code, 1);
    assert_eq!(
        stderr,
        "Error: UPGRADE FAILED: timed out waiting for the condition"
    );
    assert_eq!(argv[..3], ["helm", "upgrade", "--install"]);
    assert!(argv.contains(&"--rollback-on-failure".to_owned()));
    let (_, recorded) = fakes.calls().pop().unwrap();
    assert_eq!(&recorded, argv);
}

#[tokio::test]
async fn create_clusters_runs_at_most_the_given_number_at_once() {
    let fakes = Fakes::with(&[("ORGMESH_FAKE_KIND_CREATE_SECONDS", "0.8")]);
    let names = ["orgmesh-t-a", "orgmesh-t-b", "orgmesh-t-c", "orgmesh-t-d"];
    let outcomes = kind::create_clusters(
        &fakes.environment,
        fakes.specs(&names),
        &fakes.options(),
        |_| {},
    )
    .await;
    assert!(outcomes.iter().all(|outcome| outcome.result.is_ok()));
    let counts: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(fakes.path().join("kind/in_flight.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(counts["max"], 2, "the default concurrency is 2");
    assert_eq!(counts["now"], 0);
}

#[tokio::test]
async fn fake_helm_rejects_a_value_after_wait() {
    let fakes = Fakes::new();
    let command = Command::new("helm").args([
        "upgrade",
        "--install",
        "backend",
        "substra-backend",
        "--wait",
        "true",
        "--kubeconfig",
        "/nonexistent",
    ]);
    let output = process::run_unchecked(&fakes.environment.apply(command), Duration::from_secs(30))
        .await
        .unwrap();
    assert_eq!(output.exit_code, 1);
    assert!(
        output
            .stderr
            .starts_with(r#"Error: "helm upgrade" requires 2 arguments"#)
    );
}
