//! `--isolation containers` against the real Docker engine: every cluster a container on a
//! run-private network, faults enforced by that network, and nothing left behind.
//!
//! Needs a Docker engine and root (partitions use `nsenter` + `iptables`). Without an engine
//! each test prints `SKIPPED: …` and returns; `ORGMESH_REQUIRE_DOCKER=1` (set by `.ci/run`)
//! turns that into a failure. The tests run one at a time: `down --all` sweeps every run.

mod common;

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use common::orgmesh;
use common::run::{Run, run_scenario, run_text};
use orgmesh::report::{CheckKind, Report};

const RUN_LABEL: &str = "dev.orgmesh.run";

/// One test at a time: they share the engine, and `down --all` sweeps every run.
static ENGINE: Mutex<()> = Mutex::new(());

/// The engine lock, or `None` (after saying why) when there is no engine to test against.
fn engine() -> Option<MutexGuard<'static, ()>> {
    common::docker_reachable().then(|| ENGINE.lock().unwrap_or_else(PoisonError::into_inner))
}

fn docker(arguments: &[&str]) -> String {
    let output = Command::new("docker")
        .args(arguments)
        .output()
        .expect("docker runs");
    assert!(
        output.status.success(),
        "docker {arguments:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Names of the containers and networks carrying `label` (a key, or key=value).
fn labelled(label: &str) -> (Vec<String>, Vec<String>) {
    let filter = format!("label={label}");
    let lines = |text: String| -> Vec<String> { text.lines().map(str::to_owned).collect() };
    (
        lines(docker(&[
            "ps",
            "-a",
            "--filter",
            &filter,
            "--format",
            "{{.Names}}",
        ])),
        lines(docker(&[
            "network",
            "ls",
            "--filter",
            &filter,
            "--format",
            "{{.Name}}",
        ])),
    )
}

fn assert_nothing_left(run_id: &str) {
    let (containers, networks) = labelled(&format!("{RUN_LABEL}={run_id}"));
    assert!(
        containers.is_empty() && networks.is_empty(),
        "run {run_id} left containers {containers:?} and networks {networks:?}"
    );
}

/// A container orgmesh did not make, which no run or sweep may touch.
struct Bystander(String);

impl Bystander {
    fn start() -> Self {
        let name = format!("orgmesh-bystander-{}", std::process::id());
        let image = orgmesh_image();
        docker(&[
            "run",
            "-d",
            "--rm",
            "--network",
            "none",
            "--name",
            &name,
            "--label",
            "dev.orgmesh.test=bystander",
            &image,
            "sim-node",
            "serve",
        ]);
        Self(name)
    }

    fn is_running(&self) -> bool {
        docker(&["ps", "--filter", &format!("name=^{}$", self.0), "-q"])
            .trim()
            .len()
            > 1
    }
}

impl Drop for Bystander {
    fn drop(&mut self) {
        let _ = Command::new("docker").args(["rm", "-f", &self.0]).output();
    }
}

/// The node image of the binary under test (`orgmesh image build` makes it if missing).
fn orgmesh_image() -> String {
    let output = orgmesh()
        .args(["image", "build"])
        .output()
        .expect("orgmesh runs");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).trim().to_owned()
}

/// `orgmesh run SCENARIO --isolation containers` in the background, its stderr read line by line.
struct Running {
    child: std::process::Child,
    lines: std::sync::mpsc::Receiver<String>,
    reader: std::thread::JoinHandle<()>,
    transcript: Vec<String>,
    _directory: tempfile::TempDir,
}

impl Running {
    fn start(scenario: &str, arguments: &[&str]) -> Self {
        let directory = tempfile::tempdir().expect("a temporary directory");
        let mut child = Command::new(assert_cmd::cargo::cargo_bin("orgmesh"))
            .current_dir(common::package_root())
            .args(["run", scenario, "--isolation", "containers"])
            .args(arguments)
            .arg("--run-dir")
            .arg(directory.path().join("run"))
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("orgmesh starts");
        let stderr = child.stderr.take().expect("piped stderr");
        let (sender, lines) = std::sync::mpsc::channel::<String>();
        let reader = std::thread::spawn(move || {
            use std::io::BufRead;
            for line in std::io::BufReader::new(stderr)
                .lines()
                .map_while(Result::ok)
            {
                if sender.send(line).is_err() {
                    break;
                }
            }
        });
        Self {
            child,
            lines,
            reader,
            transcript: Vec::new(),
            _directory: directory,
        }
    }

    /// Waits for a stderr line starting with `prefix`; returns the run id announced before it.
    fn wait_for(&mut self, prefix: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            let Ok(line) = self
                .lines
                .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            else {
                let _ = self.child.kill();
                panic!("no line `{prefix}…`:\n{}", self.transcript.join("\n"));
            };
            let found = line.starts_with(prefix);
            self.transcript.push(line);
            if found {
                return self
                    .transcript
                    .iter()
                    .find_map(|l| l.strip_prefix("orgmesh: run "))
                    .and_then(|rest| rest.split_whitespace().next())
                    .expect("the run id is announced")
                    .to_owned();
            }
        }
    }

    /// SIGINT, then the exit status (within 30 s) and the whole stderr.
    fn interrupt(mut self) -> (std::process::ExitStatus, String) {
        let signal = Command::new("kill")
            .args(["-INT", &self.child.id().to_string()])
            .status()
            .expect("kill runs");
        assert!(signal.success());
        let interrupted = Instant::now();
        let exit = loop {
            if let Some(exit) = self.child.try_wait().expect("the child can be waited for") {
                break exit;
            }
            assert!(
                interrupted.elapsed() < Duration::from_secs(30),
                "no exit within 30 s of SIGINT"
            );
            std::thread::sleep(Duration::from_millis(20));
        };
        self.reader.join().expect("the reader ends");
        self.transcript.extend(self.lines.try_iter());
        (exit, self.transcript.join("\n"))
    }
}

