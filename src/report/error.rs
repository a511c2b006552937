//! The errors of the report module: only writing the report files can fail.
//!
//! A failed link check is a result inside the [`Report`](super::Report), never an error here;
//! these variants are for the run directory not being writable or a serializer refusing input.

use std::path::PathBuf;

/// Something went wrong while turning a report into a file.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// The report could not be serialized as JSON.
    #[error("could not serialize the report as JSON")]
    Json {
        #[source]
        source: serde_json::Error,
    },
    /// The report could not be serialized as JUnit XML.
    #[error("could not serialize the report as JUnit XML")]
    Junit {
        #[source]
        source: quick_junit::SerializeError,
    },
    /// A report file could not be written.
    #[error("could not write {}", path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Writes `contents` to `path`, creating the parent directory first because the run directory
/// may not exist yet when a run fails early and still wants to leave its report behind.
pub(crate) fn write_file(path: &std::path::Path, contents: &str) -> Result<(), ReportError> {
    let write_error = |source| ReportError::Write {
        path: path.to_path_buf(),
        source,
    };
    if let Some(parent) = path
        .parent()
        .filter(|parent| !parent.as_os_str().is_empty())
    {
        std::fs::create_dir_all(parent).map_err(write_error)?;
    }
    std::fs::write(path, contents).map_err(write_error)
}
