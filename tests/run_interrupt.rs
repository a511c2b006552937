//! Ctrl-C during verification (DESIGN §6, STYLE rule 8): the first SIGINT stops new work,
//! tears the network down and exits 130, promptly, leaving no organization listening.
//!
//! `scenarios/shared-cluster.yaml` is the one scenario whose verification lasts long enough
//! (about a minute of throttle pacing) to be interrupted reliably in the middle.

mod common;

use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::Value;

use common::run::files_under;
use common::{package_root, read_yaml};

/// How long the run may take to wind down after SIGINT.
const EXIT_BUDGET: Duration = Duration::from_secs(10);
/// How long to wait for the verify phase to start; the phases before it take milliseconds.
const START_BUDGET: Duration = Duration::from_secs(30);
/// How long after the verify phase's start to interrupt: long enough for the first table runs
/// to spend the cluster's throttle budget, far less than the minute the pacing then waits.
const INTO_VERIFY: Duration = Duration::from_millis(500);
/// The progress line that marks the verify phase's start when stderr is not a terminal.
const VERIFY_STARTED: &str = "verify: started";
const INTERRUPTED_EXIT_CODE: i32 = 130;

/// The socket address of every backend, from `server.defaultDomain` in its values file
/// (`http://127.0.1.1:41234`).
fn backend_addresses(values: &Path) -> Vec<SocketAddr> {
    files_under(values)
        .into_iter()
        .filter(|path| {
            path.parent() == Some(values)
                && path
                    .file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with("backend-"))
        })
        .map(|path| {
            let document = read_yaml(&path);
            let domain = document
                .pointer("/server/defaultDomain")
                .and_then(Value::as_str)
                .unwrap_or_else(|| panic!("{} has no server.defaultDomain", path.display()));
            let authority = domain
                .strip_prefix("http://")
                .unwrap_or_else(|| panic!("{domain} is not an http:// address"));
            authority
                .to_socket_addrs()
                .expect("a socket address")
                .next()
                .expect("one address")
        })
        .collect()
}

fn accepts_connections(address: SocketAddr) -> bool {
    TcpStream::connect_timeout(&address, Duration::from_millis(500)).is_ok()
}

/// A running `orgmesh` with stderr read line by line on a thread (so the pipe never fills)
/// and stdout collected on another.
struct Running {
    child: std::process::Child,
    lines: mpsc::Receiver<String>,
    stderr_reader: std::thread::JoinHandle<()>,
    stdout_reader: std::thread::JoinHandle<String>,
    transcript: Vec<String>,
}

impl Running {
    fn start(arguments: &[&str], run_dir: &Path) -> Self {
        let mut child = Command::new(assert_cmd::cargo::cargo_bin("orgmesh"))
            .current_dir(package_root())
            .env("NO_COLOR", "1")
            .args(arguments)
            .arg("--run-dir")
            .arg(run_dir)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("orgmesh starts");
        let stderr = child.stderr.take().expect("piped stderr");
        let (sender, lines) = mpsc::channel::<String>();
        let stderr_reader = std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if sender.send(line).is_err() {
                    break;
                }
            }
        });
        let stdout = child.stdout.take().expect("piped stdout");
        let stdout_reader =
            std::thread::spawn(move || std::io::read_to_string(stdout).unwrap_or_default());
        Self {
            child,
            lines,
            stderr_reader,
            stdout_reader,
            transcript: Vec::new(),
        }
    }

    /// Waits for a stderr line for which `wanted` holds; kills the run and fails otherwise.
    fn wait_for_line(&mut self, wanted: impl Fn(&str) -> bool, what: &str) {
        let deadline = Instant::now() + START_BUDGET;
        loop {
            match self
                .lines
                .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            {
                Ok(line) => {
                    let found = wanted(&line);
                    self.transcript.push(line);
                    if found {
                        return;
                    }
                }
                Err(_) => {
                    let _ = self.child.kill();
                    panic!("{what} never happened:\n{}", self.transcript.join("\n"));
                }
            }
        }
    }

    /// Sends SIGINT and waits, at most [`EXIT_BUDGET`], for the exit; returns the exit status,
    /// stdout and the whole stderr.
    fn interrupt(mut self) -> (std::process::ExitStatus, String, String) {
        let status = Command::new("kill")
            .args(["-INT", &self.child.id().to_string()])
            .status()
            .expect("kill runs");
        assert!(status.success());
        let interrupted = Instant::now();
        let exit = loop {
            if let Some(exit) = self.child.try_wait().expect("the child can be waited for") {
                break exit;
            }
            if interrupted.elapsed() > EXIT_BUDGET {
                let _ = self.child.kill();
                panic!("orgmesh did not exit within {EXIT_BUDGET:?} of SIGINT");
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        self.stderr_reader.join().expect("the stderr reader ends");
        self.transcript.extend(self.lines.try_iter());
        let stdout = self.stdout_reader.join().expect("the stdout reader ends");
        (exit, stdout, self.transcript.join("\n"))
    }
}

#[test]
fn the_first_interrupt_tears_down_and_exits_130() {
    let directory = tempfile::tempdir().expect("a temporary directory");
    let run_dir = directory.path().join("run");
    let mut running = Running::start(
        &["run", "scenarios/shared-cluster.yaml", "--seed", "3"],
        &run_dir,
    );
    running.wait_for_line(|line| line.starts_with(VERIFY_STARTED), "the verify phase");

    // Let verification get into the throttle pacing, the wait an interrupt must cut short.
    std::thread::sleep(INTO_VERIFY);

    // The network is up: the test would prove nothing if nothing listened before SIGINT.
    let addresses = backend_addresses(&run_dir.join("values"));
    assert_eq!(addresses.len(), 5, "five organizations");
    for address in &addresses {
        assert!(
            accepts_connections(*address),
            "{address} is not up during verify"
        );
    }

    let (exit, stdout, stderr) = running.interrupt();
    assert_eq!(
        exit.code(),
        Some(INTERRUPTED_EXIT_CODE),
        "--- stdout\n{stdout}\n--- stderr\n{stderr}"
    );
    assert!(stderr.contains("interrupted"), "{stderr}");
    assert!(stderr.contains("teardown"), "{stderr}");
    for address in &addresses {
        assert!(
            !accepts_connections(*address),
            "{address} still accepts connections after teardown"
        );
    }
}

/// `--keep`: after a passing run the network stays up for poking at it, until Ctrl-C tears it
/// down; the run still reports and exits 0.
#[test]
fn keep_holds_the_network_up_until_interrupted() {
    let directory = tempfile::tempdir().expect("a temporary directory");
    let run_dir = directory.path().join("run");
    let mut running = Running::start(&["run", "scenarios/guide.yaml", "--keep"], &run_dir);
    running.wait_for_line(
        |line| line.contains("keeping the simulated network up"),
        "keeping the network",
    );
    // Well after verification, the organizations still answer.
    std::thread::sleep(Duration::from_millis(300));
    let addresses = backend_addresses(&run_dir.join("values"));
    assert_eq!(addresses.len(), 2);
    for address in &addresses {
        assert!(accepts_connections(*address), "{address} is not kept up");
    }
    assert!(
        running.child.try_wait().expect("waitable").is_none(),
        "the run ended despite --keep"
    );
    let (exit, stdout, stderr) = running.interrupt();
    assert_eq!(
        exit.code(),
        Some(0),
        "a passing kept run exits 0 once torn down\n--- stdout\n{stdout}\n--- stderr\n{stderr}"
    );
    for address in &addresses {
        assert!(!accepts_connections(*address), "{address} still listens");
    }
    assert!(run_dir.join("report.json").exists());
}
