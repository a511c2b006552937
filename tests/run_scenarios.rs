//! Every file in `scenarios/` runs on the simulator and passes (DESIGN §7, rung 2): exit 0, a
//! report in which every verify step has exactly one reach and one auth check per directed
//! link of the topology and one complete check per organization, each meeting the topology's
//! expectation, plus one passing rotation check per link rotated since the previous verify and
//! one passing revoked check per link of an organization removed since then; a JUnit file with
//! one passing testcase per check, and a private run directory. The topology of each verify is
//! that of the organizations present at its step (`add-organization`, `remove-organization`).
//!
//! The guide's literal values get their own test with the outcome written out as data, so
//! that it checks the simulator and the topology instead of trusting the topology.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use orgmesh::plan::{Plan, Step};
use orgmesh::report::{CheckKind, CheckResult, Report};
use orgmesh::topology::Topology;
use rstest::rstest;

use common::relative;
use common::run::{checks_by_key, directories_under, files_under, key, mode, run_scenario};

/// The seed of every run here: reproducible secrets make a failure reproducible too.
const SEED: &str = "3";

/// The phases a run reports, in order: clusters, one per step (numbered from a step's second
/// occurrence: `verify`, `verify-2`), teardown.
fn expected_phases(scenario: &orgmesh::scenario::Scenario) -> Vec<String> {
    std::iter::once("clusters".to_owned())
        .chain(Plan::new(scenario).phase_names())
        .chain(std::iter::once("teardown".to_owned()))
        .collect()
}

/// What one verify phase must show, derived from the plan alone.
struct VerifyPhase {
    name: String,
    scenario: orgmesh::scenario::Scenario,
    topology: Topology,
    /// Links rotated since the previous verify.
    rotated: BTreeSet<(String, String)>,
    /// Links from organizations removed since the previous verify to the remaining ones.
    revoked: BTreeSet<(String, String)>,
}

fn verify_phases(scenario: &orgmesh::scenario::Scenario) -> Vec<VerifyPhase> {
    let plan = Plan::new(scenario);
    let mut rotated = BTreeSet::new();
    let mut revoked = BTreeSet::new();
    let mut phases = Vec::new();
    for (index, (step, name)) in plan.steps.iter().zip(plan.phase_names()).enumerate() {
        let (state, topology) = Topology::before_step(scenario, index).expect("a topology");
        let pairs = |topology: &Topology| -> Vec<(String, String)> {
            topology
                .links
                .iter()
                .map(|l| (l.from.clone(), l.to.clone()))
                .collect()
        };
        match step {
            Step::Verify => phases.push(VerifyPhase {
                name,
                scenario: state,
                topology,
                rotated: std::mem::take(&mut rotated),
                revoked: std::mem::take(&mut revoked),
            }),
            Step::RotateSecrets { links: Some(links) } => rotated.extend(links.iter().cloned()),
            Step::RotateSecrets { links: None } => rotated.extend(pairs(&topology)),
            Step::RemoveOrganization { name: removed } => {
                rotated.retain(|(from, to)| from != removed && to != removed);
                revoked.extend(
                    pairs(&topology)
                        .into_iter()
                        .filter(|(from, to)| from == removed && to != removed),
                );
            }
            _ => {}
        }
    }
    phases
}

/// The checks one verify phase made.
fn step_report(report: &Report, step: &str) -> Report {
    let mut report = report.clone();
    report.checks.retain(|check| check.step == step);
    report
}

