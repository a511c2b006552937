//! Reports used by the tests of every reporter, so the terminal, JSON and JUnit snapshots
//! describe the same runs.

use super::model::{Charts, CheckKind, CheckResult, Phase, Report};

/// A check that met a healthy expectation.
pub fn healthy(check: CheckKind, from: &str, to: &str) -> CheckResult {
    let value = match check {
        CheckKind::Reach => "200",
        CheckKind::Auth => "accepted",
        CheckKind::Rotation => super::model::HEALTHY_ROTATION,
        CheckKind::Revoked => "rejected",
        CheckKind::Complete => "",
    };
    observed(check, from, to, value, value)
}

/// A check with the given expectation and observation; it passes when they are equal.
pub fn observed(
    check: CheckKind,
    from: &str,
    to: &str,
    expected: &str,
    observed: &str,
) -> CheckResult {
    CheckResult {
        step: "verify".to_owned(),
        check,
        from: from.to_owned(),
        to: to.to_owned(),
        expected: expected.to_owned(),
        observed: observed.to_owned(),
        passed: expected == observed,
        attempts: 1,
        duration_ms: 40,
        detail: None,
        diagnostics: None,
    }
}

/// The completeness check of `from`, expecting and observing `peers`.
pub fn complete(from: &str, expected: &[&str], observed_peers: &[&str]) -> CheckResult {
    observed(
        CheckKind::Complete,
        from,
        "*",
        &expected.join(","),
        &observed_peers.join(","),
    )
}

fn report(scenario: &str, checks: Vec<CheckResult>) -> Report {
    Report {
        scenario: scenario.to_owned(),
        provider: "sim".to_owned(),
        isolation: None,
        run_id: "r-1a2b".to_owned(),
        passed: checks.iter().all(|check| check.passed),
        started_at: "2025-01-02T03:04:05Z".to_owned(),
        duration_ms: 4_321,
        charts: Charts {
            backend: "26.15.3".to_owned(),
            orchestrator: "8.8.0".to_owned(),
        },
        phases: vec![
            Phase {
                name: "clusters".to_owned(),
                duration_ms: 12,
            },
            Phase {
                name: "deploy".to_owned(),
                duration_ms: 1_250,
            },
            Phase {
                name: "link".to_owned(),
                duration_ms: 980,
            },
            Phase {
                name: "verify".to_owned(),
                duration_ms: 2_079,
            },
        ],
        checks,
    }
}

/// Every reach and auth check from each organization to every organization (itself
/// included), healthy, followed by its completeness check.
fn full_mesh(organizations: &[&str]) -> Vec<CheckResult> {
    let mut sorted = organizations.to_vec();
    sorted.sort_unstable();
    let mut checks = Vec::new();
    for from in organizations {
        for kind in [CheckKind::Reach, CheckKind::Auth] {
            for to in organizations {
                checks.push(healthy(kind, from, to));
            }
        }
        checks.push(complete(from, &sorted, &sorted));
    }
    checks
}

fn replace(checks: &mut [CheckResult], replacement: CheckResult) {
    for check in checks.iter_mut() {
        if check.check == replacement.check
            && check.from == replacement.from
            && check.to == replacement.to
        {
            *check = replacement;
            return;
        }
    }
}

/// Two organizations, every link healthy.
pub fn two_organizations() -> Report {
    report("two-organizations", full_mesh(&["ingen", "biotechnica"]))
}

/// Three organizations with two faults, both detected, and one link that failed: ingen's
/// secret for biotechnica was rejected although no fault was configured.
pub fn three_organizations() -> Report {
    let mut checks = full_mesh(&["ingen", "biotechnica", "tyrell"]);
    // wrong-secret {from: tyrell, to: biotechnica}: the route works, the secret does not.
    replace(
        &mut checks,
        observed(
            CheckKind::Auth,
            "tyrell",
            "biotechnica",
            "rejected",
            "rejected",
        ),
    );
    // missing-outgoing {from: biotechnica, to: tyrell}: no row, so nothing to probe.
    replace(
        &mut checks,
        observed(
            CheckKind::Reach,
            "biotechnica",
            "tyrell",
            "absent",
            "absent",
        ),
    );
    replace(
        &mut checks,
        observed(CheckKind::Auth, "biotechnica", "tyrell", "absent", "absent"),
    );
    replace(
        &mut checks,
        complete(
            "biotechnica",
            &["biotechnica", "ingen"],
            &["biotechnica", "ingen"],
        ),
    );
    let mut failure = observed(
        CheckKind::Auth,
        "ingen",
        "biotechnica",
        "accepted",
        "rejected",
    );
    failure.attempts = 3;
    failure.duration_ms = 1_200;
    failure.detail = Some("401 from http://127.0.1.1:30801/model/".to_owned());
    failure.diagnostics = Some("diagnostics/ingen/".to_owned());
    replace(&mut checks, failure);
    report("three-organizations", checks)
}

/// Two organizations where ingen's table lists a peer the scenario does not link it with.
pub fn incomplete_table() -> Report {
    let mut checks = full_mesh(&["ingen", "biotechnica"]);
    let mut failure = complete(
        "ingen",
        &["biotechnica", "ingen"],
        &["biotechnica", "ingen", "tyrell"],
    );
    failure.attempts = 5;
    failure.duration_ms = 2_500;
    failure.detail = Some("unexpected outgoing organization TyrellMSP".to_owned());
    replace(&mut checks, failure);
    report("incomplete-table", checks)
}

/// `count` organizations named `organization-01`..., every link healthy except one auth
/// failure from the third to the fifth.
pub fn many_organizations(count: usize) -> Report {
    let names: Vec<String> = (1..=count)
        .map(|index| format!("organization-{index:02}"))
        .collect();
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    let mut checks = full_mesh(&names);
    replace(
        &mut checks,
        observed(
            CheckKind::Auth,
            "organization-03",
            "organization-05",
            "accepted",
            "rejected",
        ),
    );
    replace(
        &mut checks,
        observed(
            CheckKind::Reach,
            "organization-04",
            "organization-04",
            "absent",
            "absent",
        ),
    );
    report("many-organizations", checks)
}
