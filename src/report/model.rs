//! The report tree: what one run observed, check by check. It is the single source for the
//! terminal summary, `report.json` and `junit.xml`, so every reporter shows the same facts.
//!
//! Field names are part of the `report.json` contract; renaming one breaks its readers.

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Everything one run found out: which scenario on which provider, how long each phase took,
/// and one [`CheckResult`] per (check kind, directed link).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Report {
    /// The scenario's name.
    pub scenario: String,
    /// The provider the run used: `sim`, `kind`, `existing`, `k3s`.
    pub provider: String,
    /// `containers` when the simulator ran each cluster as a Docker container; absent
    /// otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub isolation: Option<String>,
    pub run_id: String,
    /// True when every check met its expectation (a detected fault counts as met).
    pub passed: bool,
    /// When the run started, RFC 3339 in UTC (see [`rfc3339`]).
    pub started_at: String,
    pub duration_ms: u64,
    pub charts: Charts,
    /// The phases in the order they ran.
    pub phases: Vec<Phase>,
    pub checks: Vec<CheckResult>,
}

/// The chart versions the run installed.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Charts {
    /// The substra-backend chart version, e.g. `26.15.3`.
    pub backend: String,
    /// The orchestrator chart version, e.g. `8.8.0`.
    pub orchestrator: String,
}

/// How long one phase of the run took.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Phase {
    pub name: String,
    pub duration_ms: u64,
}

/// The outcome of one check on one directed link (or, for `complete`, one organization).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct CheckResult {
    /// The verify phase that made the check: `verify`, `verify-2`... (see
    /// [`crate::plan::Plan::phase_names`]).
    #[serde(default = "default_step")]
    pub step: String,
    pub check: CheckKind,
    /// The organization the check ran from (its name, not its MSP id).
    pub from: String,
    /// The organization the link points to; `*` for [`CheckKind::Complete`].
    pub to: String,
    /// What the scenario expected. Reach: an HTTP code such as `200`, `error` or `absent`.
    /// Auth: `accepted`, `rejected`, `error` or `absent`. Complete: the expected peer names,
    /// sorted and comma-separated.
    pub expected: String,
    /// What the run observed, in the same vocabulary as `expected`.
    pub observed: String,
    pub passed: bool,
    pub attempts: u32,
    pub duration_ms: u64,
    /// The last error, or why the observation differs; `null` when there is nothing to add.
    pub detail: Option<String>,
    /// Where this organization's diagnostics were collected, relative to the run directory
    /// (`diagnostics/<organization>/`); `null` when none were collected.
    pub diagnostics: Option<String>,
}

/// The phase of reports written before checks named their step.
fn default_step() -> String {
    "verify".to_owned()
}

/// The things verified (design §4).
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Hash)]
#[serde(rename_all = "lowercase")]
pub enum CheckKind {
    /// The route: the peer's row in the outgoing table answers `/info/`.
    Reach,
    /// The credentials: the peer accepts the stored outgoing secret on `/model/`.
    Auth,
    /// The outgoing table lists exactly the expected peers.
    Complete,
    /// After `rotate-secrets`, from the harness: the peer accepts the new secret and rejects
    /// the old one (or, on charts that only create accounts, the reverse).
    Rotation,
    /// After `remove-organization`, from the harness: a remaining former peer rejects the
    /// secret the removed organization presented to it.
    Revoked,
}

/// The `expected` value of a reach check on a healthy link.
pub const HEALTHY_REACH: &str = "200";
/// The `expected` value of an auth check on a healthy link.
pub const HEALTHY_AUTH: &str = "accepted";
/// The `expected` value of a rotation check when the rotation takes effect.
pub const HEALTHY_ROTATION: &str = "new accepted, old rejected";

impl CheckKind {
    /// The lowercase name used in `report.json`, JUnit and the terminal.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Reach => "reach",
            Self::Auth => "auth",
            Self::Complete => "complete",
            Self::Rotation => "rotation",
            Self::Revoked => "revoked",
        }
    }
}

impl fmt::Display for CheckKind {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(self.as_str())
    }
}

