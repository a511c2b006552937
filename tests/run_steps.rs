//! The steps after `link` on the simulator (DESIGN §2, §4): `rotate-secrets` upgrades only the
//! organizations whose values change, once each, and the next verify checks from the harness
//! that the new secrets are accepted and the old ones rejected; on charts before 26.12.0 the
//! rotation does not take effect and the run derives and shows exactly that; `upgrade-chart`
//! to a chart whose default image lacks the `sync_*` commands fails like the real one.
//!
//! Upgrades are counted with the run's `values/<phase>/` directory, which holds one file per
//! organization the step upgraded.

mod common;

use std::collections::BTreeSet;
use std::path::Path;

use orgmesh::report::{CheckKind, CheckResult, Report};

use common::run::{Run, run_scenario, run_text};

const SEED: &[&str] = &["--seed", "3"];

/// Three organizations, one cluster each, all linked; `{steps}` is filled in per test.
const THREE: &str = "name: three
channels:
  our-channel: [ingen, biotechnica, tyrell]
organizations:
  ingen: { mspId: IngenMSP }
  biotechnica: { mspId: BiotechnicaMSP }
  tyrell: { mspId: TyrellMSP }
";

/// The organizations a step upgraded, from its values directory.
fn upgraded(run: &Run, phase: &str) -> BTreeSet<String> {
    let directory = run.run_dir.join("values").join(phase);
    std::fs::read_dir(&directory)
        .unwrap_or_else(|e| panic!("{}: {e}", directory.display()))
        .map(|entry| {
            let name = entry.expect("a directory entry").file_name();
            let name = name.to_string_lossy();
            name.strip_prefix("backend-")
                .and_then(|n| n.strip_suffix("-values.yaml"))
                .unwrap_or_else(|| panic!("unexpected file {name}"))
                .to_owned()
        })
        .collect()
}

fn rotations<'a>(report: &'a Report, step: &str) -> Vec<&'a CheckResult> {
    report
        .checks
        .iter()
        .filter(|c| c.check == CheckKind::Rotation && c.step == step)
        .collect()
}

fn names(organizations: &[&str]) -> BTreeSet<String> {
    organizations.iter().map(|&o| o.to_owned()).collect()
}

#[test]
fn rotating_one_pair_upgrades_only_its_two_organizations_and_checks_both_directions() {
    let text = format!(
        "{THREE}steps:\n  - deploy\n  - link\n  - verify\n  - rotate-secrets: {{ links: [[ingen, biotechnica]] }}\n  - verify\n"
    );
    let run = run_text("three.yaml", &text, SEED);
    assert_eq!(run.code(), Some(0), "{}", run.transcript());
    assert_eq!(
        upgraded(&run, "rotate-secrets"),
        names(&["ingen", "biotechnica"])
    );
    let report = run.report();
    let links: BTreeSet<(String, String)> = rotations(&report, "verify-2")
        .iter()
        .map(|c| (c.from.clone(), c.to.clone()))
        .collect();
    let expected: BTreeSet<(String, String)> = [("ingen", "biotechnica"), ("biotechnica", "ingen")]
        .iter()
        .map(|(a, b)| ((*a).to_owned(), (*b).to_owned()))
        .collect();
    assert_eq!(links, expected);
    for check in rotations(&report, "verify-2") {
        assert_eq!(check.expected, "new accepted, old rejected");
        assert_eq!(check.observed, "new accepted, old rejected");
        assert!(check.passed);
    }
    assert!(rotations(&report, "verify").is_empty());
}

#[test]
fn rotating_a_self_link_upgrades_only_that_organization() {
    let text = format!(
        "{THREE}steps: [deploy, link, rotate-secrets: {{links: [[tyrell, tyrell]]}}, verify]\n"
    );
    let run = run_text("three.yaml", &text, SEED);
    assert_eq!(run.code(), Some(0), "{}", run.transcript());
    assert_eq!(upgraded(&run, "rotate-secrets"), names(&["tyrell"]));
    let report = run.report();
    let rotated: Vec<(&str, &str)> = rotations(&report, "verify")
        .iter()
        .map(|c| (c.from.as_str(), c.to.as_str()))
        .collect();
    assert_eq!(rotated, [("tyrell", "tyrell")]);
}

