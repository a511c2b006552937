//! What the runner tells reporters while a run is under way.
//!
//! The runner emits these in order; reporters ([`Progress`](super::Progress)) only consume
//! them and never drive execution, so a slow or broken terminal cannot change a run's outcome.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

/// One thing that happened during a run.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// The run has a plan and a run directory.
    RunStarted {
        scenario: String,
        provider: String,
        run_id: String,
        run_dir: PathBuf,
        organizations: usize,
        links: usize,
    },
    /// A phase (`clusters`, `deploy`, `link`, `verify`...) began; `total` is how many
    /// organizations or clusters it works on.
    PhaseStarted {
        phase: String,
        total: usize,
    },
    PhaseFinished {
        phase: String,
        duration: Duration,
    },
    /// A cluster is up and its organizations can be addressed at `address`.
    ClusterReady {
        cluster: String,
        address: String,
    },
    OrganizationStarted {
        organization: String,
        action: Action,
    },
    OrganizationFinished {
        organization: String,
        action: Action,
        outcome: Outcome,
    },
    /// Something the user should know that does not stop the run.
    Warning {
        message: String,
    },
    /// The first Ctrl-C: no new work starts and teardown begins; a second one exits at once.
    Interrupted,
    TeardownStarted,
    TeardownFinished {
        duration: Duration,
    },
}

/// What the runner does to one organization.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// The first install of its release, without link values.
    Install,
    /// The upgrade that adds the link values.
    Upgrade,
    /// Reading its outgoing table and probing its credentials.
    Verify,
    /// `helm uninstall` of its release (`remove-organization`).
    Uninstall,
}

impl fmt::Display for Action {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(match self {
            Self::Install => "install",
            Self::Upgrade => "upgrade",
            Self::Verify => "verify",
            Self::Uninstall => "uninstall",
        })
    }
}

/// How one organization's action ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    Done { duration: Duration },
    Failed { duration: Duration, message: String },
}

impl Outcome {
    pub fn duration(&self) -> Duration {
        match self {
            Self::Done { duration } | Self::Failed { duration, .. } => *duration,
        }
    }

    pub fn is_failed(&self) -> bool {
        matches!(self, Self::Failed { .. })
    }
}
