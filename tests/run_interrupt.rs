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
/// The progress line that marks the verify phase's start when stderr is not a terminal.
/// How long after the verify phase's start to interrupt: long enough for the first table runs
/// to spend the cluster's throttle budget, far less than the minute the pacing then waits.
const INTO_VERIFY: Duration = Duration::from_millis(500);
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

#[test]
fn the_first_interrupt_tears_down_and_exits_130() {
    let directory = tempfile::tempdir().expect("a temporary directory");
    let run_dir = directory.path().join("run");
    let mut child = Command::new(assert_cmd::cargo::cargo_bin("orgmesh"))
        .current_dir(package_root())
        .env("NO_COLOR", "1")
        .args([
            "run",
            "scenarios/shared-cluster.yaml",
            "--seed",
            "3",
            "--run-dir",
        ])
        .arg(&run_dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("orgmesh starts");

    // Read stderr on a thread so that the pipe never fills; each line goes to the test.
    let stderr = child.stderr.take().expect("piped stderr");
    let (lines, received) = mpsc::channel::<String>();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            if lines.send(line).is_err() {
                break;
            }
        }
    });
    let stdout = child.stdout.take().expect("piped stdout");
    let stdout_reader =
        std::thread::spawn(move || std::io::read_to_string(stdout).unwrap_or_default());

    let mut transcript = Vec::new();
    let deadline = Instant::now() + START_BUDGET;
    loop {
        let remaining = deadline.saturating_duration_since(Instant::now());
        match received.recv_timeout(remaining) {
            Ok(line) => {
                let started = line.starts_with(VERIFY_STARTED);
                transcript.push(line);
                if started {
                    break;
                }
            }
            Err(_) => {
                let _ = child.kill();
                panic!("the verify phase did not start:\n{}", transcript.join("\n"));
            }
        }
    }

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

    let status = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(status.success());
    let interrupted = Instant::now();
    let exit = loop {
        if let Some(exit) = child.try_wait().expect("the child can be waited for") {
            break exit;
        }
        if interrupted.elapsed() > EXIT_BUDGET {
            let _ = child.kill();
            panic!("orgmesh did not exit within {EXIT_BUDGET:?} of SIGINT");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    reader.join().expect("the stderr reader ends");
    transcript.extend(received.try_iter());
    let stderr = transcript.join("\n");
    let stdout = stdout_reader.join().expect("the stdout reader ends");
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
    let mut child = Command::new(assert_cmd::cargo::cargo_bin("orgmesh"))
        .current_dir(package_root())
        .env("NO_COLOR", "1")
        .args(["run", "scenarios/guide.yaml", "--keep", "--run-dir"])
        .arg(&run_dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("orgmesh starts");
    let stderr = child.stderr.take().expect("piped stderr");
    let (lines, received) = mpsc::channel::<String>();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            if lines.send(line).is_err() {
                break;
            }
        }
    });
    let deadline = Instant::now() + START_BUDGET;
    let mut transcript = Vec::new();
    loop {
        match received.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            Ok(line) => {
                let kept = line.contains("keeping the simulated network up");
                transcript.push(line);
                if kept {
                    break;
                }
            }
            Err(_) => {
                let _ = child.kill();
                panic!(
                    "the run never said it keeps the network:\n{}",
                    transcript.join("\n")
                );
            }
        }
    }
    // Well after verification, the organizations still answer.
    std::thread::sleep(Duration::from_millis(300));
    let addresses = backend_addresses(&run_dir.join("values"));
    assert_eq!(addresses.len(), 2);
    for address in &addresses {
        assert!(accepts_connections(*address), "{address} is not kept up");
    }
    assert!(
        child.try_wait().expect("waitable").is_none(),
        "the run ended despite --keep"
    );
    Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .expect("kill runs");
    let interrupted = Instant::now();
    let exit = loop {
        if let Some(exit) = child.try_wait().expect("waitable") {
            break exit;
        }
        if interrupted.elapsed() > EXIT_BUDGET {
            let _ = child.kill();
            panic!("orgmesh did not tear down within {EXIT_BUDGET:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    reader.join().expect("the stderr reader ends");
    assert_eq!(
        exit.code(),
        Some(0),
        "a passing kept run exits 0 once torn down"
    );
    for address in &addresses {
        assert!(!accepts_connections(*address), "{address} still listens");
    }
    assert!(run_dir.join("report.json").exists());
}
