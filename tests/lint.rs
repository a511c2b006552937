//! `orgmesh lint` as a library: each finding kind in a fixture built to contain it, at the
//! right organizations and line; networks rendered by orgmesh lint clean, and rendered faults
//! are found exactly; the JSON shape; no secret in any output; exit codes 0, 1 and 2.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use orgmesh::error::exit_codes;
use orgmesh::lint::{self, FindingKind, LintReport};
use orgmesh::scenario::Fault;
use orgmesh::secrets::{LinkSecrets, SecretSource};
use orgmesh::values;
use rstest::rstest;

/// The values files of a fixture directory, sorted, relative to the package root (tests run
/// there), as a user would type them.
fn values_files(directory: &str) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(directory)
        .expect("the fixture directory exists")
        .map(|entry| {
            let name = entry.expect("a directory entry").file_name();
            Path::new(directory).join(name)
        })
        .filter(|path| path.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    files
}

/// A finding as the tests expect it: kind, file name, line, from, to, at.
type Expected = (
    &'static str,
    &'static str,
    usize,
    Option<&'static str>,
    Option<&'static str>,
    Option<&'static str>,
);

/// A finding as lint reports it, in the same shape.
type Found = (
    String,
    String,
    usize,
    Option<String>,
    Option<String>,
    Option<String>,
);

fn actual(report: &LintReport) -> Vec<Found> {
    report
        .findings
        .iter()
        .map(|finding| {
            let file = Path::new(&finding.file)
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            (
                finding.kind.as_str().to_owned(),
                file,
                finding.line,
                finding.from.clone(),
                finding.to.clone(),
                finding.at.clone(),
            )
        })
        .collect()
}

fn owned(expected: &[Expected]) -> Vec<Found> {
    expected
        .iter()
        .map(|(kind, file, line, from, to, at)| {
            (
                (*kind).to_owned(),
                (*file).to_owned(),
                *line,
                from.map(str::to_owned),
                to.map(str::to_owned),
                at.map(str::to_owned),
            )
        })
        .collect()
}

const INGEN: &str = "backend-ingen-values.yaml";
const BIOTECHNICA: &str = "backend-biotechnica-values.yaml";

#[rstest]
#[case::secret_mismatch("secret-mismatch", &[
    ("secret-mismatch", BIOTECHNICA, 14, Some("ingen"), Some("biotechnica"), None),
])]
#[case::missing_incoming("missing-incoming", &[
    ("missing-incoming", INGEN, 23, Some("ingen"), Some("biotechnica"), None),
])]
#[case::missing_outgoing("missing-outgoing", &[
    ("missing-outgoing", BIOTECHNICA, 14, Some("ingen"), Some("biotechnica"), None),
])]
#[case::channel_on_entry("channel-on-entry", &[
    ("channel-on-entry", BIOTECHNICA, 16, Some("ingen"), Some("biotechnica"), Some("biotechnica")),
])]
#[case::unknown_peer_name("unknown-peer-name", &[
    // The entry meant for biotechnica does not count, so biotechnica's incoming entry for
    // ingen has no outgoing counterpart.
    ("missing-outgoing", BIOTECHNICA, 14, Some("ingen"), Some("biotechnica"), None),
    ("unknown-peer-name", INGEN, 23, None, None, Some("ingen")),
])]
#[case::hashed_secret("hashed-secret", &[
    ("secret-mismatch", BIOTECHNICA, 14, Some("ingen"), Some("biotechnica"), None),
    ("hashed-secret", BIOTECHNICA, 14, Some("ingen"), Some("biotechnica"), Some("biotechnica")),
])]
#[case::whitespace_in_secret("whitespace-in-secret", &[
    ("whitespace-in-secret", BIOTECHNICA, 14, Some("ingen"), Some("biotechnica"), Some("biotechnica")),
    ("whitespace-in-secret", INGEN, 23, Some("ingen"), Some("biotechnica"), Some("ingen")),
])]
#[case::duplicate_entry("duplicate-entry", &[
    ("duplicate-entry", INGEN, 20, Some("biotechnica"), Some("ingen"), Some("ingen")),
])]
fn each_kind_is_found_where_its_fixture_puts_it(#[case] kind: &str, #[case] expected: &[Expected]) {
    let files = values_files(&format!("fixtures/lint/{kind}"));
    assert_eq!(
        files.len(),
        3,
        "each fixture is a network of three organizations"
    );
    let report = lint::lint(&files).expect("the fixture is readable");
    assert_eq!(
        actual(&report),
        owned(expected),
        "{}",
        lint::render_human(&report)
    );
}