#[test]
fn rotating_every_link_upgrades_every_organization_once() {
    let text = format!("{THREE}steps: [deploy, link, verify, rotate-secrets, verify]\n");
    let run = run_text("three.yaml", &text, SEED);
    assert_eq!(run.code(), Some(0), "{}", run.transcript());
    assert_eq!(
        upgraded(&run, "rotate-secrets"),
        names(&["ingen", "biotechnica", "tyrell"])
    );
    let stdout = run.stdout() + &run.stderr();
    for organization in ["ingen", "biotechnica", "tyrell"] {
        assert_eq!(
            stdout
                .matches(&format!("rotate-secrets: {organization} upgrade started"))
                .count(),
            1,
            "{organization} is upgraded once\n{}",
            run.transcript()
        );
    }
    assert_eq!(rotations(&run.report(), "verify-2").len(), 9);
}

#[test]
fn on_a_create_only_chart_the_rotation_and_the_removal_do_not_take_effect_and_the_run_shows_it() {
    let run = run_scenario(Path::new("scenarios/qualification-create-only.yaml"), SEED);
    assert_eq!(run.code(), Some(0), "{}", run.transcript());
    let report = run.report();
    assert!(report.passed);
    let checks = rotations(&report, "verify-2");
    assert_eq!(
        checks.len(),
        9,
        "every directed link of three organizations"
    );
    for check in checks {
        assert_eq!(
            check.expected,
            "new rejected, old accepted",
            "{}",
            check.name()
        );
        assert_eq!(check.observed, check.expected, "{}", check.name());
        assert!(
            check.is_fault_expected(),
            "a rotation without effect is a fault"
        );
    }
    // Both sides kept the old secret, so the pods still authenticate to each other.
    for check in report
        .checks
        .iter()
        .filter(|c| c.check == CheckKind::Auth && c.step == "verify-2")
    {
        assert_eq!(check.observed, "accepted", "{}", check.name());
    }
    // After tyrell's removal its peers still accept its secret and still list it.
    let of = |step: &str, kind: CheckKind, to: &str| -> Vec<String> {
        report
            .checks
            .iter()
            .filter(|c| c.step == step && c.check == kind && c.to == to)
            .map(|c| format!("{}→{} {}", c.from, c.to, c.observed))
            .collect()
    };
    for peer in ["ingen", "biotechnica", "cyberdyne"] {
        assert_eq!(
            of("verify-4", CheckKind::Revoked, peer),
            [format!("tyrell→{peer} accepted")]
        );
    }
    assert_eq!(
        of("verify-4", CheckKind::Reach, "tyrell"),
        [
            "ingen→tyrell error",
            "biotechnica→tyrell error",
            "cyberdyne→tyrell error"
        ]
    );
    // The upgrade to a chart with the sync commands applies the values: a clean mesh.
    let last: Vec<&CheckResult> = report
        .checks
        .iter()
        .filter(|c| c.step == "verify-5")
        .collect();
    assert!(last.iter().all(|c| c.passed));
    assert!(last.iter().all(|c| c.to != "tyrell"));
    assert_eq!(last.len(), 9 * 2 + 3);
}

#[test]
fn upgrading_to_a_chart_whose_default_image_lacks_sync_users_fails_with_exit_3() {
    let run = run_scenario(Path::new("fixtures/failing/upgrade-to-26.13.yaml"), SEED);
    assert_eq!(run.code(), Some(3), "{}", run.transcript());
    let stderr = run.stderr();
    let error = stderr
        .lines()
        .find(|line| line.starts_with("error:"))
        .unwrap_or_else(|| panic!("no error line\n{}", run.transcript()));
    assert!(error.contains("upgrade"), "{error}");
    assert!(error.contains("sync_users"), "{error}");
    assert!(error.contains("ingen"), "{error}");
    assert!(error.contains("26.13.0"), "{error}");
}

