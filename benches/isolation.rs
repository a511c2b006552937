//! What container isolation costs: the guide's scenario (2 organizations, 2 clusters) and the
//! eight-organization consortium (3 clusters), each run by the `orgmesh` binary as a child
//! process in-process and with `--isolation containers`, with wall time, the phases of
//! report.json and peak resident sets.
//!
//! Each scenario × isolation gets one warm-up run and then [`RUNS`] measured ones. A run's
//! wall time is the whole `orgmesh run`, from spawning the process to its exit: process start,
//! preflight and writing the report included, so the column `other` shows what the phases of
//! report.json leave out. Peak memory is VmHWM from `/proc/<pid>/status`, sampled every
//! [`SAMPLE_INTERVAL`] while the process lives; VmHWM only grows, so the last value read is the
//! peak up to that moment. With containers, the run's node containers are found by the run's
//! label, and the host PID of each (its `orgmesh sim-node serve`, PID 1 inside) is sampled the
//! same way; the table shows their sum. containerd-shim, dockerd and the short-lived `orgmesh
//! sim-node exec` processes of the checks are not counted, and the output says so.
//!
//! The node image is built once before anything is measured (`orgmesh image build`), so no run
//! pays for it. Without a reachable Docker engine the container rows are skipped and the
//! in-process ones still measured. After every container run the bench checks that nothing
//! carries the run's label; anything left is removed and reported, because a benchmark must
//! not leave containers behind any more than a test may.
//!
//! A run that fails is not measured: its timing says nothing about a passing network. Run with
//! `cargo bench --bench isolation`.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::thread;
use std::time::{Duration, Instant};

/// Measured runs per scenario and isolation, after one warm-up run.
const RUNS: usize = 5;
/// How often the peak resident sets are read.
const SAMPLE_INTERVAL: Duration = Duration::from_millis(10);
/// How often `docker ps` looks for the run's containers until every cluster's is found.
const DISCOVERY_INTERVAL: Duration = Duration::from_millis(100);
/// The label on everything a run creates in Docker; its value is the run id.
const RUN_LABEL: &str = "dev.orgmesh.run";
/// The phases of report.json shown, in order.
const PHASES: [&str; 5] = ["clusters", "deploy", "link", "verify", "teardown"];
/// The scenarios compared, relative to the crate root.
const SCENARIOS: [&str; 2] = ["scenarios/guide.yaml", "scenarios/consortium.yaml"];

/// Where the scenario clusters run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Isolation {
    InProcess,
    Containers,
}

impl Isolation {
    fn flag(self) -> &'static str {
        match self {
            Self::InProcess => "in-process",
            Self::Containers => "containers",
        }
    }
}

/// One measured `orgmesh run`.
struct Sample {
    wall: Duration,
    /// Milliseconds per phase name, from report.json.
    phases: HashMap<String, u64>,
    /// The report's own `duration_ms`.
    report_ms: u64,
    harness_peak_kib: Option<u64>,
    /// The sum of the nodes' peaks and how many nodes it covers (containers only).
    nodes_peak_kib: Option<(u64, usize)>,
    /// Docker commands the bench ran to find the nodes while the run was under way.
    docker_calls: usize,
}

/// The peak resident set in KiB of a live process, from `/proc/<pid>/status`; `None` once it
/// has exited (a zombie has no memory lines) or when the process is not visible here.
fn peak_resident_kib(pid: u32) -> Option<u64> {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()?
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()
}

/// A command's standard output, trimmed, or what went wrong.
fn output(program: &str, arguments: &[&str]) -> Result<String, String> {
    let output = Command::new(program)
        .args(arguments)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run {program}: {e}"))?;
    if output.status.success() {
        Ok(String::from_utf8_lossy(&output.stdout).trim().to_owned())
    } else {
        let stderr = String::from_utf8_lossy(&output.stderr);
        let reason = stderr
            .lines()
            .find(|line| !line.trim().is_empty())
            .unwrap_or("no message");
        Err(format!(
            "`{program} {}` exited with {}: {reason}",
            arguments.join(" "),
            output.status
        ))
    }
}