#[test]
fn unknown_peer_name_says_whose_organization_name_it_is() {
    let report = lint::lint(&values_files("fixtures/lint/unknown-peer-name")).expect("readable");
    let finding = report
        .findings
        .iter()
        .find(|f| f.kind == FindingKind::UnknownPeerName)
        .expect("an unknown-peer-name finding");
    assert_eq!(finding.name.as_deref(), Some("biotechnica"));
    assert_eq!(finding.meant.as_deref(), Some("biotechnica"));
    assert!(
        finding.message.contains("BiotechnicaMSP"),
        "{}",
        finding.message
    );
}

#[test]
fn human_output_points_at_file_and_line() {
    let report = lint::lint(&values_files("fixtures/lint/secret-mismatch")).expect("readable");
    let text = lint::render_human(&report);
    assert!(
        text.starts_with(
            "fixtures/lint/secret-mismatch/backend-biotechnica-values.yaml:14: secret-mismatch: `ingen`→`biotechnica`: "
        ),
        "{text}"
    );
    assert!(text.ends_with("1 finding in 3 values files\n"), "{text}");
}

/// Renders `path` as `orgmesh render --seed 1` does, into a new directory, and returns the
/// directory (kept alive by the caller) and the backend values files.
fn render(path: &Path) -> (tempfile::TempDir, Vec<PathBuf>, orgmesh::topology::Topology) {
    let (scenario, topology) = orgmesh::cli::load(path).expect("the scenario loads");
    let wrong = scenario.faults.iter().filter_map(|f| match &f.value {
        Fault::WrongSecret { from, to } => Some((from.as_str(), to.as_str())),
        _ => None,
    });
    let secrets =
        LinkSecrets::generate(&topology, wrong, SecretSource::Seeded(1)).expect("secrets");
    let (documents, _) =
        values::backend_values(&scenario, &topology, &secrets, &|_| serde_json::Value::Null);
    let directory = tempfile::tempdir().expect("a temporary directory");
    let files = documents
        .iter()
        .map(|document| {
            let file = directory.path().join(&document.file_name);
            let text = values::to_yaml(&document.linked).expect("YAML");
            std::fs::write(&file, text).expect("written");
            file
        })
        .collect();
    (directory, files, topology)
}

/// Every scenario with only value-level faults (or none): lint flags exactly the links the
/// scenario expects to be broken, so a scenario without faults lints clean.
#[test]
fn rendered_scenarios_lint_exactly_their_faults() {
    let mut checked = 0;
    let mut clean = 0;
    for path in values_files("scenarios") {
        let (scenario, _) = orgmesh::cli::load(&path).expect("the scenario loads");
        let network_faults = scenario
            .faults
            .iter()
            .any(|f| matches!(f.value, Fault::Partition { .. } | Fault::ClusterDown { .. }));
        if network_faults || !scenario.expectations.is_empty() {
            continue;
        }
        let (_directory, files, topology) = render(&path);
        let report = lint::lint(&files).expect("rendered files are readable");
        let flagged: BTreeSet<(String, String)> = report.broken_links().into_iter().collect();
        let expected_broken: BTreeSet<(String, String)> = topology
            .links
            .iter()
            .filter(|link| !link.expected.is_healthy())
            .map(|link| (link.from.clone(), link.to.clone()))
            .collect();
        assert_eq!(
            flagged,
            expected_broken,
            "{}:\n{}",
            path.display(),
            lint::render_human(&report)
        );
        if scenario.faults.is_empty() {
            assert!(
                report.is_clean(),
                "{}:\n{}",
                path.display(),
                lint::render_human(&report)
            );
            clean += 1;
        }
        checked += 1;
    }
    assert!(
        checked >= 5 && clean >= 4,
        "checked {checked} scenarios, {clean} without faults"
    );
}