#[test]
fn the_plan_describes_the_steps() {
    let output = common::orgmesh()
        .args(["plan", "scenarios/qualification.yaml"])
        .output()
        .expect("orgmesh runs");
    assert!(output.status.success());
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(
        text.contains("rotate-secrets: new secrets for all 9 directed links"),
        "{text}"
    );
    assert!(
        text.contains("rotate-secrets-2: new secrets for 3 directed links"),
        "{text}"
    );
    assert!(
        text.contains("add-organization: install backend-cyberdyne on cluster-1"),
        "{text}"
    );
    assert!(text.contains("verify-4: check 14 directed links"), "{text}");
    assert!(
        text.contains("remove-organization: uninstall backend-biotechnica"),
        "{text}"
    );
    assert!(text.contains("verify-6: check 9 directed links"), "{text}");
    assert!(
        text.contains("upgrade-chart: upgrade each of the 3 backends to chart 26.15.3"),
        "{text}"
    );
}

#[test]
fn adding_an_organization_installs_it_and_upgrades_only_its_new_peers() {
    let text = "name: grow
channels:
  our-channel: [ingen, biotechnica]
  side-channel: [tyrell]
organizations:
  ingen: {}
  biotechnica: {}
  tyrell: {}
steps:
  - deploy
  - link
  - verify
  - add-organization: { name: cyberdyne, cluster: tyrell, channels: [side-channel] }
  - verify
";
    let run = run_text("grow.yaml", text, SEED);
    assert_eq!(run.code(), Some(0), "{}", run.transcript());
    assert_eq!(
        upgraded(&run, "add-organization"),
        names(&["cyberdyne", "tyrell"])
    );
    let transcript = run.stdout() + &run.stderr();
    assert!(transcript.contains("add-organization: cyberdyne install started"));
    assert!(transcript.contains("add-organization: tyrell upgrade started"));
    assert!(!transcript.contains("add-organization: ingen"));
    let report = run.report();
    let complete = report
        .checks
        .iter()
        .find(|c| c.check == CheckKind::Complete && c.from == "tyrell" && c.step == "verify-2")
        .expect("a complete check for tyrell");
    assert_eq!(complete.observed, "cyberdyne,tyrell");
    assert!(report.checks.iter().any(|c| c.check == CheckKind::Auth
        && c.from == "cyberdyne"
        && c.to == "tyrell"
        && c.passed));
}

#[test]
fn removing_an_organization_revokes_its_secrets_and_its_peers_stop_listing_it() {
    let text = format!(
        "{THREE}steps: [deploy, link, verify, remove-organization: {{name: tyrell}}, verify]\n"
    );
    let run = run_text("three.yaml", &text, SEED);
    assert_eq!(run.code(), Some(0), "{}", run.transcript());
    assert_eq!(
        upgraded(&run, "remove-organization"),
        names(&["ingen", "biotechnica"])
    );
    let report = run.report();
    let revoked: Vec<(&str, &str, &str)> = report
        .checks
        .iter()
        .filter(|c| c.check == CheckKind::Revoked)
        .map(|c| (c.from.as_str(), c.to.as_str(), c.observed.as_str()))
        .collect();
    assert_eq!(
        revoked,
        [
            ("tyrell", "ingen", "rejected"),
            ("tyrell", "biotechnica", "rejected")
        ]
    );
    for check in report
        .checks
        .iter()
        .filter(|c| c.check == CheckKind::Complete && c.step == "verify-2")
    {
        assert_eq!(check.observed, "biotechnica,ingen", "{}", check.name());
    }
    assert!(
        !report.checks.iter().any(|c| c.step == "verify-2"
            && (c.from == "tyrell" || c.to == "tyrell")
            && c.check != CheckKind::Revoked),
        "nothing but the revoked checks concerns the removed organization"
    );
}