/// The run's containers, running or not, and its networks, by label.
fn labelled_leftovers(run_id: &str) -> (Vec<String>, Vec<String>) {
    let filter = format!("label={RUN_LABEL}={run_id}");
    let ids = |arguments: &[&str]| -> Vec<String> {
        output("docker", arguments)
            .map(|text| text.lines().map(str::to_owned).collect())
            .unwrap_or_default()
    };
    (
        ids(&["ps", "-a", "-q", "--filter", &filter]),
        ids(&["network", "ls", "-q", "--filter", &filter]),
    )
}

/// Removes whatever carries the run's label and says so; a clean run prints nothing.
fn remove_leftovers(run_id: &str) {
    let (containers, networks) = labelled_leftovers(run_id);
    if containers.is_empty() && networks.is_empty() {
        return;
    }
    println!(
        "warning: run {run_id} left {} container(s) and {} network(s) labelled {RUN_LABEL}={run_id}; removing them",
        containers.len(),
        networks.len()
    );
    for container in &containers {
        if let Err(error) = output("docker", &["rm", "-f", container]) {
            println!("warning: {error}");
        }
    }
    for network in &networks {
        if let Err(error) = output("docker", &["network", "rm", network]) {
            println!("warning: {error}");
        }
    }
}

/// Finds the host PIDs of the run's node containers: polls `docker ps` by label until
/// `clusters` running containers each have a PID, or the run ends, and returns how many
/// Docker commands that took. Only this phase calls Docker (while the run brings its clusters
/// up, competing with it for the cores); the sampling that follows only reads `/proc`.
fn discover_nodes(
    run_id: mpsc::Receiver<String>,
    clusters: usize,
    finished: Arc<AtomicBool>,
    pids: Arc<Mutex<Vec<u32>>>,
) -> usize {
    let Ok(run_id) = run_id.recv() else {
        return 0;
    };
    let mut calls = 0;
    let filter = format!("label={RUN_LABEL}={run_id}");
    let mut found: HashMap<String, u32> = HashMap::new();
    while !finished.load(Ordering::Relaxed) && found.len() < clusters {
        calls += 1;
        if let Ok(listed) = output("docker", &["ps", "-q", "--no-trunc", "--filter", &filter]) {
            for id in listed.lines() {
                if found.contains_key(id) {
                    continue;
                }
                calls += 1;
                let pid = output("docker", &["inspect", "-f", "{{.State.Pid}}", id])
                    .ok()
                    .and_then(|text| text.parse::<u32>().ok())
                    .filter(|pid| *pid > 0);
                if let Some(pid) = pid {
                    found.insert(id.to_owned(), pid);
                    pids.lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner)
                        .push(pid);
                }
            }
        }
        thread::sleep(DISCOVERY_INTERVAL);
    }
    calls
}