#[test]
fn json_has_one_object_per_finding_with_every_key() {
    let report = lint::lint(&values_files("fixtures/customer")).expect("readable");
    let json: serde_json::Value = serde_json::from_str(&lint::render_json(&report)).expect("JSON");
    let findings = json["findings"].as_array().expect("a findings array");
    assert_eq!(findings.len(), report.findings.len());
    let keys: BTreeSet<&str> = [
        "kind", "file", "line", "from", "to", "at", "name", "message",
    ]
    .into();
    for finding in findings {
        let object = finding.as_object().expect("an object");
        assert_eq!(
            object.keys().map(String::as_str).collect::<BTreeSet<_>>(),
            keys
        );
        assert!(finding["line"].is_u64());
    }
    let first = &findings[0];
    assert_eq!(first["kind"], "secret-mismatch");
    assert_eq!(
        first["file"],
        "fixtures/customer/backend-biotechnica-values.yaml"
    );
    // Organizations are named by organizationName, not MSP id.
    assert_eq!(first["from"], "ingen");
    assert_eq!(first["to"], "biotechnica");
    assert!(first["at"].is_null());
    let unknown = findings
        .iter()
        .find(|f| f["kind"] == "unknown-peer-name")
        .expect("an unknown-peer-name finding");
    assert_eq!(unknown["at"], "tyrell");
    assert_eq!(unknown["name"], "ingen");
}

/// Every `secret:` value in the fixtures, and the secret of the entry written in rendered form.
fn fixture_secrets() -> Vec<String> {
    let mut secrets = vec!["renderedFormSecret-77ab21".to_owned()];
    let mut directories = vec![PathBuf::from("fixtures/customer")];
    for entry in std::fs::read_dir("fixtures/lint").expect("fixtures/lint") {
        directories.push(entry.expect("an entry").path());
    }
    for directory in directories {
        for file in values_files(&directory.display().to_string()) {
            let bytes = std::fs::read(&file).expect("readable");
            let text = String::from_utf8_lossy(&bytes);
            for line in text.lines() {
                if let Some((_, value)) = line.split_once("secret:") {
                    let value = value.trim().trim_matches('"');
                    if !value.is_empty() {
                        secrets.push(value.to_owned());
                    }
                }
            }
        }
    }
    secrets
}

#[test]
fn no_secret_in_any_output() {
    let secrets = fixture_secrets();
    assert!(secrets.len() > 60, "found {} secrets", secrets.len());
    let mut outputs = Vec::new();
    let mut directories = vec!["fixtures/customer".to_owned()];
    for entry in std::fs::read_dir("fixtures/lint").expect("fixtures/lint") {
        let path = entry.expect("an entry").path();
        if !path.ends_with("invalid") {
            directories.push(path.display().to_string());
        }
    }
    for directory in &directories {
        let files = values_files(directory);
        let report = lint::lint(&files).expect("readable");
        outputs.push(lint::render_human(&report));
        outputs.push(lint::render_json(&report));
        outputs.push(format!("{report:?}"));
        outputs.push(orgmesh::import::import(&files).expect("importable"));
    }
    for file in values_files("fixtures/lint/invalid") {
        let error = lint::lint(&[file]).expect_err("invalid input");
        outputs.push(format!("{error} {} {error:?}", error.hint()));
    }
    for output in &outputs {
        for secret in &secrets {
            assert!(
                !output.contains(secret.as_str()),
                "a secret is printed in:\n{output}"
            );
        }
    }
}

