//! `junit.xml`, built from the report tree so CI systems show one test case per check and
//! directed link, e.g. `auth ingen→biotechnica`, next to the harness's own tests.
//!
//! Layout: one testsuite per verify step, in the order they ran: the first (`verify`) named
//! after the scenario, later ones `<scenario>.<step>` (`ingen-biotechnica.verify-2`); the check
//! kind is the classname so CI can group reach, auth, complete and rotation; every suite's
//! properties carry its step, the provider, run id, chart versions and one
//! `phase.<name>.duration_ms` per phase.

use std::path::Path;
use std::time::Duration;

use quick_junit::{NonSuccessKind, Property, TestCase, TestCaseStatus, TestSuite};

use super::error::{ReportError, write_file};
use super::model::{CheckResult, Report};

/// The report as JUnit XML.
pub fn to_junit_xml(report: &Report) -> Result<String, ReportError> {
    // The verify steps in the order their checks appear; a report without checks still has
    // the first suite, so CI sees the run.
    let mut steps: Vec<&str> = Vec::new();
    for check in &report.checks {
        if !steps.contains(&check.step.as_str()) {
            steps.push(check.step.as_str());
        }
    }
    if steps.is_empty() {
        steps.push("verify");
    }
    let mut junit = quick_junit::Report::new("orgmesh");
    junit.set_time(report.duration());
    for step in steps {
        let name = if step == "verify" {
            report.scenario.clone()
        } else {
            format!("{}.{step}", report.scenario)
        };
        let mut suite = TestSuite::new(name);
        let phase = report.phases.iter().find(|phase| phase.name == step);
        suite.set_time(phase.map_or(report.duration(), |p| Duration::from_millis(p.duration_ms)));
        suite.add_properties([
            Property::new("step", step),
            Property::new("provider", report.provider.as_str()),
            Property::new("run_id", report.run_id.as_str()),
            Property::new("started_at", report.started_at.as_str()),
            Property::new("chart.backend", report.charts.backend.as_str()),
            Property::new("chart.orchestrator", report.charts.orchestrator.as_str()),
        ]);
        if let Some(isolation) = &report.isolation {
            suite.add_property(Property::new("isolation", isolation.as_str()));
        }
        suite.add_properties(report.phases.iter().map(|phase| {
            Property::new(
                format!("phase.{}.duration_ms", phase.name),
                phase.duration_ms.to_string(),
            )
        }));
        suite.add_test_cases(
            report
                .checks
                .iter()
                .filter(|check| check.step == step)
                .map(test_case),
        );
        junit.add_test_suite(suite);
    }
    junit
        .to_string()
        .map_err(|source| ReportError::Junit { source })
}

/// Writes [`to_junit_xml`] to `path`, creating its directory if needed.
pub fn write_junit(report: &Report, path: &Path) -> Result<(), ReportError> {
    write_file(path, &to_junit_xml(report)?)
}

fn test_case(check: &CheckResult) -> TestCase {
    let status = if check.passed {
        TestCaseStatus::success()
    } else {
        // A failure, not an error: the check ran and observed something other than expected.
        let mut status = TestCaseStatus::non_success(NonSuccessKind::Failure);
        status.set_message(format!(
            "expected {}, observed {}",
            check.expected, check.observed
        ));
        if let Some(detail) = &check.detail {
            status.set_description(detail.as_str());
        }
        status
    };
    let mut case = TestCase::new(check.name(), status);
    case.set_classname(check.check.as_str());
    case.set_time(Duration::from_millis(check.duration_ms));
    case.add_properties([
        Property::new("expected", check.expected.as_str()),
        Property::new("observed", check.observed.as_str()),
        Property::new("attempts", check.attempts.to_string()),
    ]);
    if let Some(diagnostics) = &check.diagnostics {
        // CI shows system-out next to a failure, which is where the reader needs the path.
        case.set_system_out(format!("diagnostics: {diagnostics}\n"));
    }
    case
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::fixtures;

    #[test]
    fn three_organizations() {
        insta::assert_snapshot!(to_junit_xml(&fixtures::three_organizations()).unwrap());
    }

    #[test]
    fn one_test_case_per_check() {
        let report = fixtures::incomplete_table();
        let xml = to_junit_xml(&report).unwrap();
        assert_eq!(xml.matches("<testcase ").count(), report.checks.len());
        assert!(xml.contains(r#"name="complete ingen""#));
        assert!(xml.contains(r#"<property name="phase.deploy.duration_ms" value="1250"/>"#));
    }

    #[test]
    fn one_test_suite_per_verify_step() {
        let mut report = fixtures::two_organizations();
        let mut later = report.checks.clone();
        for check in &mut later {
            check.step = "verify-2".into();
        }
        report.checks.extend(later);
        let xml = to_junit_xml(&report).unwrap();
        assert_eq!(xml.matches("<testsuite ").count(), 2);
        assert!(xml.contains(r#"<testsuite name="two-organizations""#));
        assert!(xml.contains(r#"<testsuite name="two-organizations.verify-2""#));
        assert!(xml.contains(r#"<property name="step" value="verify-2"/>"#));
        assert_eq!(xml.matches("<testcase ").count(), report.checks.len());
    }

    #[test]
    fn writes_a_file() {
        let directory = tempfile::tempdir().unwrap();
        let path = directory.path().join("junit.xml");
        write_junit(&fixtures::two_organizations(), &path).unwrap();
        let written = std::fs::read_to_string(&path).unwrap();
        assert!(written.contains(r#"<testsuite name="two-organizations""#));
    }
}