/// Runs `orgmesh run` once and measures it; `Err` when it does not pass.
fn run_once(
    binary: &Path,
    scenario: &Path,
    clusters: usize,
    isolation: Isolation,
) -> Result<Sample, String> {
    let scratch = tempfile::tempdir().map_err(|e| format!("no temporary directory: {e}"))?;
    let run_dir = scratch.path().join("run");
    let stdout_path = scratch.path().join("stdout");
    let stdout = std::fs::File::create(&stdout_path)
        .map_err(|e| format!("cannot create {}: {e}", stdout_path.display()))?;
    // Not quiet: the first progress line names the run id, which finds its containers.
    let started = Instant::now();
    let mut child = Command::new(binary)
        .arg("run")
        .arg(scenario)
        .args(["--isolation", isolation.flag(), "--run-dir"])
        .arg(&run_dir)
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(stdout)
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", binary.display()))?;
    let pid = child.id();
    let stderr = child.stderr.take().ok_or("no stderr pipe")?;

    let (id_sender, id_receiver) = mpsc::channel();
    let reader = thread::spawn(move || {
        let mut lines = Vec::new();
        let mut sender = Some(id_sender);
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let run_id = line
                .strip_prefix("orgmesh: run ")
                .and_then(|rest| rest.split_whitespace().next());
            if let (Some(run_id), Some(sender)) = (run_id, sender.take()) {
                let _ = sender.send(run_id.to_owned());
            }
            lines.push(line);
        }
        lines
    });
    let waiter = thread::spawn(move || {
        let status = child.wait();
        (status, Instant::now())
    });
    let finished = Arc::new(AtomicBool::new(false));
    let node_pids = Arc::new(Mutex::new(Vec::new()));
    let discovery = (isolation == Isolation::Containers).then(|| {
        let (finished, node_pids) = (finished.clone(), node_pids.clone());
        thread::spawn(move || discover_nodes(id_receiver, clusters, finished, node_pids))
    });

    let mut harness_peak = None;
    let mut node_peaks: HashMap<u32, u64> = HashMap::new();
    while !waiter.is_finished() {
        if let Some(kib) = peak_resident_kib(pid) {
            harness_peak = Some(kib);
        }
        let pids = node_pids
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone();
        for node in pids {
            if let Some(kib) = peak_resident_kib(node) {
                node_peaks.insert(node, kib);
            }
        }
        thread::sleep(SAMPLE_INTERVAL);
    }
    finished.store(true, Ordering::Relaxed);
    let (status, exited) = waiter.join().map_err(|_| "the waiter panicked")?;
    let status: ExitStatus = status.map_err(|e| format!("waiting for orgmesh: {e}"))?;
    let wall = exited - started;
    let stderr_lines = reader.join().map_err(|_| "the stderr reader panicked")?;
    let docker_calls = discovery.map_or(0, |discovery| discovery.join().unwrap_or(0));

    let report_path = run_dir.join("report.json");
    let report: Option<serde_json::Value> = std::fs::read_to_string(&report_path)
        .ok()
        .and_then(|text| serde_json::from_str(&text).ok());
    let run_id = stderr_lines
        .first()
        .and_then(|line| line.strip_prefix("orgmesh: run "))
        .and_then(|rest| rest.split_whitespace().next())
        .map(str::to_owned)
        .or_else(|| {
            report
                .as_ref()
                .and_then(|r| r.get("run_id")?.as_str().map(str::to_owned))
        });
    if isolation == Isolation::Containers {
        match &run_id {
            Some(run_id) => remove_leftovers(run_id),
            None => println!(
                "warning: a container run printed no run id; check `docker ps -a --filter label={RUN_LABEL}`"
            ),
        }
    }

    let passed = report
        .as_ref()
        .and_then(|r| r.get("passed")?.as_bool())
        .unwrap_or(false);
    if !status.success() || !passed {
        let tail: Vec<&String> = stderr_lines.iter().rev().take(15).collect();
        let mut message = format!(
            "{} --isolation {} exited with {status} (passed: {passed}); last stderr lines:",
            scenario.display(),
            isolation.flag()
        );
        for line in tail.into_iter().rev() {
            let _ = write!(message, "\n    {line}");
        }
        if let Ok(summary) = std::fs::read_to_string(&stdout_path) {
            let _ = write!(message, "\n  stdout:\n{summary}");
        }
        return Err(message);
    }
    let report = report.ok_or("no report.json")?;
    let phases = report
        .get("phases")
        .and_then(serde_json::Value::as_array)
        .map(|phases| {
            phases
                .iter()
                .filter_map(|phase| {
                    Some((
                        phase.get("name")?.as_str()?.to_owned(),
                        phase.get("duration_ms")?.as_u64()?,
                    ))
                })
                .collect()
        })
        .unwrap_or_default();
    let report_ms = report
        .get("duration_ms")
        .and_then(serde_json::Value::as_u64)
        .unwrap_or(0);
    let nodes_peak_kib = (isolation == Isolation::Containers && !node_peaks.is_empty())
        .then(|| (node_peaks.values().sum(), node_peaks.len()));
    Ok(Sample {
        wall,
        phases,
        report_ms,
        harness_peak_kib: harness_peak,
        nodes_peak_kib,
        docker_calls,
    })
}

/// The median of some values (the lower middle one for an even count).
fn median<T: Ord + Copy>(values: impl IntoIterator<Item = T>) -> Option<T> {
    let mut values: Vec<T> = values.into_iter().collect();
    values.sort_unstable();
    values.get(values.len().saturating_sub(1) / 2).copied()
}

fn mebibytes(kib: u64) -> String {
    format!("{:.1} MiB", kib as f64 / 1024.0)
}

/// One row of the table.
struct Row {
    scenario: String,
    isolation: Isolation,
    samples: Vec<Sample>,
    failures: usize,
}

