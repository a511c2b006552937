//! `orgmesh import` as a library: the scenario it prints is valid, expects broken exactly the
//! links lint flags, and, run on the sim, reproduces the customer's network: every
//! expectation met, the non-healthy links exactly the flagged ones, every other link healthy.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use orgmesh::lint;
use orgmesh::report::{CheckKind, HEALTHY_AUTH, HEALTHY_REACH};
use orgmesh::run::{RunOptions, run};
use orgmesh::scenario::{self, Scenario};
use orgmesh::secrets::SecretSource;
use orgmesh::topology::Topology;

/// The values files of a fixture directory, sorted, relative to the package root.
fn values_files(directory: &str) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(directory)
        .expect("the fixture directory exists")
        .map(|entry| Path::new(directory).join(entry.expect("a directory entry").file_name()))
        .filter(|path| path.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    files
}

/// Imports `directory` and parses the result as `orgmesh validate` would.
fn imported(directory: &str) -> (String, Scenario, Topology) {
    let text = orgmesh::import::import(&values_files(directory)).expect("importable");
    let scenario = scenario::parse(Path::new("imported.yaml"), &text)
        .unwrap_or_else(|errors| panic!("{}\n{text}", errors.to_plain_text()));
    let topology = Topology::build(&scenario)
        .unwrap_or_else(|errors| panic!("{}\n{text}", errors.to_plain_text()));
    (text, scenario, topology)
}

/// The links lint flags as broken, computed from the findings alone.
fn flagged(directory: &str) -> BTreeSet<(String, String)> {
    let report = lint::lint(&values_files(directory)).expect("readable");
    report
        .findings
        .iter()
        .filter_map(|finding| finding.broken_link())
        .map(|(from, to)| (from.to_owned(), to.to_owned()))
        .collect()
}

fn expected_broken(topology: &Topology) -> BTreeSet<(String, String)> {
    topology
        .links
        .iter()
        .filter(|link| !link.expected.is_healthy())
        .map(|link| (link.from.clone(), link.to.clone()))
        .collect()
}

/// Every lint fixture imports to a valid scenario whose broken links are the flagged ones.
#[rstest::rstest]
fn every_fixture_imports_to_a_scenario_breaking_the_flagged_links(
    #[values(
        "fixtures/customer",
        "fixtures/lint/secret-mismatch",
        "fixtures/lint/missing-incoming",
        "fixtures/lint/missing-outgoing",
        "fixtures/lint/channel-on-entry",
        "fixtures/lint/unknown-peer-name",
        "fixtures/lint/hashed-secret",
        "fixtures/lint/whitespace-in-secret",
        "fixtures/lint/duplicate-entry"
    )]
    directory: &str,
) {
    let (text, scenario, topology) = imported(directory);
    assert_eq!(expected_broken(&topology), flagged(directory), "{text}");
    assert!(scenario.links.self_links, "{text}");
    // Full mesh with self links: n² directed links.
    let count = scenario.organizations.len();
    assert_eq!(topology.links.len(), count * count, "{text}");
}

#[test]
fn customer_scenario_snapshot() {
    let (text, scenario, _) = imported("fixtures/customer");
    let names: Vec<(&str, &str)> = scenario
        .organizations
        .iter()
        .map(|o| (o.name.as_str(), o.msp_id.as_str()))
        .collect();
    assert_eq!(
        names,
        [
            ("biotechnica", "BiotechnicaMSP"),
            ("cyberdyne", "CyberdyneMSP"),
            ("ingen", "IngenMSP"),
            ("tyrell", "TyrellMSP"),
        ]
    );
    insta::assert_snapshot!("customer", text);
}

/// A pair with entries in one direction only: the other direction is reproduced as missing on
/// both sides, so it is expected absent, and the scenario is still valid.
#[test]
fn one_way_pair_is_missing_both_entries_the_other_way() {
    let directory = tempfile::tempdir().expect("a temporary directory");
    let write = |name: &str, text: &str| {
        let path = directory.path().join(name);
        std::fs::write(&path, text).expect("written");
        path
    };
    let a = write(
        "backend-a-values.yaml",
        "organizationName: a\norchestrator:\n  mspID: AMSP\n  channels:\n    - c: {}\naddAccountOperator:\n  outgoingOrganizations:\n    - name: BMSP\n      secret: one-way-secret-1\n",
    );
    let b = write(
        "backend-b-values.yaml",
        "organizationName: b\norchestrator:\n  mspID: BMSP\naddAccountOperator:\n  incomingOrganizations:\n    - name: AMSP\n      secret: one-way-secret-1\n",
    );
    let text = orgmesh::import::import(&[a, b]).expect("importable");
    let scenario = scenario::parse(Path::new("imported.yaml"), &text)
        .unwrap_or_else(|errors| panic!("{}\n{text}", errors.to_plain_text()));
    let topology = Topology::build(&scenario)
        .unwrap_or_else(|errors| panic!("{}\n{text}", errors.to_plain_text()));
    assert!(!scenario.links.self_links, "{text}");
    // b lists no channel: both go to the extra channel, since they share none.
    assert!(text.contains("imported-links: [a, b]"), "{text}");
    let expectations: Vec<(String, String, bool)> = topology
        .links
        .iter()
        .map(|l| (l.from.clone(), l.to.clone(), l.expected.is_healthy()))
        .collect();
    assert_eq!(
        expectations,
        [
            ("a".into(), "b".into(), true),
            ("b".into(), "a".into(), false)
        ],
        "{text}"
    );
    assert!(!text.contains("one-way-secret-1"));
}

