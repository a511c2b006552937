//! The flags of `orgmesh run` that decide where things go and what is printed (DESIGN §6):
//! `--run-dir` (absent or empty only), `--json`/`--junit` copies, `-q`, `--jobs`, and the
//! refusals that must leave no run directory behind.

mod common;

use std::os::unix::fs::PermissionsExt;

use common::orgmesh;
use common::run::{mode, read_report, read_text, run_scenario};

const GUIDE: &str = "scenarios/guide.yaml";

#[test]
fn an_existing_empty_run_directory_is_used_and_made_private() {
    let directory = tempfile::tempdir().expect("a temporary directory");
    let run_dir = directory.path().join("run");
    std::fs::create_dir(&run_dir).expect("the run directory is created");
    std::fs::set_permissions(&run_dir, std::fs::Permissions::from_mode(0o755))
        .expect("its mode is set");
    let output = orgmesh()
        .args(["run", GUIDE, "--seed", "1", "--run-dir"])
        .arg(&run_dir)
        .output()
        .expect("orgmesh runs");
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(mode(&run_dir), 0o700);
    assert!(read_report(&run_dir.join("report.json")).passed);
}

#[test]
fn a_non_empty_run_directory_is_refused_and_left_alone() {
    let directory = tempfile::tempdir().expect("a temporary directory");
    let run_dir = directory.path().join("run");
    std::fs::create_dir(&run_dir).expect("the run directory is created");
    let notes = run_dir.join("notes.txt");
    std::fs::write(&notes, "the user's").expect("a file of the user's");
    let output = orgmesh()
        .args(["run", GUIDE, "--run-dir"])
        .arg(&run_dir)
        .output()
        .expect("orgmesh runs");
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("not empty"), "{stderr}");
    assert!(stderr.contains("hint:"), "{stderr}");
    let entries: Vec<_> = std::fs::read_dir(&run_dir)
        .expect("a readable directory")
        .collect();
    assert_eq!(entries.len(), 1, "orgmesh wrote into the user's directory");
    assert_eq!(read_text(&notes), "the user's");
}

/// Refusals that come before any work: the run directory must not be created for them.
#[rstest::rstest]
#[case::unknown_provider(&["--provider", "nowhere"])]
#[case::zero_jobs(&["--jobs", "0"])]
#[case::not_a_duration(&["--timeout", "soon"])]
fn usage_errors_exit_2_without_a_run_directory(#[case] arguments: &[&str]) {
    let run = run_scenario(std::path::Path::new(GUIDE), arguments);
    assert_eq!(run.code(), Some(2), "{}", run.transcript());
    assert!(!run.run_dir.exists(), "a refused run created its directory");
}

#[test]
fn the_json_and_junit_copies_match_the_run_directory() {
    let copies = tempfile::tempdir().expect("a temporary directory");
    let json = copies.path().join("report-copy.json");
    let junit = copies.path().join("junit-copy.xml");
    let run = run_scenario(
        std::path::Path::new(GUIDE),
        &[
            "--seed",
            "2",
            "--json",
            json.to_str().expect("a UTF-8 path"),
            "--junit",
            junit.to_str().expect("a UTF-8 path"),
        ],
    );
    assert_eq!(run.code(), Some(0), "{}", run.transcript());
    assert_eq!(read_report(&json), run.report());
    assert_eq!(read_text(&junit), run.junit());
}

#[test]
fn quiet_keeps_the_summary_and_drops_the_progress() {
    let run = run_scenario(std::path::Path::new(GUIDE), &["-q", "--jobs", "1"]);
    assert_eq!(run.code(), Some(0), "{}", run.transcript());
    assert!(
        !run.stderr().contains("verify: started"),
        "{}",
        run.transcript()
    );
    assert!(run.stdout().contains("passed"), "{}", run.transcript());
    assert!(
        run.stdout().contains("run directory:"),
        "{}",
        run.transcript()
    );
}

/// Without self links, the first link of the first organization points to the second one,
/// so a grid ordered by first appearance starts its columns there.
const WITHOUT_SELF_LINKS: &str = "\
name: without-self-links
links: { self: false }
channels:
  lab: [a, b, c]
organizations:
  a: {}
  b: {}
  c: {}
";

#[test]
fn the_grids_columns_follow_the_rows_order() {
    let run = common::run::run_text("scenario.yaml", WITHOUT_SELF_LINKS, &["--seed", "1"]);
    assert_eq!(run.code(), Some(0), "{}", run.transcript());
    let stdout = run.stdout();
    let mut lines = stdout.lines();
    lines
        .by_ref()
        .find(|line| line.starts_with("reach ("))
        .unwrap_or_else(|| panic!("no reach grid:\n{stdout}"));
    let header: Vec<&str> = lines
        .next()
        .expect("the grid's header")
        .split_whitespace()
        .collect();
    assert_eq!(header, ["a", "b", "c"], "{stdout}");
}
