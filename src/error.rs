//! The top-level error of a command and the documented exit codes (DESIGN §6).
//!
//! A failed link check is not an error: it is a result in the report, and the run exits 1.

use std::path::PathBuf;

use crate::scenario::ScenarioErrors;

/// Exit codes, as documented in the README.
pub mod exit_codes {
    /// Every expectation met.
    pub const OK: i32 = 0;
    /// Some expectation not met.
    pub const EXPECTATION_NOT_MET: i32 = 1;
    /// Usage or scenario error.
    pub const USAGE: i32 = 2;
    /// Infrastructure error: cluster, helm, or a timeout before verification.
    pub const INFRASTRUCTURE: i32 = 3;
    /// Interrupted (Ctrl-C).
    pub const INTERRUPTED: i32 = 130;
}

/// Why a command failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Scenario(#[from] ScenarioErrors),
    #[error("{message}")]
    Usage {
        message: String,
        hint: Option<String>,
    },
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{message}")]
    Infrastructure {
        message: String,
        hint: Option<String>,
    },
    #[error("interrupted")]
    Interrupted,
}

impl Error {
    pub fn usage(message: impl Into<String>, hint: impl Into<String>) -> Self {
        Self::Usage {
            message: message.into(),
            hint: Some(hint.into()),
        }
    }

    pub fn infrastructure(message: impl Into<String>, hint: Option<String>) -> Self {
        Self::Infrastructure {
            message: message.into(),
            hint,
        }
    }

    pub fn write(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self::Write {
            path: path.into(),
            source,
        }
    }

    /// The exit code this error ends the command with.
    pub fn exit_code(&self) -> i32 {
        match self {
            Self::Scenario(_) | Self::Usage { .. } => exit_codes::USAGE,
            Self::Write { .. } | Self::Infrastructure { .. } => exit_codes::INFRASTRUCTURE,
            Self::Interrupted => exit_codes::INTERRUPTED,
        }
    }

    /// The hint line, if any.
    pub fn hint(&self) -> Option<&str> {
        match self {
            Self::Usage { hint, .. } | Self::Infrastructure { hint, .. } => hint.as_deref(),
            Self::Write { .. } => Some("check that the directory exists and is writable"),
            Self::Scenario(_) | Self::Interrupted => None,
        }
    }
}

/// An error and its causes, one text joined by `: `.
pub fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