#[tokio::test(flavor = "multi_thread")]
async fn the_sim_reproduces_the_customer_network() {
    let (text, scenario, topology) = imported("fixtures/customer");
    let run_directory = tempfile::tempdir().expect("a temporary directory");
    let options = RunOptions {
        run_dir: Some(run_directory.path().join("run")),
        secrets: SecretSource::Seeded(1),
        ..Default::default()
    };
    let outcome = run(&scenario, &topology, &options, &|_| {})
        .await
        .expect("the sim runs");
    let report = &outcome.report;
    let failures: Vec<String> = report
        .failed_checks()
        .map(|c| {
            format!(
                "{}: expected {}, observed {}",
                c.name(),
                c.expected,
                c.observed
            )
        })
        .collect();
    assert!(report.passed, "{failures:#?}\n{text}");
    let mut unhealthy = BTreeSet::new();
    let mut links = BTreeSet::new();
    for check in &report.checks {
        let healthy = match check.check {
            CheckKind::Reach => HEALTHY_REACH,
            CheckKind::Auth => HEALTHY_AUTH,
            CheckKind::Complete | CheckKind::Rotation | CheckKind::Revoked => continue,
        };
        links.insert((check.from.clone(), check.to.clone()));
        if check.expected != healthy || check.observed != healthy {
            unhealthy.insert((check.from.clone(), check.to.clone()));
        }
    }
    let flagged = flagged("fixtures/customer");
    assert_eq!(unhealthy, flagged, "{text}");
    // The customer's defects, spelled out: one wrong secret, one missing incoming entry, the
    // guide's channel key at cyberdyne (every link into it), and tyrell's entry for ingen
    // named by organizationName.
    let spelled: BTreeSet<(String, String)> = [
        ("ingen", "biotechnica"),
        ("biotechnica", "tyrell"),
        ("ingen", "cyberdyne"),
        ("biotechnica", "cyberdyne"),
        ("tyrell", "cyberdyne"),
        ("cyberdyne", "cyberdyne"),
        ("tyrell", "ingen"),
    ]
    .iter()
    .map(|(from, to)| ((*from).to_owned(), (*to).to_owned()))
    .collect();
    assert_eq!(flagged, spelled);
    // Every other link was checked and is healthy: 16 directed links in all.
    assert_eq!(links.len(), 16);
    for check in &report.checks {
        let link = (check.from.clone(), check.to.clone());
        if check.check != CheckKind::Complete && !flagged.contains(&link) {
            let healthy = if check.check == CheckKind::Reach {
                HEALTHY_REACH
            } else {
                HEALTHY_AUTH
            };
            assert_eq!(check.observed, healthy, "{}", check.name());
        }
    }
}

/// Render → import is the identity on expectations: for every scenario with only value-level
/// faults (or none), the imported scenario expects the same outcome on every directed link.
#[test]
fn importing_rendered_scenarios_keeps_every_expectation() {
    use orgmesh::scenario::Fault;
    use orgmesh::secrets::LinkSecrets;
    use orgmesh::values;

    let mut checked = 0;
    for path in values_files("scenarios") {
        let (original, topology) = orgmesh::cli::load(&path).expect("the scenario loads");
        let network_faults = original
            .faults
            .iter()
            .any(|f| matches!(f.value, Fault::Partition { .. } | Fault::ClusterDown { .. }));
        if network_faults || !original.expectations.is_empty() {
            continue;
        }
        let wrong = original.faults.iter().filter_map(|f| match &f.value {
            Fault::WrongSecret { from, to } => Some((from.as_str(), to.as_str())),
            _ => None,
        });
        let secrets =
            LinkSecrets::generate(&topology, wrong, SecretSource::Seeded(1)).expect("secrets");
        let (documents, _) =
            values::backend_values(&original, &topology, &secrets, &|_| serde_json::Value::Null);
        let directory = tempfile::tempdir().expect("a temporary directory");
        let mut files = Vec::new();
        for document in &documents {
            let file = directory.path().join(&document.file_name);
            std::fs::write(&file, values::to_yaml(&document.linked).expect("YAML"))
                .expect("written");
            files.push(file);
        }
        let text = orgmesh::import::import(&files).expect("importable");
        let scenario = scenario::parse(Path::new("imported.yaml"), &text)
            .unwrap_or_else(|errors| panic!("{}\n{text}", errors.to_plain_text()));
        let imported = Topology::build(&scenario)
            .unwrap_or_else(|errors| panic!("{}\n{text}", errors.to_plain_text()));
        let outcomes = |topology: &Topology| -> BTreeSet<(String, String, String)> {
            topology
                .links
                .iter()
                .map(|l| (l.from.clone(), l.to.clone(), format!("{:?}", l.expected)))
                .collect()
        };
        assert_eq!(
            outcomes(&imported),
            outcomes(&topology),
            "{}:\n{text}",
            path.display()
        );
        checked += 1;
    }
    assert!(checked >= 5, "checked {checked} scenarios");
}