/// Unreadable input: the position and the gist of the message, as data.
#[rstest]
#[case::not_yaml("not-yaml.yaml", "8:15", "unclosed quote")]
#[case::binary("binary.yaml", "3:10", "not UTF-8")]
#[case::entry_not_a_map("entry-not-a-map.yaml", "7:7", "expected mapping")]
#[case::missing_msp_id("missing-msp-id.yaml", "1:1", "`orchestrator.mspID` is missing")]
#[case::secret_not_string(
    "secret-not-string.yaml",
    "8:15",
    "has a `secret` that is not a non-empty string"
)]
#[case::duplicate_key("duplicate-key.yaml", "3:1", "duplicate mapping key")]
#[case::empty("empty.yaml", "1:1", "the file is empty")]
fn unreadable_input_is_an_error_at_a_position(
    #[case] file: &str,
    #[case] position: &str,
    #[case] gist: &str,
) {
    let path = PathBuf::from("fixtures/lint/invalid").join(file);
    let error = lint::lint(&[path]).expect_err("invalid input");
    let text = error.to_string();
    assert!(
        text.starts_with(&format!("fixtures/lint/invalid/{file}:{position}: ")),
        "{text}"
    );
    assert!(text.contains(gist), "{text}");
}

#[test]
fn oversized_and_missing_files_are_errors() {
    let directory = tempfile::tempdir().expect("a temporary directory");
    let large = directory.path().join("backend-large-values.yaml");
    let mut text = String::from("orchestrator:\n  mspID: LargeMSP\n");
    while text.len() <= lint::MAX_VALUES_BYTES {
        text.push_str("# padding padding padding padding padding padding padding padding\n");
    }
    std::fs::write(&large, text).expect("written");
    let error = lint::lint(&[large]).expect_err("too large");
    assert!(matches!(error, lint::LintError::TooLarge { .. }), "{error}");
    let error = lint::lint(&[directory.path().join("absent.yaml")]).expect_err("missing");
    assert!(
        error.to_string().contains(":1:1: cannot read the file"),
        "{error}"
    );
}

#[test]
fn duplicate_msp_ids_and_organization_names_are_errors() {
    let file = PathBuf::from("fixtures/customer/backend-ingen-values.yaml");
    let error = lint::lint(&[file.clone(), file]).expect_err("the same organization twice");
    assert!(
        error.to_string().contains("is also the MSP id of"),
        "{error}"
    );
    let directory = tempfile::tempdir().expect("a temporary directory");
    let other = directory.path().join("backend-other-values.yaml");
    std::fs::write(
        &other,
        "organizationName: ingen\norchestrator:\n  mspID: OtherMSP\n",
    )
    .expect("written");
    let file = PathBuf::from("fixtures/customer/backend-ingen-values.yaml");
    let error = lint::lint(&[file, other]).expect_err("two organizations named ingen");
    assert!(error.to_string().contains("is also the name of"), "{error}");
}

#[test]
fn name_falls_back_to_the_file_name() {
    let directory = tempfile::tempdir().expect("a temporary directory");
    let file = directory.path().join("backend-Umbrella_Corp-values.yaml");
    std::fs::write(&file, "orchestrator:\n  mspID: UmbrellaMSP\n").expect("written");
    let report = lint::lint(&[file]).expect("readable");
    assert_eq!(report.organizations[0].name, "umbrella-corp");
    assert!(!report.organizations[0].has_organization_name);
}

#[test]
fn commands_exit_zero_clean_one_with_findings_two_on_bad_input() {
    let (_directory, clean, _) = render(Path::new("scenarios/guide.yaml"));
    assert_eq!(lint::lint_command(&clean, false), exit_codes::OK);
    assert_eq!(lint::lint_command(&clean, true), exit_codes::OK);
    let customer = values_files("fixtures/customer");
    assert_eq!(
        lint::lint_command(&customer, false),
        exit_codes::EXPECTATION_NOT_MET
    );
    assert_eq!(
        lint::lint_command(&customer, true),
        exit_codes::EXPECTATION_NOT_MET
    );
    let invalid = vec![PathBuf::from("fixtures/lint/invalid/not-yaml.yaml")];
    assert_eq!(lint::lint_command(&invalid, false), exit_codes::USAGE);
    assert_eq!(lint::lint_command(&[], true), exit_codes::USAGE);
    assert_eq!(orgmesh::import::import_command(&customer), exit_codes::OK);
    assert_eq!(orgmesh::import::import_command(&invalid), exit_codes::USAGE);
}