impl Row {
    fn phase_median(&self, phase: &str) -> Option<u64> {
        median(
            self.samples
                .iter()
                .filter_map(|s| s.phases.get(phase).copied()),
        )
    }

    /// Wall time not spent in any phase: process start, preflight, writing the report.
    fn other_median(&self) -> Option<u64> {
        median(self.samples.iter().map(|s| {
            let phases: u64 = s.phases.values().sum();
            (s.wall.as_millis() as u64).saturating_sub(phases)
        }))
    }
}

fn print_table(rows: &[Row]) {
    let header = [
        "scenario",
        "isolation",
        "runs",
        "wall median/min",
        "clusters",
        "deploy",
        "link",
        "verify",
        "teardown",
        "other",
        "harness peak RSS",
        "nodes peak RSS (sum)",
    ];
    let mut lines: Vec<Vec<String>> = vec![header.iter().map(|h| (*h).to_owned()).collect()];
    let milliseconds = |value: Option<u64>| value.map_or("-".to_owned(), |ms| format!("{ms} ms"));
    for row in rows {
        let walls = row.samples.iter().map(|s| s.wall.as_millis() as u64);
        let wall = match (median(walls.clone()), walls.min()) {
            (Some(median), Some(min)) => format!("{median} / {min} ms"),
            _ => "-".to_owned(),
        };
        let mut line = vec![
            row.scenario.clone(),
            row.isolation.flag().to_owned(),
            format!("{}/{}", row.samples.len(), row.samples.len() + row.failures),
            wall,
        ];
        for phase in PHASES {
            line.push(milliseconds(row.phase_median(phase)));
        }
        line.push(milliseconds(row.other_median()));
        line.push(
            median(row.samples.iter().filter_map(|s| s.harness_peak_kib))
                .map_or("-".to_owned(), mebibytes),
        );
        line.push(match row.isolation {
            Isolation::InProcess => "- (in the harness)".to_owned(),
            Isolation::Containers => {
                let sums = row.samples.iter().filter_map(|s| s.nodes_peak_kib);
                let nodes = sums.clone().map(|(_, count)| count).max().unwrap_or(0);
                median(sums.map(|(sum, _)| sum)).map_or("unavailable".to_owned(), |kib| {
                    format!("{} ({nodes} nodes)", mebibytes(kib))
                })
            }
        });
        lines.push(line);
    }
    let widths: Vec<usize> = (0..header.len())
        .map(|column| {
            lines
                .iter()
                .map(|line| line[column].chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    for line in &lines {
        let cells: Vec<String> = line
            .iter()
            .zip(&widths)
            .enumerate()
            .map(|(column, (cell, width))| {
                // Names left-aligned, figures right-aligned.
                if column < 2 {
                    format!("{cell:<width$}")
                } else {
                    format!("{cell:>width$}")
                }
            })
            .collect();
        println!("{}", cells.join("  ").trim_end());
    }
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|text| {
            text.split_whitespace()
                .take(3)
                .collect::<Vec<_>>()
                .join(" ")
        })
        .unwrap_or_else(|_| "unavailable".to_owned())
}

fn machine_facts(docker: &Result<String, String>) {
    let cores = thread::available_parallelism().map_or(0, usize::from);
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|text| {
            text.lines()
                .find_map(|line| line.strip_prefix("model name"))
                .map(|rest| rest.trim_start_matches([' ', '\t', ':']).to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".to_owned());
    let memory = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|text| {
            text.lines()
                .find_map(|line| line.strip_prefix("MemTotal:"))
                .and_then(|rest| {
                    rest.trim()
                        .trim_end_matches("kB")
                        .trim()
                        .parse::<u64>()
                        .ok()
                })
        })
        .map_or("unknown".to_owned(), |kib| {
            format!("{:.1} GiB", kib as f64 / (1024.0 * 1024.0))
        });
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|text| text.trim().to_owned())
        .unwrap_or_else(|_| "unknown".to_owned());
    println!("machine: {cores} cores ({model}), {memory} memory, Linux {kernel}");
    println!("load average at start: {}", load_average());
    match docker {
        Ok(version) => {
            let details = output(
                "docker",
                &[
                    "info",
                    "-f",
                    "storage {{.Driver}}, cgroup v{{.CgroupVersion}} ({{.CgroupDriver}})",
                ],
            )
            .unwrap_or_default();
            println!("docker: server {version}, {details}");
        }
        Err(reason) => println!("docker: unavailable ({reason})"),
    }
}

/// The engine's server version, or why Docker cannot be used.
fn docker_engine() -> Result<String, String> {
    output("docker", &["info", "-f", "{{.ServerVersion}}"])?;
    output("docker", &["version", "-f", "{{.Server.Version}}"])
}

fn main() {
    let binary = PathBuf::from(env!("CARGO_BIN_EXE_orgmesh"));
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let docker = docker_engine();
    machine_facts(&docker);
    println!("binary: {}", binary.display());

    let mut isolations = vec![Isolation::InProcess];
    match &docker {
        Ok(_) => {
            let started = Instant::now();
            match output(binary.to_str().unwrap_or_default(), &["image", "build"]) {
                Ok(reference) => {
                    println!(
                        "node image: {} ready in {:.1} s, before and outside every measurement",
                        reference.lines().last().unwrap_or_default(),
                        started.elapsed().as_secs_f64()
                    );
                    isolations.push(Isolation::Containers);
                }
                Err(reason) => {
                    println!("SKIPPED containers: cannot build the node image: {reason}")
                }
            }
        }
        Err(reason) => println!("SKIPPED containers: {reason}"),
    }
    println!(
        "each row: 1 warm-up run, then {RUNS} measured runs of `orgmesh run SCENARIO --isolation I --run-dir D` as a child process; peak RSS is VmHWM sampled every {} ms",
        SAMPLE_INTERVAL.as_millis()
    );
    println!();

    let mut rows = Vec::new();
    for scenario_path in SCENARIOS {
        let path = root.join(scenario_path);
        let (scenario, topology) = match orgmesh::cli::load(&path) {
            Ok(loaded) => loaded,
            Err(error) => panic!("{scenario_path} does not load: {error:?}"),
        };
        let label = format!(
            "{} ({} orgs, {} clusters, {} links)",
            path.file_stem().and_then(|s| s.to_str()).unwrap_or("?"),
            scenario.organizations.len(),
            scenario.clusters.len(),
            topology.links.len()
        );
        for &isolation in &isolations {
            let clusters = scenario.clusters.len();
            let mut row = Row {
                scenario: label.clone(),
                isolation,
                samples: Vec::new(),
                failures: 0,
            };
            let mut runs = String::new();
            for attempt in 0..=RUNS {
                match run_once(&binary, &path, clusters, isolation) {
                    Ok(sample) if attempt > 0 => {
                        let _ = write!(runs, " {}/{}", sample.wall.as_millis(), sample.report_ms);
                        if isolation == Isolation::Containers {
                            let _ = write!(runs, "/{}", sample.docker_calls);
                        }
                        row.samples.push(sample);
                    }
                    Ok(_) => {}
                    Err(message) => {
                        println!("run failed, not measured: {message}");
                        if attempt > 0 {
                            row.failures += 1;
                        }
                    }
                }
            }
            println!(
                "{scenario_path} --isolation {}: per run, wall ms/report duration_ms{}:{runs}",
                isolation.flag(),
                if isolation == Isolation::Containers {
                    "/bench docker calls"
                } else {
                    ""
                }
            );
            rows.push(row);
        }
    }
    println!();
    print_table(&rows);
    println!();
    println!("load average at end: {}", load_average());
    println!(
        "phases: medians of report.json's phase durations; other = wall time minus every phase (process start, Docker and image preflight, writing the report)"
    );
    println!(
        "harness peak RSS: the `orgmesh run` process alone; nodes peak RSS: the sum over the run's node containers of their `orgmesh sim-node serve` (PID 1), host PIDs from `docker inspect`"
    );
    println!(
        "not counted: containerd-shim, dockerd and containerd, and the short-lived `orgmesh sim-node exec` processes each check runs in a node"
    );
    println!(
        "perturbation: to find the nodes the bench runs `docker ps` every {} ms and one `docker inspect` per node while the clusters come up (the bench docker calls above), then stops calling Docker",
        DISCOVERY_INTERVAL.as_millis()
    );
}