#[rstest]
fn every_scenario_runs_and_meets_its_derived_expectations(
    #[files("scenarios/*.yaml")] path: PathBuf,
) {
    let scenario_path = relative(&path);
    let (scenario, topology) = orgmesh::cli::load(&path).expect("the scenario is valid");
    let run = run_scenario(&scenario_path, &["--seed", SEED]);
    assert_eq!(run.code(), Some(0), "{}", run.transcript());

    let report = run.report();
    assert!(report.passed, "report.json says the run failed");
    assert_eq!(report.scenario, scenario.name);
    assert_eq!(report.provider, "sim");
    let phases: Vec<String> = report.phases.iter().map(|p| p.name.clone()).collect();
    assert_eq!(
        phases,
        expected_phases(&scenario),
        "the phases of the scenario's steps, in order"
    );
    let phases = verify_phases(&scenario);
    assert!(!phases.is_empty(), "every scenario verifies");
    for phase in &phases {
        let (step, rotated) = (&phase.name, &phase.rotated);
        let topology = &phase.topology;
        let step_report = step_report(&report, step);
        let checks = checks_by_key(&step_report);
        let rotations: BTreeMap<(String, String), &CheckResult> = step_report
            .checks
            .iter()
            .filter(|c| c.check == CheckKind::Rotation)
            .map(|c| ((c.from.clone(), c.to.clone()), c))
            .collect();
        let revoked: BTreeMap<(String, String), &CheckResult> = step_report
            .checks
            .iter()
            .filter(|c| c.check == CheckKind::Revoked)
            .map(|c| ((c.from.clone(), c.to.clone()), c))
            .collect();
        assert_eq!(
            revoked.keys().cloned().collect::<BTreeSet<_>>(),
            phase.revoked,
            "{step}: one revoked check per link of an organization removed since the previous verify"
        );
        for check in revoked.values() {
            assert_eq!(check.observed, check.expected, "{step}: {}", check.name());
            assert!(check.passed, "{step}: {}", check.name());
        }
        // On a create-only chart a removed organization stays in its peers' tables: their reach
        // and auth checks to it expect the error of a backend that is gone.
        let present: BTreeSet<&str> = phase
            .scenario
            .organizations
            .iter()
            .map(|o| o.name.as_str())
            .collect();
        let stale: Vec<&CheckResult> = step_report
            .checks
            .iter()
            .filter(|c| matches!(c.check, CheckKind::Reach | CheckKind::Auth))
            .filter(|c| !topology.has_link(&c.from, &c.to))
            .collect();
        for check in &stale {
            assert!(
                !present.contains(check.to.as_str()),
                "{step}: {} is no link",
                check.name()
            );
            assert_eq!(
                (check.expected.as_str(), check.observed.as_str()),
                ("error", "error"),
                "{step}: {}",
                check.name()
            );
        }
        assert_eq!(
            step_report.checks.len() - rotations.len() - revoked.len() - stale.len(),
            topology.check_count(phase.scenario.organizations.len()),
            "{step}: one reach and one auth check per directed link, one complete check per organization"
        );
        assert_eq!(
            rotations.keys().cloned().collect::<BTreeSet<_>>(),
            *rotated,
            "{step}: one rotation check per link rotated since the previous verify"
        );
        for check in rotations.values() {
            assert_eq!(check.observed, check.expected, "{step}: {}", check.name());
            assert!(check.passed, "{step}: {}", check.name());
        }
        for link in &topology.links {
            let expectations = [
                (CheckKind::Reach, link.expected.reach.to_string()),
                (CheckKind::Auth, link.expected.auth.to_string()),
            ];
            for (kind, expected) in expectations {
                let check = checks
                    .get(&key(kind, &link.from, &link.to))
                    .unwrap_or_else(|| {
                        panic!("{step}: no {kind} check for {}→{}", link.from, link.to)
                    });
                assert_eq!(check.expected, expected, "{step}: {}", check.name());
                assert_eq!(check.observed, expected, "{step}: {}", check.name());
                assert!(check.passed, "{step}: {}", check.name());
            }
        }
        for organization in &phase.scenario.organizations {
            let check = checks
                .get(&key(CheckKind::Complete, &organization.name, "*"))
                .unwrap_or_else(|| panic!("{step}: no complete check for {}", organization.name));
            assert!(check.passed, "{step}: {}", check.name());
        }
    }
    let self_links = topology.links.iter().filter(|l| l.is_self()).count();
    if scenario.links.self_links {
        assert_eq!(
            self_links,
            scenario.organizations.len(),
            "self links are checked like any other"
        );
    }

    let junit = run.junit();
    let mut testcases: BTreeMap<String, usize> = BTreeMap::new();
    for phase in &phases {
        for link in &phase.topology.links {
            for kind in ["reach", "auth"] {
                let testcase = format!("<testcase name=\"{kind} {}→{}\"", link.from, link.to);
                *testcases.entry(testcase).or_default() += 1;
            }
        }
    }
    // Stale links to a removed organization (create-only charts) are checked too.
    for check in report
        .checks
        .iter()
        .filter(|c| matches!(c.check, CheckKind::Reach | CheckKind::Auth))
    {
        let testcase = format!("<testcase name=\"{}\"", check.name());
        let count = testcases.entry(testcase).or_default();
        let has_link = phases
            .iter()
            .any(|p| p.name == check.step && p.topology.has_link(&check.from, &check.to));
        if !has_link {
            *count += 1;
        }
    }
    for (testcase, count) in testcases {
        assert_eq!(
            junit.matches(&testcase).count(),
            count,
            "junit.xml has not exactly one {testcase} per verify step that checks the link"
        );
    }
    assert_eq!(
        junit.matches("<testsuite ").count(),
        phases.len(),
        "junit.xml has one testsuite per verify step"
    );
    assert!(!junit.contains("<failure"), "junit.xml reports a failure");

    assert_private(&run.run_dir);
}