fn containers_run(scenario: &str) -> Run {
    run_scenario(
        Path::new(scenario),
        &["--isolation", "containers", "--seed", "5"],
    )
}

fn linked_pairs(report: &Report, kind: CheckKind, observed: &str) -> BTreeSet<(String, String)> {
    report
        .checks
        .iter()
        .filter(|c| c.check == kind && c.observed == observed)
        .map(|c| (c.from.clone(), c.to.clone()))
        .collect()
}

fn pairs(list: &[(&str, &str)]) -> BTreeSet<(String, String)> {
    list.iter()
        .map(|(from, to)| ((*from).to_owned(), (*to).to_owned()))
        .collect()
}

#[test]
fn faults_are_enforced_by_the_docker_network_and_all_detected() {
    let Some(_engine) = engine() else { return };
    let run = containers_run("scenarios/containers/site-firewall.yaml");
    assert_eq!(run.code(), Some(0), "{}", run.transcript());
    let report = run.report();
    assert!(report.checks.iter().all(|c| c.passed), "{report:#?}");
    assert_eq!(report.isolation.as_deref(), Some("containers"));
    assert!(
        run.junit()
            .contains(r#"<property name="isolation" value="containers"/>"#),
        "{}",
        run.junit()
    );
    assert!(
        run.stdout().contains("on sim (containers)"),
        "{}",
        run.stdout()
    );

    // The firewall lab → hospital: both hospital organizations, from ingen only.
    let cut = pairs(&[("ingen", "biotechnica"), ("ingen", "arasaka")]);
    assert_eq!(linked_pairs(&report, CheckKind::Reach, "error"), cut);
    assert_eq!(linked_pairs(&report, CheckKind::Auth, "error"), cut);
    for check in report.checks.iter().filter(|c| c.observed == "error") {
        let detail = check.detail.as_deref().unwrap_or_default();
        // A connection timeout to the peer's container address, not a simulated refusal.
        assert!(detail.contains("ConnectTimeoutError"), "{detail}");
        assert!(!detail.contains("127.0."), "not loopback: {detail}");
        assert!(
            detail.contains("host='172.") || detail.contains("host='192.168."),
            "{detail}"
        );
    }
    // The other direction is open: a packet filter on new connections only.
    assert_eq!(
        linked_pairs(&report, CheckKind::Reach, "200")
            .iter()
            .filter(|(from, to)| from == "biotechnica" && to == "ingen")
            .count(),
        1
    );
    // The value faults.
    assert!(
        linked_pairs(&report, CheckKind::Auth, "rejected").is_superset(&pairs(&[
            ("militech", "biotechnica"),
            ("ingen", "militech"),
            ("biotechnica", "militech"),
            ("militech", "militech"),
        ]))
    );
    assert_eq!(
        linked_pairs(&report, CheckKind::Reach, "absent"),
        pairs(&[("arasaka", "militech")])
    );
    assert_nothing_left(&report.run_id);
}

#[test]
fn a_stopped_cluster_breaks_exactly_the_links_into_it() {
    let Some(_engine) = engine() else { return };
    let run = containers_run("scenarios/containers/site-outage.yaml");
    assert_eq!(run.code(), Some(0), "{}", run.transcript());
    let report = run.report();
    assert!(report.checks.iter().all(|c| c.passed), "{report:#?}");
    let everyone = ["north", "east", "south", "west"];
    let into_site_b: BTreeSet<(String, String)> = everyone
        .iter()
        .flat_map(|from| {
            ["south", "west"]
                .iter()
                .map(move |to| ((*from).to_owned(), (*to).to_owned()))
        })
        .collect();
    assert_eq!(
        linked_pairs(&report, CheckKind::Reach, "error"),
        into_site_b
    );
    assert_eq!(linked_pairs(&report, CheckKind::Auth, "error"), into_site_b);
    assert_eq!(
        linked_pairs(&report, CheckKind::Reach, "200").len() + into_site_b.len(),
        16
    );
    assert!(
        run.stderr().contains("cluster site-b stopped"),
        "{}",
        run.stderr()
    );
    assert_nothing_left(&report.run_id);
}

#[test]
fn a_container_removed_behind_the_runs_back_is_no_teardown_failure() {
    let Some(_engine) = engine() else { return };
    let mut running = Running::start("scenarios/guide.yaml", &["--keep"]);
    let run_id = running.wait_for("warning: keeping the simulated network up");
    let (containers, _) = labelled(&format!("{RUN_LABEL}={run_id}"));
    assert_eq!(containers.len(), 2, "{containers:?}");
    docker(&["rm", "-f", &containers[0]]);
    let (exit, transcript) = running.interrupt();
    assert_eq!(exit.code(), Some(0), "{transcript}");
    assert!(
        !transcript.contains("teardown did not complete"),
        "{transcript}"
    );
    assert_nothing_left(&run_id);
}

#[test]
fn cluster_down_is_refused_where_nothing_can_stop() {
    let in_process = run_scenario(Path::new("scenarios/containers/site-outage.yaml"), &[]);
    assert_eq!(in_process.code(), Some(2), "{}", in_process.transcript());
    assert!(
        in_process
            .stderr()
            .contains("scenarios/containers/site-outage.yaml:17:5: `cluster-down` needs clusters as containers: run with `--isolation containers`"),
        "{}",
        in_process.stderr()
    );
    // The stopped cluster stays down: a second verify step could only see it gone.
    let twice = run_text(
        "twice.yaml",
        "name: twice\nclusters:\n  a: {}\n  b: {}\nchannels:\n  lab: [x, y]\norganizations:\n  x: { cluster: a }\n  y: { cluster: b }\nfaults:\n  - cluster-down: { cluster: b, at: verify }\nsteps: [deploy, link, verify, rotate-secrets, verify]\n",
        &[],
    );
    assert_eq!(twice.code(), Some(2), "{}", twice.transcript());
    assert!(
        twice.stderr().contains("twice.yaml:11:5: `cluster-down` stops its cluster for good during the first verify step, and this scenario verifies 2 times"),
        "{}",
        twice.stderr()
    );
}

#[test]
fn doctor_checks_the_engine_the_image_and_what_partitions_take() {
    let Some(_engine) = engine() else { return };
    let output = orgmesh()
        .args(["doctor", "scenarios/containers/site-firewall.yaml"])
        .args(["--provider", "sim", "--isolation", "containers"])
        .output()
        .expect("orgmesh runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(
        output.status.code(),
        Some(0),
        "{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(stdout.starts_with("ok: Docker engine API 1."), "{stdout}");
    assert!(stdout.contains("node image orgmesh-sim:"), "{stdout}");
    assert!(stdout.contains("partitions can be cut"), "{stdout}");
    let without = orgmesh()
        .env("DOCKER_HOST", "unix:///nonexistent/docker.sock")
        .args(["doctor", "--provider", "sim", "--isolation", "containers"])
        .output()
        .expect("orgmesh runs");
    assert_eq!(without.status.code(), Some(3));
}

#[test]
fn without_docker_the_run_says_so_and_exits_3() {
    let directory = tempfile::tempdir().expect("a temporary directory");
    let output = orgmesh()
        .env("DOCKER_HOST", "unix:///nonexistent/docker.sock")
        .args([
            "run",
            "scenarios/guide.yaml",
            "--isolation",
            "containers",
            "--run-dir",
        ])
        .arg(directory.path().join("run"))
        .output()
        .expect("orgmesh runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(3), "{stderr}");
    assert!(
        stderr.contains("Docker is not available at /nonexistent/docker.sock"),
        "{stderr}"
    );
    assert!(stderr.contains("start the Docker engine"), "{stderr}");
    assert!(
        !directory.path().join("run").exists(),
        "nothing was created"
    );
}

#[test]
fn failing_and_interrupted_runs_leave_nothing_and_bystanders_survive() {
    let Some(_engine) = engine() else { return };
    let bystander = Bystander::start();

    // A run whose expectation is not met exits 1 and still cleans up.
    let failing = run_text(
        "unmet.yaml",
        "name: unmet\nchannels:\n  lab: [ingen, biotechnica]\norganizations:\n  ingen: {}\n  biotechnica: {}\nexpect:\n  - { from: ingen, to: biotechnica, reach: error }\n",
        &["--isolation", "containers"],
    );
    assert_eq!(failing.code(), Some(1), "{}", failing.transcript());
    assert_nothing_left(&failing.report().run_id);

    // SIGINT while the partitioned site's requests hang: exit 130, everything removed.
    let mut running = Running::start("scenarios/containers/site-firewall.yaml", &[]);
    let run_id = running.wait_for("verify: started");
    let (containers, networks) = labelled(&format!("{RUN_LABEL}={run_id}"));
    assert_eq!((containers.len(), networks.len()), (3, 1), "the run is up");
    std::thread::sleep(Duration::from_millis(500));
    let (exit, transcript) = running.interrupt();
    assert_eq!(exit.code(), Some(130), "{transcript}");
    assert_nothing_left(&run_id);

    // Leftovers of a run that was killed outright are swept by label, and only they.
    let leftover = format!("leftover-{}", std::process::id());
    let network = format!("orgmesh-{leftover}");
    docker(&[
        "network",
        "create",
        "--internal",
        "--label",
        &format!("{RUN_LABEL}={leftover}"),
        &network,
    ]);
    docker(&[
        "create",
        "--network",
        &network,
        "--label",
        &format!("{RUN_LABEL}={leftover}"),
        &orgmesh_image(),
        "sim-node",
        "serve",
    ]);
    let down = orgmesh()
        .args(["down", "--all"])
        .output()
        .expect("orgmesh runs");
    assert_eq!(
        down.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&down.stderr)
    );
    let said = String::from_utf8_lossy(&down.stdout);
    assert!(said.contains(&network), "{said}");
    assert_nothing_left(&leftover);
    assert!(
        bystander.is_running(),
        "a container without the label was touched"
    );
}
