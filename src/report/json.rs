//! `report.json`: the report tree as pretty-printed JSON, field for field, for tools that read
//! a run's outcome without parsing the terminal summary or JUnit.

use std::path::Path;

use super::error::{ReportError, write_file};
use super::model::Report;

/// The report as pretty-printed JSON with a trailing newline, fields in declaration order.
///
/// Serializing this tree cannot fail in practice (it holds only strings, numbers and lists),
/// but serde_json's signature says it may, and a panic is not ours to add.
pub fn to_json(report: &Report) -> Result<String, ReportError> {
    let mut json =
        serde_json::to_string_pretty(report).map_err(|source| ReportError::Json { source })?;
    json.push('\n');
    Ok(json)
}

/// Writes [`to_json`] to `path`, creating its directory if needed.
pub fn write_json(report: &Report, path: &Path) -> Result<(), ReportError> {
    write_file(path, &to_json(report)?)
}

/// Reads a `report.json` back, for tools and tests that compare runs.
pub fn from_json(json: &str) -> Result<Report, ReportError> {
    serde_json::from_str(json).map_err(|source| ReportError::Json { source })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::fixtures;

    #[test]
    fn round_trips() {
        let report = fixtures::three_organizations();
        assert_eq!(from_json(&to_json(&report).unwrap()).unwrap(), report);
    }

    #[test]
    fn uses_the_documented_field_names() {
        let mut report = fixtures::two_organizations();
        report.checks.truncate(1);
        insta::assert_snapshot!(to_json(&report).unwrap());
    }

    #[test]
    fn writes_into_a_missing_directory() {
        let directory = tempfile::tempdir().unwrap();
        let path = directory.path().join("runs/r-1a2b/report.json");
        let report = fixtures::two_organizations();
        write_json(&report, &path).unwrap();
        let written = std::fs::read_to_string(&path).unwrap();
        assert_eq!(from_json(&written).unwrap(), report);
    }

    #[test]
    fn a_write_error_names_the_path() {
        let directory = tempfile::tempdir().unwrap();
        // A directory cannot be overwritten by a file.
        let error = write_json(&fixtures::two_organizations(), directory.path()).unwrap_err();
        assert!(matches!(error, ReportError::Write { .. }));
        assert!(
            error
                .to_string()
                .contains(&directory.path().display().to_string())
        );
    }
}
