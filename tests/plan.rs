//! `orgmesh plan` on the guide: clusters, releases, channels, links and checks, and nothing
//! that looks like a secret (none exists yet when a plan is printed).

mod common;

use common::{orgmesh, secret_like_runs};

/// Lines the guide's plan must contain, as data.
const GUIDE_PLAN_LINES: &[&str] = &[
    "scenario ingen-biotechnica",
    "provider: sim",
    "clusters (2):",
    "  cluster-1: orchestrator, ingen",
    "  cluster-2: biotechnica",
    "channels (1):",
    "  our-channel: ingen, biotechnica",
    "releases (3):",
    "  orchestrator in namespace orchestrator on cluster-1",
    "  backend-ingen in namespace ingen on cluster-1 (mspID IngenMSP)",
    "  backend-biotechnica in namespace biotechnica on cluster-2 (mspID BiotechnicaMSP)",
    "steps:",
];

#[test]
fn the_guide_plan_lists_clusters_releases_channels_and_checks() {
    let output = orgmesh()
        .args(["plan", "scenarios/guide.yaml"])
        .output()
        .expect("orgmesh runs");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    let lines: Vec<&str> = stdout.lines().collect();
    for expected in GUIDE_PLAN_LINES {
        assert!(
            lines.contains(expected),
            "the plan lacks {expected:?}:\n{stdout}"
        );
    }
    // Two pairs and two self links; reach and auth per link plus complete per organization.
    let verify = lines
        .iter()
        .find(|line| line.contains("verify:"))
        .unwrap_or_else(|| panic!("no verify step:\n{stdout}"));
    assert!(verify.contains("4 directed links"), "{verify}");
    assert!(verify.contains("(2 self links)"), "{verify}");
    assert!(verify.contains(": 10 checks"), "{verify}");
    assert!(
        !stdout.contains("faults"),
        "the guide declares no faults:\n{stdout}"
    );
    assert!(secret_like_runs(&stdout).is_empty(), "{stdout}");
    assert!(secret_like_runs(&String::from_utf8_lossy(&output.stderr)).is_empty());
}

#[test]
fn plan_refuses_an_invalid_scenario() {
    orgmesh()
        .args(["plan", "fixtures/invalid/unknown-key.yaml"])
        .assert()
        .code(2)
        .stderr(predicates::str::contains(
            "fixtures/invalid/unknown-key.yaml:6:29:",
        ));
}
