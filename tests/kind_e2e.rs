//! The kind and existing providers end to end without Docker (DESIGN §7, level 4): the real
//! `orgmesh` binary runs with fake `kind`, `helm` and `docker` executables first on PATH
//! (`tests/fakes/`, recording every call) and in-process fake Kubernetes API servers
//! (`support::fake_kube`) whose backend pods are simulator organizations fed with the values
//! the fake `helm` received. So the real kind/helm/kube-rs code path runs; only the cluster is
//! fake.
//!
//! Every test uses its own node IPs (127.0.22x.1), so tests run in parallel.

mod support;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;

use orgmesh::report::CheckKind;
use serde_json::Value;
use support::fake_kube::FakeCluster;
use support::{report, text};
use tempfile::TempDir;

/// Fake clusters, a state directory for the fake tools, and a run directory.
struct World {
    clusters: Vec<FakeCluster>,
    state: TempDir,
    work: TempDir,
}

fn repository() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

impl World {
    /// `count` fake clusters with node IPs 127.0.`base + i`.1.
    async fn new(count: usize, base: u8) -> Self {
        let clusters = support::fake_clusters(count, base, "fake").await;
        let state = TempDir::new().expect("a state directory");
        let work = TempDir::new().expect("a work directory");
        // /proc as a host fit for several kind clusters: this machine's real limits are lower.
        let proc = state.path().join("proc");
        std::fs::create_dir_all(proc.join("sys/fs/inotify")).unwrap();
        std::fs::write(proc.join("sys/fs/inotify/max_user_instances"), "8192\n").unwrap();
        std::fs::write(proc.join("sys/fs/inotify/max_user_watches"), "1048576\n").unwrap();
        std::fs::write(
            proc.join("meminfo"),
            "MemTotal: 67108864 kB\nMemAvailable: 62914560 kB\n",
        )
        .unwrap();
        Self {
            clusters,
            state,
            work,
        }
    }

    fn run_dir(&self) -> PathBuf {
        self.work.path().join("run")
    }

    fn command(&self, arguments: &[&str]) -> tokio::process::Command {
        let fakes = repository().join("tests/fakes");
        let path = format!(
            "{}:{}",
            fakes.display(),
            std::env::var("PATH").unwrap_or_default()
        );
        let urls: Vec<String> = self.clusters.iter().map(FakeCluster::url).collect();
        let mut command = tokio::process::Command::new(assert_cmd::cargo::cargo_bin("orgmesh"));
        command
            .args(arguments)
            .current_dir(repository())
            .env("PATH", path)
            .env("NO_COLOR", "1")
            .env("ORGMESH_FAKE_STATE", self.state.path())
            .env("ORGMESH_FAKE_APISERVERS", urls.join(","))
            .env("ORGMESH_PROC_ROOT", self.state.path().join("proc"))
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .kill_on_drop(true);
        command
    }

    async fn orgmesh(&self, arguments: &[&str]) -> Output {
        let child = self.command(arguments).spawn().expect("orgmesh starts");
        tokio::time::timeout(Duration::from_secs(120), child.wait_with_output())
            .await
            .expect("orgmesh finishes within two minutes")
            .expect("orgmesh runs")
    }

    /// Every call the fake tools recorded: (tool, argv).
    fn calls(&self) -> Vec<(String, Vec<String>)> {
        let text =
            std::fs::read_to_string(self.state.path().join("calls.jsonl")).unwrap_or_default();
        text.lines()
            .map(|line| {
                let call: Value = serde_json::from_str(line).expect("a JSON line");
                let tool = call["tool"].as_str().unwrap_or_default().to_owned();
                let argv = call["argv"]
                    .as_array()
                    .map(|a| {
                        a.iter()
                            .map(|v| v.as_str().unwrap_or_default().to_owned())
                            .collect()
                    })
                    .unwrap_or_default();
                (tool, argv)
            })
            .collect()
    }

