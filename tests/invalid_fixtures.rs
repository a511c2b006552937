//! `orgmesh validate` on malformed scenarios: each fixture in `fixtures/invalid/` must fail
//! with exit code 2 and a diagnostic at the right `line:column`, a `hint:` line, and no panic.
//!
//! The expected outcome is data in the fixture itself: its first line reads
//! `# expect: LINE:COLUMN WORD: what is wrong`, and WORD must appear in the message.

mod common;

use std::io::Write as _;
use std::path::{Path, PathBuf};

use rstest::rstest;

use common::{orgmesh, relative};

/// What a fixture's first line says the diagnostic must be.
#[derive(Debug)]
struct Expectation {
    line: usize,
    column: usize,
    word: String,
}

fn expectation(path: &Path) -> Expectation {
    let bytes = std::fs::read(path).expect("the fixture is readable");
    // The first line is ASCII even in the fixture of invalid UTF-8 bytes.
    let first = String::from_utf8_lossy(bytes.split(|&b| b == b'\n').next().unwrap_or_default())
        .into_owned();
    let parse = || -> Option<Expectation> {
        let rest = first.strip_prefix("# expect: ")?;
        let (position, rest) = rest.split_once(' ')?;
        let (line, column) = position.split_once(':')?;
        let (word, _description) = rest.split_once(':')?;
        Some(Expectation {
            line: line.parse().ok()?,
            column: column.parse().ok()?,
            word: word.trim().to_lowercase(),
        })
    };
    parse().unwrap_or_else(|| {
        panic!(
            "{}: the first line must be `# expect: LINE:COLUMN WORD: what is wrong`, not {first:?}",
            path.display()
        )
    })
}

/// Runs `orgmesh validate` on `path` and checks the common shape of a refusal; returns stderr.
fn refused(path: &Path) -> String {
    let output = orgmesh()
        .arg("validate")
        .arg(path)
        .output()
        .expect("orgmesh runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert_eq!(
        output.status.code(),
        Some(2),
        "{}: exit code\nstderr:\n{stderr}",
        path.display()
    );
    assert!(
        !stdout.contains("ok:"),
        "{}: stdout says ok:\n{stdout}",
        path.display()
    );
    assert!(
        !stderr.contains("panicked"),
        "{}: panicked:\n{stderr}",
        path.display()
    );
    assert!(
        stderr.lines().any(|line| line.starts_with("  hint: ")),
        "{}: no `  hint:` line:\n{stderr}",
        path.display()
    );
    stderr
}

#[rstest]
fn invalid_fixtures_are_refused_at_the_right_position(
    #[files("fixtures/invalid/*.yaml")] path: PathBuf,
) {
    let expected = expectation(&path);
    let path = relative(&path);
    let stderr = refused(&path);
    let located = format!(
        "error: {}:{}:{}: ",
        path.display(),
        expected.line,
        expected.column
    );
    let line = stderr
        .lines()
        .find(|line| line.starts_with(&located))
        .unwrap_or_else(|| {
            panic!(
                "{}: no diagnostic starting {located:?}:\n{stderr}",
                path.display()
            )
        });
    assert!(
        line.to_lowercase().contains(&expected.word),
        "{}: the diagnostic does not mention {:?}:\n{stderr}",
        path.display(),
        expected.word
    );
}

#[test]
fn a_missing_file_is_a_usage_error() {
    let stderr = refused(Path::new("fixtures/invalid/does-not-exist.yaml"));
    assert!(
        stderr.contains("fixtures/invalid/does-not-exist.yaml:1:1: cannot read the file"),
        "{stderr}"
    );
}

/// Ten megabytes is generated, not committed: it must be refused by size, before parsing.
#[test]
fn a_ten_megabyte_file_is_refused_by_size() {
    let directory = tempfile::tempdir().expect("a temporary directory");
    let path = directory.path().join("huge.yaml");
    let mut file = std::fs::File::create(&path).expect("the file can be created");
    writeln!(
        file,
        "name: huge\nchannels: {{our-channel: [ingen]}}\norganizations:\n  ingen:\n    values:"
    )
    .expect("write");
    let line = format!("      {}: 1\n", "k".repeat(58));
    while file.metadata().expect("metadata").len() < 10 * 1024 * 1024 {
        file.write_all(line.as_bytes()).expect("write");
    }
    drop(file);
    let stderr = refused(&path);
    assert!(
        stderr.contains(&format!("{}:1:1: the file is", path.display())),
        "{stderr}"
    );
    assert!(stderr.contains("bytes"), "{stderr}");
}

/// Several files: each is reported, valid ones still say `ok:`, and the exit code is 2.
#[test]
fn validate_reports_every_file() {
    let output = orgmesh()
        .args([
            "validate",
            "scenarios/guide.yaml",
            "fixtures/invalid/unknown-key.yaml",
        ])
        .output()
        .expect("orgmesh runs");
    assert_eq!(output.status.code(), Some(2));
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stdout.contains("ok: scenarios/guide.yaml: 2 organizations, 2 clusters, 4 directed links"),
        "{stdout}"
    );
    assert!(
        stderr.contains("fixtures/invalid/unknown-key.yaml:6:29:"),
        "{stderr}"
    );
}

/// Defects found in `src/` by these tests, kept as regressions.
mod regressions {
    use super::*;

    /// A missing key is reported at the last key of the mapping (`organizations:`, 4:1)
    /// instead of the mapping that lacks it (2:1).
    #[test]
    fn a_missing_key_is_reported_at_its_mapping() {
        let stderr = refused(Path::new("fixtures/regressions/missing-name.yaml"));
        assert!(
            stderr.contains("fixtures/regressions/missing-name.yaml:2:1: missing field `name`"),
            "{stderr}"
        );
    }

    /// Parser messages go through `escape_debug`, which escapes quotes as well as control
    /// characters: `unclosed bracket \'{\'` instead of `unclosed bracket '{'`.
    #[test]
    fn parser_messages_keep_their_quotes() {
        let stderr = refused(Path::new("fixtures/invalid/not-yaml.yaml"));
        assert!(stderr.contains("unclosed bracket '{'"), "{stderr}");
        assert!(!stderr.contains("\\'"), "{stderr}");
    }

    /// `lowercase_first` lowercases the first letter of an acronym: `yAML document too large`.
    #[test]
    fn budget_messages_do_not_mangle_yaml() {
        let stderr = refused(Path::new("fixtures/invalid/deep-nesting.yaml"));
        assert!(!stderr.contains("yAML"), "{stderr}");
    }

    /// The size cap is checked after `std::fs::read` has read the whole file, so a huge file
    /// (or `/dev/zero`) is read into memory first. Under a 400 MB address-space limit a sparse
    /// 1 GiB file must still get the size diagnostic, not `cannot read the file: out of memory`.
    #[test]
    fn a_huge_file_is_refused_without_reading_it() {
        let directory = tempfile::tempdir().expect("a temporary directory");
        let path = directory.path().join("sparse.yaml");
        let file = std::fs::File::create(&path).expect("the file can be created");
        file.set_len(1 << 30)
            .expect("a sparse file takes no disk space");
        let binary = assert_cmd::cargo::cargo_bin("orgmesh");
        let output = std::process::Command::new("sh")
            .arg("-c")
            .arg("ulimit -v 400000 && exec \"$0\" validate \"$1\"")
            .arg(&binary)
            .arg(&path)
            .env("NO_COLOR", "1")
            .output()
            .expect("sh runs");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{stderr}");
        assert!(stderr.contains("bytes; a scenario is at most"), "{stderr}");
    }
}