/// The run directory and every directory inside `values/` are 0700, every values file 0600
/// (DESIGN §3): they hold the secrets.
fn assert_private(run_dir: &Path) {
    assert_eq!(mode(run_dir), 0o700, "the run directory's mode");
    let values = run_dir.join("values");
    for directory in directories_under(&values) {
        assert_eq!(mode(&directory), 0o700, "{}", directory.display());
    }
    let files = files_under(&values);
    assert!(!files.is_empty(), "the run wrote no values files");
    for file in files {
        assert_eq!(mode(&file), 0o600, "{}", file.display());
    }
}

/// What `scenarios/guide-literal.yaml` must show: the guide's `channel` key under every
/// incoming entry leaves the guide's own check green and every authentication refused.
const GUIDE_LITERAL_ORGANIZATIONS: [&str; 2] = ["ingen", "biotechnica"];
const GUIDE_LITERAL_REACH: &str = "200";
const GUIDE_LITERAL_AUTH: &str = "rejected";

#[test]
fn the_guide_literal_values_reach_every_peer_and_authenticate_to_none() {
    let run = run_scenario(Path::new("scenarios/guide-literal.yaml"), &["--seed", SEED]);
    assert_eq!(run.code(), Some(0), "{}", run.transcript());
    let report = run.report();
    let checks = checks_by_key(&report);
    let mut links = BTreeSet::new();
    for from in GUIDE_LITERAL_ORGANIZATIONS {
        for to in GUIDE_LITERAL_ORGANIZATIONS {
            links.insert((from, to));
            let reach = checks[&key(CheckKind::Reach, from, to)];
            assert_eq!(
                (reach.observed.as_str(), reach.passed),
                (GUIDE_LITERAL_REACH, true),
                "reach {from}→{to}"
            );
            let auth = checks[&key(CheckKind::Auth, from, to)];
            assert_eq!(
                (auth.expected.as_str(), auth.observed.as_str(), auth.passed),
                (GUIDE_LITERAL_AUTH, GUIDE_LITERAL_AUTH, true),
                "auth {from}→{to}"
            );
        }
    }
    let checked: BTreeSet<(&str, &str)> = report
        .checks
        .iter()
        .filter(|c| c.check != CheckKind::Complete)
        .map(|c| (c.from.as_str(), c.to.as_str()))
        .collect();
    assert_eq!(checked, links, "the checks cover exactly the four links");
}