    /// The calls as lines, with run-specific paths, ids and URLs replaced, for a snapshot.
    /// Clusters are created and releases installed concurrently, so within each stage the
    /// lines are sorted by cluster or release; a release's own calls keep their order.
    fn redacted_calls(&self, run_id: &str) -> String {
        let run_dir = self.run_dir().display().to_string();
        let mut listings = 0;
        let mut lines: Vec<(u8, String, String)> = Vec::new();
        for (_, argv) in self.calls() {
            let mut line = argv.join(" ");
            line = line
                .replace(&run_dir, "<run-dir>")
                .replace(run_id, "<run-id>");
            for cluster in &self.clusters {
                line = line.replace(&cluster.url(), "<api-server>");
            }
            let named = argv
                .iter()
                .position(|a| a == "--name")
                .and_then(|i| argv.get(i + 1));
            let subject = named.or(argv.get(3)).cloned().unwrap_or_default();
            let stage = match (
                argv.first().map(String::as_str),
                argv.get(1).map(String::as_str),
            ) {
                (Some("kind"), Some("create")) => 1,
                (Some("helm"), Some("upgrade")) if subject == "orchestrator" => 2,
                (Some("helm"), Some("upgrade")) => 3,
                (Some("kind"), Some("get")) => {
                    listings += 1;
                    if listings == 1 { 4 } else { 6 }
                }
                (Some("kind"), Some("delete")) => 5,
                _ => 0,
            };
            let key = if stage == 0 { String::new() } else { subject };
            lines.push((stage, key, line));
        }
        lines.sort_by(|a, b| (a.0, &a.1).cmp(&(b.0, &b.1)));
        lines
            .into_iter()
            .map(|(_, _, line)| line)
            .collect::<Vec<_>>()
            .join("\n")
            + "\n"
    }

    /// `kind get clusters`, through the fake.
    async fn kind_clusters(&self) -> Vec<String> {
        let fakes = repository().join("tests/fakes");
        let output = tokio::process::Command::new(fakes.join("kind"))
            .args(["get", "clusters"])
            .env("ORGMESH_FAKE_STATE", self.state.path())
            .output()
            .await
            .expect("the fake kind runs");
        String::from_utf8_lossy(&output.stdout)
            .lines()
            .map(str::to_owned)
            .collect()
    }
}

/// Every `secret:` value in the run's values files.
fn secrets(run_dir: &Path) -> Vec<String> {
    let mut found = Vec::new();
    let mut stack = vec![run_dir.join("values")];
    while let Some(directory) = stack.pop() {
        for entry in std::fs::read_dir(&directory)
            .into_iter()
            .flatten()
            .flatten()
        {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else if let Ok(content) = std::fs::read_to_string(&path) {
                for line in content.lines() {
                    if let Some(secret) = line.trim().strip_prefix("secret: ") {
                        found.push(secret.trim_matches('"').to_owned());
                    }
                }
            }
        }
    }
    found.sort();
    found.dedup();
    found
}

fn files_under(directory: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut stack = vec![directory.to_path_buf()];
    while let Some(directory) = stack.pop() {
        for entry in std::fs::read_dir(&directory)
            .into_iter()
            .flatten()
            .flatten()
        {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else {
                files.push(path);
            }
        }
    }
    files
}