impl CheckResult {
    /// The check's name as JUnit and the terminal show it: `auth ingen→biotechnica`, or
    /// `complete ingen` for the completeness check, which has no single peer.
    pub fn name(&self) -> String {
        match self.check {
            CheckKind::Complete => format!("{} {}", self.check, self.from),
            CheckKind::Reach | CheckKind::Auth | CheckKind::Rotation | CheckKind::Revoked => {
                format!("{} {}→{}", self.check, self.from, self.to)
            }
        }
    }

    /// True when the expectation is a fault (a reach other than 200, an auth other than
    /// accepted): passing such a check means a fault was detected, which readers should be able
    /// to tell apart from a healthy link.
    pub fn is_fault_expected(&self) -> bool {
        match self.check {
            CheckKind::Reach => self.expected != HEALTHY_REACH,
            CheckKind::Auth => self.expected != HEALTHY_AUTH,
            CheckKind::Rotation => self.expected != HEALTHY_ROTATION,
            CheckKind::Revoked => self.expected != "rejected",
            CheckKind::Complete => false,
        }
    }

    pub fn duration(&self) -> Duration {
        Duration::from_millis(self.duration_ms)
    }
}

impl Report {
    /// The checks that did not meet their expectation, in report order.
    pub fn failed_checks(&self) -> impl Iterator<Item = &CheckResult> {
        self.checks.iter().filter(|check| !check.passed)
    }

    /// The check of `kind` on the link `from`→`to` (use `*` as `to` for
    /// [`CheckKind::Complete`]), if the run made one.
    pub fn check(&self, kind: CheckKind, from: &str, to: &str) -> Option<&CheckResult> {
        self.checks
            .iter()
            .find(|check| check.check == kind && check.from == from && check.to == to)
    }

    pub fn duration(&self) -> Duration {
        Duration::from_millis(self.duration_ms)
    }

    /// For library users driving orgmesh from `cargo test`: returns when the run passed.
    ///
    /// # Panics
    ///
    /// Panics when the run did not pass, with every failed check rendered as plain text, so the
    /// test output says which links failed and why. This is the one intended panic in orgmesh:
    /// a panic is how a Rust test reports failure. Code that wants to handle the outcome should
    /// read [`Report::passed`] and [`Report::failed_checks`] instead.
    #[track_caller]
    pub fn assert_passed(&self) {
        if !self.passed {
            let failures = super::terminal::render_failures(self, super::Style::plain());
            panic!(
                "orgmesh run {} of scenario {} ({}) did not pass\n{failures}",
                self.run_id, self.scenario, self.provider
            );
        }
    }
}

/// Formats a point in time as RFC 3339 in UTC with whole seconds, the form `started_at` uses.
pub fn rfc3339(time: std::time::SystemTime) -> String {
    humantime::format_rfc3339_seconds(time).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::fixtures;

    #[test]
    fn check_kind_is_lowercase_everywhere() {
        assert_eq!(CheckKind::Complete.to_string(), "complete");
        assert_eq!(
            serde_json::to_string(&CheckKind::Reach).unwrap(),
            "\"reach\""
        );
    }

    #[test]
    fn finds_checks_by_kind_and_link() {
        let report = fixtures::three_organizations();
        let check = report
            .check(CheckKind::Auth, "tyrell", "biotechnica")
            .unwrap();
        assert_eq!(check.observed, "rejected");
        assert!(report.check(CheckKind::Auth, "tyrell", "nobody").is_none());
        assert!(report.check(CheckKind::Complete, "ingen", "*").is_some());
    }

    #[test]
    fn names_checks_as_junit_and_the_terminal_do() {
        let report = fixtures::three_organizations();
        let names: Vec<String> = report.failed_checks().map(CheckResult::name).collect();
        assert_eq!(names, ["auth ingen→biotechnica"]);
    }

    #[test]
    fn a_passing_report_does_not_panic() {
        fixtures::two_organizations().assert_passed();
    }

    #[test]
    #[should_panic(expected = "auth ingen→biotechnica: expected accepted, observed rejected")]
    fn a_failing_report_panics_with_the_failures() {
        fixtures::three_organizations().assert_passed();
    }

    #[test]
    fn formats_start_times_as_rfc3339_utc() {
        let time = std::time::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        assert_eq!(rfc3339(time), "2023-11-14T22:13:20Z");
    }
}
