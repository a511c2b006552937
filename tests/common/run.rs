//! Helpers for the tests of `orgmesh run` on the simulator: running a scenario into a fresh
//! run directory, reading back report.json, and the expectations a test derives on its own.

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Output;

use orgmesh::report::{CheckKind, CheckResult, Report};

use super::orgmesh;

/// What one `orgmesh run` left behind.
pub struct Run {
    /// Keeps the temporary directory alive as long as the run is inspected.
    pub directory: tempfile::TempDir,
    pub run_dir: PathBuf,
    pub output: Output,
}

impl Run {
    pub fn code(&self) -> Option<i32> {
        self.output.status.code()
    }

    pub fn stdout(&self) -> String {
        String::from_utf8_lossy(&self.output.stdout).into_owned()
    }

    pub fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.output.stderr).into_owned()
    }

    /// Both streams, for assertion messages.
    pub fn transcript(&self) -> String {
        format!(
            "exit code: {:?}\n--- stdout\n{}\n--- stderr\n{}",
            self.code(),
            self.stdout(),
            self.stderr()
        )
    }

    pub fn report(&self) -> Report {
        read_report(&self.run_dir.join("report.json"))
    }

    pub fn junit(&self) -> String {
        read_text(&self.run_dir.join("junit.xml"))
    }
}

/// Runs `orgmesh run SCENARIO --run-dir <tmp>/run` with `arguments` after it. The run
/// directory does not exist beforehand, as `--run-dir` wants.
pub fn run_scenario(scenario: &Path, arguments: &[&str]) -> Run {
    run_in(
        tempfile::tempdir().expect("a temporary directory"),
        scenario,
        arguments,
    )
}

/// Writes scenario `text` into a new temporary directory and runs it there.
pub fn run_text(file_name: &str, text: &str, arguments: &[&str]) -> Run {
    let directory = tempfile::tempdir().expect("a temporary directory");
    let scenario = directory.path().join(file_name);
    std::fs::write(&scenario, text).expect("the scenario is written");
    run_in(directory, &scenario, arguments)
}

fn run_in(directory: tempfile::TempDir, scenario: &Path, arguments: &[&str]) -> Run {
    let run_dir = directory.path().join("run");
    let output = orgmesh()
        .arg("run")
        .arg(scenario)
        .arg("--run-dir")
        .arg(&run_dir)
        .args(arguments)
        .output()
        .expect("orgmesh runs");
    Run {
        directory,
        run_dir,
        output,
    }
}

pub fn read_text(path: &Path) -> String {
    std::fs::read_to_string(path)
        .unwrap_or_else(|error| panic!("cannot read {}: {error}", path.display()))
}

/// Parses report.json into the library's report type, so that a renamed or missing field
/// fails here.
pub fn read_report(path: &Path) -> Report {
    serde_json::from_str(&read_text(path))
        .unwrap_or_else(|error| panic!("{} is not a report: {error}", path.display()))
}

/// The permission bits of `path`.
pub fn mode(path: &Path) -> u32 {
    std::fs::metadata(path)
        .unwrap_or_else(|error| panic!("cannot stat {}: {error}", path.display()))
        .permissions()
        .mode()
        & 0o777
}

/// Every file under `directory`, recursively.
pub fn files_under(directory: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut pending = vec![directory.to_path_buf()];
    while let Some(current) = pending.pop() {
        let entries = std::fs::read_dir(&current)
            .unwrap_or_else(|error| panic!("cannot list {}: {error}", current.display()));
        for entry in entries {
            let path = entry.expect("a directory entry").path();
            if path.is_dir() {
                pending.push(path);
            } else {
                files.push(path);
            }
        }
    }
    files.sort();
    files
}

/// Every directory under `directory`, recursively, itself included.
pub fn directories_under(directory: &Path) -> Vec<PathBuf> {
    let mut directories = vec![directory.to_path_buf()];
    let mut index = 0;
    while index < directories.len() {
        let entries = std::fs::read_dir(&directories[index]).expect("a readable directory");
        for entry in entries {
            let path = entry.expect("a directory entry").path();
            if path.is_dir() {
                directories.push(path);
            }
        }
        index += 1;
    }
    directories
}

/// The key of a check: its kind's name, `from` and `to` (`*` for `complete`).
pub type CheckKey = (&'static str, String, String);

/// The key of the `kind` check on `from`→`to`.
pub fn key(kind: CheckKind, from: &str, to: &str) -> CheckKey {
    (kind.as_str(), from.to_owned(), to.to_owned())
}

/// The checks of a report by key, failing on duplicates: every check is made exactly once.
pub fn checks_by_key(report: &Report) -> BTreeMap<CheckKey, &CheckResult> {
    let mut checks = BTreeMap::new();
    for check in &report.checks {
        let key = key(check.check, &check.from, &check.to);
        assert!(
            checks.insert(key, check).is_none(),
            "the report has {} twice",
            check.name()
        );
    }
    checks
}