/// On this machine there is no kind and no helm: preflight fails before anything exists.
#[tokio::test(flavor = "multi_thread")]
async fn without_kind_the_run_stops_in_preflight_and_creates_nothing() {
    let work = TempDir::new().unwrap();
    let empty_path = work.path().join("bin");
    std::fs::create_dir_all(&empty_path).unwrap();
    let run_dir = work.path().join("run");
    let output = tokio::process::Command::new(assert_cmd::cargo::cargo_bin("orgmesh"))
        .args([
            "run",
            "scenarios/guide.yaml",
            "--provider",
            "kind",
            "--run-dir",
        ])
        .arg(&run_dir)
        .current_dir(repository())
        .env("PATH", &empty_path)
        .env("NO_COLOR", "1")
        .output()
        .await
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(3), "{}", text(&output));
    assert!(stderr.contains("kind is not installed"), "{stderr}");
    assert!(stderr.contains("https://kind.sigs.k8s.io"), "{stderr}");
    assert!(stderr.contains("helm is not installed"), "{stderr}");
    assert!(stderr.contains("docker"), "{stderr}");
    assert!(!run_dir.exists(), "preflight created the run directory");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_guide_on_kind_installs_links_once_verifies_and_deletes_its_clusters() {
    let world = World::new(2, 220).await;
    let run_dir = world.run_dir();
    let output = world
        .orgmesh(&[
            "run",
            "scenarios/guide.yaml",
            "--provider",
            "kind",
            "--seed",
            "1",
            "--run-dir",
            run_dir.to_str().unwrap(),
        ])
        .await;
    assert_eq!(output.status.code(), Some(0), "{}", text(&output));
    let report = report(&run_dir);
    assert!(report.passed);
    assert_eq!(report.provider, "kind");

    // Four directed links, reach and auth each, verified through kube-rs exec.
    support::assert_guide_links_passed(&report);
    let execs: usize = world
        .clusters
        .iter()
        .map(|c| c.requests().iter().filter(|r| r.contains("/exec?")).count())
        .sum();
    assert!(
        execs >= 4,
        "the checks ran through the exec endpoint ({execs} execs)"
    );

    // Two clusters with their own kubeconfigs and non-overlapping subnets.
    let calls = world.calls();
    let creates: Vec<&Vec<String>> = calls
        .iter()
        .filter(|(t, a)| t == "kind" && a.get(1).map(String::as_str) == Some("create"))
        .map(|(_, a)| a)
        .collect();
    assert_eq!(creates.len(), 2, "{calls:?}");
    let flag = |argv: &Vec<String>, name: &str| {
        argv.iter()
            .position(|a| a == name)
            .and_then(|i| argv.get(i + 1))
            .cloned()
            .unwrap_or_default()
    };
    let kubeconfigs: Vec<String> = creates.iter().map(|a| flag(a, "--kubeconfig")).collect();
    assert_ne!(kubeconfigs[0], kubeconfigs[1]);
    for kubeconfig in &kubeconfigs {
        assert!(
            kubeconfig.starts_with(&run_dir.display().to_string()),
            "kubeconfig {kubeconfig} outside the run directory"
        );
        assert!(!kubeconfig.contains(".kube/config"));
    }
    let subnets: Vec<String> = creates
        .iter()
        .map(|a| {
            std::fs::read_to_string(flag(a, "--config"))
                .expect("the kind config is kept in the run directory")
        })
        .map(|config| {
            config
                .lines()
                .filter(|l| l.contains("Subnet"))
                .map(str::trim)
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect();
    assert_ne!(
        subnets[0], subnets[1],
        "clusters share subnets: {subnets:?}"
    );
    for (a, b) in [(0, 1), (1, 0)] {
        for subnet in subnets[a].split_whitespace().filter(|w| w.contains('/')) {
            assert!(!subnets[b].contains(subnet), "{subnet} is in both clusters");
        }
    }

    // Orchestrator first, both backends without links, then exactly one upgrade each.
    let upgrades: Vec<String> = calls
        .iter()
        .filter(|(t, a)| t == "helm" && a.get(1).map(String::as_str) == Some("upgrade"))
        .map(|(_, a)| a[3].clone())
        .collect();
    assert_eq!(
        upgrades.first().map(String::as_str),
        Some("orchestrator"),
        "{upgrades:?}"
    );
    for release in ["backend-ingen", "backend-biotechnica"] {
        assert_eq!(
            upgrades.iter().filter(|r| *r == release).count(),
            2,
            "{release}: {upgrades:?}"
        );
        let first =
            std::fs::read_to_string(run_dir.join(format!("values/releases/{release}-1.yaml")))
                .unwrap();
        let second =
            std::fs::read_to_string(run_dir.join(format!("values/releases/{release}-2.yaml")))
                .unwrap();
        assert!(
            first.contains("incomingOrganizations: []")
                && first.contains("outgoingOrganizations: []"),
            "{first}"
        );
        assert_eq!(
            second.matches("secret: ").count(),
            4,
            "two incoming and two outgoing entries: {second}"
        );
        assert!(second.contains("nodePort: 30800") && second.contains("type: NodePort"));
    }
    let position = |name: &str| upgrades.iter().position(|r| r == name).unwrap();
    assert!(position("orchestrator") < position("backend-ingen"));

    // Both clusters deleted, checked with `kind get clusters`.
    let deletes = calls
        .iter()
        .filter(|(t, a)| t == "kind" && a.get(1).map(String::as_str) == Some("delete"))
        .count();
    assert_eq!(deletes, 2);
    assert!(world.kind_clusters().await.is_empty());
    let last = calls.last().map(|(_, a)| a.join(" ")).unwrap_or_default();
    assert_eq!(last, "kind get clusters", "deletion is verified last");

    insta::assert_snapshot!("guide_on_kind_calls", world.redacted_calls(&report.run_id));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failing_organization_gets_diagnostics_before_teardown_without_secrets() {
    let world = World::new(2, 222).await;
    let scenario = world.work.path().join("failing.yaml");
    let guide = std::fs::read_to_string(repository().join("scenarios/guide.yaml")).unwrap();
    std::fs::write(
        &scenario,
        format!("{guide}faults:\n  - wrong-secret: {{ from: ingen, to: biotechnica }}\nexpect:\n  - {{ from: biotechnica, to: ingen, auth: rejected }}\n"),
    )
    .unwrap();
    let run_dir = world.run_dir();
    let output = world
        .orgmesh(&[
            "run",
            scenario.to_str().unwrap(),
            "--provider",
            "kind",
            "--run-dir",
            run_dir.to_str().unwrap(),
        ])
        .await;
    assert_eq!(output.status.code(), Some(1), "{}", text(&output));
    let report = report(&run_dir);
    let detected = report
        .check(CheckKind::Auth, "ingen", "biotechnica")
        .unwrap();
    assert!(
        detected.passed && detected.observed == "rejected",
        "{detected:?}"
    );
    let failed = report
        .check(CheckKind::Auth, "biotechnica", "ingen")
        .unwrap();
    assert!(!failed.passed);
    assert_eq!(
        failed.diagnostics.as_deref(),
        Some("diagnostics/biotechnica/")
    );

    let directory = run_dir.join("diagnostics/biotechnica");
    for file in [
        "pods.txt",
        "events.txt",
        "server.log",
        "migrations.log",
        "helm-status.json",
        "get_outgoing_organization.txt",
        "credential-probe.txt",
    ] {
        let content = std::fs::read_to_string(directory.join(file))
            .unwrap_or_else(|_| panic!("{file} is collected"));
        assert!(!content.trim().is_empty(), "{file} is empty");
    }
    assert!(
        std::fs::read_to_string(directory.join("pods.txt"))
            .unwrap()
            .contains("backend-biotechnica")
    );
    assert!(
        !run_dir.join("diagnostics/ingen").exists(),
        "only failing organizations get diagnostics"
    );
    // Collected before teardown: the clusters are gone now.
    assert!(world.kind_clusters().await.is_empty());

    let secrets = secrets(&run_dir);
    assert!(secrets.len() >= 4);
    let mut outputs: Vec<(String, String)> = vec![
        (
            "stdout".into(),
            String::from_utf8_lossy(&output.stdout).into_owned(),
        ),
        (
            "stderr".into(),
            String::from_utf8_lossy(&output.stderr).into_owned(),
        ),
    ];
    for file in files_under(&run_dir.join("diagnostics"))
        .into_iter()
        .chain([run_dir.join("report.json"), run_dir.join("junit.xml")])
    {
        outputs.push((
            file.display().to_string(),
            std::fs::read_to_string(&file).unwrap_or_default(),
        ));
    }
    for (name, content) in &outputs {
        for secret in &secrets {
            assert!(!content.contains(&secret[..32]), "{name} contains a secret");
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn an_interrupted_install_deletes_every_cluster_it_created_and_nothing_else() {
    let world = World::new(3, 224).await;
    // The user's own cluster, made directly with (fake) kind before orgmesh runs.
    let fakes = repository().join("tests/fakes");
    let user_kubeconfig = world.work.path().join("user.kubeconfig");
    let user_config = world.work.path().join("user-kind.yaml");
    std::fs::write(
        &user_config,
        "kind: Cluster\napiVersion: kind.x-k8s.io/v1alpha4\n",
    )
    .unwrap();
    let created = std::process::Command::new(fakes.join("kind"))
        .args(["create", "cluster", "--name", "user-cluster", "--config"])
        .arg(&user_config)
        .arg("--kubeconfig")
        .arg(&user_kubeconfig)
        .env("ORGMESH_FAKE_STATE", world.state.path())
        .env("ORGMESH_FAKE_APISERVERS", world.clusters[2].url())
        .output()
        .unwrap();
    assert!(
        created.status.success(),
        "{}",
        String::from_utf8_lossy(&created.stderr)
    );

    let run_dir = world.run_dir();
    let mut command = world.command(&[
        "run",
        "scenarios/guide.yaml",
        "--provider",
        "kind",
        "--run-dir",
        run_dir.to_str().unwrap(),
    ]);
    command.env("ORGMESH_FAKE_HELM_SECONDS", "30");
    let mut child = command.spawn().unwrap();
    // Wait until the install phase has started, then interrupt.
    let mut started = false;
    for _ in 0..200 {
        let upgrades = world
            .calls()
            .iter()
            .filter(|(t, a)| t == "helm" && a.get(1).map(String::as_str) == Some("upgrade"))
            .count();
        if upgrades > 0 {
            started = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(started, "the install phase never started");
    let pid = child.id().unwrap().to_string();
    std::process::Command::new("kill")
        .args(["-INT", &pid])
        .status()
        .unwrap();
    let status = tokio::time::timeout(Duration::from_secs(20), child.wait())
        .await
        .expect("orgmesh stops within 20 s")
        .unwrap();
    assert_eq!(status.code(), Some(130));
    assert_eq!(
        world.kind_clusters().await,
        vec!["user-cluster".to_owned()],
        "only the user's cluster is left"
    );

    // `orgmesh down --all` leaves the user's cluster alone too.
    let output = world.orgmesh(&["down", "--all"]).await;
    assert_eq!(output.status.code(), Some(0), "{}", text(&output));
    assert_eq!(world.kind_clusters().await, vec!["user-cluster".to_owned()]);
    let touched_user = world.calls().iter().any(|(t, a)| {
        t == "kind"
            && a.get(1).map(String::as_str) == Some("delete")
            && a.iter().any(|x| x == "user-cluster")
    });
    assert!(!touched_user, "orgmesh deleted a cluster it did not create");
}

/// A kubeconfig with two contexts, one per fake cluster.
fn two_context_kubeconfig(world: &World) -> PathBuf {
    let mut clusters = Vec::new();
    let mut contexts = Vec::new();
    for (index, cluster) in world.clusters.iter().enumerate() {
        clusters.push(serde_json::json!({"name": format!("site-{index}"), "cluster": {"server": cluster.url()}}));
        contexts.push(serde_json::json!({"name": format!("ctx-{index}"), "context": {"cluster": format!("site-{index}"), "user": "fake"}}));
    }
    let kubeconfig = serde_json::json!({
        "apiVersion": "v1", "kind": "Config", "current-context": "ctx-0",
        "clusters": clusters, "contexts": contexts,
        "users": [{"name": "fake", "user": {}}],
    });
    let path = world.work.path().join("kubeconfig.json");
    std::fs::write(&path, kubeconfig.to_string()).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    path
}

fn existing_scenario(world: &World, kubeconfig: &Path) -> PathBuf {
    let ip = |index: usize| world.clusters[index].node_ip();
    let text = format!(
        "name: existing-pair
description: Two organizations on two existing clusters.
provider: existing
clusters:
  site-a: {{ context: ctx-0, kubeconfig: {kubeconfig} }}
  site-b: {{ context: ctx-1, kubeconfig: {kubeconfig} }}
channels:
  shared: [ingen, biotechnica]
organizations:
  ingen:
    cluster: site-a
    mspId: IngenMSP
    address: http://{a}:30810
    values: {{ server: {{ service: {{ type: NodePort, nodePort: 30810 }} }} }}
  biotechnica:
    cluster: site-b
    mspId: BiotechnicaMSP
    address: http://{b}:30810
    values: {{ server: {{ service: {{ type: NodePort, nodePort: 30810 }} }} }}
",
        kubeconfig = kubeconfig.display(),
        a = ip(0),
        b = ip(1),
    );
    let path = world.work.path().join("existing.yaml");
    std::fs::write(&path, text).unwrap();
    path
}

#[tokio::test(flavor = "multi_thread")]
async fn existing_clusters_are_used_as_they_are_and_only_this_runs_releases_are_removed() {
    let world = World::new(2, 226).await;
    // A release the user installed in another namespace: it must survive the run.
    let (status, body) = world.clusters[1]
        .request("POST", "/orgmesh-fake/helm/upgrade?namespace=monitoring&release=prometheus&chart=prometheus&version=1.0.0", "{}")
        .await;
    assert_eq!(status, 200, "{body}");
    let kubeconfig = two_context_kubeconfig(&world);
    let scenario = existing_scenario(&world, &kubeconfig);
    let run_dir = world.run_dir();
    let output = world
        .orgmesh(&[
            "run",
            scenario.to_str().unwrap(),
            "--run-dir",
            run_dir.to_str().unwrap(),
        ])
        .await;
    assert_eq!(output.status.code(), Some(0), "{}", text(&output));
    let report = report(&run_dir);
    assert!(report.passed);
    assert_eq!(report.provider, "existing");
    assert_eq!(
        report
            .checks
            .iter()
            .filter(|c| c.check != CheckKind::Complete)
            .count(),
        8
    );

    let calls = world.calls();
    assert!(
        calls.iter().all(|(tool, _)| tool != "kind"),
        "the existing provider called kind: {calls:?}"
    );
    let uninstalls: Vec<String> = calls
        .iter()
        .filter(|(t, a)| t == "helm" && a.get(1).map(String::as_str) == Some("uninstall"))
        .map(|(_, a)| a[2].clone())
        .collect();
    assert_eq!(
        uninstalls.len(),
        3,
        "orchestrator and both backends: {uninstalls:?}"
    );
    assert!(!uninstalls.iter().any(|r| r == "prometheus"));
    assert_eq!(
        world.clusters[1].helm_releases().await,
        vec!["monitoring/prometheus".to_owned()]
    );
    assert!(world.clusters[0].helm_releases().await.is_empty());
    let kubeconfig_after = std::fs::read_to_string(&kubeconfig).unwrap();
    assert!(
        kubeconfig_after.contains("ctx-1"),
        "the user's kubeconfig is left as it was"
    );
}

/// Runs the two-context existing scenario, which must be refused as an infrastructure error
/// (exit 3); returns its stderr.
async fn refused_existing_run(world: &World) -> String {
    let kubeconfig = two_context_kubeconfig(world);
    let scenario = existing_scenario(world, &kubeconfig);
    let run_dir = world.run_dir();
    let output = world
        .orgmesh(&[
            "run",
            scenario.to_str().unwrap(),
            "--run-dir",
            run_dir.to_str().unwrap(),
        ])
        .await;
    assert_eq!(output.status.code(), Some(3), "{}", text(&output));
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_namespace_holding_a_foreign_release_is_refused() {
    let world = World::new(2, 228).await;
    let (status, body) = world.clusters[1]
        .request("POST", "/orgmesh-fake/helm/upgrade?namespace=biotechnica&release=legacy-backend&chart=substra-backend&version=26.15.3", "organizationName: legacy\nserver:\n  service:\n    nodePort: 30899\n")
        .await;
    assert!(status == 200 || status == 500, "{body}");
    let stderr = refused_existing_run(&world).await;
    assert!(
        stderr.contains("namespace `biotechnica` already holds release `legacy-backend`"),
        "{stderr}"
    );
    // The foreign release is untouched; what orgmesh installed before the refusal is removed.
    assert!(
        world.clusters[1]
            .helm_releases()
            .await
            .contains(&"biotechnica/legacy-backend".to_owned())
    );
    assert!(!world.calls().iter().any(|(t, a)| t == "helm"
        && a.iter().any(|x| x == "legacy-backend")
        && a.get(1).map(String::as_str) == Some("uninstall")));
    assert!(
        world.clusters[0].helm_releases().await.is_empty(),
        "this run's releases were not uninstalled"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn images_are_preloaded_into_every_cluster_and_subchart_images_overridden() {
    let world = World::new(2, 230).await;
    let guide = std::fs::read_to_string(repository().join("scenarios/guide.yaml")).unwrap();
    let scenario = world.work.path().join("images.yaml");
    std::fs::write(
        &scenario,
        format!(
            "{guide}images: [ghcr.io/substra/substra-backend:1.0.1]\ncharts:\n  backend:\n    version: 26.15.3\n    images: {{ postgresql: bitnamilegacy/postgresql }}\n"
        ),
    )
    .unwrap();
    let run_dir = world.run_dir();
    let output = world
        .orgmesh(&[
            "run",
            scenario.to_str().unwrap(),
            "--provider",
            "kind",
            "--run-dir",
            run_dir.to_str().unwrap(),
        ])
        .await;
    assert_eq!(output.status.code(), Some(0), "{}", text(&output));
    let loads: Vec<String> = world
        .calls()
        .into_iter()
        .filter(|(t, a)| t == "kind" && a.get(1).map(String::as_str) == Some("load"))
        .map(|(_, a)| a.join(" "))
        .collect();
    assert_eq!(loads.len(), 2, "one load per cluster: {loads:?}");
    for cluster in ["cluster-1", "cluster-2"] {
        assert!(
            loads.iter().any(
                |l| l.contains("docker-image ghcr.io/substra/substra-backend:1.0.1")
                    && l.ends_with(cluster)
            ),
            "{cluster}: {loads:?}"
        );
    }
    let values =
        std::fs::read_to_string(run_dir.join("values/releases/backend-ingen-1.yaml")).unwrap();
    assert!(
        values.contains("repository: bitnamilegacy/postgresql"),
        "{values}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_namespace_with_pods_orgmesh_did_not_make_is_refused() {
    let world = World::new(2, 232).await;
    world.clusters[0].add_pod("ingen", "someones-app-7d9f", &[("app", "someones-app")]);
    let stderr = refused_existing_run(&world).await;
    assert!(
        stderr.contains("namespace `ingen` is not empty (pod `someones-app-7d9f`"),
        "{stderr}"
    );
}

/// The qualification steps through the kind provider (issue acceptance 4): upgrades counted
/// per organization from the fake helm's calls — a rotated pair upgrades its two
/// organizations only, an added organization is installed and only its peers upgraded, a
/// removed one is `helm uninstall`ed and only its former peers upgraded — and the rotation and
/// revoked checks reach the backends from the harness through their node ports.
#[tokio::test(flavor = "multi_thread")]
async fn the_qualification_steps_on_kind_upgrade_only_the_affected_organizations() {
    let world = World::new(2, 234).await;
    let run_dir = world.run_dir();
    let scenario = world.work.path().join("steps.yaml");
    std::fs::write(
        &scenario,
        "name: steps
clusters:
  cluster-1: {}
  cluster-2: {}
channels:
  our-channel: [ingen, biotechnica, tyrell]
  side-channel: [tyrell]
organizations:
  ingen: { cluster: cluster-1 }
  biotechnica: { cluster: cluster-2 }
  tyrell: { cluster: cluster-2 }
steps:
  - deploy
  - link
  - verify
  - rotate-secrets: { links: [[ingen, biotechnica]] }
  - verify
  - add-organization: { name: cyberdyne, cluster: cluster-1, channels: [side-channel] }
  - verify
  - remove-organization: { name: ingen }
  - verify
",
    )
    .unwrap();
    let output = world
        .orgmesh(&[
            "run",
            scenario.to_str().unwrap(),
            "--provider",
            "kind",
            "--seed",
            "1",
            "--run-dir",
            run_dir.to_str().unwrap(),
        ])
        .await;
    assert_eq!(output.status.code(), Some(0), "{}", text(&output));
    let report = report(&run_dir);
    assert!(report.passed);

    let calls = world.calls();
    let count = |command: &str, release: &str| {
        calls
            .iter()
            .filter(|(t, a)| {
                t == "helm"
                    && a.get(1).map(String::as_str) == Some(command)
                    && a.get(2).map(String::as_str) == Some(release)
                    || t == "helm"
                        && a.get(1).map(String::as_str) == Some(command)
                        && a.get(3).map(String::as_str) == Some(release)
            })
            .count()
    };
    // install + link + rotation; + removal of ingen for biotechnica.
    assert_eq!(count("upgrade", "backend-ingen"), 3, "{calls:?}");
    assert_eq!(count("upgrade", "backend-biotechnica"), 4, "{calls:?}");
    // install + link + cyberdyne joining its side channel; + ingen leaving.
    assert_eq!(count("upgrade", "backend-tyrell"), 4, "{calls:?}");
    // Installed once; ingen leaving does not concern it.
    assert_eq!(count("upgrade", "backend-cyberdyne"), 1, "{calls:?}");
    // Installed, then upgraded for each channel membership change.
    assert_eq!(count("upgrade", "orchestrator"), 3, "{calls:?}");
    // Each orchestrator upgrade is followed by a rollout restart: its channel ConfigMap is
    // mounted by subPath and never refreshed otherwise.
    let restarts = world
        .clusters
        .iter()
        .flat_map(FakeCluster::requests)
        .filter(|r| {
            r.starts_with(
                "PATCH /apis/apps/v1/namespaces/orchestrator/deployments/orchestrator-server",
            )
        })
        .count();
    assert_eq!(restarts, 2, "one restart per orchestrator upgrade");
    assert_eq!(count("uninstall", "backend-ingen"), 1, "{calls:?}");

    let kinds = |step: &str, kind: CheckKind| {
        report
            .checks
            .iter()
            .filter(|c| c.step == step && c.check == kind)
            .map(|c| format!("{}→{} {}", c.from, c.to, c.observed))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        kinds("verify-2", CheckKind::Rotation),
        [
            "ingen→biotechnica new accepted, old rejected",
            "biotechnica→ingen new accepted, old rejected"
        ]
    );
    assert_eq!(
        kinds("verify-4", CheckKind::Revoked),
        ["ingen→biotechnica rejected", "ingen→tyrell rejected"]
    );
}
